package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import koala4j.backend.cpu.Attention.Mask;
import koala4j.backend.cpu.Attention.Operand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link Attention} against its scalar twin {@link ScalarAttention} (double accumulation, scores held in full).
 * Metric: max |fast - scalar| <= 1e-5 * (1 + max |scalar|) over the whole output. The fast kernel accumulates in
 * float in another order and uses a polynomial exp2 (~2 ulp), which stays well inside that.
 */
class AttentionTest {

    private static final float SENTINEL = 12345.5f;

    static Stream<Arguments> shapes() {
        // b, heads, kvHeads, nq, nk, d, dv, causal
        return Stream.of(
                Arguments.of(1, 1, 1, 1, 1, 1, 1, false),
                Arguments.of(1, 2, 2, 5, 7, 5, 5, false),
                Arguments.of(2, 3, 3, 17, 33, 40, 40, false),
                Arguments.of(1, 2, 2, 70, 130, 64, 64, false),
                Arguments.of(1, 2, 1, 65, 200, 80, 80, true),
                Arguments.of(2, 1, 1, 100, 100, 128, 128, true),
                Arguments.of(1, 2, 2, 37, 301, 64, 64, true),        // nq < nk, causal: bottom-right aligned
                Arguments.of(1, 4, 4, 1, 257, 64, 64, false),        // decode: dot-product path
                Arguments.of(1, 4, 4, 1, 257, 64, 64, true),         // decode, causal sees every key
                Arguments.of(2, 8, 2, 1, 90, 128, 128, false),       // GQA decode, 4 rows per kv head
                Arguments.of(2, 5, 1, 1, 70, 24, 24, false),         // 5 rows per kv head: one tile + a lone row
                Arguments.of(1, 3, 3, 1, 40, 5, 7, true),            // lone-row path with a d tail
                Arguments.of(1, 8, 2, 3, 50, 40, 40, true),          // GQA, 12 rows per kv head: dot path
                Arguments.of(1, 8, 2, 9, 150, 64, 64, true),         // GQA, 36 rows per kv head: packed path
                Arguments.of(1, 2, 2, 130, 1, 64, 64, false),        // nk = 1
                Arguments.of(1, 3, 3, 20, 45, 24, 72, false),        // dv != d
                Arguments.of(1, 2, 2, 33, 47, 7, 3, true),           // small odd d and dv
                Arguments.of(1, 1, 1, 200, 150, 64, 64, true));      // nq > nk causal: first rows see nothing
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void contiguousAgreesWithScalar(int b, int heads, int kvHeads, int nq, int nk, int d, int dv, boolean causal) {
        var rnd = new Random(31L * nq + nk + d);
        Operand q = contiguous(rnd, b, heads, nq, d, 3);
        Operand k = contiguous(rnd, b, kvHeads, nk, d, 5);
        Operand v = contiguous(rnd, b, kvHeads, nk, dv, 0);
        compare(b, heads, kvHeads, nq, nk, d, dv, q, k, v, null, causal, (float) (1 / Math.sqrt(d)), 7);
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void fullMaskAgreesWithScalar(int b, int heads, int kvHeads, int nq, int nk, int d, int dv, boolean causal) {
        var rnd = new Random(7L * nq + nk + d);
        Operand q = contiguous(rnd, b, heads, nq, d, 0);
        Operand k = contiguous(rnd, b, kvHeads, nk, d, 0);
        Operand v = contiguous(rnd, b, kvHeads, nk, dv, 0);
        // [B, H, Nq, Nk] with a few -inf holes.
        float[] m = new float[b * heads * nq * nk + 2];
        for (int i = 2; i < m.length; i++) {
            m[i] = rnd.nextInt(10) == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian();
        }
        var mask = new Mask(m, 2, (long) heads * nq * nk, (long) nq * nk, nk);
        compare(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, causal, 0.3f, 0);
    }

    @Test
    void fusedQkvBufferWithStrides() {
        // One [B, N, 3, H, D] buffer as a fused qkv projection writes it; q, k and v are strided views into it.
        int b = 2, n = 77, heads = 3, d = 40;
        var rnd = new Random(3);
        float[] qkv = gaussian(rnd, 5 + b * n * 3 * heads * d);
        long sB = (long) n * 3 * heads * d, sN = 3L * heads * d;
        var q = new Operand(qkv, 5, sB, d, sN);
        var k = new Operand(qkv, 5 + heads * d, sB, d, sN);
        var v = new Operand(qkv, 5 + 2 * heads * d, sB, d, sN);
        compare(b, heads, heads, n, n, d, d, q, k, v, null, false, (float) (1 / Math.sqrt(d)), 3);
        compare(b, heads, heads, n, n, d, d, q, k, v, null, true, (float) (1 / Math.sqrt(d)), 0);
    }

    @Test
    void paddingMaskBroadcastOverHeadsAndQueries() {
        // [B, 1, 1, Nk] key-padding mask (strideH = strideN = 0), as a batch of prompts of different lengths gives.
        int b = 3, heads = 4, nq = 50, nk = 70, d = 64;
        var rnd = new Random(11);
        Operand q = contiguous(rnd, b, heads, nq, d, 0);
        Operand k = contiguous(rnd, b, heads, nk, d, 0);
        Operand v = contiguous(rnd, b, heads, nk, d, 0);
        float[] m = new float[b * nk];
        int[] valid = {70, 33, 1};
        for (int bi = 0; bi < b; bi++) {
            for (int j = valid[bi]; j < nk; j++) {
                m[bi * nk + j] = Float.NEGATIVE_INFINITY;
            }
        }
        var mask = new Mask(m, 0, nk, 0, 0);
        compare(b, heads, heads, nq, nk, d, d, q, k, v, mask, false, 0.125f, 0);
        // The same with a decode-sized query (dot-product path) and a [1, 1, Nq, Nk] mask shared by the batch.
        Operand q1 = contiguous(rnd, b, heads, 1, d, 0);
        compare(b, heads, heads, 1, nk, d, d, q1, k, v, mask, true, 0.125f, 0);
        float[] shared = gaussian(rnd, nq * nk);
        compare(b, heads, heads, nq, nk, d, d, q, k, v, new Mask(shared, 0, 0, 0, nk), true, 0.125f, 0);
    }

    @Test
    void fullyMaskedRowsGiveZero() {
        int b = 1, heads = 2, nq = 20, nk = 40, d = 16;
        var rnd = new Random(5);
        Operand q = contiguous(rnd, b, heads, nq, d, 0);
        Operand k = contiguous(rnd, b, heads, nk, d, 0);
        Operand v = contiguous(rnd, b, heads, nk, d, 0);
        float[] m = new float[nq * nk];
        Arrays.fill(m, 0, 3 * nk, Float.NEGATIVE_INFINITY);     // query rows 0..2 see no key
        float[] out = new float[b * heads * nq * d];
        Attention.attention(b, heads, heads, nq, nk, d, d, q, k, v, new Mask(m, 0, 0, 0, nk), false, 1f, out, 0);
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < nq; i++) {
                for (int c = 0; c < d; c++) {
                    float x = out[(h * nq + i) * d + c];
                    if (i < 3) {
                        assertEquals(0f, x, "head " + h + " row " + i);
                    } else {
                        assertTrue(Float.isFinite(x) && x != 0f, "head " + h + " row " + i + " col " + c + ": " + x);
                    }
                }
            }
        }
    }

    @Test
    void largeScoresStayStable() {
        // scale * |q·k| reaches ~50 and the row maximum grows from key block to key block (keys sorted by norm),
        // so the running rescale is exercised many times; a naive exp would overflow float at 88.
        int b = 1, heads = 2, nq = 40, nk = 600, d = 64;
        var rnd = new Random(17);
        Operand q = contiguous(rnd, b, heads, nq, d, 0);
        float[] kd = gaussian(rnd, b * heads * nk * d);
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < nk; j++) {
                float grow = 0.2f + 2.8f * j / nk;
                for (int dd = 0; dd < d; dd++) {
                    kd[(h * nk + j) * d + dd] *= grow;
                }
            }
        }
        var k = new Operand(kd, 0, (long) heads * nk * d, (long) nk * d, d);
        Operand v = contiguous(rnd, b, heads, nk, d, 0);
        float scale = 5f / (float) Math.sqrt(d);
        float maxScore = 0;
        for (int i = 0; i < nq * d; i += d) {
            for (int j = 0; j < nk; j++) {
                float dot = 0;
                for (int dd = 0; dd < d; dd++) {
                    dot += q.data()[i + dd] * kd[j * d + dd];
                }
                maxScore = Math.max(maxScore, Math.abs(dot * scale));
            }
        }
        assertTrue(maxScore > 45, "test should reach large scores, max " + maxScore);
        compare(b, heads, heads, nq, nk, d, d, q, k, v, null, false, scale, 0);
        compare(b, heads, heads, 1, nk, d, d, q, k, v, null, false, scale, 0);
    }

    @Test
    void rejectsBadShapes() {
        var rnd = new Random(1);
        Operand q = contiguous(rnd, 1, 4, 8, 16, 0);
        Operand k = contiguous(rnd, 1, 3, 8, 16, 0);
        float[] out = new float[4 * 8 * 16];
        var e = assertThrows(IllegalArgumentException.class,
                () -> Attention.attention(1, 4, 3, 8, 8, 16, 16, q, k, k, null, false, 1f, out, 0));
        assertTrue(e.getMessage().contains("heads=4") && e.getMessage().contains("kvHeads=3"), e.getMessage());
        var e2 = assertThrows(IllegalArgumentException.class,
                () -> Attention.attention(1, 4, 4, 8, 9, 16, 16, q, q, q, null, false, 1f, out, 0));
        assertTrue(e2.getMessage().contains("k [1, 4, 9, 16]"), e2.getMessage());
        var e3 = assertThrows(IllegalArgumentException.class,
                () -> Attention.attention(1, 4, 4, 8, 8, 16, 16, q, q, q, null, false, 1f, out, 1));
        assertTrue(e3.getMessage().contains("out [1, 4, 8, 16]"), e3.getMessage());
    }

    /** Runs both twins into buffers with a guard band and checks agreement and that nothing else was written. */
    private static void compare(int b, int heads, int kvHeads, int nq, int nk, int d, int dv, Operand q, Operand k,
                                Operand v, Mask mask, boolean causal, float scale, int outOffset) {
        int len = b * heads * nq * dv;
        float[] want = new float[outOffset + len + 3];
        float[] got = new float[outOffset + len + 3];
        Arrays.fill(got, SENTINEL);
        ScalarAttention.attention(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, causal, scale, want, outOffset);
        Attention.attention(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, causal, scale, got, outOffset);
        double maxRef = 0, maxDiff = 0;
        int worst = -1;
        for (int i = outOffset; i < outOffset + len; i++) {
            maxRef = Math.max(maxRef, Math.abs(want[i]));
            double diff = Math.abs((double) got[i] - want[i]);
            if (!(diff <= maxDiff)) {                      // also catches NaN
                maxDiff = diff;
                worst = i;
            }
        }
        double tol = 1e-5 * (1 + maxRef);
        String where = "b=%d heads=%d kvHeads=%d nq=%d nk=%d d=%d dv=%d causal=%b mask=%b"
                .formatted(b, heads, kvHeads, nq, nk, d, dv, causal, mask != null);
        assertTrue(maxDiff <= tol, where + ": max |diff| " + maxDiff + " at " + worst + " (got "
                + (worst < 0 ? "-" : got[worst]) + ", want " + (worst < 0 ? "-" : want[worst]) + "), tolerance " + tol);
        for (int i = 0; i < outOffset; i++) {
            assertEquals(SENTINEL, got[i], "wrote before outOffset at " + i);
        }
        for (int i = outOffset + len; i < got.length; i++) {
            assertEquals(SENTINEL, got[i], "wrote past the output at " + i);
        }
    }

    /** A contiguous [b, h, n, d] operand starting {@code offset} floats into its array. */
    private static Operand contiguous(Random rnd, int b, int h, int n, int d, int offset) {
        return new Operand(gaussian(rnd, offset + b * h * n * d), offset, (long) h * n * d, (long) n * d, d);
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
