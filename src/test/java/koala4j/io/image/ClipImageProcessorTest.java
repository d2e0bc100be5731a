package koala4j.io.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.image.ClipImageProcessor.Size;
import koala4j.io.image.Images.Filter;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.tensor.Tensor;

/**
 * CLIPImageProcessor against the pixel_values transformers 4.57.6 (numpy 1.26.4, Pillow) recorded for the LLaVA and
 * Ko-LLaVA e2e runs (golden/e2e_images/*: image.png, preprocessor_config.json, expected.safetensors).
 */
class ClipImageProcessorTest {

    /**
     * Every float equal, bit for bit (tolerance 0): resize and crop are PIL-exact bytes, and rescale (float64 product
     * stored as float32) then normalize (float32 subtract and divide) are the same IEEE operations numpy performs.
     */
    @ParameterizedTest
    @CsvSource({"llava,run0", "llava,run1", "kollava_v0,run0", "kollava_v0,run1"})
    void pixelValuesAreExactlyTheReferences(String run, String key) throws IOException {
        String dir = "golden/e2e_images/" + run + "/";
        ClipImageProcessor processor = ClipImageProcessor.from(GoldenFloats.resource(dir + "preprocessor_config.json"));
        assertEquals(new ClipImageProcessor(true, Size.shortestEdge(32), Filter.BICUBIC, true, 32, 32, true,
                0.00392156862745098, true, ClipImageProcessor.OPENAI_CLIP_MEAN, ClipImageProcessor.OPENAI_CLIP_STD,
                true), processor);

        PixelValues pv = processor.preprocess(Images.read(GoldenFloats.resource(dir + "image.png")));
        GoldenFloats.Tensor expected = GoldenFloats.open(GoldenFloats.resource(dir + "expected.safetensors"))
                .tensor(key + ".pixel_values");
        assertArrayEquals(expected.shape(), pv.shape());
        assertArrayEquals(expected.data(), pv.data(), 0f, run + " " + key);

        Tensor t = pv.toTensor(new CpuOps());
        assertArrayEquals(new int[] {1, 3, 32, 32}, t.shape());
        assertArrayEquals(expected.data(), t.toFloatArray(), 0f);
    }

    /**
     * A batch is each image processed alone, stacked; an RGBA image loses its alpha (convert("RGB")), it is not
     * composited.
     */
    @Test
    void batchesStackAndAlphaIsDropped() throws IOException {
        Image image = Images.read(GoldenFloats.resource("golden/e2e_images/llava/image.png"));
        ClipImageProcessor processor = ClipImageProcessor.from(
                GoldenFloats.resource("golden/e2e_images/llava/preprocessor_config.json"));
        PixelValues one = processor.preprocess(image);
        byte[] rgba = new byte[image.width() * image.height() * 4];
        for (int i = 0; i < image.width() * image.height(); i++) {
            System.arraycopy(image.pixels(), i * 3, rgba, i * 4, 3);
            rgba[i * 4 + 3] = (byte) (i % 256);
        }
        PixelValues two = processor.preprocess(List.of(image, new Image(image.width(), image.height(), 4, rgba)));
        assertArrayEquals(new int[] {2, 3, 32, 32}, two.shape());
        float[] second = new float[3 * 32 * 32];
        System.arraycopy(two.data(), 3 * 32 * 32, second, 0, second.length);
        assertArrayEquals(one.data(), second, 0f);

        // without the crop, images of different aspect ratios cannot be stacked
        ClipImageProcessor noCrop = new ClipImageProcessor(true, Size.shortestEdge(32), Filter.BICUBIC, false, 1, 1,
                true, 1 / 255.0, true, ClipImageProcessor.OPENAI_CLIP_MEAN, ClipImageProcessor.OPENAI_CLIP_STD, true);
        Image wide = Image.blank(64, 32, 3);
        assertArrayEquals(new int[] {1, 3, 42, 32}, noCrop.preprocess(image).shape());   // 45x60 -> 32x42 (int())
        var e = assertThrows(IllegalArgumentException.class, () -> noCrop.preprocess(List.of(image, wide)));
        assertTrue(e.getMessage().contains("64x32"), e.getMessage());
    }

    /** Each step on its own, on values worked out by hand. */
    @Test
    void rescaleNormalizeAndExactResize() {
        Image px = new Image(1, 1, 3, new byte[] {(byte) 255, 0, (byte) 128});
        var plain = new ClipImageProcessor(false, Size.shortestEdge(1), Filter.BICUBIC, false, 1, 1, true, 1 / 255.0,
                false, List.of(0.5, 0.5, 0.5), List.of(0.5, 0.5, 0.5), true);
        assertArrayEquals(new float[] {1f, 0f, (float) (128 / 255.0)}, plain.preprocess(px).data(), 0f);
        var normalized = new ClipImageProcessor(false, Size.shortestEdge(1), Filter.BICUBIC, false, 1, 1, true,
                1 / 255.0, true, List.of(0.5, 0.5, 0.5), List.of(0.5, 0.5, 0.25), true);
        assertArrayEquals(new float[] {1f, -1f, ((float) (128 / 255.0) - 0.5f) / 0.25f},
                normalized.preprocess(px).data(), 0f);
        // do_rescale false: normalize casts the uint8 values to float32 first
        var raw = new ClipImageProcessor(false, Size.shortestEdge(1), Filter.BICUBIC, false, 1, 1, false, 1 / 255.0,
                false, List.of(0.0, 0.0, 0.0), List.of(1.0, 1.0, 1.0), true);
        assertArrayEquals(new float[] {255f, 0f, 128f}, raw.preprocess(px).data(), 0f);

        // size {"height", "width"} resizes to exactly that, aspect ratio ignored
        var exact = new ClipImageProcessor(true, Size.of(3, 5), Filter.BILINEAR, false, 1, 1, true, 1 / 255.0, false,
                List.of(0.0, 0.0, 0.0), List.of(1.0, 1.0, 1.0), true);
        assertArrayEquals(new int[] {1, 3, 3, 5}, exact.preprocess(Image.blank(40, 7, 3)).shape());
    }

    /**
     * LLaVA-1.5 pad-to-square: background tuple(int(x*255) for x in OPENAI_CLIP_MEAN) = (122, 116, 104) (Python 3.11),
     * paste offset (long - short) // 2 as PIL's Image.paste at that corner.
     */
    @Test
    void expandToSquareCentresOnTheMeanColour() {
        ClipImageProcessor processor = ClipImageProcessor.defaults();
        byte[] wide = new byte[5 * 2 * 3];
        java.util.Arrays.fill(wide, (byte) 7);
        Image square = processor.expandToSquare(new Image(5, 2, 3, wide));
        assertEquals(5, square.width());
        assertEquals(5, square.height());
        for (int y = 0; y < 5; y++) {
            for (int x = 0; x < 5; x++) {
                boolean inside = y >= 1 && y < 3;                          // top = (5 - 2) // 2 = 1
                assertEquals(inside ? 7 : 122, square.get(x, y, 0), "(" + x + "," + y + ")");
                assertEquals(inside ? 7 : 116, square.get(x, y, 1));
                assertEquals(inside ? 7 : 104, square.get(x, y, 2));
            }
        }
        Image tall = ClipImageProcessor.expandToSquare(new Image(1, 4, 3, new byte[] {1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4,
                4}), new int[] {9, 8, 7});
        assertEquals(4, tall.width());
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 4; x++) {
                assertEquals(x == 1 ? y + 1 : 9, tall.get(x, y, 0), "(" + x + "," + y + ")");   // left = (4-1)//2
            }
        }
        Image sq = Image.blank(3, 3, 3);
        assertSame(sq, ClipImageProcessor.expandToSquare(sq, new int[] {0, 0, 0}));
        assertEquals(3, processor.expandToSquare(Image.blank(3, 3, 4)).channels());
    }

    @Test
    void configLayoutsAndErrors(@TempDir Path dir) throws IOException {
        // openai/clip-vit-large-patch14's preprocessor_config.json: legacy ints, feature_extractor_type
        ClipImageProcessor legacy = config(dir, """
                {"crop_size": 224, "do_center_crop": true, "do_normalize": true, "do_resize": true,
                 "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
                 "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}""");
        assertEquals(ClipImageProcessor.defaults(), legacy);
        assertEquals(ClipImageProcessor.defaults(), config(dir, "{}"));
        assertEquals(Size.of(336, 336), config(dir, "{\"size\": {\"shortest_edge\": 336}, \"use_square_size\": true}")
                .size());
        assertEquals(List.of(0.5, 0.5, 0.5), config(dir, "{\"image_mean\": 0.5}").imageMean());

        var e = assertThrows(JsonException.class, () -> config(dir, "{\"image_processor_type\": \"SiglipImageProcessor\"}"));
        assertTrue(e.getMessage().contains("SiglipImageProcessor") && e.getMessage().contains("preprocessor_config.json"),
                e.getMessage());
        e = assertThrows(JsonException.class, () -> config(dir, "{\"size\": {\"longest_edge\": 336}}"));
        assertTrue(e.getMessage().contains("size"), e.getMessage());
        e = assertThrows(JsonException.class, () -> config(dir, "{\"resample\": 4}"));
        assertTrue(e.getMessage().contains("resample"), e.getMessage());
        e = assertThrows(JsonException.class, () -> config(dir, "{\"image_std\": [0.5, 0.5]}"));
        assertTrue(e.getMessage().contains("image_std"), e.getMessage());
        e = assertThrows(JsonException.class, () -> config(dir, "{\"crop_size\": 0}"));
        assertTrue(e.getMessage().contains("crop_size"), e.getMessage());
    }

    private static ClipImageProcessor config(Path dir, String json) throws IOException {
        Path file = dir.resolve("preprocessor_config.json");
        Files.writeString(file, json);
        return ClipImageProcessor.from(Json.read(file));
    }
}
