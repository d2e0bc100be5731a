package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Q4;
import koala4j.tensor.quant.Q4Storage;
import koala4j.tensor.quant.Quantization;

/**
 * Q4_0 weights (llama.cpp's {@code block_q4_0}): ggml's reference rounding on blocks whose quants are known by hand,
 * its nibble order, and F.linear with a Q4_0 weight against the float product of the same values (max |diff| <=
 * 1e-5 * (1 + max |want|): the same products summed in another order).
 */
class Q4Test {

    private final Ops ops = new CpuOps();

    private static float[] gaussian(SplittableRandom rnd, int n, float scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian() * scale;
        }
        return x;
    }

    private static float[] block(float... first) {
        return Arrays.copyOf(first, Q4Storage.BLOCK);
    }

    private static int[] quants(Q4Storage q) {
        int[] out = new int[(int) q.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = q.quant(i);
        }
        return out;
    }

    @Test
    void ggmlReferenceRounding() {
        Q4Storage q = Q4.allocate(4 * Q4Storage.BLOCK);
        // the largest |x| is -8: d = -8 / -8 = 1, q = min(15, (int) (x + 8.5)); halves round up
        float[] a = block(-8f, 7f, 0f, 0.5f, -0.5f, 1.5f, -1.5f, 3.49f);
        Q4.quantizeBlock(a, 0, q, 0);
        assertEquals(1f, q.scale(0));
        assertArrayEquals(new int[] {0, 15, 8, 9, 8, 10, 7, 11}, Arrays.copyOf(quants(q), 8));
        // the largest |x| is +8: d = -1, so +8 is q 0 and -8 would be 16, clipped to 15 (-7): ggml's asymmetry
        float[] b = block(8f, -8f, 4f);
        Q4.quantizeBlock(b, 0, q, 1);
        assertEquals(-1f, q.scale(1));
        assertEquals(8f, q.get(32));
        assertEquals(-7f, q.get(33));
        assertEquals(4f, q.get(34));
        // all zeros: scale 0 / -8 = -0 (as in C), every quant 8 (value 0)
        Q4.quantizeBlock(new float[Q4Storage.BLOCK], 0, q, 2);
        assertEquals(-0f, q.scale(2));
        assertEquals(8, q.quant(64));
        // equal |x| of either sign: the first one sets the sign of d
        float[] c = block(3f, -3f);
        Q4.quantizeBlock(c, 0, q, 3);
        assertEquals(Float.float16ToFloat(Float.floatToFloat16(-0.375f)), q.scale(3));
        assertEquals(3f, q.get(96));
        // nibbles: byte j holds element j (low) and element j + 16 (high)
        float[] d = new float[Q4Storage.BLOCK];
        d[0] = -8f;
        d[16] = 7f;
        Q4.quantizeBlock(d, 0, q, 0);
        assertEquals((byte) 0xF0, q.quants().get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void castValuesAndViews() {
        SplittableRandom rnd = new SplittableRandom(3);
        float[] x = gaussian(rnd, 5 * 64, 1f);
        Tensor w = ops.fromArray(x, 5, 64).to(DType.Q4_0);
        assertEquals(DType.Q4_0, w.dtype());
        Q4Storage q = (Q4Storage) w.storage();
        float[] values = w.toFloatArray();
        for (int i = 0; i < x.length; i++) {
            assertEquals(q.get(i), values[i], "element " + i);
            assertTrue(Math.abs(values[i] - x[i]) <= Math.abs(q.scale(i / 32)) * 1.001 + 1e-6, "element " + i);
        }
        // a view off the block grid reads its values through the general path
        assertArrayEquals(Arrays.copyOfRange(values, 64 + 3, 64 + 40),
                w.slice(0, 1, 2).slice(1, 3, 40).reshape(-1).toFloatArray());
        var ragged = assertThrows(IllegalArgumentException.class, () -> ops.fromArray(new float[40], 2, 20)
                .to(DType.Q4_0));
        assertTrue(ragged.getMessage().contains("Q4_0") && ragged.getMessage().contains("multiple of 32"),
                ragged.getMessage());
        assertArrayEquals(new float[64], ops.empty(DType.Q4_0, 2, 32).toFloatArray(), "empty Q4_0: zeros (a KV cache)");
        var partial = assertThrows(IllegalArgumentException.class, () -> ops.empty(DType.Q4_0, 2, 20));
        assertTrue(partial.getMessage().contains("empty Q4_0 tensor of shape [2, 20]"), partial.getMessage());
        assertEquals(Quantization.Q4_0, Quantization.parse("Q4"));
        assertEquals(Quantization.Q4_0, Quantization.parse("q4_0"));
        assertEquals(18L * 3, Q4.bytesFor(96));
    }

    /**
     * A batched decode step or a short pass (2 to {@link Q4Gemm#FEW_ROWS} rows) gives each row the bits its own
     * matrix-vector product gives.
     */
    @Test
    void fewRowsGiveEachRowWhatOneRowGives() {
        SplittableRandom rnd = new SplittableRandom(11);
        int n = 45;
        int k = 160;
        float[] w = gaussian(rnd, n * k, 0.05f);
        Tensor q4 = ops.fromArray(w, n, k).to(DType.Q4_0);
        for (int m : new int[] {2, 3, 4, 5, 8, 9, 13, Q4Gemm.FEW_ROWS}) {
            float[] x = gaussian(rnd, m * k, 1f);
            float[] all = ops.fromArray(x, m, k).linear(q4, null).toFloatArray();
            for (int i = 0; i < m; i++) {
                float[] one = ops.fromArray(Arrays.copyOfRange(x, i * k, (i + 1) * k), 1, k).linear(q4, null)
                        .toFloatArray();
                assertArrayEquals(one, Arrays.copyOfRange(all, i * n, (i + 1) * n), "m=" + m + ", row " + i);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"1, 37, 96", "2, 64, 32", "5, 33, 128", "8, 40, 64", "9, 19, 96", "40, 70, 160"})
    void linearEqualsTheFloatProductOfItsValues(int m, int n, int k) {
        SplittableRandom rnd = new SplittableRandom(17L * m + n + k);
        float[] w = gaussian(rnd, n * k, 0.05f);
        float[] x = gaussian(rnd, m * k, 1f);
        float[] bias = gaussian(rnd, n, 1f);
        Tensor q4 = ops.fromArray(w, n, k).to(DType.Q4_0);
        Tensor values = ops.fromArray(q4.toFloatArray(), n, k);
        Tensor input = ops.fromArray(x, m, k);
        Tensor b = ops.fromArray(bias, n);
        float[] want = input.linear(values, b).toFloatArray();
        float[] got = input.linear(q4, b).toFloatArray();
        double max = 0;
        double diff = 0;
        for (int i = 0; i < want.length; i++) {
            max = Math.max(max, Math.abs(want[i]));
            diff = Math.max(diff, Math.abs(got[i] - want[i]));
        }
        assertTrue(diff <= 1e-5 * (1 + max), "m=" + m + " n=" + n + " k=" + k + ": max |diff| " + diff);
        // rows of a weight starting past its first row (a block-aligned view) run the same kernel
        float[] tail = input.linear(q4.slice(0, 1, n), null).toFloatArray();
        float[] tailWant = input.linear(values.slice(0, 1, n), null).toFloatArray();
        for (int i = 0; i < tail.length; i++) {
            assertEquals(tailWant[i], tail[i], 1e-5 * (1 + Math.abs(tailWant[i])), "view, element " + i);
        }
        // an activation is applied after the bias, as with the other weights
        float[] silu = ops.linear(input, q4, b, Activation.SILU).toFloatArray();
        float[] siluWant = ops.linear(input, values, b, Activation.SILU).toFloatArray();
        for (int i = 0; i < silu.length; i++) {
            assertEquals(siluWant[i], silu[i], 1e-5 * (1 + Math.abs(siluWant[i])), "silu, element " + i);
        }
    }
}
