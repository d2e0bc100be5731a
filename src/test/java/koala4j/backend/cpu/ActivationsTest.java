package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.util.Arrays;
import java.util.SplittableRandom;

import com.fasterxml.jackson.databind.JsonNode;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import koala4j.tensor.Activation;

/**
 * {@link Activations} against {@link ScalarActivations} (double-precision {@link Activation#apply}).
 * Metric, elementwise: |fast - ref| &lt;= 2e-6 (1 + |ref|) — a few float ulps for |ref| &gt;= 1, and an absolute
 * 2e-6 near zero, where x * sigmoid and 0.5 x (1 + erf) lose relative (not absolute) accuracy in float.
 * The same bound holds against torch 2.13.0+cpu float32 outputs in golden/norms/norms.json (F.silu, F.gelu with
 * both approximations, quick_gelu's formula, F.relu, diffusers' GEGLU and F.silu(gate) * up).
 */
class ActivationsTest {
    private static final double TOL = 2e-6;
    private static final int[] SIZES = {1, 3, 17, 31, 77, 130, 1000, 40_000};

    @ParameterizedTest
    @EnumSource(Activation.class)
    void denseGridOnMinus20To20MatchesDoubleReference(Activation act) {
        int n = 400_001;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = -20f + 40f * i / (n - 1);
        }
        float[] out = new float[n];
        Activations.apply(act, x, 0, n, out, 0);
        for (int i = 0; i < n; i++) {
            assertClose(ScalarActivations.ref(act, x[i]), out[i], act + "(" + x[i] + ")");
        }
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void randomSpansWithOffsetsMatchScalarTwin(Activation act) {
        var rnd = new SplittableRandom(7 + act.ordinal());
        for (int len : SIZES) {
            int xOff = rnd.nextInt(5);
            int outOff = rnd.nextInt(5);
            float[] x = randomArray(rnd, xOff + len + 3, 6f);
            float[] fast = new float[outOff + len + 2];
            float[] slow = new float[outOff + len + 2];
            Arrays.fill(fast, 42f);
            Arrays.fill(slow, 42f);
            Activations.apply(act, x, xOff, len, fast, outOff);
            ScalarActivations.apply(act, x, xOff, len, slow, outOff);
            assertAllClose(slow, fast, act + " len=" + len);   // includes the untouched 42s around the span
        }
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void inPlaceAndShiftedOverlapMatchSeparateArrays(Activation act) {
        var rnd = new SplittableRandom(11);
        for (int len : SIZES) {
            float[] x = randomArray(rnd, len + 8, 5f);
            float[] expected = new float[len];
            ScalarActivations.apply(act, x, 4, len, expected, 0);

            float[] same = x.clone();
            Activations.apply(act, same, 4, len, same, 4);
            assertAllClose(expected, Arrays.copyOfRange(same, 4, 4 + len), act + " in place, len=" + len);

            for (int shift : new int[] {-3, 3}) {
                float[] shifted = x.clone();
                Activations.apply(act, shifted, 4, len, shifted, 4 + shift);
                assertAllClose(expected, Arrays.copyOfRange(shifted, 4 + shift, 4 + shift + len),
                        act + " overlapping shift " + shift + ", len=" + len);
            }
        }
    }

    @Test
    void infinitiesGiveLimitsAndNanStaysNan() {
        float inf = Float.POSITIVE_INFINITY;
        float[] x = {inf, -inf, Float.NaN, Float.MAX_VALUE, -Float.MAX_VALUE, 1e30f, -1e30f, 100f, -100f, -0f};
        for (Activation act : Activation.values()) {
            float[] out = new float[x.length];
            Activations.apply(act, x, 0, x.length, out, 0);
            assertEquals(inf, out[0], act + "(+inf)");
            float expectNegInf = act == Activation.NONE ? -inf : 0f;
            assertEquals(expectNegInf, out[1], 0f, act + "(-inf)");
            assertTrue(Float.isNaN(out[2]) || act == Activation.RELU && out[2] == 0f, act + "(NaN) = " + out[2]);
            for (int i = 3; i < x.length; i++) {
                assertFalse(Float.isNaN(out[i]), act + "(" + x[i] + ") is NaN");
                if (act != Activation.NONE) {
                    assertClose(ScalarActivations.ref(act, x[i]), out[i], act + "(" + x[i] + ")");
                }
            }
        }
    }

    @Test
    void vectorErfWithin2e7OfHighPrecisionErf() {
        // max |erf_fast(x) - erf(x)| <= 2e-7 (erf from a series / continued fraction good to ~1e-14)
        int lanes = Activations.S.length();
        float[] x = new float[lanes];
        float[] y = new float[lanes];
        double worst = 0;
        for (int i = 0; i <= 240_000; i += lanes) {
            for (int k = 0; k < lanes; k++) {
                x[k] = -6f + 12f * (i + k) / 240_000;
            }
            Activations.erf(FloatVector.fromArray(Activations.S, x, 0)).intoArray(y, 0);
            for (int k = 0; k < lanes; k++) {
                worst = Math.max(worst, Math.abs(y[k] - preciseErf(x[k])));
            }
        }
        assertTrue(worst <= 2e-7, "max |erf error| = " + worst);
        assertEquals(1f, erfOf(Float.POSITIVE_INFINITY));
        assertEquals(-1f, erfOf(Float.NEGATIVE_INFINITY));
        assertEquals(0f, erfOf(0f));
    }

    @Test
    void preciseErfReferenceIsSelfConsistent() {
        // The two evaluation methods of the test oracle must agree where they meet.
        assertEquals(seriesErf(2.5), 1 - continuedFractionErfc(2.5), 1e-13);
        assertEquals(0.8427007929497149, preciseErf(1.0), 1e-15);        // erf(1), A&S table
    }

    @Test
    void vectorExpIsWithin3UlpAndSaturates() {
        // relative error <= 3e-7 (about 2.5 ulp) on [ln MIN_NORMAL, ln MAX_VALUE]
        int lanes = Activations.S.length();
        float[] x = new float[lanes];
        float[] y = new float[lanes];
        double worst = 0;
        for (int i = 0; i <= 200_000; i += lanes) {
            for (int k = 0; k < lanes; k++) {
                x[k] = -87.3f + 176f * (i + k) / 200_000;
                x[k] = Math.min(x[k], 88.72f);
            }
            Activations.exp(FloatVector.fromArray(Activations.S, x, 0)).intoArray(y, 0);
            for (int k = 0; k < lanes; k++) {
                double ref = Math.exp(x[k]);
                worst = Math.max(worst, Math.abs(y[k] - ref) / ref);
            }
        }
        assertTrue(worst <= 3e-7, "max relative exp error = " + worst);
        float[] special = {Float.NEGATIVE_INFINITY, -1000f, -88f, 88.8f, 1000f, Float.POSITIVE_INFINITY, 0f};
        float[] expected = {0f, 0f, 0f, Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY, 1f};
        for (int k = 0; k < special.length; k++) {
            float[] in = new float[lanes];
            Arrays.fill(in, special[k]);
            Activations.exp(FloatVector.fromArray(Activations.S, in, 0)).intoArray(y, 0);
            assertEquals(expected[k], y[0], "exp(" + special[k] + ")");
        }
    }

    @Test
    void gegluMatchesScalarTwinOnOddShapes() {
        var rnd = new SplittableRandom(3);
        for (int rows : new int[] {1, 3, 17, 31}) {
            for (int cols : new int[] {1, 3, 17, 31, 77, 130}) {
                int xOff = rnd.nextInt(4);
                float[] x = randomArray(rnd, xOff + rows * 2 * cols, 4f);
                float[] fast = new float[rows * cols + 1];
                float[] slow = new float[rows * cols + 1];
                Activations.geglu(x, xOff, rows, cols, fast, 1);
                ScalarActivations.geglu(x, xOff, rows, cols, slow, 1);
                assertAllClose(slow, fast, "geglu " + rows + "x" + cols);

                float[] same = x.clone();
                Activations.geglu(same, xOff, rows, cols, same, xOff);
                assertAllClose(Arrays.copyOfRange(slow, 1, slow.length),
                        Arrays.copyOfRange(same, xOff, xOff + rows * cols), "geglu in place " + rows + "x" + cols);

                if (xOff > 0) {
                    float[] shifted = x.clone();
                    Activations.geglu(shifted, xOff, rows, cols, shifted, xOff - 1);
                    assertAllClose(Arrays.copyOfRange(slow, 1, slow.length),
                            Arrays.copyOfRange(shifted, xOff - 1, xOff - 1 + rows * cols),
                            "geglu overlapping " + rows + "x" + cols);
                }
            }
        }
    }

    @Test
    void gegluLargeInPlaceRunsInParallelChunks() {
        var rnd = new SplittableRandom(5);
        int rows = 300;
        int cols = 640;
        float[] x = randomArray(rnd, rows * 2 * cols, 4f);
        float[] slow = new float[rows * cols];
        ScalarActivations.geglu(x, 0, rows, cols, slow, 0);
        Activations.geglu(x, 0, rows, cols, x, 0);
        assertAllClose(slow, Arrays.copyOf(x, rows * cols), "geglu 300x640 in place");
    }

    @Test
    void swigluMatchesScalarTwinIncludingInPlaceOnEitherInput() {
        var rnd = new SplittableRandom(9);
        for (int len : SIZES) {
            float[] gate = randomArray(rnd, len + 2, 8f);
            float[] up = randomArray(rnd, len + 1, 3f);
            float[] slow = new float[len];
            ScalarActivations.swiglu(gate, 2, up, 1, len, slow, 0);
            float[] fast = new float[len];
            Activations.swiglu(gate, 2, up, 1, len, fast, 0);
            assertAllClose(slow, fast, "swiglu len=" + len);

            float[] g = gate.clone();
            Activations.swiglu(g, 2, up, 1, len, g, 2);
            assertAllClose(slow, Arrays.copyOfRange(g, 2, 2 + len), "swiglu into gate, len=" + len);
            float[] u = up.clone();
            Activations.swiglu(gate, 2, u, 1, len, u, 1);
            assertAllClose(slow, Arrays.copyOfRange(u, 1, 1 + len), "swiglu into up, len=" + len);
            float[] gs = gate.clone();
            Activations.swiglu(gs, 2, up, 1, len, gs, 0);
            assertAllClose(slow, Arrays.copyOfRange(gs, 0, len), "swiglu overlapping gate, len=" + len);
        }
    }

    @Test
    void goldenActivationsMatchTorch() throws IOException {
        int n = 0;
        for (JsonNode c : NormsTest.loadGolden().get("cases")) {
            float[] ref = NormsTest.floats(c.get("out"));
            float[] fast = new float[ref.length];
            float[] slow = new float[ref.length];
            switch (c.get("op").asText()) {
                case "activation" -> {
                    Activation act = Activation.valueOf(c.get("act").asText());
                    float[] x = NormsTest.floats(c.get("x"));
                    Activations.apply(act, x, 0, x.length, fast, 0);
                    ScalarActivations.apply(act, x, 0, x.length, slow, 0);
                }
                case "geglu" -> {
                    float[] x = NormsTest.floats(c.get("x"));
                    Activations.geglu(x, 0, c.get("rows").asInt(), c.get("cols").asInt(), fast, 0);
                    ScalarActivations.geglu(x, 0, c.get("rows").asInt(), c.get("cols").asInt(), slow, 0);
                }
                case "swiglu" -> {
                    float[] gate = NormsTest.floats(c.get("gate"));
                    float[] up = NormsTest.floats(c.get("up"));
                    Activations.swiglu(gate, 0, up, 0, ref.length, fast, 0);
                    ScalarActivations.swiglu(gate, 0, up, 0, ref.length, slow, 0);
                }
                default -> {
                    continue;
                }
            }
            assertAllClose(ref, fast, "fast " + c.get("call").asText());
            assertAllClose(ref, slow, "scalar " + c.get("call").asText());
            n++;
        }
        assertEquals(7, n, "activation cases in the golden file");
    }

    @Test
    void badSpansAreRejectedWithTheirNumbers() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> Activations.apply(Activation.SILU, new float[10], 4, 8, new float[10], 0));
        assertTrue(e.getMessage().contains("offset 4 + length 8") && e.getMessage().contains("10"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Activations.geglu(new float[11], 0, 3, 2, new float[6], 0));
        assertThrows(IllegalArgumentException.class, () -> Activations.swiglu(new float[4], 0, new float[3], 0, 4,
                new float[4], 0));
    }

    // --- helpers -------------------------------------------------------------------------------------------------

    private static float erfOf(float v) {
        float[] in = new float[Activations.S.length()];
        Arrays.fill(in, v);
        float[] out = new float[in.length];
        Activations.erf(FloatVector.fromArray(Activations.S, in, 0)).intoArray(out, 0);
        return out[0];
    }

    static float[] randomArray(SplittableRandom rnd, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        return a;
    }

    private static void assertClose(double ref, float got, String what) {
        if (Double.isInfinite(ref) || Float.isInfinite(got)) {
            assertEquals(ref, got, 0.0, what);
            return;
        }
        if (!(Math.abs(got - ref) <= TOL * (1 + Math.abs(ref)))) {
            fail(what + ": got " + got + ", expected " + ref + " (|diff| " + Math.abs(got - ref) + ")");
        }
    }

    private static void assertAllClose(float[] ref, float[] got, String what) {
        assertEquals(ref.length, got.length, what + ": length");
        for (int i = 0; i < ref.length; i++) {
            assertClose(ref[i], got[i], what + " at " + i);
        }
    }

    static double preciseErf(double x) {
        double a = Math.abs(x);
        double e = a <= 2.5 ? seriesErf(a) : 1 - continuedFractionErfc(a);
        return Math.copySign(e, x);
    }

    /** Maclaurin series 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)); terms stay below ~20 for x &lt;= 2.5. */
    private static double seriesErf(double x) {
        double term = x;
        double sum = x;
        for (int n = 1; n < 200 && Math.abs(term) > 1e-20; n++) {
            term *= -x * x / n;
            sum += term / (2 * n + 1);
        }
        return 2 / Math.sqrt(Math.PI) * sum;
    }

    /** Laplace continued fraction erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))). */
    private static double continuedFractionErfc(double x) {
        double k = x;
        for (int n = 400; n >= 1; n--) {
            k = x + (n / 2.0) / k;
        }
        return Math.exp(-x * x) / Math.sqrt(Math.PI) / k;
    }
}
