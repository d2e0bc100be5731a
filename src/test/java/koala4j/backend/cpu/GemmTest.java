package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.stream.Stream;

import jdk.incubator.vector.ShortVector;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import koala4j.backend.cpu.Gemm.Epilogue;
import koala4j.backend.cpu.Gemm.MatrixRef;
import koala4j.tensor.Activation;
import koala4j.tensor.DType;

/**
 * {@link Gemm} against its scalar twin {@link ScalarGemm}. Metric: max|fast - scalar| / (1 + max|scalar|) <= 1e-5
 * over the whole C array; the fast kernel sums in float (FMA, reassociated over k blocks) and the twin in double,
 * and with inputs in [-1, 1] and k <= 700 float rounding stays below about 1e-6 of that scale. Elements of C outside
 * the m x n windows (ld padding, offsets, gaps between batches) must be left exactly as they were.
 */
class GemmTest {

    private static final double TOLERANCE = 1e-5;

    /** A random op(X) of rows x cols, stored with the given layout, padding, offset and storage type. */
    static MatrixRef operand(Random rnd, int rows, int cols, boolean transposed, int batch, boolean broadcast, int pad,
                           int offset, DType dtype) {
        int ld = (transposed ? rows : cols) + pad;
        int stored = (transposed ? cols : rows) * ld;
        int gap = broadcast ? 0 : 7;
        long batchStride = broadcast ? 0 : stored + gap;
        int total = offset + (broadcast ? 1 : batch) * (stored + gap) + 1;
        float[] data = random(rnd, total);
        return new MatrixRef(source(data, dtype), offset, ld, transposed, batchStride);
    }

    /**
     * {@code data} as a heap F32 array, or as a read-only little-endian F32/F16/BF16 segment like an mmap'ed
     * safetensors (F16 without Inf or NaN then takes the kernels' unchecked path, see {@link FiniteHalves}).
     */
    static FloatSource source(float[] data, DType dtype) {
        if (dtype == null) {
            return FloatSource.of(data);
        }
        MemorySegment seg = Arena.ofAuto().allocate((long) data.length * dtype.byteSize(), 64);
        for (int i = 0; i < data.length; i++) {
            switch (dtype) {
                case F32 -> seg.setAtIndex(FloatSource.F32_LE, i, data[i]);
                case F16 -> seg.setAtIndex(FloatSource.I16_LE, i, DType.f32ToF16(data[i]));
                case BF16 -> seg.setAtIndex(FloatSource.I16_LE, i, DType.f32ToBf16(data[i]));
                default -> throw new IllegalArgumentException(dtype.toString());
            }
        }
        return FloatSource.of(seg.asReadOnly(), dtype);
    }

    static float[] random(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = rnd.nextFloat() * 2 - 1;
        }
        return x;
    }

    /** Runs both kernels on copies of the same C and checks the metric and the untouched padding. */
    static void compare(int batch, int m, int n, int k, MatrixRef a, MatrixRef b, int cPad, int cOffset, int cGap,
                        Epilogue ep, Random rnd) {
        int ldc = n + cPad;
        long cBatchStride = (long) m * ldc + cGap;
        int cLen = (int) (cOffset + batch * cBatchStride + 3);
        float[] c0 = random(rnd, cLen);
        float[] fast = c0.clone();
        float[] slow = c0.clone();
        Gemm.gemm(batch, m, n, k, a, b, fast, cOffset, ldc, cBatchStride, ep);
        ScalarGemm.gemm(batch, m, n, k, a, b, slow, cOffset, ldc, cBatchStride, ep);
        String what = "batch=%d m=%d n=%d k=%d aT=%b bT=%b ep=%s".formatted(batch, m, n, k, a.transposed(),
                b.transposed(), ep);
        assertClose(slow, fast, what);
        boolean[] inside = new boolean[cLen];
        for (int bi = 0; bi < batch; bi++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    inside[(int) (cOffset + bi * cBatchStride + (long) i * ldc + j)] = true;
                }
            }
        }
        for (int i = 0; i < cLen; i++) {
            if (!inside[i]) {
                assertEquals(c0[i], fast[i], "C[" + i + "] outside the output was written; " + what);
            }
        }
    }

    static void assertClose(float[] expected, float[] actual, String what) {
        double maxRef = 0;
        double maxDiff = 0;
        for (int i = 0; i < expected.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
            maxDiff = Math.max(maxDiff, Math.abs((double) expected[i] - actual[i]));
        }
        double err = maxDiff / (1 + maxRef);
        assertTrue(err <= TOLERANCE, "max|fast - scalar| / (1 + max|scalar|) = " + err + " > " + TOLERANCE + " for " + what);
    }

    static Stream<Arguments> shapes() {
        return Stream.of(
                Arguments.of(1, 1, 1), Arguments.of(2, 1, 1), Arguments.of(3, 17, 5), Arguments.of(17, 63, 65),
                Arguments.of(65, 130, 33), Arguments.of(12, 32, 256), Arguments.of(13, 33, 257),
                Arguments.of(25, 65, 600), Arguments.of(100, 530, 20), Arguments.of(130, 65, 130),
                Arguments.of(800, 40, 30), Arguments.of(7, 1, 9), Arguments.of(5, 2, 300));
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void everyTransposeAgreesWithScalar(int m, int n, int k) {
        Random rnd = new Random(31L * m + 7L * n + k);
        for (int t = 0; t < 4; t++) {
            boolean aT = (t & 1) != 0;
            boolean bT = (t & 2) != 0;
            MatrixRef a = operand(rnd, m, k, aT, 1, false, 0, 0, null);
            MatrixRef b = operand(rnd, k, n, bT, 1, false, 0, 0, null);
            compare(1, m, n, k, a, b, 0, 0, 0, Epilogue.NONE, rnd);
        }
    }

    @Test
    void randomShapesLayoutsAndEpilogues() {
        Random rnd = new Random(20);
        int[] sizes = {1, 2, 3, 5, 12, 13, 17, 31, 33, 63, 65, 130, 257};
        Activation[] acts = Activation.values();
        for (int trial = 0; trial < 40; trial++) {
            int m = sizes[rnd.nextInt(sizes.length)];
            int n = sizes[rnd.nextInt(sizes.length)];
            int k = sizes[rnd.nextInt(sizes.length)];
            int batch = 1 + rnd.nextInt(3);
            DType bType = new DType[] {null, DType.F16, DType.BF16}[rnd.nextInt(3)];
            MatrixRef a = operand(rnd, m, k, rnd.nextBoolean(), batch, rnd.nextInt(4) == 0, rnd.nextInt(3),
                    rnd.nextInt(5), null);
            MatrixRef b = operand(rnd, k, n, rnd.nextBoolean(), batch, rnd.nextInt(4) == 0, rnd.nextInt(3),
                    rnd.nextInt(5), bType);
            boolean perRow = rnd.nextBoolean();
            float[] bias = rnd.nextBoolean() ? random(rnd, perRow ? m : n) : null;
            Epilogue ep = new Epilogue(rnd.nextFloat() * 4 - 2, bias, perRow, acts[rnd.nextInt(acts.length)],
                    rnd.nextBoolean());
            compare(batch, m, n, k, a, b, rnd.nextInt(3), rnd.nextInt(4), rnd.nextInt(3), ep, rnd);
        }
    }

    @Test
    void batchesWithBroadcastOffsetsAndPaddedLeadingDims() {
        Random rnd = new Random(1);
        int[][] shapes = {{3, 17, 63, 65}, {2, 65, 33, 300}, {4, 1, 130, 17}, {3, 30, 530, 9}};
        for (int[] s : shapes) {
            int batch = s[0];
            int m = s[1];
            int n = s[2];
            int k = s[3];
            for (int t = 0; t < 4; t++) {
                boolean aT = (t & 1) != 0;
                boolean bT = (t & 2) != 0;
                for (int bc = 0; bc < 3; bc++) {
                    MatrixRef a = operand(rnd, m, k, aT, batch, bc == 1, 3, 5, null);
                    MatrixRef b = operand(rnd, k, n, bT, batch, bc == 2, 2, 11, null);
                    compare(batch, m, n, k, a, b, 5, 13, 9, Epilogue.NONE, rnd);
                }
            }
        }
    }

    @Test
    void halfAndBfloatAndMappedF32Sources() {
        Random rnd = new Random(2);
        int[][] shapes = {{17, 63, 65}, {1, 130, 65}, {1, 65, 130}, {40, 33, 300}, {3, 1, 17}};
        for (DType dtype : new DType[] {DType.F16, DType.BF16, DType.F32}) {
            for (int[] s : shapes) {
                for (int t = 0; t < 4; t++) {
                    boolean aT = (t & 1) != 0;
                    boolean bT = (t & 2) != 0;
                    MatrixRef a = operand(rnd, s[0], s[2], aT, 2, false, 1, 3, t == 3 ? dtype : null);
                    MatrixRef b = operand(rnd, s[2], s[1], bT, 2, t == 1, 3, 6, dtype);
                    compare(2, s[0], s[1], s[2], a, b, 1, 2, 0, Epilogue.NONE, rnd);
                }
            }
        }
    }

    @Test
    void epilogueBiasActivationAlphaAccumulate() {
        Random rnd = new Random(3);
        int[][] shapes = {{17, 63, 65}, {1, 130, 33}, {30, 40, 300}, {5, 7, 0}, {1, 9, 0}};
        for (Activation act : Activation.values()) {
            for (int[] s : shapes) {
                int m = s[0];
                int n = s[1];
                int k = s[2];
                for (int variant = 0; variant < 4; variant++) {
                    boolean perRow = (variant & 1) != 0;
                    boolean accumulate = (variant & 2) != 0;
                    float[] bias = variant == 0 ? null : random(rnd, perRow ? m : n);
                    // scale so that activations see inputs over several units, where their tails differ
                    float alpha = variant == 3 ? -0.75f : 2.5f;
                    Epilogue ep = new Epilogue(alpha, bias, perRow, act, accumulate);
                    MatrixRef a = operand(rnd, m, k, variant == 2, 2, false, 0, 1, null);
                    MatrixRef b = operand(rnd, k, n, variant == 1, 2, variant == 3, 1, 0,
                            variant == 2 ? DType.BF16 : null);
                    compare(2, m, n, k, a, b, 2, 3, 1, ep, rnd);
                }
            }
        }
    }

    @Test
    void matrixVectorPathWithEveryStorage() {
        Random rnd = new Random(4);
        int[][] shapes = {{1, 1}, {3, 17}, {63, 65}, {130, 257}, {1000, 70}, {6, 1030}, {17, 4100}};
        for (DType dtype : new DType[] {null, DType.F32, DType.F16, DType.BF16}) {
            for (int[] s : shapes) {
                int n = s[0];
                int k = s[1];
                for (int t = 0; t < 4; t++) {
                    boolean aT = (t & 1) != 0;
                    boolean bT = (t & 2) != 0;
                    MatrixRef a = operand(rnd, 1, k, aT, 3, t == 2, 2, 1, null);
                    MatrixRef b = operand(rnd, k, n, bT, 3, t == 1, 1, 4, dtype);
                    Epilogue ep = new Epilogue(0.5f, random(rnd, t == 3 ? 1 : n), t == 3, Activation.SILU, t == 2);
                    compare(3, 1, n, k, a, b, 0, 2, 3, t == 0 ? Epilogue.NONE : ep, rnd);
                }
            }
        }
    }

    /**
     * The F16 matrix-vector kernel converts in registers with a formula that covers zeros and subnormals but not
     * Inf/NaN: rows holding those must be detected and computed exactly. Finite rows within the usual tolerance
     * of the scalar twin; non-finite results the same Inf (sign included) or NaN.
     */
    @Test
    void halfMatrixVectorRowsWithSubnormalsInfAndNan() {
        int n = 6;
        int k = 70;
        Random rnd = new Random(9);
        float[] w = random(rnd, n * k);
        for (int p = 0; p < k; p++) {
            w[k + p] = (p % 3 == 0 ? -1 : 1) * p * 0x1p-24f;                       // row 1: F16 subnormals and zeros
        }
        w[k] = -0f;
        w[2 * k + 5] = Float.POSITIVE_INFINITY;                                    // row 2: +Inf in the vector part
        w[3 * k + 66] = Float.NaN;                                                 // row 3: NaN in the scalar tail
        w[4 * k + 20] = Float.NEGATIVE_INFINITY;                                   // row 4: -Inf
        w[5 * k + 30] = 65504f;                                                    // row 5: largest finite F16
        w[5 * k + 31] = -65504f;
        float[] x = random(rnd, k);
        for (int i = 0; i < k; i++) {
            x[i] = Math.abs(x[i]) + 0.25f;                                         // positive: Inf times x stays Inf
        }
        MatrixRef a = new MatrixRef(FloatSource.of(x), 0, k, false, 0);
        MatrixRef b = new MatrixRef(source(w, DType.F16), 0, k, true, 0);
        float[] fast = new float[n];
        float[] slow = new float[n];
        Gemm.gemm(1, 1, n, k, a, b, fast, 0, n, n, Epilogue.NONE);
        ScalarGemm.gemm(1, 1, n, k, a, b, slow, 0, n, n, Epilogue.NONE);
        for (int j = 0; j < n; j++) {
            if (Float.isFinite(slow[j])) {
                assertTrue(Math.abs(slow[j] - fast[j]) <= TOLERANCE * (1 + Math.abs(slow[j])),
                        "row " + j + ": " + fast[j] + " vs " + slow[j]);
            } else {
                assertEquals(slow[j], fast[j], "row " + j);
            }
        }
        assertEquals(Float.POSITIVE_INFINITY, fast[2]);
        assertTrue(Float.isNaN(fast[3]));
        assertEquals(Float.NEGATIVE_INFINITY, fast[4]);
    }

    /**
     * The F16 matrix-vector kernel streams four rows at a time against x * 2^112 with weights re-biased by 2^-112;
     * each product is the same real number as weight times x and rounds the same, and the lane sums are added in
     * one fixed order ({@link GemmVector#sum}), so every row equals the exact one-row path bit for bit. Rows holding
     * only F16 subnormals and zeros are among them, so a subnormal flushed or mis-scaled anywhere fails them. Also
     * rows split into quarters with leftovers, an Inf in one group of four (recomputed exactly), and an x with
     * |x| >= 2^15 (which would overflow when scaled: exact path).
     */
    @Test
    void halfMatrixVectorFourRowPathMatchesTheOneRowPath() {
        Random rnd = new Random(11);
        int k = 320;
        for (int n : new int[] {4, 7, 37, 130}) {
            float[] w = random(rnd, n * k);
            for (int i = 0; i < w.length; i += 7) {
                w[i] *= 0x1p-16f;                                                   // F16 subnormals
            }
            for (int i = 3; i < w.length; i += 11) {
                w[i] = i % 2 == 0 ? 0f : -0f;
            }
            for (int p = 0; p < k; p++) {
                w[(n - 1) * k + p] = (p % 5 - 2) * 0x1p-20f;                        // last row: subnormals only
            }
            if (n > 7) {
                w[5 * k + 100] = Float.POSITIVE_INFINITY;
            }
            for (float big : new float[] {1f, 40_000f}) {
                float[] x = random(rnd, k);
                x[17] *= big;
                x[18] = 1e-40f;                                                     // a float subnormal
                MatrixRef a = new MatrixRef(FloatSource.of(x), 0, k, false, 0);
                FloatSource f16 = source(w, DType.F16);
                MatrixRef b = new MatrixRef(f16, 0, k, true, 0);
                float[] fast = new float[n];
                Gemm.gemm(1, 1, n, k, a, b, fast, 0, n, n, Epilogue.NONE);
                MemorySegment seg = GemmVector.segmentOf(f16);
                for (int j = 0; j < n; j++) {
                    float exact = Gemv.halfRow(seg, (long) j * k, x, k, k);
                    String where = "n=" + n + " row " + j + " x scale " + big + ": " + fast[j] + " vs " + exact;
                    assertEquals(Float.floatToIntBits(exact), Float.floatToIntBits(fast[j]), where);
                }
            }
        }
    }

    /**
     * A few rows of A against an nn.Linear-shaped B ({@link Gemv#fewRows}: chat turns, short prompts, batched decode
     * steps) give each row of C exactly, bit for bit, what the one-row kernel gives for that row alone, for every
     * storage and up to each storage's row limit: short last groups of four rows, weight rows not a multiple of
     * four, k with a scalar tail, A with an offset and a padded or transposed layout, Inf and NaN F16 and BF16
     * weights, and an |x| too large for the F16 path's scaling. With an epilogue (alpha, bias per column or per
     * row, activation, accumulate) the result is checked against the scalar twin within the usual tolerance.
     */
    @Test
    void fewRowsGiveEachRowWhatTheOneRowKernelGives() {
        Random rnd = new Random(44);
        DType[] storages = {DType.F16, DType.BF16, DType.F32, null};
        for (DType dtype : storages) {
            for (int k : new int[] {64, 70, 320}) {
                for (int n : new int[] {3, 8, 37, 130}) {
                    float[] w = random(rnd, n * k);
                    boolean special = (dtype == DType.F16 || dtype == DType.BF16) && n > 8;
                    if (special) {
                        w[5 * k + 33] = Float.POSITIVE_INFINITY;
                        w[9 * k + 2] = Float.NaN;
                    }
                    MatrixRef b = new MatrixRef(source(w, dtype), 0, k, true, 0);
                    int limit = Gemv.fewRowsLimit(b.data());
                    for (int m : new int[] {2, 3, 4, 5, 12, 13, 47, 48}) {
                        if (m > limit) {
                            continue;
                        }
                        boolean transposed = m % 2 == 1;
                        int pad = 3;
                        int offset = 5;
                        float[] x = random(rnd, offset + (transposed ? k * (m + pad) : m * (k + pad)));
                        if (m == 5) {
                            x[offset + 7] = 50_000f;                                 // beyond the F16 scaling
                        }
                        MatrixRef a = transposed ? new MatrixRef(FloatSource.of(x), offset, m + pad, true, 0)
                                : new MatrixRef(FloatSource.of(x), offset, k + pad, false, 0);
                        assertTrue(Gemv.takesFewRows(1, m, k, b));
                        float[] c = new float[m * n];
                        Gemm.gemm(1, m, n, k, a, b, c, 0, n, 0, Epilogue.NONE);
                        for (int i = 0; i < m; i++) {
                            float[] row = new float[k];
                            for (int p = 0; p < k; p++) {
                                row[p] = x[(int) (offset + (transposed ? (long) p * (m + pad) + i
                                        : (long) i * (k + pad) + p))];
                            }
                            float[] one = new float[n];
                            Gemm.gemm(1, 1, n, k, MatrixRef.rowMajor(row, 0, k), b, one, 0, n, 0, Epilogue.NONE);
                            for (int j = 0; j < n; j++) {
                                assertEquals(Float.floatToIntBits(one[j]), Float.floatToIntBits(c[i * n + j]),
                                        "%s k=%d n=%d m=%d row %d col %d: %s vs one row %s".formatted(dtype, k, n, m,
                                                i, j, c[i * n + j], one[j]));
                            }
                        }
                        if (!special) {
                            Epilogue ep = m % 3 == 0 ? new Epilogue(0.5f, random(rnd, m), true, Activation.GELU, true)
                                    : new Epilogue(2f, random(rnd, n), false, Activation.SILU, false);
                            compare(1, m, n, k, a, b, 2, 1, 0, ep, rnd);
                        }
                    }
                }
            }
        }
    }

    @Test
    void halfToFloatVectorConversionIsExactForAllBitPatterns() {
        short[] bits = new short[65536];
        for (int i = 0; i < bits.length; i++) {
            bits[i] = (short) i;
        }
        float[] got = new float[GemmVector.VL];
        for (int i = 0; i < bits.length; i += GemmVector.VL) {
            GemmVector.f16ToF32(ShortVector.fromArray(GemmVector.H, bits, i)).intoArray(got, 0);
            for (int l = 0; l < GemmVector.VL; l++) {
                float want = Float.float16ToFloat(bits[i + l]);
                assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[l]),
                        "half bits 0x" + Integer.toHexString(i + l));
            }
            GemmVector.bf16ToF32(ShortVector.fromArray(GemmVector.H, bits, i)).intoArray(got, 0);
            for (int l = 0; l < GemmVector.VL; l++) {
                assertEquals(Float.floatToRawIntBits(DType.bf16ToF32(bits[i + l])), Float.floatToRawIntBits(got[l]),
                        "bf16 bits 0x" + Integer.toHexString(i + l));
            }
        }
    }

    @Test
    void shortOperandsAndBadSizesAreRejectedWithTheirValues() {
        float[] a = new float[6];
        float[] b = new float[6];
        float[] c = new float[4];
        var e = assertThrows(IllegalArgumentException.class, () -> Gemm.gemm(3, 2, 3, a, b, c, Epilogue.NONE));
        assertTrue(e.getMessage().contains("A has 6 elements"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Gemm.gemm(2, 3, 2, a, b, c, Epilogue.NONE));
        assertTrue(e.getMessage().contains("C has 4 floats"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Gemm.gemm(-1, 2, 3, a, b, c, Epilogue.NONE));
        assertTrue(e.getMessage().contains("m=-1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Gemm.gemm(2, 2, 3, a, b, new float[4], Epilogue.of(new float[1], Activation.NONE)));
        assertTrue(e.getMessage().contains("bias has 1 floats, expected 2"), e.getMessage());
    }
}
