package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.SplittableRandom;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import koala4j.tensor.Activation;

/**
 * {@link Norms} against {@link ScalarNorms} (two-pass statistics in double).
 * Metric, elementwise: |fast - ref| &lt;= 1e-5 (1 + |ref|). Normalised outputs are O(1) to O(10) after a random
 * affine; the fast path rounds (x - mean), the scale and the product to float (a few ulp), plus the fused
 * activation's 2e-6 (1 + |ref|). The large-mean cases hold the same bound: float sums or x * scale + shift would
 * miss it by orders of magnitude there.
 *
 * <p>golden/norms/norms.json: torch 2.13.0+cpu F.group_norm (+ F.silu), F.layer_norm and LlamaRMSNorm's formula,
 * evaluated in float64 on float32 inputs (the call is stored with each case, make_golden.py regenerates it). Same
 * metric and tolerance. torch's own float32 kernels miss these references by up to 1.4e-4 on the mean-1e3 cases
 * (recorded per case as torchF32MaxAbsDiff), which is why the reference is float64.
 */
class NormsTest {
    private static final double TOL = 1e-5;
    private static final int[] DIMS = {1, 3, 17, 31, 77, 130};

    @Test
    void groupNormMatchesScalarTwinOnOddShapes() {
        var rnd = new SplittableRandom(1);
        int cases = 0;
        for (int channels : new int[] {1, 2, 3, 32, 64, 130}) {
            for (int groups : new int[] {1, 2, 32}) {
                if (channels % groups != 0) {
                    continue;
                }
                for (int spatial : new int[] {1, 3, 17, 77}) {
                    int n = 1 + rnd.nextInt(2);
                    boolean affine = rnd.nextBoolean();
                    Activation act = rnd.nextBoolean() ? Activation.SILU : Activation.NONE;
                    checkGroupNorm(rnd, n, channels, spatial, groups, affine, act, 0f, 1f);
                    cases++;
                }
            }
        }
        assertTrue(cases > 40, "cases run: " + cases);
    }

    @Test
    void groupNormLargeMeanAndLargeGroups() {
        var rnd = new SplittableRandom(2);
        // values 1e3 + unit noise: float sums of x or x^2 would lose the variance entirely
        checkGroupNorm(rnd, 1, 64, 131, 32, true, Activation.SILU, 1000f, 1f);
        checkGroupNorm(rnd, 2, 6, 77, 2, false, Activation.NONE, -3000f, 0.5f);
        // 40 channels x 4099 pixels in one group: more than one summation block, with a tail
        checkGroupNorm(rnd, 1, 40, 4099, 1, true, Activation.SILU, 1000f, 2f);
        // KOALA/SDXL-like: 320 channels, 32 groups, 64x64
        checkGroupNorm(rnd, 2, 320, 64 * 64, 32, true, Activation.SILU, 0f, 1f);
    }

    @Test
    void groupNormInPlaceAndOverlap() {
        var rnd = new SplittableRandom(3);
        int n = 2;
        int c = 6;
        int s = 31;
        int total = n * c * s;
        float[] x = ActivationsTest.randomArray(rnd, total + 10, 3f);
        float[] gamma = ActivationsTest.randomArray(rnd, c, 2f);
        float[] beta = ActivationsTest.randomArray(rnd, c, 1f);
        float[] ref = new float[total];
        ScalarNorms.groupNorm(x, 5, n, c, s, 3, gamma, beta, 1e-6f, Activation.SILU, ref, 0);
        for (int outOff : new int[] {5, 0, 10}) {
            float[] a = x.clone();
            Norms.groupNorm(a, 5, n, c, s, 3, gamma, beta, 1e-6f, Activation.SILU, a, outOff);
            assertAllClose(ref, Arrays.copyOfRange(a, outOff, outOff + total), "groupNorm out offset " + outOff);
        }
    }

    @Test
    void layerNormMatchesScalarTwin() {
        var rnd = new SplittableRandom(4);
        for (int rows : DIMS) {
            for (int cols : DIMS) {
                for (int affine = 0; affine < 3; affine++) {
                    float mean = rnd.nextBoolean() ? 0f : 1000f;
                    float[] x = noisy(rnd, 2 + rows * cols, mean, 1f);
                    float[] gamma = affine == 0 ? null : ActivationsTest.randomArray(rnd, cols, 2f);
                    float[] beta = affine < 2 ? null : ActivationsTest.randomArray(rnd, cols, 1f);
                    float[] ref = new float[rows * cols];
                    float[] got = new float[rows * cols + 3];
                    ScalarNorms.layerNorm(x, 2, rows, cols, gamma, beta, 1e-5f, ref, 0);
                    Norms.layerNorm(x, 2, rows, cols, gamma, beta, 1e-5f, got, 3);
                    String what = "layerNorm %dx%d affine=%d mean=%s".formatted(rows, cols, affine, mean);
                    assertAllClose(ref, Arrays.copyOfRange(got, 3, got.length), what);

                    Norms.layerNorm(x, 2, rows, cols, gamma, beta, 1e-5f, x, 2);
                    assertAllClose(ref, Arrays.copyOfRange(x, 2, x.length), what + " in place");
                }
            }
        }
    }

    @Test
    void layerNormOfConstantRowsIsBetaAndFinite() {
        // var = 0: rstd = 1/sqrt(eps), (x - mean) = 0 exactly, so the output is beta
        float[] x = new float[2 * 37];
        Arrays.fill(x, 1234.5f);
        float[] beta = new float[37];
        Arrays.fill(beta, 0.25f);
        float[] out = new float[x.length];
        Norms.layerNorm(x, 0, 2, 37, null, beta, 1e-5f, out, 0);
        for (float v : out) {
            assertEquals(0.25f, v);
        }
    }

    @Test
    void rmsNormMatchesScalarTwin() {
        var rnd = new SplittableRandom(5);
        for (int rows : DIMS) {
            for (int cols : DIMS) {
                for (boolean weighted : new boolean[] {false, true}) {
                    float[] x = noisy(rnd, 1 + rows * cols, rnd.nextBoolean() ? 0f : 1000f, 1f);
                    float[] gamma = weighted ? ActivationsTest.randomArray(rnd, cols, 2f) : null;
                    float[] ref = new float[rows * cols];
                    float[] got = new float[rows * cols];
                    ScalarNorms.rmsNorm(x, 1, rows, cols, gamma, 1e-6f, ref, 0);
                    Norms.rmsNorm(x, 1, rows, cols, gamma, 1e-6f, got, 0);
                    String what = "rmsNorm %dx%d weighted=%s".formatted(rows, cols, weighted);
                    assertAllClose(ref, got, what);
                    Norms.rmsNorm(x, 1, rows, cols, gamma, 1e-6f, x, 1);
                    assertAllClose(ref, Arrays.copyOfRange(x, 1, x.length), what + " in place");
                }
            }
        }
        float[] wide = ActivationsTest.randomArray(rnd, 3 * 5000, 1f);   // rows longer than one summation block
        float[] ref = new float[wide.length];
        float[] got = new float[wide.length];
        ScalarNorms.rmsNorm(wide, 0, 3, 5000, null, 1e-6f, ref, 0);
        Norms.rmsNorm(wide, 0, 3, 5000, null, 1e-6f, got, 0);
        assertAllClose(ref, got, "rmsNorm 3x5000");
    }

    @Test
    void goldenNormsMatchTorch() throws IOException {
        int n = 0;
        for (JsonNode c : loadGolden().get("cases")) {
            String op = c.get("op").asText();
            if (!op.endsWith("Norm")) {
                continue;                                   // activation cases: ActivationsTest
            }
            float[] x = floats(c.get("x"));
            float[] ref = floats(c.get("out"));
            float[] gamma = floats(c.get("gamma"));
            float eps = (float) c.get("eps").asDouble();
            float[] fast = new float[ref.length];
            float[] slow = new float[ref.length];
            switch (op) {
                case "groupNorm" -> {
                    int b = c.get("n").asInt();
                    int ch = c.get("channels").asInt();
                    int hw = c.get("spatial").asInt();
                    int g = c.get("groups").asInt();
                    Activation act = Activation.valueOf(c.get("act").asText());
                    float[] beta = floats(c.get("beta"));
                    Norms.groupNorm(x, 0, b, ch, hw, g, gamma, beta, eps, act, fast, 0);
                    ScalarNorms.groupNorm(x, 0, b, ch, hw, g, gamma, beta, eps, act, slow, 0);
                }
                case "layerNorm" -> {
                    float[] beta = floats(c.get("beta"));
                    Norms.layerNorm(x, 0, c.get("rows").asInt(), c.get("cols").asInt(), gamma, beta, eps, fast, 0);
                    ScalarNorms.layerNorm(x, 0, c.get("rows").asInt(), c.get("cols").asInt(), gamma, beta, eps,
                            slow, 0);
                }
                case "rmsNorm" -> {
                    Norms.rmsNorm(x, 0, c.get("rows").asInt(), c.get("cols").asInt(), gamma, eps, fast, 0);
                    ScalarNorms.rmsNorm(x, 0, c.get("rows").asInt(), c.get("cols").asInt(), gamma, eps, slow, 0);
                }
                default -> throw new AssertionError("unknown norm case " + op);
            }
            assertAllClose(ref, fast, "fast " + c.get("call").asText());
            assertAllClose(ref, slow, "scalar " + c.get("call").asText());
            n++;
        }
        assertEquals(9, n, "norm cases in the golden file");
    }

    static JsonNode loadGolden() throws IOException {
        try (InputStream in = NormsTest.class.getResourceAsStream("/golden/norms/norms.json")) {
            assertTrue(in != null, "golden/norms/norms.json missing from test resources");
            JsonNode root = new ObjectMapper().readTree(in);
            assertEquals("2.13.0+cpu", root.get("torch").asText());
            return root;
        }
    }

    /** A JSON array of numbers as float32; null for a missing or null node (no gamma / beta). */
    static float[] floats(JsonNode array) {
        if (array == null || array.isNull()) {
            return null;
        }
        float[] f = new float[array.size()];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) array.get(i).asDouble();
        }
        return f;
    }

    @Test
    void badArgumentsNameTheirValues() {
        var e = assertThrows(IllegalArgumentException.class, () -> Norms.groupNorm(new float[30], 0, 1, 6, 5, 4, null,
                null, 1e-5f, Activation.NONE, new float[30], 0));
        assertTrue(e.getMessage().contains("channels=6") && e.getMessage().contains("groups=4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Norms.layerNorm(new float[12], 0, 3, 4, new float[3],
                null, 1e-5f, new float[12], 0));
        assertTrue(e.getMessage().contains("gamma has 3 entries, expected 4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Norms.rmsNorm(new float[12], 1, 3, 4, null, 1e-5f,
                new float[12], 0));
        assertTrue(e.getMessage().contains("offset 1 + length 12"), e.getMessage());
    }

    private static void checkGroupNorm(SplittableRandom rnd, int n, int channels, int spatial, int groups,
            boolean affine, Activation act, float mean, float spread) {
        int total = n * channels * spatial;
        int xOff = rnd.nextInt(3);
        float[] x = noisy(rnd, xOff + total, mean, spread);
        float[] gamma = affine ? ActivationsTest.randomArray(rnd, channels, 2f) : null;
        float[] beta = affine ? ActivationsTest.randomArray(rnd, channels, 1f) : null;
        float[] ref = new float[total];
        float[] got = new float[total];
        ScalarNorms.groupNorm(x, xOff, n, channels, spatial, groups, gamma, beta, 1e-5f, act, ref, 0);
        Norms.groupNorm(x, xOff, n, channels, spatial, groups, gamma, beta, 1e-5f, act, got, 0);
        String what = "groupNorm n=%d c=%d hw=%d g=%d affine=%s %s mean=%s".formatted(n, channels, spatial, groups,
                affine, act, mean);
        assertAllClose(ref, got, what);
        Norms.groupNorm(x, xOff, n, channels, spatial, groups, gamma, beta, 1e-5f, act, x, xOff);
        assertAllClose(ref, Arrays.copyOfRange(x, xOff, xOff + total), what + " in place");
    }

    private static float[] noisy(SplittableRandom rnd, int len, float mean, float spread) {
        float[] a = new float[len];
        for (int i = 0; i < len; i++) {
            a[i] = (float) (mean + spread * rnd.nextGaussian());
        }
        return a;
    }

    private static void assertAllClose(float[] ref, float[] got, String what) {
        assertEquals(ref.length, got.length, what + ": length");
        for (int i = 0; i < ref.length; i++) {
            if (!(Math.abs(got[i] - ref[i]) <= TOL * (1 + Math.abs(ref[i])))) {
                fail(what + " at " + i + ": got " + got[i] + ", expected " + ref[i]);
            }
        }
    }
}
