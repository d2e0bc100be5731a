package koala4j.io.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import koala4j.io.image.Images.Filter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

class ResampleTest {

    private static final String DIR = "golden/pil_image/";

    static Stream<String> pilCases() throws IOException {
        JsonNode manifest = new ObjectMapper().readTree(GoldenFloats.resource(DIR + "manifest.json").toFile());
        List<String> names = new ArrayList<>();
        manifest.get("resize").fieldNames().forEachRemaining(names::add);
        return names.stream().sorted();
    }

    /**
     * golden/pil_image: Pillow 12.3.0 {@code Image.resize((W, H), filter)} (see make_fixtures.py and manifest.json) of
     * a 40x30 RGB source that is half noise, half smooth (noise drives LANCZOS/BICUBIC overshoot into the 0/255
     * clamps), the same with a random alpha channel (PIL's premultiplied "RGBa" path, including alpha 0 and 255 rows),
     * and a 2x250 source (PIL's vertical-first special case for very tall images). Sizes cover down- and upscaling,
     * one axis only, 1x1 and extreme reduction. Metric: every byte equal; tolerance 0, since the whole pipeline is
     * integer arithmetic after the double-precision weights.
     */
    @ParameterizedTest
    @MethodSource("pilCases")
    void matchesPillowBitForBit(String name) throws IOException {
        JsonNode c = new ObjectMapper().readTree(GoldenFloats.resource(DIR + "manifest.json").toFile())
                .get("resize").get(name);
        Image src = source(c.get("src").asText());
        Filter filter = Filter.valueOf(c.get("filter").asText());
        int w = c.get("width").asInt();
        int h = c.get("height").asInt();
        Image out = Images.resize(src, w, h, filter);
        assertEquals(w, out.width());
        assertEquals(h, out.height());
        assertEquals(src.channels(), out.channels());
        byte[] expected = GoldenFloats.bytes(DIR + name);
        if (!java.util.Arrays.equals(expected, out.pixels())) {
            int diff = 0;
            int max = 0;
            for (int i = 0; i < expected.length; i++) {
                int d = Math.abs((expected[i] & 0xFF) - (out.pixels()[i] & 0xFF));
                diff += d > 0 ? 1 : 0;
                max = Math.max(max, d);
            }
            assertArrayEquals(expected, out.pixels(), name + ": " + diff + " bytes differ, max |diff| " + max);
        }
    }

    static Image source(String name) {
        return switch (name) {
            case "rgb" -> new Image(40, 30, 3, GoldenFloats.bytes(DIR + "resize_src_rgb.rgb"));
            case "rgba" -> new Image(40, 30, 4, GoldenFloats.bytes(DIR + "resize_src_rgba.rgba"));
            case "tall" -> new Image(2, 250, 3, GoldenFloats.bytes(DIR + "resize_src_tall.rgb"));
            default -> throw new IllegalArgumentException(name);
        };
    }

    @ParameterizedTest
    @EnumSource(Filter.class)
    void constantImageStaysConstant(Filter filter) {
        for (int[] size : new int[][] {{13, 7}, {91, 45}, {1, 1}, {40, 3}}) {
            byte[] px = new byte[37 * 23 * 3];
            for (int i = 0; i < px.length; i += 3) {
                px[i] = (byte) 200;
                px[i + 1] = 7;
                px[i + 2] = (byte) 255;
            }
            Image out = Images.resize(new Image(37, 23, 3, px), size[0], size[1], filter);
            for (int i = 0; i < out.pixels().length; i += 3) {
                assertEquals(200, out.pixels()[i] & 0xFF);
                assertEquals(7, out.pixels()[i + 1] & 0xFF);
                assertEquals(255, out.pixels()[i + 2] & 0xFF);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Filter.class)
    void sameSizeIsACopy(Filter filter) {
        Image src = source("rgba");
        Image out = Images.resize(src, 40, 30, filter);
        assertEquals(src, out);
        assertNotSame(src.pixels(), out.pixels());
    }

    /** Halving a horizontal ramp 0,2,4,... with BILINEAR averages pixel pairs (weights 1/4,3/4,3/4,1/4 sum to 2). */
    @Test
    void bilinearHalvingOfALinearRampAveragesNeighbours() {
        int w = 64;
        byte[] px = new byte[w * 3];
        for (int x = 0; x < w; x++) {
            px[x * 3] = px[x * 3 + 1] = px[x * 3 + 2] = (byte) (2 * x);
        }
        Image out = Images.resize(new Image(w, 1, 3, px), w / 2, 1, Filter.BILINEAR);
        // Interior outputs sit on the ramp exactly: centre of inputs 2i and 2i+1 is the value 4i+1.
        for (int i = 1; i < w / 2 - 1; i++) {
            assertEquals(4 * i + 1, out.get(i, 0, 0), "x=" + i);
        }
    }

    @Test
    void weightsOfEachOutputSumToOneInFixedPoint() {
        for (Filter f : new Filter[] {Filter.BILINEAR, Filter.BICUBIC, Filter.LANCZOS}) {
            for (int[] io : new int[][] {{40, 17}, {17, 40}, {1000, 3}, {5, 5}}) {
                Resample.Coefficients co = Resample.coefficients(io[0], io[1], f);
                for (int o = 0; o < io[1]; o++) {
                    long sum = 0;
                    for (int k = 0; k < co.bounds()[2 * o + 1]; k++) {
                        sum += co.weights()[o * co.ksize() + k];
                    }
                    // Each weight is rounded separately, so the sum is 2^22 within one unit per tap.
                    assertTrue(Math.abs(sum - (1 << 22)) <= co.ksize(), f + " " + io[0] + "->" + io[1] + " out " + o);
                }
            }
        }
    }

    @Test
    void rejectsEmptyTargets() {
        Image src = source("rgb");
        var e = assertThrows(IllegalArgumentException.class, () -> Images.resize(src, 0, 5, Filter.LANCZOS));
        assertTrue(e.getMessage().contains("0x5"), e.getMessage());
    }

    @Test
    void pilResampleCodes() {
        assertEquals(Filter.LANCZOS, Filter.fromPilCode(1));
        assertEquals(Filter.BICUBIC, Filter.fromPilCode(3));
        assertThrows(IllegalArgumentException.class, () -> Filter.fromPilCode(4));
    }
}
