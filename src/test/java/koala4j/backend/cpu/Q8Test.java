package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Q8;
import koala4j.tensor.quant.Q8Storage;

/**
 * Q8_0: the block format against ggml's reference rules, the Vector API linear kernel (matrix-vector and the blocked
 * matrix-matrix path) against its scalar twin, and the wiring through Ops (cast, linear, indexSelect, matmul).
 * Metric for kernels: max |Δ| <= 1e-5 * (1 + max|ref|) (float sums in a different order than the double twin).
 */
class Q8Test {

    private final Ops ops = new CpuOps();

    private static float[] random(SplittableRandom rnd, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        return a;
    }

    private static void close(float[] expected, float[] actual, double rel, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        double scale = 0;
        for (float e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], rel * (1 + scale), what + ": index " + i);
        }
    }

    @Test
    void blockFollowsGgmlReference() {
        // amax 12.7 -> d = 0.1; 0.05/0.1 = 0.5 rounds away from zero to 1, -0.25/0.1 = -2.5 to -3
        float[] x = new float[32];
        x[0] = 12.7f;
        x[1] = -12.7f;
        x[2] = 0.05f;
        x[3] = -0.25f;
        x[4] = 1f;
        Q8Storage q = Q8.allocate(64);
        Q8.quantizeBlock(x, 0, q, 0);
        Q8.quantizeBlock(new float[32], 0, q, 1);
        float d = 12.7f / 127f;
        assertEquals(Float.float16ToFloat(Float.floatToFloat16(d)), q.scale(0), 0f, "scale stored as F16");
        byte[] quants = q.quants().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        assertEquals(127, quants[0]);
        assertEquals(-127, quants[1]);
        assertEquals(Math.round(0.05f * (1f / d)), quants[2]);
        assertEquals(-Math.round(0.25f * (1f / d)), quants[3], "roundf: halfway away from zero");
        assertEquals(10, quants[4]);
        assertEquals(0f, q.scale(1), "an all-zero block has scale 0");
        assertEquals(0, quants[40]);
        assertEquals(34L * 2, q.byteSize(), "34 bytes per 32 weights");
        assertEquals(34L * 1000, Q8.bytesFor(32_000));
    }

    @Test
    void castToQ8RoundTripsWithinHalfAStep() {
        SplittableRandom rnd = new SplittableRandom(3);
        int rows = 7;
        int cols = 96;
        float[] w = random(rnd, rows * cols, 0.2);
        w[5] = 3f;    // an outlier widens only its own block's step
        Tensor q = ops.fromArray(w, rows, cols).to(DType.Q8_0);
        assertEquals(DType.Q8_0, q.dtype());
        float[] back = q.to(DType.F32).toFloatArray();
        for (int b = 0; b < rows * cols / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(w[b * 32 + j]));
            }
            float d = amax / 127f;
            float d16 = Float.float16ToFloat(Float.floatToFloat16(d));
            double bound = 0.5 * d + 127 * Math.abs(d16 - d) + 1e-7;
            for (int j = 0; j < 32; j++) {
                int i = b * 32 + j;
                assertTrue(Math.abs(back[i] - w[i]) <= bound, "element " + i + ": " + w[i] + " -> " + back[i]);
            }
        }
        // F16 and BF16 sources quantise their own values, read in place from the storage
        for (DType dt : new DType[] {DType.F16, DType.BF16}) {
            Tensor half = ops.fromArray(w, rows, cols).to(dt);
            assertArrayEquals(half.to(DType.F32).to(DType.Q8_0).toFloatArray(), half.to(DType.Q8_0).toFloatArray(), 0f,
                    dt.toString());
        }
    }

    @ParameterizedTest
    @CsvSource({"1,1,32", "1,5,64", "1,37,96", "1,130,320", "2,9,64", "3,130,320", "4,1,32", "5,33,96", "8,17,128",
            "12,40,64", "13,70,320", "29,40,288", "3,67,96", "7,64,128", "40,19,64", "41,70,320", "64,33,96"})
    void vectorKernelAgreesWithScalarTwin(int m, int n, int k) {
        SplittableRandom rnd = new SplittableRandom(m * 1000L + n * 10L + k);
        Tensor w = ops.fromArray(random(rnd, n * k, 0.5), n, k).to(DType.Q8_0);
        Q8Storage q = (Q8Storage) w.storage();
        float[] x = random(rnd, m * k + 3, 1.0);
        float[] bias = random(rnd, n, 1.0);
        for (Activation act : new Activation[] {Activation.NONE, Activation.SILU}) {
            float[] fast = new float[m * n];
            float[] slow = new float[m * n];
            Q8Gemm.linear(x, 3, m, k, q, 0, n, act == Activation.NONE ? null : bias, act, fast);
            ScalarQ8.linear(x, 3, m, k, q, 0, n, act == Activation.NONE ? null : bias, act, slow);
            close(slow, fast, 1e-5, "m=" + m + " n=" + n + " k=" + k + " " + act);
        }
        // a weight view that starts at a later row (as a slice of a bigger matrix does)
        if (n > 2) {
            float[] fast = new float[m * (n - 2)];
            float[] slow = new float[m * (n - 2)];
            Q8Gemm.linear(x, 0, m, k, q, 2L * k, n - 2, null, Activation.NONE, fast);
            ScalarQ8.linear(x, 0, m, k, q, 2L * k, n - 2, null, Activation.NONE, slow);
            close(slow, fast, 1e-5, "offset view");
        }
    }

    /**
     * Up to {@link Q8Gemm#FEW_ROWS} input rows (short prompts, batched decode steps) each row's results equal, bit for
     * bit, what the one-row kernel gives for that row alone: all kernels scale a weight before its product and add
     * the lanes in the same order. Weight rows not a multiple of four, short last groups of input rows.
     */
    @Test
    void fewRowsGiveEachRowWhatOneRowGives() {
        SplittableRandom rnd = new SplittableRandom(8);
        for (int n : new int[] {3, 8, 37, 130}) {
            int k = 320;
            Q8Storage q = (Q8Storage) ops.fromArray(random(rnd, n * k, 0.5), n, k).to(DType.Q8_0).storage();
            for (int m : new int[] {2, 3, 4, 5, 9, 40}) {
                float[] x = random(rnd, m * k, 1.0);
                float[] all = new float[m * n];
                Q8Gemm.linear(x, 0, m, k, q, 0, n, null, Activation.NONE, all);
                for (int i = 0; i < m; i++) {
                    float[] one = new float[n];
                    Q8Gemm.linear(x, i * k, 1, k, q, 0, n, null, Activation.NONE, one);
                    assertArrayEquals(one, Arrays.copyOfRange(all, i * n, (i + 1) * n), 0f,
                            "n=" + n + " m=" + m + " row " + i);
                }
            }
        }
    }

    @Test
    void opsLinearWithQ8WeightEqualsLinearWithItsValues() {
        SplittableRandom rnd = new SplittableRandom(11);
        int in = 128;
        int out = 48;
        Tensor w = ops.fromArray(random(rnd, out * in, 0.3), out, in).to(DType.F16).to(DType.Q8_0);
        Tensor values = w.to(DType.F32);
        Tensor bias = ops.fromArray(random(rnd, out, 1), out);
        for (int rows : new int[] {1, 6}) {
            Tensor x = ops.fromArray(random(rnd, 2 * rows * in, 1), 2, rows, in).slice(0, 1, 2);  // a view at an offset
            Tensor expected = x.ops().linear(x, values, bias, Activation.GELU);
            Tensor actual = x.ops().linear(x, w, bias, Activation.GELU);
            assertArrayEquals(expected.shape(), actual.shape());
            close(expected.toFloatArray(), actual.toFloatArray(), 1e-5, "rows=" + rows);
        }
        // every other op reads the values back: a plain matmul, an embedding lookup of whole rows
        Tensor x = ops.fromArray(random(rnd, 3 * in, 1), 3, in);
        close(x.matmul(values.transpose(0, 1)).toFloatArray(), x.matmul(w.transpose(0, 1)).toFloatArray(), 1e-5,
                "matmul");
        Tensor ids = ops.fromArray(new long[] {5, 0, 47}, 3);
        assertArrayEquals(values.embedding(ids).toFloatArray(), w.embedding(ids).toFloatArray(), 0f, "embedding");
    }

    @Test
    void errorsNameTheShape() {
        var e = assertThrows(IllegalArgumentException.class, () -> ops.fromArray(new float[40], 2, 20).to(DType.Q8_0));
        assertTrue(e.getMessage().contains("multiple of 32"), e.getMessage());
        // an empty Q8_0 tensor (a KV cache) needs whole blocks along its last dim
        var ragged = assertThrows(IllegalArgumentException.class, () -> ops.empty(DType.Q8_0, 2, 20));
        assertTrue(ragged.getMessage().contains("[2, 20]") && ragged.getMessage().contains("divisible by 32"),
                ragged.getMessage());
    }

    @Test
    void viewsOffTheBlockGridReadTheirValues() {
        SplittableRandom rnd = new SplittableRandom(5);
        Tensor w = ops.fromArray(random(rnd, 64 * 3, 1), 3, 64).to(DType.Q8_0);
        Tensor values = w.to(DType.F32);
        assertArrayEquals(values.slice(1, 16, 48).toFloatArray(), w.slice(1, 16, 48).toFloatArray(), 0f);
        Tensor x = ops.fromArray(random(rnd, 2 * 32, 1), 2, 32);
        close(x.linear(values.slice(1, 16, 48), null).toFloatArray(), x.linear(w.slice(1, 16, 48), null).toFloatArray(),
                1e-5, "linear with a strided Q8 view");
        Tensor rows = w.slice(0, 1, 3);   // dense, starts on a block: the fast kernel reads it in place
        close(x.linear(values.slice(0, 1, 3).reshape(4, 32).slice(0, 0, 2), null).toFloatArray(),
                x.linear(rows.reshape(4, 32).slice(0, 0, 2), null).toFloatArray(), 1e-5, "row view");
    }
}
