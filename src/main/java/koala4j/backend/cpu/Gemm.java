package koala4j.backend.cpu;

import static koala4j.backend.cpu.GemmKernel.MR;
import static koala4j.backend.cpu.GemmKernel.NR;

import java.util.Arrays;
import java.util.Objects;

import koala4j.tensor.Activation;

/**
 * Batched single-precision GEMM with a fused epilogue: the CPU backend's torch.matmul / torch.baddbmm /
 * F.linear(+activation). Follows the BLIS/GotoBLAS design: op(B) is packed one KC x NC block at a time (converted
 * from F16/BF16 on the way), op(A) one MR x KC micro-panel at a time, and a register-blocked MR x NR micro-kernel
 * ({@link GemmKernel}) streams the B block from L2 while the A micro-panel sits in L1. Rows of one decode step
 * (m = 1) take a separate matrix-vector path ({@link Gemv}) that reads B exactly once, and so do a few rows against
 * an nn.Linear-shaped B ({@link Gemv#fewRows}: short prompts, batched decode steps).
 *
 * <p>Work is split over batch x column blocks x row chunks and run on all {@link Parallel} threads. Thread-safe:
 * all state is per call or per thread ({@link GemmWorkspace}). The scalar twin is {@link ScalarGemm}.
 */
public final class Gemm {

    /**
     * Depth of one packed block. The A micro-panel (MR x KC = 12 KiB) then stays in the 48 KiB L1d while one
     * KC x NR B micro-panel (32 KiB) streams past it.
     */
    static final int KC = 256;
    /** Width of one packed B block: KC x NC floats = 512 KiB, half of Zen 5's 1 MiB L2, the rest for A and C. */
    static final int NC = 512;
    /** Cap on the rows of one task, which bounds its partial-sum scratch (MC_MAX x NC floats). */
    static final int MC_MAX = 768;

    /**
     * One operand: element (row r, col c) of op(X) for batch b lives at
     * {@code offset + b*batchStride + (transposed ? c*ld + r : r*ld + c)}. batchStride 0 = broadcast.
     */
    public record MatrixRef(FloatSource data, long offset, int ld, boolean transposed, long batchStride) {
        public MatrixRef {
            Objects.requireNonNull(data, "data");
            if (offset < 0 || ld < 0 || batchStride < 0) {
                throw new IllegalArgumentException("MatrixRef offset=%d ld=%d batchStride=%d: expected all >= 0"
                        .formatted(offset, ld, batchStride));
            }
        }

        /** A single row-major matrix (or one broadcast over the batch) in a float array. */
        public static MatrixRef rowMajor(float[] data, long offset, int ld) {
            return new MatrixRef(FloatSource.of(data), offset, ld, false, 0);
        }
    }

    /**
     * Applied to every output element in this order: v = alpha*acc; v += bias (bias[col] or bias[row]); v = act(v);
     * C = accumulate ? C + v : v. bias may be null.
     */
    public record Epilogue(float alpha, float[] bias, boolean biasPerRow, Activation act, boolean accumulate) {
        public static final Epilogue NONE = new Epilogue(1f, null, false, Activation.NONE, false);

        public Epilogue {
            Objects.requireNonNull(act, "act (use Activation.NONE)");
        }

        /** F.linear-style: per-column bias (may be null), then act. */
        public static Epilogue of(float[] bias, Activation act) {
            return new Epilogue(1f, bias, false, act, false);
        }
    }

    private Gemm() {
    }

    /**
     * C[b] (m x n, row-major, leading dim ldc, batch stride cBatchStride) = epilogue(op(A[b]) (m x k) . op(B[b])
     * (k x n)), b in [0, batch).
     *
     * @throws IllegalArgumentException when a size is negative or an operand, C or the bias is too short
     */
    public static void gemm(int batch, int m, int n, int k, MatrixRef a, MatrixRef b, float[] c, int cOffset, int ldc,
                            long cBatchStride, Epilogue epilogue) {
        check(batch, m, n, k, a, b, c, cOffset, ldc, cBatchStride, epilogue);
        if (batch == 0 || m == 0 || n == 0) {
            return;
        }
        if (m == 1 && k > 0) {
            Gemv.run(batch, n, k, a, b, c, cOffset, cBatchStride, epilogue);
            return;
        }
        if (Gemv.takesFewRows(batch, m, k, b)) {
            Gemv.fewRows(m, n, k, a, b, c, cOffset, ldc, epilogue);
            return;
        }
        run(batch, m, n, k, new GemmPacking.RefA(a, 0), new GemmPacking.RefB(b, 0), c, cOffset, ldc, cBatchStride,
                epilogue, 0, 0);
    }

    /** Convenience for one row-major C = A . B (+ epilogue) with no batch and no transposes. */
    public static void gemm(int m, int n, int k, float[] a, float[] b, float[] c, Epilogue epilogue) {
        gemm(1, m, n, k, MatrixRef.rowMajor(a, 0, k), MatrixRef.rowMajor(b, 0, n), c, 0, n, 0, epilogue);
    }

    /**
     * The blocked driver shared with {@link Conv2d}. Batch b adds {@code (b % biasPeriod) * biasStride} to bias
     * indices when biasPeriod > 0 (one bias slice per conv group).
     */
    static void run(int batch, int m, int n, int k, GemmPacking.APanels a, GemmPacking.BPanels b, float[] c,
                    long cOffset, int ldc, long cBatchStride, Epilogue ep, int biasPeriod, int biasStride) {
        int threads = Parallel.threads();
        // Several tasks per thread keep both cores busy when a neighbour process steals one for a while.
        int target = threads == 1 ? 1 : 4 * threads;
        int ncBlock = roundUp(ceilDiv(n, ceilDiv(n, NC)), NR);
        int rows = roundUp(ceilDiv(m, ceilDiv(m, MC_MAX)), MR);
        // Halve the longer side of a task until there are enough tasks: each split of the columns re-packs A once
        // more and each split of the rows re-packs B once more, so cutting the longer side costs the least.
        while ((long) batch * ceilDiv(n, ncBlock) * ceilDiv(m, rows) < target) {
            if (rows >= ncBlock && rows > 4 * MR) {
                rows = roundUp(ceilDiv(rows, 2), MR);
            } else if (ncBlock > 4 * NR) {
                ncBlock = roundUp(ceilDiv(ncBlock, 2), NR);
            } else if (rows > MR) {
                rows = roundUp(ceilDiv(rows, 2), MR);
            } else {
                break;
            }
        }
        int nBlocks = ceilDiv(n, ncBlock);
        int chunks = ceilDiv(m, rows);
        int taskRows = rows;
        int taskCols = ncBlock;
        long outer = (long) batch * nBlocks;
        long tasks = outer * chunks;
        if (tasks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("gemm of batch=%d m=%d n=%d splits into %d tasks, expected < 2^31"
                    .formatted(batch, m, n, tasks));
        }
        int kBlocks = ceilDiv(k, KC);
        int kcStep = kBlocks == 0 ? 0 : ceilDiv(k, kBlocks);
        Parallel.forRange((int) tasks, 1, (from, to) -> {
            for (int t = from; t < to; t++) {
                int chunk = t % chunks;
                long rest = t / chunks;
                int j0 = (int) (rest % nBlocks) * taskCols;
                int bi = (int) (rest / nBlocks);
                int i0 = chunk * taskRows;
                task(bi, i0, Math.min(m, i0 + taskRows), j0, Math.min(n, j0 + taskCols), k, kBlocks, kcStep, a, b, c,
                        cOffset + bi * cBatchStride, ldc, ep, biasPeriod > 0 ? (bi % biasPeriod) * biasStride : 0);
            }
        });
    }

    /** C[i0..i1, j0..j1) of batch bi, all of k. */
    private static void task(int bi, int i0, int i1, int j0, int j1, int k, int kBlocks, int kcStep,
                             GemmPacking.APanels a, GemmPacking.BPanels b, float[] c, long cBase, int ldc,
                             Epilogue ep, int biasOff) {
        GemmWorkspace ws = GemmWorkspace.get();
        int nc = j1 - j0;
        int panels = ceilDiv(nc, NR);
        float[] tile = ws.tile(MR * NR);
        if (kBlocks == 0) {
            // k = 0: the product is all zeros and only the epilogue remains (which overwrites its source row)
            for (int i = i0; i < i1; i++) {
                for (int q = 0; q < panels; q++) {
                    Arrays.fill(tile, 0, NR, 0f);
                    finish(tile, 0, i, j0 + q * NR, Math.min(NR, j1 - j0 - q * NR), c, cBase, ldc, ep, biasOff);
                }
            }
            return;
        }
        float[] ap = ws.a(MR * kcStep);
        float[] bp = ws.b(kcStep * panels * NR);
        float[] scratch = kBlocks > 1 ? ws.scratch(roundUp(i1 - i0, MR) * panels * NR) : null;
        for (int kb = 0; kb < kBlocks; kb++) {
            int p0 = kb * kcStep;
            int kc = Math.min(kcStep, k - p0);
            boolean first = kb == 0;
            boolean last = kb == kBlocks - 1;
            b.pack(bi, p0, kc, j0, nc, bp);
            for (int ir = i0; ir < i1; ir += MR) {
                int mr = Math.min(MR, i1 - ir);
                a.pack(bi, ir, mr, p0, kc, ap);
                int so = (ir - i0) / MR * panels * MR * NR;
                for (int q = 0; q < panels; q++, so += MR * NR) {
                    if (last) {
                        GemmKernel.run(ap, 0, bp, q * kc * NR, kc, !first, scratch, so, tile, 0);
                        int jq = j0 + q * NR;
                        int w = Math.min(NR, j1 - jq);
                        for (int i = 0; i < mr; i++) {
                            finish(tile, i * NR, ir + i, jq, w, c, cBase, ldc, ep, biasOff);
                        }
                    } else {
                        GemmKernel.run(ap, 0, bp, q * kc * NR, kc, !first, scratch, so, scratch, so);
                    }
                }
            }
        }
    }

    private static void finish(float[] src, int sOff, int row, int col, int len, float[] c, long cBase, int ldc,
                               Epilogue ep, int biasOff) {
        float[] bias = ep.bias();
        boolean perCol = bias != null && !ep.biasPerRow();
        float rowBias = bias != null && ep.biasPerRow() ? bias[biasOff + row] : 0f;
        GemmVector.finishRow(src, sOff, c, (int) (cBase + (long) row * ldc + col), len, ep.alpha(),
                bias, biasOff + col, perCol, rowBias, ep.act(), ep.accumulate());
    }

    static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    static int roundUp(int a, int b) {
        return ceilDiv(a, b) * b;
    }

    /** Shared argument checks of the fast kernel and its scalar twin, so both reject the same calls. */
    static void check(int batch, int m, int n, int k, MatrixRef a, MatrixRef b, float[] c, int cOffset, int ldc,
                      long cBatchStride, Epilogue ep) {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        Objects.requireNonNull(c, "c");
        Objects.requireNonNull(ep, "epilogue (use Epilogue.NONE)");
        if (batch < 0 || m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException("gemm batch=%d m=%d n=%d k=%d: expected all >= 0"
                    .formatted(batch, m, n, k));
        }
        if (batch == 0 || m == 0 || n == 0) {
            return;
        }
        checkOperand("A", a, m, k, batch);
        checkOperand("B", b, k, n, batch);
        if (cOffset < 0 || cBatchStride < 0 || (m > 1 && ldc < n)) {
            throw new IllegalArgumentException("C cOffset=%d ldc=%d cBatchStride=%d: expected offsets >= 0 and ldc >= n=%d"
                    .formatted(cOffset, ldc, cBatchStride, n));
        }
        long last = cOffset + (batch - 1) * cBatchStride + (long) (m - 1) * ldc + n - 1;
        if (last >= c.length) {
            throw new IllegalArgumentException("C has %d floats, expected > %d for batch=%d m=%d n=%d ldc=%d offset=%d"
                    .formatted(c.length, last, batch, m, n, ldc, cOffset));
        }
        if (ep.bias() != null) {
            int need = ep.biasPerRow() ? m : n;
            if (ep.bias().length < need) {
                throw new IllegalArgumentException("bias has %d floats, expected %d (%s)"
                        .formatted(ep.bias().length, need, ep.biasPerRow() ? "one per row, m" : "one per column, n"));
            }
        }
    }

    private static void checkOperand(String name, MatrixRef x, int rows, int cols, int batch) {
        if (rows == 0 || cols == 0) {
            return;
        }
        long far = x.transposed() ? (long) (cols - 1) * x.ld() + rows - 1 : (long) (rows - 1) * x.ld() + cols - 1;
        long last = x.offset() + (batch - 1) * x.batchStride() + far;
        if (last >= x.data().size()) {
            throw new IllegalArgumentException(
                    "%s has %d elements, expected > %d for a %s%d x %d operand (ld=%d, offset=%d, batch=%d, batchStride=%d)"
                            .formatted(name, x.data().size(), last, x.transposed() ? "transposed " : "", rows, cols,
                                    x.ld(), x.offset(), batch, x.batchStride()));
        }
        if (x.data().array() != null && last > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("%s reaches element %d, past a Java array's limit".formatted(name, last));
        }
    }
}
