package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import koala4j.backend.cpu.Attention.Compact;
import koala4j.backend.cpu.Attention.Mask;
import koala4j.backend.cpu.Attention.Operand;
import koala4j.backend.cpu.Attention.Q4Operand;
import koala4j.backend.cpu.Attention.Q8Operand;
import koala4j.tensor.DType;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Q4;
import koala4j.tensor.quant.Q4Storage;
import koala4j.tensor.quant.Q8;
import koala4j.tensor.quant.Q8Storage;

/**
 * {@link Attention} with Q8_0 or Q4_0 keys and values (llama.cpp's q8_0 / q4_0 KV caches) against the float kernel
 * given the same values (scale times quant) as floats: both form the same products and sums, the quantised path
 * after turning each block of keys and values (or, for long queries, the whole operand) into floats. Metric as
 * {@code HalfKvAttentionTest}: max |diff| <= 1e-6 * (1 + max |want|). And the tensor side: Q8_0 / Q4_0 views written
 * in place by {@code copyInto}.
 */
class QuantisedKvAttentionTest {

    private final CpuOps ops = new CpuOps();

    static Stream<Arguments> shapes() {
        return Stream.of(DType.Q8_0, DType.Q4_0).flatMap(format -> shapesOf().map(a -> {
            Object[] args = java.util.Arrays.copyOf(a.get(), a.get().length + 1);
            args[args.length - 1] = format;
            return Arguments.of(args);
        }));
    }

    private static Stream<Arguments> shapesOf() {
        // b, heads, kvHeads, nq, nk, d, dv, causal
        return Stream.of(
                Arguments.of(1, 4, 4, 1, 1, 64, 64, false),
                Arguments.of(1, 4, 4, 1, 257, 64, 64, true),         // decode, lone rows, several key blocks
                Arguments.of(2, 8, 2, 1, 300, 128, 128, false),      // GQA decode, 4 rows per kv head
                Arguments.of(2, 5, 1, 1, 70, 32, 32, true),          // one tile + a lone row
                Arguments.of(1, 8, 2, 3, 150, 64, 96, true),         // 12 rows per kv head (a few-token step)
                Arguments.of(1, 8, 2, 9, 150, 64, 64, true),         // 36 rows per kv head: widened, packed path
                Arguments.of(1, 2, 2, 40, 40, 32, 32, true));        // a prompt: packed path
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void quantisedOperandsEqualTheirFloatValues(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                                                boolean causal, DType format) {
        var rnd = new Random(31L * nk + d + nq);
        Operand q = new Operand(HalfKvAttentionTest.gaussian(rnd, b * heads * nq * d), 0, (long) heads * nq * d, (long) nq * d, d);
        // keys and values inside a larger cache: capacity nk + 9 positions, one block of offset for the keys
        int cap = nk + 9;
        Compact k = quantised(format, rnd, 32 + b * kvHeads * cap * d, 32, (long) kvHeads * cap * d, (long) cap * d, d);
        Compact v = quantised(format, rnd, b * kvHeads * cap * dv, 0, (long) kvHeads * cap * dv, (long) cap * dv, dv);
        assertSame(b, heads, kvHeads, nq, nk, d, dv, q, k, v, null, causal);
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(names = {"Q8_0", "Q4_0"})
    void rowsWithGapsAndAMask(DType format) {
        var rnd = new Random(5);
        int b = 1, heads = 4, kvHeads = 2, nq = 2, nk = 150, d = 32;
        Operand q = new Operand(HalfKvAttentionTest.gaussian(rnd, b * heads * nq * d), 0, (long) heads * nq * d, (long) nq * d, d);
        // rows 64 elements apart (not adjacent), so each row is converted on its own
        Compact k = quantised(format, rnd, b * kvHeads * nk * 64, 0, (long) kvHeads * nk * 64, 64, d);
        Compact v = quantised(format, rnd, b * kvHeads * nk * 64, 32, (long) kvHeads * nk * 64, 64, d);
        float[] m = new float[heads * nq * nk];
        for (int i = 0; i < m.length; i++) {
            m[i] = i % 7 == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian();
        }
        assertSame(b, heads, kvHeads, nq, nk, d, d, q, k, v, new Mask(m, 0, 0, (long) nq * nk, nk), true);
    }

    /** A cache's life on Q8_0 / Q4_0 tensors: zeros when made, rows quantised in place, copied as blocks, attended. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(names = {"Q8_0", "Q4_0"})
    void quantisedTensorsWrittenInPlaceAndAttended(DType format) {
        var rnd = new Random(9);
        int kvHeads = 2, cap = 20, d = 64, n = 13;
        Tensor keys = ops.empty(format, 1, kvHeads, cap, d);
        Tensor values = ops.empty(format, 1, kvHeads, cap, d);
        assertEquals(format, keys.dtype());
        assertArrayEquals(new float[kvHeads * cap * d], keys.toFloatArray(), "a new tensor holds zeros");
        Tensor k = ops.fromArray(HalfKvAttentionTest.gaussian(rnd, kvHeads * n * d), 1, kvHeads, n, d);
        Tensor v = ops.fromArray(HalfKvAttentionTest.gaussian(rnd, kvHeads * n * d), 1, kvHeads, n, d);
        // written in two steps as a prompt and then a token would be
        keys.slice(2, 0, 12).copyFrom(k.slice(2, 0, 12));
        keys.slice(2, 12, 13).copyFrom(k.slice(2, 12, 13));
        values.slice(2, 0, n).copyFrom(v);
        // the same values as cast(x, format), ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref
        assertArrayEquals(k.to(format).toFloatArray(), keys.slice(2, 0, n).toFloatArray());
        assertArrayEquals(v.to(format).toFloatArray(), values.slice(2, 0, n).toFloatArray());
        // into the same format (a cache copied for another choice or beam) moves the blocks as they are
        Tensor copy = ops.empty(format, 1, kvHeads, cap, d);
        copy.slice(2, 0, n).copyFrom(keys.slice(2, 0, n));
        assertArrayEquals(keys.toFloatArray(), copy.toFloatArray());
        // attention over the filled views equals attention over their float values
        Tensor q = ops.fromArray(HalfKvAttentionTest.gaussian(rnd, 4 * d), 1, 4, 1, d);
        float scale = (float) (1 / Math.sqrt(d));
        Tensor kv = keys.slice(2, 0, n);
        Tensor vv = values.slice(2, 0, n);
        float[] want = ops.attention(q, kv.to(DType.F32), vv.to(DType.F32), null, true, scale).toFloatArray();
        float[] got = ops.attention(q, kv, vv, null, true, scale).toFloatArray();
        HalfKvAttentionTest.assertClose(want, got, format + " tensors");

        var ragged = assertThrows(IllegalArgumentException.class, () -> ops.empty(format, 2, 40));
        assertTrue(ragged.getMessage().contains("divisible by 32"), ragged.getMessage());
        var inside = assertThrows(IllegalArgumentException.class,
                () -> keys.slice(3, 16, 48).copyFrom(ops.fromArray(new float[kvHeads * cap * 32], 1, kvHeads, cap, 32)));
        assertTrue(inside.getMessage().contains("whole blocks of 32"), inside.getMessage());
    }

    private static void assertSame(int b, int heads, int kvHeads, int nq, int nk, int d, int dv, Operand q,
                                   Compact k, Compact v, Mask mask, boolean causal) {
        HalfKvAttentionTest.assertSameAsFloat(b, heads, kvHeads, nq, nk, d, dv, q, asFloat(k), asFloat(v), mask, causal,
                (scale, got) -> {
                    if (k instanceof Q8Operand k8) {
                        Attention.attention(b, heads, kvHeads, nq, nk, d, dv, q, k8, (Q8Operand) v, mask, causal,
                                scale, got, 0);
                    } else {
                        Attention.attention(b, heads, kvHeads, nq, nk, d, dv, q, (Q4Operand) k, (Q4Operand) v, mask,
                                causal, scale, got, 0);
                    }
                });
    }

    private static Operand asFloat(Compact c) {
        float[] f = new float[c.length()];
        for (int i = 0; i < f.length; i++) {
            f[i] = c instanceof Q8Operand q8 ? q8.data().get(i) : ((Q4Operand) c).data().get(i);
        }
        return new Operand(f, c.offset(), c.strideB(), c.strideH(), c.strideN());
    }

    private static Compact quantised(DType format, Random rnd, int n, int offset, long sb, long sh, long sn) {
        float[] x = HalfKvAttentionTest.gaussian(rnd, n + offset);
        if (format == DType.Q4_0) {
            Q4Storage q = Q4.allocate(x.length);
            for (int block = 0; block < x.length / Q4Storage.BLOCK; block++) {
                Q4.quantizeBlock(x, block * Q4Storage.BLOCK, q, block);
            }
            return new Q4Operand(q, offset, sb, sh, sn);
        }
        Q8Storage q = Q8.allocate(x.length);
        for (int block = 0; block < x.length / Q8Storage.BLOCK; block++) {
            Q8.quantizeBlock(x, block * Q8Storage.BLOCK, q, block);
        }
        return new Q8Operand(q, offset, sb, sh, sn);
    }
}
