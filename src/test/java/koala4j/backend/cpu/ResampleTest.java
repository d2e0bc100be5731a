package koala4j.backend.cpu;

import static koala4j.testing.JsonArrays.floats;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.Resample.Mode;

/**
 * {@link Resample} against {@link ScalarResample} and against torch.
 *
 * <p>golden/resample/resample.json: torch 2.13.0+cpu, float32, the exact F.interpolate / F.avg_pool2d call is stored
 * with each case (make_golden.py beside it regenerates the file). Metric, elementwise: nearest modes and the 2x
 * upsample are copies, so |Δ| = 0; interpolating modes and pooling |Δ| &lt;= 2e-6 (1 + |ref|): same taps and float
 * weights as torch, only the order of the float sums differs. Pool output sizes must match torch exactly,
 * including the calls torch rejects.
 *
 * <p>Fast vs scalar twin (double sums) on random odd shapes: |Δ| &lt;= 1e-5 (1 + |ref|); antialiased downscales sum up
 * to ~90 taps per axis in float.
 */
class ResampleTest {
    private static final double GOLDEN_TOL = 2e-6;
    private static final double TWIN_TOL = 1e-5;
    private static JsonNode golden;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream in = ResampleTest.class.getResourceAsStream("/golden/resample/resample.json")) {
            assertTrue(in != null, "golden/resample/resample.json missing from test resources");
            golden = new ObjectMapper().readTree(in);
        }
        assertEquals("2.13.0+cpu", golden.get("torch").asText());
    }

    @Test
    void goldenResizeMatchesTorch() {
        int n = 0;
        for (JsonNode c : golden.get("cases")) {
            if (!c.get("op").asText().equals("resize")) {
                continue;
            }
            int planes = c.get("planes").asInt();
            int h = c.get("h").asInt();
            int w = c.get("w").asInt();
            int oh = c.get("outH").asInt();
            int ow = c.get("outW").asInt();
            Mode mode = Mode.valueOf(c.get("mode").asText());
            boolean ac = c.get("alignCorners").asBoolean();
            boolean aa = c.get("antialias").asBoolean();
            float[] x = floats(c.get("x"));
            float[] ref = floats(c.get("out"));
            float[] fast = new float[ref.length];
            float[] slow = new float[ref.length];
            Resample.resize(x, 0, planes, h, w, oh, ow, mode, ac, aa, fast, 0);
            ScalarResample.resize(x, 0, planes, h, w, oh, ow, mode, ac, aa, slow, 0);
            double tol = mode == Mode.NEAREST ? 0 : GOLDEN_TOL;
            String call = c.get("call").asText() + " on " + h + "x" + w;
            assertAllClose(ref, fast, tol, "fast " + call);
            assertAllClose(ref, slow, tol, "scalar " + call);
            n++;
        }
        assertEquals(47, n, "resize cases in the golden file");
    }

    @Test
    void goldenAvgPoolAndUpsampleMatchTorch() {
        int n = 0;
        for (JsonNode c : golden.get("cases")) {
            String op = c.get("op").asText();
            if (op.equals("resize")) {
                continue;
            }
            int planes = c.get("planes").asInt();
            int h = c.get("h").asInt();
            int w = c.get("w").asInt();
            float[] x = floats(c.get("x"));
            float[] ref = floats(c.get("out"));
            float[] fast = new float[ref.length];
            float[] slow = new float[ref.length];
            String call = c.get("call").asText() + " on " + h + "x" + w;
            if (op.equals("upsampleNearest2x")) {
                Resample.upsampleNearest2x(x, 0, planes, h, w, fast, 0);
                ScalarResample.upsampleNearest2x(x, 0, planes, h, w, slow, 0);
                assertAllClose(ref, fast, 0, "fast " + call);
                assertAllClose(ref, slow, 0, "scalar " + call);
            } else {
                int k = c.get("kernel").asInt();
                int s = c.get("stride").asInt();
                int p = c.get("pad").asInt();
                boolean ceil = c.get("ceilMode").asBoolean();
                boolean cip = c.get("countIncludePad").asBoolean();
                assertEquals(c.get("outH").asInt(), Resample.pooledSize(h, k, s, p, ceil), call);
                assertEquals(c.get("outW").asInt(), Resample.pooledSize(w, k, s, p, ceil), call);
                Resample.avgPool2d(x, 0, planes, h, w, k, s, p, cip, ceil, fast, 0);
                ScalarResample.avgPool2d(x, 0, planes, h, w, k, s, p, cip, ceil, slow, 0);
                assertAllClose(ref, fast, GOLDEN_TOL, "fast " + call);
                assertAllClose(ref, slow, GOLDEN_TOL, "scalar " + call);
            }
            n++;
        }
        assertEquals(10, n, "pool and upsample cases in the golden file");
    }

    @Test
    void pooledSizeMatchesTorchOnAGrid() {
        int rejected = 0;
        for (JsonNode e : golden.get("pooledSizes")) {
            int in = e.get(0).asInt();
            int k = e.get(1).asInt();
            int s = e.get(2).asInt();
            int p = e.get(3).asInt();
            boolean ceil = e.get(4).asInt() == 1;
            int expected = e.get(5).asInt();
            String what = "in=%d k=%d s=%d p=%d ceil=%s".formatted(in, k, s, p, ceil);
            if (expected < 0) {
                assertThrows(IllegalArgumentException.class, () -> Resample.pooledSize(in, k, s, p, ceil), what);
                assertThrows(IllegalArgumentException.class, () -> ScalarResample.pooledSize(in, k, s, p, ceil), what);
                rejected++;
            } else {
                assertEquals(expected, Resample.pooledSize(in, k, s, p, ceil), what);
                assertEquals(expected, ScalarResample.pooledSize(in, k, s, p, ceil), what);
            }
        }
        assertTrue(rejected > 0 && rejected < golden.get("pooledSizes").size(), "rejected " + rejected);
    }

    @Test
    void resizeMatchesScalarTwinOnOddShapes() {
        var rnd = new SplittableRandom(17);
        int[] sizes = {1, 3, 17, 31, 77};
        int[] outSizes = {1, 3, 17, 31, 130};
        int cases = 0;
        for (Mode mode : Mode.values()) {
            for (int trial = 0; trial < 40; trial++) {
                int h = sizes[rnd.nextInt(sizes.length)];
                int w = sizes[rnd.nextInt(sizes.length)];
                int oh = rnd.nextInt(4) == 0 ? h : outSizes[rnd.nextInt(outSizes.length)];
                int ow = outSizes[rnd.nextInt(outSizes.length)];
                boolean ac = mode != Mode.NEAREST && rnd.nextBoolean();
                boolean aa = mode != Mode.NEAREST && rnd.nextBoolean();
                int planes = 1 + rnd.nextInt(3);
                checkResize(rnd, planes, h, w, oh, ow, mode, ac, aa);
                cases++;
            }
        }
        // large downscales: many antialias taps per axis
        checkResize(rnd, 2, 130, 177, 3, 5, Mode.BICUBIC, false, true);
        checkResize(rnd, 2, 130, 177, 3, 5, Mode.BILINEAR, true, true);
        checkResize(rnd, 3, 64, 64, 128, 96, Mode.BICUBIC, false, false);
        assertTrue(cases == 120);
    }

    @Test
    void avgPoolMatchesScalarTwinOnOddShapes() {
        var rnd = new SplittableRandom(19);
        int[] sizes = {1, 3, 17, 31, 77};
        int checked = 0;
        for (int trial = 0; trial < 200; trial++) {
            int h = sizes[rnd.nextInt(sizes.length)];
            int w = sizes[rnd.nextInt(sizes.length)];
            int k = 1 + rnd.nextInt(5);
            int s = 1 + rnd.nextInt(4);
            int p = rnd.nextInt(k / 2 + 1);
            boolean ceil = rnd.nextBoolean();
            boolean cip = rnd.nextBoolean();
            int oh;
            int ow;
            try {
                oh = ScalarResample.pooledSize(h, k, s, p, ceil);
                ow = ScalarResample.pooledSize(w, k, s, p, ceil);
            } catch (IllegalArgumentException tooSmall) {
                continue;
            }
            int planes = 1 + rnd.nextInt(3);
            float[] x = ActivationsTest.randomArray(rnd, planes * h * w + 1, 2f);
            float[] ref = new float[planes * oh * ow];
            float[] got = new float[ref.length];
            ScalarResample.avgPool2d(x, 1, planes, h, w, k, s, p, cip, ceil, ref, 0);
            Resample.avgPool2d(x, 1, planes, h, w, k, s, p, cip, ceil, got, 0);
            String what = "avgPool %dx%d k=%d s=%d p=%d ceil=%s cip=%s".formatted(h, w, k, s, p, ceil, cip);
            assertAllClose(ref, got, TWIN_TOL, what);
            // in place: output written over the input span (padding and stride 1 can make it longer)
            float[] shared = Arrays.copyOf(x, Math.max(x.length, ref.length));
            Resample.avgPool2d(shared, 1, planes, h, w, k, s, p, cip, ceil, shared, 0);
            assertAllClose(ref, Arrays.copyOf(shared, ref.length), TWIN_TOL, what + " in place");
            checked++;
        }
        assertTrue(checked > 100, "checked " + checked);
    }

    @Test
    void upsampleNearest2xMatchesScalarTwinAndWorksInPlace() {
        var rnd = new SplittableRandom(23);
        for (int h : new int[] {1, 3, 17, 31}) {
            for (int w : new int[] {1, 3, 17, 31, 77, 130}) {
                int planes = 1 + rnd.nextInt(4);
                int inLen = planes * h * w;
                float[] x = ActivationsTest.randomArray(rnd, inLen, 2f);
                float[] ref = new float[4 * inLen];
                float[] got = new float[4 * inLen + 2];
                ScalarResample.upsampleNearest2x(x, 0, planes, h, w, ref, 0);
                Resample.upsampleNearest2x(x, 0, planes, h, w, got, 2);
                assertAllClose(ref, Arrays.copyOfRange(got, 2, got.length), 0, "upsample " + h + "x" + w);
                float[] shared = Arrays.copyOf(x, 4 * inLen);        // input at the start of the output span
                Resample.upsampleNearest2x(shared, 0, planes, h, w, shared, 0);
                assertAllClose(ref, shared, 0, "upsample in place " + h + "x" + w);
            }
        }
    }

    @Test
    void badArgumentsAreRejectedWithTheirValues() {
        var e = assertThrows(IllegalArgumentException.class, () -> Resample.resize(new float[4], 0, 1, 2, 2, 3, 3,
                Mode.NEAREST, true, false, new float[9], 0));
        assertTrue(e.getMessage().contains("alignCorners=true"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Resample.resize(new float[4], 0, 1, 2, 2, 3, 3,
                Mode.NEAREST, false, true, new float[9], 0));
        e = assertThrows(IllegalArgumentException.class, () -> Resample.pooledSize(8, 3, 2, 2, false));
        assertTrue(e.getMessage().contains("pad=2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Resample.resize(new float[4], 0, 1, 2, 2, 3, 3,
                Mode.BILINEAR, false, false, new float[8], 0));
        assertTrue(e.getMessage().contains("length 9 does not fit array length 8"), e.getMessage());
    }

    private static void checkResize(SplittableRandom rnd, int planes, int h, int w, int oh, int ow, Mode mode,
            boolean ac, boolean aa) {
        int off = rnd.nextInt(3);
        float[] x = ActivationsTest.randomArray(rnd, off + planes * h * w, 2f);
        float[] ref = new float[planes * oh * ow];
        float[] got = new float[ref.length + 1];
        ScalarResample.resize(x, off, planes, h, w, oh, ow, mode, ac, aa, ref, 0);
        Resample.resize(x, off, planes, h, w, oh, ow, mode, ac, aa, got, 1);
        String what = "resize %dx%dx%d -> %dx%d %s ac=%s aa=%s".formatted(planes, h, w, oh, ow, mode, ac, aa);
        assertAllClose(ref, Arrays.copyOfRange(got, 1, got.length), TWIN_TOL, what);
        float[] shared = Arrays.copyOf(x, Math.max(x.length, off + ref.length));
        Resample.resize(shared, off, planes, h, w, oh, ow, mode, ac, aa, shared, off);
        assertAllClose(ref, Arrays.copyOfRange(shared, off, off + ref.length), TWIN_TOL, what + " in place");
    }

    private static void assertAllClose(float[] ref, float[] got, double tol, String what) {
        assertEquals(ref.length, got.length, what + ": length");
        List<String> bad = new ArrayList<>();
        for (int i = 0; i < ref.length; i++) {
            if (!(Math.abs(got[i] - ref[i]) <= tol * (1 + Math.abs(ref[i])))) {
                bad.add("at " + i + ": got " + got[i] + ", expected " + ref[i]);
            }
        }
        if (!bad.isEmpty()) {
            fail(what + ": " + bad.size() + " of " + ref.length + " differ, first " + bad.subList(0,
                    Math.min(3, bad.size())));
        }
    }
}
