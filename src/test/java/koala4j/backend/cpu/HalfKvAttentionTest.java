package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.stream.Stream;

import koala4j.backend.cpu.Attention.HalfOperand;
import koala4j.backend.cpu.Attention.Mask;
import koala4j.backend.cpu.Attention.Operand;
import koala4j.tensor.DType;
import koala4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link Attention} with F16 keys and values (a half-precision KV cache) against the float kernel given the same
 * values as floats. Both paths form the same products and sums in the same order (the F16 one reads the bits in
 * place, or converts each block into scratch first, or the whole operand for long queries); only the order inside
 * the Vector API's final lane sums may differ (left to right while a kernel is interpreted, a tree once C2 has
 * compiled it, and the two paths are different methods). Metric: max |diff| <= 1e-6 * (1 + max |want|), far below
 * F16 rounding (2^-11) and far above those last-bit differences.
 */
class HalfKvAttentionTest {

    static Stream<Arguments> shapes() {
        // b, heads, kvHeads, nq, nk, d, dv, causal
        return Stream.of(
                Arguments.of(1, 4, 4, 1, 1, 64, 64, false),
                Arguments.of(1, 4, 4, 1, 257, 64, 64, true),         // decode, lone rows, several key blocks
                Arguments.of(2, 8, 2, 1, 300, 128, 128, false),      // GQA decode, 4 rows per kv head
                Arguments.of(2, 5, 1, 1, 70, 24, 24, true),          // one tile + a lone row
                Arguments.of(1, 3, 3, 1, 40, 5, 7, true),            // d and dv tails: values padded in scratch
                Arguments.of(1, 8, 2, 3, 150, 40, 72, true),         // 12 rows per kv head (a few-token step)
                Arguments.of(1, 8, 2, 9, 150, 64, 64, true),         // 36 rows per kv head: widened, packed path
                Arguments.of(1, 2, 2, 40, 40, 32, 32, true));        // a prompt: packed path
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void halfOperandsEqualTheirFloatValues(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                                           boolean causal) {
        var rnd = new Random(17L * nk + d + nq);
        Operand q = floats(rnd, b * heads * nq * d, (long) heads * nq * d, (long) nq * d, d);
        // keys and values inside a larger cache: capacity nk + 9 positions, 2 elements of offset
        int cap = nk + 9;
        HalfOperand k = halves(rnd, 2 + b * kvHeads * cap * d, 2, (long) kvHeads * cap * d, (long) cap * d, d);
        HalfOperand v = halves(rnd, b * kvHeads * cap * dv, 0, (long) kvHeads * cap * dv, (long) cap * dv, dv);
        assertSame(b, heads, kvHeads, nq, nk, d, dv, q, k, v, null, causal);
    }

    @Test
    void rowsWithGapsAndAMask() {
        var rnd = new Random(5);
        int b = 1, heads = 4, kvHeads = 2, nq = 2, nk = 150, d = 32;
        Operand q = floats(rnd, b * heads * nq * d, (long) heads * nq * d, (long) nq * d, d);
        // rows 48 elements apart (not adjacent), so each row is converted on its own
        HalfOperand k = halves(rnd, b * kvHeads * nk * 48, 0, (long) kvHeads * nk * 48, 48, d);
        HalfOperand v = halves(rnd, b * kvHeads * nk * 48, 5, (long) kvHeads * nk * 48, 48, d);
        float[] m = new float[heads * nq * nk];
        for (int i = 0; i < m.length; i++) {
            m[i] = i % 7 == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian();
        }
        assertSame(b, heads, kvHeads, nq, nk, d, d, q, k, v, new Mask(m, 0, 0, (long) nq * nk, nk), true);
    }

    /**
     * One query row over F16 read in place (head dims 64 and 128): subnormal and extreme F16 values, an Inf key, a
     * NaN value, an Inf value and a query too large to scale by 2^112 each still give the float kernel's result.
     */
    @Test
    void inPlaceRowsMatchOnSpecialValues() {
        for (int d : new int[] {64, 128}) {
            var rnd = new Random(d);
            int heads = 3, nk = 200;
            Operand q = floats(rnd, heads * d, (long) heads * d, d, d);
            HalfOperand k = halves(rnd, heads * nk * d, 0, (long) heads * nk * d, (long) nk * d, d);
            HalfOperand v = halves(rnd, heads * nk * d, 0, (long) heads * nk * d, (long) nk * d, d);
            short[] kh = k.data();
            short[] vh = v.data();
            for (int i = 0; i < kh.length; i += 7) {
                kh[i] = (short) (i % 2 == 0 ? 0x0001 : 0x83FF);       // subnormals
                vh[i] = (short) (i % 3 == 0 ? 0x7BFF : 0x0200);       // 65504 and a subnormal
            }
            assertSame(1, heads, heads, 1, nk, d, d, q, k, v, null, true);
            kh[nk * d + 5 * d + 3] = 0x7C00;                          // +Inf key in head 1, block 0
            vh[2 * nk * d + 150 * d + 7] = 0x7E00;                    // NaN value in head 2, block 1
            vh[150 * d + 1] = (short) 0xFC00;                         // -Inf value in head 0, block 1
            assertSame(1, heads, heads, 1, nk, d, d, q, k, v, null, true);
            q.data()[d + 2] = 1e6f;                                   // head 1's query cannot be scaled
            assertSame(1, heads, heads, 1, nk, d, d, q, k, v, null, true);
        }
    }

    @Test
    void everyKeyMaskedGivesZero() {
        var rnd = new Random(9);
        int nk = 20, d = 16;
        Operand q = floats(rnd, d, d, d, d);
        HalfOperand k = halves(rnd, nk * d, 0, (long) nk * d, (long) nk * d, d);
        float[] m = new float[nk];
        java.util.Arrays.fill(m, Float.NEGATIVE_INFINITY);
        float[] out = new float[d];
        java.util.Arrays.fill(out, 7f);
        Attention.attention(1, 1, 1, 1, nk, d, d, q, k, k, new Mask(m, 0, 0, 0, 0), false, 1f, out, 0);
        assertArrayEquals(new float[d], out);
    }

    @Test
    void ops_attentionReadsAnF16CacheInPlace() {
        var ops = new CpuOps();
        var rnd = new Random(3);
        int heads = 4, nk = 33, cap = 40, d = 16;
        Tensor q = ops.fromArray(gaussian(rnd, heads * d), 1, heads, 1, d);
        Tensor k = ops.fromArray(gaussian(rnd, heads * cap * d), 1, heads, cap, d).to(DType.F16);
        Tensor v = ops.fromArray(gaussian(rnd, heads * cap * d), 1, heads, cap, d).to(DType.F16);
        Tensor kView = k.slice(2, 0, nk);
        Tensor vView = v.slice(2, 0, nk);
        float[] got = ops.attention(q, kView, vView, null, true, 0.25f).toFloatArray();
        float[] want = ops.attention(q, kView.to(DType.F32), vView.to(DType.F32), null, true, 0.25f).toFloatArray();
        assertClose(want, got, "ops.attention");
    }

    @Test
    void rejectsAnF16OperandTooShortForItsShape() {
        var rnd = new Random(1);
        Operand q = floats(rnd, 16, 16, 16, 16);
        HalfOperand k = halves(rnd, 15 * 16, 0, 16L * 16, 16, 16);
        var e = assertThrows(IllegalArgumentException.class,
                () -> Attention.attention(1, 1, 1, 1, 16, 16, 16, q, k, k, null, false, 1f, new float[16], 0));
        assertTrue(e.getMessage().contains("k [1, 1, 16, 16]"), e.getMessage());
    }

    private static void assertSame(int b, int heads, int kvHeads, int nq, int nk, int d, int dv, Operand q,
                                   HalfOperand k, HalfOperand v, Mask mask, boolean causal) {
        assertSameAsFloat(b, heads, kvHeads, nq, nk, d, dv, q, asFloat(k), asFloat(v), mask, causal,
                (scale, got) -> Attention.attention(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, causal, scale,
                        got, 0));
    }

    /** An attention call over compact keys and values: fills {@code out} for the given scale. */
    @FunctionalInterface
    interface CompactCall {
        void run(float scale, float[] out);
    }

    /** {@code compact} against the float kernel over the same values ({@code kf}, {@code vf}), scale 1/sqrt(d). */
    static void assertSameAsFloat(int b, int heads, int kvHeads, int nq, int nk, int d, int dv, Operand q,
                                  Operand kf, Operand vf, Mask mask, boolean causal, CompactCall compact) {
        float scale = (float) (1 / Math.sqrt(d));
        float[] want = new float[b * heads * nq * dv];
        float[] got = new float[want.length];
        Attention.attention(b, heads, kvHeads, nq, nk, d, dv, q, kf, vf, mask, causal, scale, want, 0);
        compact.run(scale, got);
        assertClose(want, got, "b=%d heads=%d kvHeads=%d nq=%d nk=%d d=%d dv=%d causal=%b"
                .formatted(b, heads, kvHeads, nq, nk, d, dv, causal));
    }

    static void assertClose(float[] want, float[] got, String where) {
        double max = 0;
        double diff = 0;
        for (int i = 0; i < want.length; i++) {
            if (!Float.isFinite(want[i]) || !Float.isFinite(got[i])) {
                assertEquals(want[i], got[i], where + ": at " + i);   // the same Inf, or NaN in both
                continue;
            }
            max = Math.max(max, Math.abs(want[i]));
            diff = Math.max(diff, Math.abs((double) got[i] - want[i]));
        }
        assertTrue(diff <= 1e-6 * (1 + max), where + ": max |diff| " + diff + ", max |want| " + max);
    }

    private static Operand asFloat(HalfOperand h) {
        float[] f = new float[h.data().length];
        for (int i = 0; i < f.length; i++) {
            f[i] = Float.float16ToFloat(h.data()[i]);
        }
        return new Operand(f, h.offset(), h.strideB(), h.strideH(), h.strideN());
    }

    private static Operand floats(Random rnd, int n, long sb, long sh, long sn) {
        return new Operand(gaussian(rnd, n), 0, sb, sh, sn);
    }

    private static HalfOperand halves(Random rnd, int n, int offset, long sb, long sh, long sn) {
        short[] h = new short[n + offset];
        for (int i = 0; i < h.length; i++) {
            h[i] = Float.floatToFloat16((float) rnd.nextGaussian());
        }
        return new HalfOperand(h, offset, sb, sh, sn);
    }

    static float[] gaussian(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
