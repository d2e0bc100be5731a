package koala4j.backend.cpu;

import static koala4j.backend.cpu.GemmVector.F;
import static koala4j.backend.cpu.GemmVector.VL;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The m = 1 case of {@link Gemm} (one token of LLM decode: x[1, k] . W): memory-bound, so instead of packing it reads
 * every element of B exactly once, straight from its storage (F32 array or mmap'ed F32/F16/BF16), converting in
 * registers, with the columns of C split over all threads. {@link #fewRows} does the same for a few rows of A
 * against an nn.Linear-shaped B, giving each row of C exactly what the one-row path gives it.
 */
final class Gemv {

    /** Columns per task when B is row-major: the partial sums (16 KiB at most) stay in L1 while rows of B stream by. */
    private static final int MAX_COLS = 4096;

    private Gemv() {
    }

    static void run(int batch, int n, int k, Gemm.MatrixRef a, Gemm.MatrixRef b, float[] c, int cOffset,
                    long cBatchStride, Gemm.Epilogue ep) {
        int threads = Parallel.threads();
        int target = threads == 1 ? 1 : 4 * threads;
        int perBatch = (int) Math.max(1, Math.min(Gemm.ceilDiv(target, batch), Gemm.ceilDiv(n, 4 * VL)));
        int width = Gemm.roundUp(Gemm.ceilDiv(n, perBatch), VL);
        width = Math.min(width, MAX_COLS);
        int chunks = Gemm.ceilDiv(n, width);
        long tasks = (long) batch * chunks;
        if (tasks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("gemv of batch=%d n=%d splits into %d tasks, expected < 2^31"
                    .formatted(batch, n, tasks));
        }
        GemmVector.Kind kind = GemmVector.kindOf(b.data());
        float[] arr = b.data().array();
        MemorySegment seg = GemmVector.segmentOf(b.data());
        boolean finite = kind == GemmVector.Kind.SEG_F16 && b.transposed() && FiniteHalves.known(seg);
        int w = width;
        Parallel.forRange((int) tasks, 1, (from, to) -> {
            GemmWorkspace ws = GemmWorkspace.get();
            float[] x = ws.vec(k);
            float[] y = ws.out(w);
            int loaded = -1;
            for (int t = from; t < to; t++) {
                int bi = t / chunks;
                int j0 = (t % chunks) * w;
                int j1 = Math.min(n, j0 + w);
                if (bi != loaded) {
                    readA(a, bi, 0, k, x, 0);
                    loaded = bi;
                }
                long base = b.offset() + bi * b.batchStride();
                if (b.transposed()) {
                    dots(kind, arr, seg, base, b.ld(), x, k, j0, j1, y, finite);
                } else {
                    axpys(kind, arr, seg, base, b.ld(), x, k, j0, j1, y);
                }
                float[] bias = ep.bias();
                boolean perCol = bias != null && !ep.biasPerRow();
                float rowBias = bias != null && ep.biasPerRow() ? bias[0] : 0f;
                GemmVector.finishRow(y, 0, c, (int) (cOffset + bi * cBatchStride + j0), j1 - j0, ep.alpha(),
                        bias, j0, perCol, rowBias, ep.act(), ep.accumulate());
            }
        });
    }

    /**
     * Up to this many rows of A go through {@link #fewRows} when B is stored like an nn.Linear weight ([n, k]): a
     * short prompt, a chat turn, or one decoding step of a few sequences batched together. The blocked GEMM packs
     * (and converts) all of B for every call, whatever m is. Per storage, from 8 layers of the 7B's products in
     * native memory (as when mmap'ed) on 2 Zen 5 cores, few rows against the GEMM in GB/s of weights: F16 (converted
     * in registers) 2 rows 29.2 / 6.4, 4 rows 31.9 / 5.6, 16 rows 11.0 / 5.5, 40 rows 4.8 / 3.8, 48 rows 4.2 / 2.0,
     * 64 rows 3.5 / 3.5; BF16 (converted in registers) 4 rows 31.3 / 6.1, 8 rows 24.4 / 5.7, 16 rows 15.2 / 5.9,
     * 32 rows 7.2 / 5.1, 48 rows 5.3 / 2.5, 64 rows 3.5 / 3.3 (through an L1 buffer, as before: 4 rows 16.6, 8 rows
     * 12.3, 12 rows 9.8); F32 4 rows 16.3 / 8.1, 8 rows 8.0 / 8.2.
     */
    static int fewRowsLimit(FloatSource b) {
        return switch (GemmVector.kindOf(b)) {
            case SEG_F16, SEG_BF16 -> 48;
            case ARRAY, SEG_F32 -> 4;
        };
    }

    /** Whether {@link Gemm#gemm} gives this product to {@link #fewRows}. */
    static boolean takesFewRows(int batch, int m, int k, Gemm.MatrixRef b) {
        return batch == 1 && m > 1 && k >= VL && b.transposed() && m <= fewRowsLimit(b.data());
    }

    /**
     * C = epilogue(op(A) . B) for a few rows of A and B transposed (an nn.Linear weight, row j of B^T at
     * b.offset + j*ld): each weight row is read from memory once and, while it is in L1, dotted with four rows of A
     * at a time, four weight rows a quarter of the task's range apart per pass (four sequential streams, as in the
     * matrix-vector kernels), each weight vector converted to float once for the four rows of A. Each dot product
     * is formed exactly as the one-row kernels form it (the same FMAs in the same order per lane, the same
     * {@link GemmVector#sum}, the same scalar tail), so a row of C does not depend on how many rows came with it.
     */
    static void fewRows(int m, int n, int k, Gemm.MatrixRef a, Gemm.MatrixRef b, float[] c, int cOffset, int ldc,
                        Gemm.Epilogue ep) {
        float[] x;
        int xOff;
        int xStride;
        if (!a.transposed() && a.data().array() != null && a.offset() <= Integer.MAX_VALUE) {
            x = a.data().array();
            xOff = (int) a.offset();
            xStride = a.ld();
        } else {
            x = new float[m * k];
            for (int i = 0; i < m; i++) {
                readA(a, 0, i, k, x, i * k);
            }
            xOff = 0;
            xStride = k;
        }
        FloatSource src = b.data();
        long base = b.offset();
        long ld = b.ld();
        int vk = k - k % VL;
        GemmVector.Kind kind = GemmVector.kindOf(src);
        MemorySegment seg = kind == GemmVector.Kind.SEG_F16 || kind == GemmVector.Kind.SEG_BF16
                ? GemmVector.segmentOf(src) : null;
        boolean bf16 = kind == GemmVector.Kind.SEG_BF16;
        float[] xs = seg == null || bf16 || vk < k ? null : scaledRows(x, xOff, xStride, m, k);
        boolean finite = xs != null && FiniteHalves.known(seg);
        Parallel.forRange(n, 4, (from, to) -> {
            int len = to - from;
            float[] y = GemmWorkspace.get().out(m * len);
            int quarter = len / 4;
            // weight rows outermost, so that a group's four weight rows are still in L1 for the next group of A's rows
            for (int jj = 0; jj < quarter; jj++) {
                long r0 = base + (from + jj) * ld;
                for (int i = 0; i < m; i += 4) {
                    // a short last group repeats the last row of A; its duplicate results land on the same slot
                    int b1 = Math.min(i + 1, m - 1);
                    int b2 = Math.min(i + 2, m - 1);
                    int b3 = Math.min(i + 3, m - 1);
                    if (bf16) {
                        bf16Dot4x4(seg, src, r0, quarter * ld, x, xOff + i * xStride, xOff + b1 * xStride,
                                xOff + b2 * xStride, xOff + b3 * xStride, k, vk, y, jj, quarter, i * len, b1 * len,
                                b2 * len, b3 * len);
                    } else if (xs == null || !halfDot4x4(seg, r0, quarter * ld, xs, i * k, b1 * k, b2 * k, b3 * k, vk,
                            y, jj, quarter, i * len, b1 * len, b2 * len, b3 * len, finite)) {
                        // other storage, a tail, |x| too large to scale, or an Inf/NaN weight: the buffered path
                        dot4x4(src, r0, quarter * ld, x, xOff + i * xStride, xOff + b1 * xStride,
                                xOff + b2 * xStride, xOff + b3 * xStride, k, vk, y, jj, quarter, i * len, b1 * len,
                                b2 * len, b3 * len);
                    }
                }
            }
            for (int j = from + 4 * quarter; j < to; j++) {
                long row = base + j * ld;
                for (int i = 0; i < m; i++) {
                    y[i * len + j - from] = dot(src, row, x, xOff + i * xStride, k, vk);
                }
            }
            float[] bias = ep.bias();
            boolean perCol = bias != null && !ep.biasPerRow();
            for (int i = 0; i < m; i++) {
                float rowBias = bias != null && ep.biasPerRow() ? bias[i] : 0f;
                GemmVector.finishRow(y, i * len, c, cOffset + i * ldc + from, len, ep.alpha(), bias, from, perCol,
                        rowBias, ep.act(), ep.accumulate());
            }
        });
    }

    /** The m rows of A (row stride xStride from xOff) times 2^112, packed [m, k]; null when one |x| reaches 2^15. */
    private static float[] scaledRows(float[] x, int xOff, int xStride, int m, int k) {
        float[] xs = new float[m * k];
        float max = 0f;
        for (int i = 0; i < m; i++) {
            for (int p = 0; p < k; p++) {
                float v = x[xOff + i * xStride + p];
                max = Math.max(max, Math.abs(v));
                xs[i * k + p] = v * 0x1p112f;
            }
        }
        return max < SCALABLE ? xs : null;   // NaN fails the comparison too
    }

    /**
     * {@link #dot4x4} for F16 weights with the conversion of {@link #halfDots} (each weight becomes weight * 2^-112 by
     * a sign-extending load, a shift and a mask; xs holds the rows of A times 2^112), so each product is the same
     * real number and rounds the same as there: the results equal the one-row kernel's. Returns false, leaving y
     * to the caller, when one of the four weight rows holds an Inf or NaN (its exponent field all ones), which the
     * shift does not convert.
     */
    private static boolean halfDot4x4(MemorySegment seg, long r0, long stride, float[] xs, int xa, int xb, int xc,
                                      int xd, int vk, float[] y, int jj, int quarter, int ya, int yb, int yc, int yd,
                                      boolean finite) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector b0 = a0;
        FloatVector c0 = a0;
        FloatVector d0 = a0;
        FloatVector a1 = a0;
        FloatVector b1 = a0;
        FloatVector c1 = a0;
        FloatVector d1 = a0;
        FloatVector a2 = a0;
        FloatVector b2 = a0;
        FloatVector c2 = a0;
        FloatVector d2 = a0;
        FloatVector a3 = a0;
        FloatVector b3 = a0;
        FloatVector c3 = a0;
        FloatVector d3 = a0;
        IntVector exponents = IntVector.zero(GemmVector.I);
        long r1 = r0 + stride;
        long r2 = r1 + stride;
        long r3 = r2 + stride;
        for (int p = 0; p < vk; p += VL) {
            FloatVector xav = FloatVector.fromArray(F, xs, xa + p);
            FloatVector xbv = FloatVector.fromArray(F, xs, xb + p);
            FloatVector xcv = FloatVector.fromArray(F, xs, xc + p);
            FloatVector xdv = FloatVector.fromArray(F, xs, xd + p);
            IntVector h = halfBits(seg, r0 + p);
            if (!finite) {
                exponents = exponents.max(h.and(EXPONENT));
            }
            FloatVector w = h.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats();
            a0 = w.fma(xav, a0);
            b0 = w.fma(xbv, b0);
            c0 = w.fma(xcv, c0);
            d0 = w.fma(xdv, d0);
            h = halfBits(seg, r1 + p);
            if (!finite) {
                exponents = exponents.max(h.and(EXPONENT));
            }
            w = h.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats();
            a1 = w.fma(xav, a1);
            b1 = w.fma(xbv, b1);
            c1 = w.fma(xcv, c1);
            d1 = w.fma(xdv, d1);
            h = halfBits(seg, r2 + p);
            if (!finite) {
                exponents = exponents.max(h.and(EXPONENT));
            }
            w = h.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats();
            a2 = w.fma(xav, a2);
            b2 = w.fma(xbv, b2);
            c2 = w.fma(xcv, c2);
            d2 = w.fma(xdv, d2);
            h = halfBits(seg, r3 + p);
            if (!finite) {
                exponents = exponents.max(h.and(EXPONENT));
            }
            w = h.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats();
            a3 = w.fma(xav, a3);
            b3 = w.fma(xbv, b3);
            c3 = w.fma(xcv, c3);
            d3 = w.fma(xdv, d3);
        }
        if (!finite && exponents.reduceLanes(VectorOperators.MAX) == EXPONENT) {
            return false;
        }
        int j1 = jj + quarter;
        int j2 = j1 + quarter;
        int j3 = j2 + quarter;
        y[ya + jj] = GemmVector.sum(a0);
        y[yb + jj] = GemmVector.sum(b0);
        y[yc + jj] = GemmVector.sum(c0);
        y[yd + jj] = GemmVector.sum(d0);
        y[ya + j1] = GemmVector.sum(a1);
        y[yb + j1] = GemmVector.sum(b1);
        y[yc + j1] = GemmVector.sum(c1);
        y[yd + j1] = GemmVector.sum(d1);
        y[ya + j2] = GemmVector.sum(a2);
        y[yb + j2] = GemmVector.sum(b2);
        y[yc + j2] = GemmVector.sum(c2);
        y[yd + j2] = GemmVector.sum(d2);
        y[ya + j3] = GemmVector.sum(a3);
        y[yb + j3] = GemmVector.sum(b3);
        y[yc + j3] = GemmVector.sum(c3);
        y[yd + j3] = GemmVector.sum(d3);
        return true;
    }

    /**
     * {@link #dot4x4} for BF16 weights, converted in registers (a sign-extending load and a shift: BF16 is the top
     * half of a float, so the conversion is exact, Inf and NaN included), the products and sums formed as the one-row
     * kernel forms them.
     */
    private static void bf16Dot4x4(MemorySegment seg, FloatSource src, long r0, long stride, float[] x, int xa,
                                   int xb, int xc, int xd, int k, int vk, float[] y, int jj, int quarter, int ya,
                                   int yb, int yc, int yd) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector b0 = a0;
        FloatVector c0 = a0;
        FloatVector d0 = a0;
        FloatVector a1 = a0;
        FloatVector b1 = a0;
        FloatVector c1 = a0;
        FloatVector d1 = a0;
        FloatVector a2 = a0;
        FloatVector b2 = a0;
        FloatVector c2 = a0;
        FloatVector d2 = a0;
        FloatVector a3 = a0;
        FloatVector b3 = a0;
        FloatVector c3 = a0;
        FloatVector d3 = a0;
        long r1 = r0 + stride;
        long r2 = r1 + stride;
        long r3 = r2 + stride;
        for (int p = 0; p < vk; p += VL) {
            FloatVector xav = FloatVector.fromArray(F, x, xa + p);
            FloatVector xbv = FloatVector.fromArray(F, x, xb + p);
            FloatVector xcv = FloatVector.fromArray(F, x, xc + p);
            FloatVector xdv = FloatVector.fromArray(F, x, xd + p);
            FloatVector w = bf16(seg, r0 + p);
            a0 = w.fma(xav, a0);
            b0 = w.fma(xbv, b0);
            c0 = w.fma(xcv, c0);
            d0 = w.fma(xdv, d0);
            w = bf16(seg, r1 + p);
            a1 = w.fma(xav, a1);
            b1 = w.fma(xbv, b1);
            c1 = w.fma(xcv, c1);
            d1 = w.fma(xdv, d1);
            w = bf16(seg, r2 + p);
            a2 = w.fma(xav, a2);
            b2 = w.fma(xbv, b2);
            c2 = w.fma(xcv, c2);
            d2 = w.fma(xdv, d2);
            w = bf16(seg, r3 + p);
            a3 = w.fma(xav, a3);
            b3 = w.fma(xbv, b3);
            c3 = w.fma(xcv, c3);
            d3 = w.fma(xdv, d3);
        }
        int j1 = jj + quarter;
        int j2 = j1 + quarter;
        int j3 = j2 + quarter;
        y[ya + jj] = withTail(GemmVector.sum(a0), src, r0, x, xa, k, vk);
        y[yb + jj] = withTail(GemmVector.sum(b0), src, r0, x, xb, k, vk);
        y[yc + jj] = withTail(GemmVector.sum(c0), src, r0, x, xc, k, vk);
        y[yd + jj] = withTail(GemmVector.sum(d0), src, r0, x, xd, k, vk);
        y[ya + j1] = withTail(GemmVector.sum(a1), src, r1, x, xa, k, vk);
        y[yb + j1] = withTail(GemmVector.sum(b1), src, r1, x, xb, k, vk);
        y[yc + j1] = withTail(GemmVector.sum(c1), src, r1, x, xc, k, vk);
        y[yd + j1] = withTail(GemmVector.sum(d1), src, r1, x, xd, k, vk);
        y[ya + j2] = withTail(GemmVector.sum(a2), src, r2, x, xa, k, vk);
        y[yb + j2] = withTail(GemmVector.sum(b2), src, r2, x, xb, k, vk);
        y[yc + j2] = withTail(GemmVector.sum(c2), src, r2, x, xc, k, vk);
        y[yd + j2] = withTail(GemmVector.sum(d2), src, r2, x, xd, k, vk);
        y[ya + j3] = withTail(GemmVector.sum(a3), src, r3, x, xa, k, vk);
        y[yb + j3] = withTail(GemmVector.sum(b3), src, r3, x, xb, k, vk);
        y[yc + j3] = withTail(GemmVector.sum(c3), src, r3, x, xc, k, vk);
        y[yd + j3] = withTail(GemmVector.sum(d3), src, r3, x, xd, k, vk);
    }

    /** VL BF16 weights from element {@code at} as floats. */
    private static FloatVector bf16(MemorySegment seg, long at) {
        return GemmVector.bf16ToF32(ShortVector.fromMemorySegment(GemmVector.H, seg, at * 2, ByteOrder.LITTLE_ENDIAN));
    }

    /** Elements of each weight row converted to float per pass of {@link #dot4x4}: four rows, 8 KiB, stay in L1. */
    private static final int CHUNK = 512;

    /**
     * Four weight rows (from element r0, {@code stride} apart) dotted with four rows of A (xa..xd). The weights are
     * converted to float {@link #CHUNK} elements at a time into a per-thread buffer by {@link FloatSource#read} and
     * each converted vector is multiplied into four accumulators; converting inside the FMA loop (a switch over the
     * storage kinds in every load) made the method too large for C2 to inline its vector calls. Result of weight row
     * jj + t*quarter and row u of A goes to y[yu + jj + t*quarter]. Sixteen accumulators as locals, written out, as
     * in the Q8_0 kernel (vectors in an array are boxed objects).
     */
    private static void dot4x4(FloatSource src, long r0, long stride, float[] x, int xa, int xb, int xc, int xd, int k,
                               int vk, float[] y, int jj, int quarter, int ya, int yb, int yc, int yd) {
        float[] w = GemmWorkspace.get().vec(4 * CHUNK);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector b0 = a0;
        FloatVector c0 = a0;
        FloatVector d0 = a0;
        FloatVector a1 = a0;
        FloatVector b1 = a0;
        FloatVector c1 = a0;
        FloatVector d1 = a0;
        FloatVector a2 = a0;
        FloatVector b2 = a0;
        FloatVector c2 = a0;
        FloatVector d2 = a0;
        FloatVector a3 = a0;
        FloatVector b3 = a0;
        FloatVector c3 = a0;
        FloatVector d3 = a0;
        long r1 = r0 + stride;
        long r2 = r1 + stride;
        long r3 = r2 + stride;
        for (int p0 = 0; p0 < vk; p0 += CHUNK) {
            int len = Math.min(CHUNK, vk - p0);
            src.read(r0 + p0, w, 0, len);
            src.read(r1 + p0, w, CHUNK, len);
            src.read(r2 + p0, w, 2 * CHUNK, len);
            src.read(r3 + p0, w, 3 * CHUNK, len);
            for (int q = 0; q < len; q += VL) {
                int p = p0 + q;
                FloatVector xav = FloatVector.fromArray(F, x, xa + p);
                FloatVector xbv = FloatVector.fromArray(F, x, xb + p);
                FloatVector xcv = FloatVector.fromArray(F, x, xc + p);
                FloatVector xdv = FloatVector.fromArray(F, x, xd + p);
                FloatVector wv = FloatVector.fromArray(F, w, q);
                a0 = wv.fma(xav, a0);
                b0 = wv.fma(xbv, b0);
                c0 = wv.fma(xcv, c0);
                d0 = wv.fma(xdv, d0);
                wv = FloatVector.fromArray(F, w, CHUNK + q);
                a1 = wv.fma(xav, a1);
                b1 = wv.fma(xbv, b1);
                c1 = wv.fma(xcv, c1);
                d1 = wv.fma(xdv, d1);
                wv = FloatVector.fromArray(F, w, 2 * CHUNK + q);
                a2 = wv.fma(xav, a2);
                b2 = wv.fma(xbv, b2);
                c2 = wv.fma(xcv, c2);
                d2 = wv.fma(xdv, d2);
                wv = FloatVector.fromArray(F, w, 3 * CHUNK + q);
                a3 = wv.fma(xav, a3);
                b3 = wv.fma(xbv, b3);
                c3 = wv.fma(xcv, c3);
                d3 = wv.fma(xdv, d3);
            }
        }
        int j1 = jj + quarter;
        int j2 = j1 + quarter;
        int j3 = j2 + quarter;
        y[ya + jj] = withTail(GemmVector.sum(a0), src, r0, x, xa, k, vk);
        y[yb + jj] = withTail(GemmVector.sum(b0), src, r0, x, xb, k, vk);
        y[yc + jj] = withTail(GemmVector.sum(c0), src, r0, x, xc, k, vk);
        y[yd + jj] = withTail(GemmVector.sum(d0), src, r0, x, xd, k, vk);
        y[ya + j1] = withTail(GemmVector.sum(a1), src, r1, x, xa, k, vk);
        y[yb + j1] = withTail(GemmVector.sum(b1), src, r1, x, xb, k, vk);
        y[yc + j1] = withTail(GemmVector.sum(c1), src, r1, x, xc, k, vk);
        y[yd + j1] = withTail(GemmVector.sum(d1), src, r1, x, xd, k, vk);
        y[ya + j2] = withTail(GemmVector.sum(a2), src, r2, x, xa, k, vk);
        y[yb + j2] = withTail(GemmVector.sum(b2), src, r2, x, xb, k, vk);
        y[yc + j2] = withTail(GemmVector.sum(c2), src, r2, x, xc, k, vk);
        y[yd + j2] = withTail(GemmVector.sum(d2), src, r2, x, xd, k, vk);
        y[ya + j3] = withTail(GemmVector.sum(a3), src, r3, x, xa, k, vk);
        y[yb + j3] = withTail(GemmVector.sum(b3), src, r3, x, xb, k, vk);
        y[yc + j3] = withTail(GemmVector.sum(c3), src, r3, x, xc, k, vk);
        y[yd + j3] = withTail(GemmVector.sum(d3), src, r3, x, xd, k, vk);
    }

    /** One weight row (from element {@code row}) dotted with the row of A at x[xo ..], as {@link #dot4x4} forms it. */
    private static float dot(FloatSource src, long row, float[] x, int xo, int k, int vk) {
        float[] w = GemmWorkspace.get().vec(CHUNK);
        FloatVector s0 = FloatVector.zero(F);
        for (int p0 = 0; p0 < vk; p0 += CHUNK) {
            int len = Math.min(CHUNK, vk - p0);
            src.read(row + p0, w, 0, len);
            for (int q = 0; q < len; q += VL) {
                s0 = FloatVector.fromArray(F, w, q).fma(FloatVector.fromArray(F, x, xo + p0 + q), s0);
            }
        }
        return withTail(GemmVector.sum(s0), src, row, x, xo, k, vk);
    }

    /** t plus the products past the last whole vector, elements [vk, k), one at a time (as {@link #dots}). */
    private static float withTail(float t, FloatSource src, long row, float[] x, int xo, int k, int vk) {
        for (int p = vk; p < k; p++) {
            t += x[xo + p] * src.get(row + p);
        }
        return t;
    }

    /**
     * Row i of op(A[bi]) into x[xOff .. xOff + k): element (i, p) at offset + bi*batchStride + (transposed ? p*ld + i
     * : i*ld + p).
     */
    private static void readA(Gemm.MatrixRef a, int bi, int i, int k, float[] x, int xOff) {
        long base = a.offset() + bi * a.batchStride();
        if (!a.transposed()) {
            a.data().read(base + (long) i * a.ld(), x, xOff, k);
        } else {
            FloatSource src = a.data();
            for (int p = 0; p < k; p++) {
                x[xOff + p] = src.get(base + (long) p * a.ld() + i);
            }
        }
    }

    /**
     * B row-major (element (p, j) at base + p*ld + j): y[j0..j1) = sum_p x[p] * B[p, j], four rows of B per pass
     * over y so that y is loaded and stored once per four FMAs.
     */
    private static void axpys(GemmVector.Kind kind, float[] arr, MemorySegment seg, long base, long ld, float[] x,
                              int k, int j0, int j1, float[] y) {
        int w = j1 - j0;
        java.util.Arrays.fill(y, 0, w, 0f);
        int vw = w - w % VL;
        int p = 0;
        for (; p + 4 <= k; p += 4) {
            long r0 = base + p * ld + j0;
            long r1 = r0 + ld;
            long r2 = r1 + ld;
            long r3 = r2 + ld;
            FloatVector x0 = FloatVector.broadcast(F, x[p]);
            FloatVector x1 = FloatVector.broadcast(F, x[p + 1]);
            FloatVector x2 = FloatVector.broadcast(F, x[p + 2]);
            FloatVector x3 = FloatVector.broadcast(F, x[p + 3]);
            for (int j = 0; j < vw; j += VL) {
                FloatVector acc = FloatVector.fromArray(F, y, j);
                acc = GemmVector.load(kind, arr, seg, r0 + j).fma(x0, acc);
                acc = GemmVector.load(kind, arr, seg, r1 + j).fma(x1, acc);
                acc = GemmVector.load(kind, arr, seg, r2 + j).fma(x2, acc);
                acc = GemmVector.load(kind, arr, seg, r3 + j).fma(x3, acc);
                acc.intoArray(y, j);
            }
            for (int j = vw; j < w; j++) {
                y[j] += x[p] * GemmVector.get(kind, arr, seg, r0 + j) + x[p + 1] * GemmVector.get(kind, arr, seg, r1 + j)
                        + x[p + 2] * GemmVector.get(kind, arr, seg, r2 + j) + x[p + 3] * GemmVector.get(kind, arr, seg, r3 + j);
            }
        }
        for (; p < k; p++) {
            long r0 = base + p * ld + j0;
            FloatVector x0 = FloatVector.broadcast(F, x[p]);
            for (int j = 0; j < vw; j += VL) {
                GemmVector.load(kind, arr, seg, r0 + j).fma(x0, FloatVector.fromArray(F, y, j)).intoArray(y, j);
            }
            for (int j = vw; j < w; j++) {
                y[j] += x[p] * GemmVector.get(kind, arr, seg, r0 + j);
            }
        }
    }

    /**
     * B transposed, i.e. stored [n, k] like an nn.Linear weight (element (p, j) at base + j*ld + p):
     * y[j - j0] = dot(x, B row j), four rows at a time sharing each load of x.
     */
    private static void dots(GemmVector.Kind kind, float[] arr, MemorySegment seg, long base, long ld, float[] x,
                             int k, int j0, int j1, float[] y, boolean finite) {
        if (kind == GemmVector.Kind.SEG_F16) {
            halfDots(seg, base, ld, x, k, j0, j1, y, finite);
            return;
        }
        int vk = k - k % VL;
        // BF16: groups of four quarter-strided rows in registers; the rows left over (fewer than four) go on below
        int j = kind == GemmVector.Kind.SEG_BF16 ? bf16Dots(seg, base, ld, x, k, j0, j1, y) : j0;
        for (; j + 4 <= j1; j += 4) {
            long r0 = base + j * ld;
            long r1 = r0 + ld;
            long r2 = r1 + ld;
            long r3 = r2 + ld;
            FloatVector s0 = FloatVector.zero(F);
            FloatVector s1 = s0;
            FloatVector s2 = s0;
            FloatVector s3 = s0;
            for (int p = 0; p < vk; p += VL) {
                FloatVector xv = FloatVector.fromArray(F, x, p);
                s0 = GemmVector.load(kind, arr, seg, r0 + p).fma(xv, s0);
                s1 = GemmVector.load(kind, arr, seg, r1 + p).fma(xv, s1);
                s2 = GemmVector.load(kind, arr, seg, r2 + p).fma(xv, s2);
                s3 = GemmVector.load(kind, arr, seg, r3 + p).fma(xv, s3);
            }
            float t0 = GemmVector.sum(s0);
            float t1 = GemmVector.sum(s1);
            float t2 = GemmVector.sum(s2);
            float t3 = GemmVector.sum(s3);
            for (int p = vk; p < k; p++) {
                t0 += x[p] * GemmVector.get(kind, arr, seg, r0 + p);
                t1 += x[p] * GemmVector.get(kind, arr, seg, r1 + p);
                t2 += x[p] * GemmVector.get(kind, arr, seg, r2 + p);
                t3 += x[p] * GemmVector.get(kind, arr, seg, r3 + p);
            }
            y[j - j0] = t0;
            y[j - j0 + 1] = t1;
            y[j - j0 + 2] = t2;
            y[j - j0 + 3] = t3;
        }
        for (; j < j1; j++) {
            long r0 = base + j * ld;
            FloatVector s0 = FloatVector.zero(F);
            for (int p = 0; p < vk; p += VL) {
                s0 = GemmVector.load(kind, arr, seg, r0 + p).fma(FloatVector.fromArray(F, x, p), s0);
            }
            float t0 = GemmVector.sum(s0);
            for (int p = vk; p < k; p++) {
                t0 += x[p] * GemmVector.get(kind, arr, seg, r0 + p);
            }
            y[j - j0] = t0;
        }
    }

    /**
     * {@link #dots} for BF16 storage: four rows a quarter of the range apart per pass (four long sequential streams
     * per thread, as {@link #halfDots}), each weight converted exactly in registers (a sign-extending load and a
     * shift); each row's products and sums are formed as {@link #dots} forms them for the other storages. Returns
     * the first row not done (fewer than four are left).
     */
    private static int bf16Dots(MemorySegment seg, long base, long ld, float[] x, int k, int j0, int j1, float[] y) {
        int vk = k - k % VL;
        int quarter = (j1 - j0) / 4;
        for (int i = 0; i < quarter; i++) {
            long r0 = base + (j0 + i) * ld;
            long r1 = r0 + quarter * ld;
            long r2 = r1 + quarter * ld;
            long r3 = r2 + quarter * ld;
            FloatVector s0 = FloatVector.zero(F);
            FloatVector s1 = s0;
            FloatVector s2 = s0;
            FloatVector s3 = s0;
            for (int p = 0; p < vk; p += VL) {
                FloatVector xv = FloatVector.fromArray(F, x, p);
                s0 = bf16(seg, r0 + p).fma(xv, s0);
                s1 = bf16(seg, r1 + p).fma(xv, s1);
                s2 = bf16(seg, r2 + p).fma(xv, s2);
                s3 = bf16(seg, r3 + p).fma(xv, s3);
            }
            y[i] = bf16Tail(GemmVector.sum(s0), seg, r0, x, k, vk);
            y[quarter + i] = bf16Tail(GemmVector.sum(s1), seg, r1, x, k, vk);
            y[2 * quarter + i] = bf16Tail(GemmVector.sum(s2), seg, r2, x, k, vk);
            y[3 * quarter + i] = bf16Tail(GemmVector.sum(s3), seg, r3, x, k, vk);
        }
        return j0 + 4 * quarter;
    }

    private static float bf16Tail(float t, MemorySegment seg, long row, float[] x, int k, int vk) {
        for (int p = vk; p < k; p++) {
            t += x[p] * GemmVector.get(GemmVector.Kind.SEG_BF16, null, seg, row + p);
        }
        return t;
    }

    /** x times 2^112 for {@link #halfDots}, per thread. */
    private static final ThreadLocal<float[][]> SCALED_X = ThreadLocal.withInitial(() -> new float[1][0]);
    /** Below this, x * 2^112 stays finite (2^15 * 2^112 < Float.MAX_VALUE). */
    private static final float SCALABLE = 0x1p15f;

    /**
     * {@link #dots} for F16 storage: four rows a quarter of the range apart per pass (four long sequential streams
     * per thread, as in the Q8_0 kernel), each F16 weight turned into float bits in registers by a sign-extending
     * load, a shift and a mask: that puts the F16 exponent and mantissa under the float's, which is the weight
     * times 2^-112, exactly (F16 subnormals become float subnormals). The 2^112 goes onto x once per call, so each
     * product is the same real number as weight times x and rounds the same, and the rows equal {@link #halfRow}'s
     * bit for bit (the lane sums in {@link GemmVector#sum}'s fixed order). When |x| reaches 2^15 (x * 2^112 would
     * overflow) or holds Inf/NaN, rows go through {@link #halfRow}. Inf and NaN weights (F16 exponent 31) are not converted by the shift: a group of
     * rows holding one is seen by the largest exponent field and computed again by {@link #halfRow}, which detects
     * and recomputes its own row. Measured next to plain reads of the same weights (`bench llm`, paired bound,
     * 8 layers of llava-1.5-7b F16 on 2 Zen 5 cores): 56-70 % of the read rate for one row at a time with a
     * per-vector multiply, 82-86 % for this.
     */
    private static void halfDots(MemorySegment seg, long base, long ld, float[] x, int k, int j0, int j1, float[] y,
                                 boolean finite) {
        int vk = k - k % VL;
        float[] xs = scaledX(x, k);
        int quarter = xs == null ? 0 : (j1 - j0) / 4;
        for (int i = 0; i < quarter; i++) {
            long r0 = base + (j0 + i) * ld;
            long r1 = r0 + quarter * ld;
            long r2 = r1 + quarter * ld;
            long r3 = r2 + quarter * ld;
            FloatVector s0 = FloatVector.zero(F);
            FloatVector s1 = s0;
            FloatVector s2 = s0;
            FloatVector s3 = s0;
            IntVector exponents = IntVector.zero(GemmVector.I);
            for (int p = 0; p < vk; p += VL) {
                FloatVector xv = FloatVector.fromArray(F, xs, p);
                IntVector h0 = halfBits(seg, r0 + p);
                IntVector h1 = halfBits(seg, r1 + p);
                IntVector h2 = halfBits(seg, r2 + p);
                IntVector h3 = halfBits(seg, r3 + p);
                if (!finite) {
                    exponents = exponents.max(h0.and(EXPONENT)).max(h1.and(EXPONENT)).max(h2.and(EXPONENT))
                            .max(h3.and(EXPONENT));
                }
                s0 = h0.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats().fma(xv, s0);
                s1 = h1.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats().fma(xv, s1);
                s2 = h2.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats().fma(xv, s2);
                s3 = h3.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats().fma(xv, s3);
            }
            if (vk < k || !finite && exponents.reduceLanes(VectorOperators.MAX) == EXPONENT) {
                // a scalar tail, or an Inf/NaN somewhere in the four rows: the exact path (rare and short)
                y[i] = halfRow(seg, r0, x, k, vk);
                y[quarter + i] = halfRow(seg, r1, x, k, vk);
                y[2 * quarter + i] = halfRow(seg, r2, x, k, vk);
                y[3 * quarter + i] = halfRow(seg, r3, x, k, vk);
            } else {
                y[i] = GemmVector.sum(s0);
                y[quarter + i] = GemmVector.sum(s1);
                y[2 * quarter + i] = GemmVector.sum(s2);
                y[3 * quarter + i] = GemmVector.sum(s3);
            }
        }
        for (int j = j0 + 4 * quarter; j < j1; j++) {
            y[j - j0] = halfRow(seg, base + j * ld, x, k, vk);
        }
    }

    /** F16 exponent field after {@link #halfBits}; all ones means Inf or NaN. */
    private static final int EXPONENT = 0x0F800000;
    /** Keeps the sign (bit 31) and the F16 exponent and mantissa (bits 27..13) of {@link #halfBits}. */
    private static final int SIGN_EXPONENT_MANTISSA = 0x8FFFE000;

    /** VL F16 values from element {@code at}, sign-extended and shifted left by 13: sign in bit 31, copies in 30..28. */
    private static IntVector halfBits(MemorySegment seg, long at) {
        return ((IntVector) ShortVector.fromMemorySegment(GemmVector.H, seg, at * 2, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.S2I, GemmVector.I, 0)).lanewise(VectorOperators.LSHL, 13);
    }

    /** x[0..k) times 2^112 in a per-thread buffer, or null when some |x| is at least 2^15 or not finite. */
    private static float[] scaledX(float[] x, int k) {
        float[][] holder = SCALED_X.get();
        if (holder[0].length < k) {
            holder[0] = new float[k];
        }
        float[] xs = holder[0];
        float max = 0f;
        for (int p = 0; p < k; p++) {
            max = Math.max(max, Math.abs(x[p]));
            xs[p] = x[p] * 0x1p112f;
        }
        return max < SCALABLE ? xs : null;   // NaN fails the comparison too
    }

    /**
     * One F16 row exactly: each weight converted in registers with the sign put back and a multiply by 2^112
     * (one sequential stream), Inf/NaN rows, seen by their largest exponent field, recomputed by a scalar loop.
     */
    static float halfRow(MemorySegment seg, long row, float[] x, int k, int vk) {
        FloatVector sum = FloatVector.zero(F);
        IntVector exponents = IntVector.zero(GemmVector.I);
        for (int p = 0; p < vk; p += VL) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(GemmVector.H, seg, (row + p) * 2,
                    ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, GemmVector.I, 0);
            exponents = exponents.max(h.and(0x7C00));
            FloatVector w = h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000).or(h.and(0x80000000))
                    .reinterpretAsFloats().mul(0x1p112f);
            sum = w.fma(FloatVector.fromArray(F, x, p), sum);
        }
        float t = GemmVector.sum(sum);
        for (int p = vk; p < k; p++) {
            t += x[p] * Float.float16ToFloat(seg.getAtIndex(FloatSource.I16_LE, row + p));
        }
        if (exponents.reduceLanes(VectorOperators.MAX) == 0x7C00) {
            t = 0f;
            for (int p = 0; p < k; p++) {
                t += x[p] * Float.float16ToFloat(seg.getAtIndex(FloatSource.I16_LE, row + p));
            }
        }
        return t;
    }
}
