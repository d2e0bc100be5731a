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
 * registers, with the columns of C split over all threads.
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
                    readA(a, bi, k, x);
                    loaded = bi;
                }
                long base = b.offset() + bi * b.batchStride();
                if (b.transposed()) {
                    dots(kind, arr, seg, base, b.ld(), x, k, j0, j1, y);
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

    /** op(A[bi]) is one row: element (0, p) at offset + bi*batchStride + (transposed ? p*ld : p). */
    private static void readA(Gemm.MatrixRef a, int bi, int k, float[] x) {
        long base = a.offset() + bi * a.batchStride();
        if (!a.transposed()) {
            a.data().read(base, x, 0, k);
        } else {
            FloatSource src = a.data();
            for (int p = 0; p < k; p++) {
                x[p] = src.get(base + (long) p * a.ld());
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
                             int k, int j0, int j1, float[] y) {
        if (kind == GemmVector.Kind.SEG_F16) {
            halfDots(seg, base, ld, x, k, j0, j1, y);
            return;
        }
        int vk = k - k % VL;
        int j = j0;
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
     * up to the order in which the lane sums are added (the Vector API leaves that order open; the interpreter and
     * C2 differ there by an ulp). When |x| reaches 2^15 (x * 2^112 would overflow) or holds Inf/NaN, rows go
     * through {@link #halfRow}. Inf and NaN weights (F16 exponent 31) are not converted by the shift: a group of
     * rows holding one is seen by the largest exponent field and computed again by {@link #halfRow}, which detects
     * and recomputes its own row. Measured next to plain reads of the same weights (`bench llm`, paired bound,
     * 8 layers of llava-1.5-7b F16 on 2 Zen 5 cores): 56-70 % of the read rate for one row at a time with a
     * per-vector multiply, 82-86 % for this.
     */
    private static void halfDots(MemorySegment seg, long base, long ld, float[] x, int k, int j0, int j1, float[] y) {
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
                exponents = exponents.max(h0.and(EXPONENT)).max(h1.and(EXPONENT)).max(h2.and(EXPONENT))
                        .max(h3.and(EXPONENT));
                s0 = h0.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats().fma(xv, s0);
                s1 = h1.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats().fma(xv, s1);
                s2 = h2.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats().fma(xv, s2);
                s3 = h3.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats().fma(xv, s3);
            }
            if (vk < k || exponents.reduceLanes(VectorOperators.MAX) == EXPONENT) {
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
