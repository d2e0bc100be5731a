package koala4j.io.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class ImagesTest {

    private static final String DIR = "golden/pil_image/";

    @TempDir
    Path tmp;

    // ---- decoding: Images.read == PIL Image.open(f).convert("RGB") ----

    /**
     * golden/pil_image/read_*: files written by Pillow 12.3.0 and its {@code np.array(Image.open(f).convert("RGB"))}
     * (make_fixtures.py). Lossless formats must match byte for byte (tolerance 0): RGBA/LA drop alpha, palette (with
     * tRNS, and 4-bit), bilevel, grey and grey+alpha expand, 16-bit RGB keeps the high byte, GIF gives its first
     * frame, 24-bit and 8-bit palette BMP.
     */
    @ParameterizedTest
    @ValueSource(strings = {"rgb", "rgba", "gray", "la", "palette", "palette4bit", "bilevel", "rgb16", "gif", "bmp24",
            "bmp8"})
    void losslessFormatsDecodeAsPillowConvertRgb(String name) throws IOException {
        Image expected = pilDecoded(name);
        Image actual = Images.read(GoldenFloats.resource(DIR + manifest(name).get("file").asText()));
        assertEquals(expected, actual, name + " (PIL mode " + manifest(name).get("pil_mode").asText() + ")");
    }

    /**
     * JPEG: PIL decodes with libjpeg-turbo 3.1, ImageIO with the JDK's libjpeg 6b. Both use the islow IDCT and
     * "fancy" (triangle) upsampling, and libjpeg-turbo keeps 6b's results for those, so the bytes are identical:
     * measured and asserted with tolerance 0 for 4:2:0 (PIL's default), 4:4:4 and greyscale.
     */
    @ParameterizedTest
    @ValueSource(strings = {"jpeg444", "jpeggray", "jpeg420"})
    void jpegDecodesLikePillow(String name) throws IOException {
        Image actual = Images.read(GoldenFloats.resource(DIR + manifest(name).get("file").asText()));
        assertEquals(pilDecoded(name), actual, name);
    }

    @Test
    void losslessWebpDecodesLikePillow() throws IOException {
        assertTrue(ImageIO.getImageReadersByFormatName("webp").hasNext(), "the WebP ImageIO plugin is a dependency");
        assertEquals(pilDecoded("webp"), Images.read(GoldenFloats.resource(DIR + "read_lossless.webp")));
    }

    /**
     * Lossy WebP against Pillow 12.3 / libwebp 1.6: every case of src/test/resources/webp/manifest.json
     * (make_fixtures.py: simple VP8 and VP8X+ALPH files, read as RGB like PIL's convert("RGB"); grey content; sizes
     * from 1x1 to 320x240, odd and not multiples of 16; quality 5 to 100; encoder methods 0, 4 and 6; the simple and
     * the normal loop filter, sharpness, one to four segments). Compared: width, height and every RGB byte of
     * {@code Images.read} with Pillow's {@code Image.open(f).convert("RGB").tobytes()}. Tolerance 0: our VP8 decoder
     * reproduces libwebp's integer arithmetic (prediction, transforms, loop filter, fancy upsampling, fixed-point
     * YUV to RGB), so any difference is a bug.
     */
    @ParameterizedTest
    @MethodSource("lossyWebpCases")
    void lossyWebpDecodesLikePillow(String name) throws IOException {
        JsonNode c = lossyWebpManifest().at("/cases/" + name);
        Image actual = Images.read(GoldenFloats.resource("webp/" + c.get("file").asText()));
        byte[] expected = Files.readAllBytes(GoldenFloats.resource("webp/" + name + ".raw"));
        assertEquals(c.get("width").asInt(), actual.width(), name + " width");
        assertEquals(c.get("height").asInt(), actual.height(), name + " height");
        assertEquals(3, actual.channels());
        int differing = 0;
        int first = -1;
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] != actual.pixels()[i]) {
                differing++;
                first = first < 0 ? i : first;
            }
        }
        assertEquals(0, differing, name + ": bytes differing from Pillow, first at pixel " + (first / 3));
    }

    static List<String> lossyWebpCases() throws IOException {
        List<String> names = new ArrayList<>();
        lossyWebpManifest().get("cases").fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static JsonNode lossyWebpManifest() throws IOException {
        return new ObjectMapper().readTree(GoldenFloats.resource("webp/manifest.json").toFile());
    }

    @Test
    void brokenWebpNamesTheFile() throws IOException {
        byte[] webp = Files.readAllBytes(GoldenFloats.resource("webp/lossy_q80.webp"));
        Path cut = tmp.resolve("cut.webp");
        Files.write(cut, Arrays.copyOf(webp, webp.length / 3));
        var e = assertThrows(ImageFileException.class, () -> Images.read(cut));
        assertTrue(e.getMessage().startsWith(cut.toString()), e.getMessage());
    }

    @Test
    void truncatedPngNamesTheFile() throws IOException {
        byte[] png = Files.readAllBytes(GoldenFloats.resource(DIR + "read_rgb.png"));
        Path cut = tmp.resolve("cut.png");
        Files.write(cut, Arrays.copyOf(png, png.length / 2));
        var e = assertThrows(ImageFileException.class, () -> Images.read(cut));
        assertTrue(e.getMessage().startsWith(cut.toString()), e.getMessage());
        assertTrue(e.reason().contains("truncated") && e.reason().contains("PNG"), e.reason());
    }

    @Test
    void truncatedJpegIsAnErrorNotGreyPadding() throws IOException {
        byte[] jpg = Files.readAllBytes(GoldenFloats.resource(DIR + "read_q75_420.jpg"));
        int sos = -1;
        for (int i = 0; i + 1 < jpg.length; i++) {
            if ((jpg[i] & 0xFF) == 0xFF && (jpg[i + 1] & 0xFF) == 0xDA) {
                sos = i;
            }
        }
        assertTrue(sos > 0, "fixture has a start-of-scan marker");
        // Cut inside the entropy-coded data: ImageIO only warns ("premature end of data segment") and pads with
        // grey; PIL raises "image file is truncated". Cut inside the headers: ImageIO fails outright.
        for (int length : new int[] {(sos + jpg.length) / 2, sos / 2}) {
            Path cut = tmp.resolve("cut" + length + ".jpg");
            Files.write(cut, Arrays.copyOf(jpg, length));
            var e = assertThrows(ImageFileException.class, () -> Images.read(cut));
            assertTrue(e.getMessage().startsWith(cut.toString()), e.getMessage());
            assertTrue(e.reason().contains("truncated") && e.reason().contains("JPEG"), e.reason());
        }
    }

    @Test
    void garbageEmptyMissingAndFolderAreClearErrors() throws IOException {
        Path text = tmp.resolve("notes.png");
        Files.writeString(text, "hello, I am not a picture");
        var garbage = assertThrows(ImageFileException.class, () -> Images.read(text));
        assertTrue(garbage.getMessage().startsWith(text.toString()), garbage.getMessage());
        assertTrue(garbage.reason().contains("not an image") && garbage.reason().contains("png"), garbage.reason());

        Path empty = Files.createFile(tmp.resolve("empty.jpg"));
        var e = assertThrows(ImageFileException.class, () -> Images.read(empty));
        assertTrue(e.reason().contains("empty"), e.reason());

        assertThrows(NoSuchFileException.class, () -> Images.read(tmp.resolve("missing.png")));
        var folder = assertThrows(ImageFileException.class, () -> Images.read(tmp));
        assertTrue(folder.reason().contains("folder"), folder.reason());
    }

    @Test
    void corruptPngHeaderIsAClearError() throws IOException {
        byte[] png = Files.readAllBytes(GoldenFloats.resource(DIR + "read_rgb.png"));
        // Zero the IHDR width: ImageIO rejects the header.
        png[16] = png[17] = png[18] = png[19] = 0;
        Path bad = tmp.resolve("bad.png");
        Files.write(bad, png);
        var e = assertThrows(ImageFileException.class, () -> Images.read(bad));
        assertTrue(e.getMessage().startsWith(bad.toString()) && e.reason().contains("PNG"), e.getMessage());
    }

    /** PIL's decompression-bomb limit (2 * 89478485 pixels) is checked from the header, before decoding. */
    @Test
    void oversizedHeaderIsRefusedBeforeDecoding() throws IOException {
        byte[] png = Files.readAllBytes(GoldenFloats.resource(DIR + "read_rgb.png"));
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(png);
        b.putInt(16, 20_000).putInt(20, 20_000); // IHDR width, height
        var crc = new java.util.zip.CRC32();
        crc.update(png, 12, 17);
        b.putInt(29, (int) crc.getValue());
        Path bomb = tmp.resolve("bomb.png");
        Files.write(bomb, png);
        var e = assertThrows(ImageFileException.class, () -> Images.read(bomb));
        assertTrue(e.reason().contains("20000x20000") && e.reason().contains("limit"), e.reason());
    }

    // ---- floats <-> pixels ----

    /**
     * numpy_to_pil computes {@code (x * 255).round()} in float32, and numpy rounds half to even. For each k there
     * is a float32 x with {@code x * 255f == k + 0.5} exactly; k + 0.5 must go to the even neighbour (k when k is
     * even, k + 1 when odd), which "round half up" would get wrong for every even k.
     */
    @Test
    void roundsHalfToEvenLikeNumpy() {
        int found = 0;
        for (int k = 0; k < 255; k++) {
            float x = halfwayInput(k);
            if (Float.isNaN(x)) {
                continue;
            }
            found++;
            int expected = k % 2 == 0 ? k : k + 1;
            float[] hwc = {x, x, x};
            assertEquals(expected, Images.fromFloatHwc(hwc, 1, 1, 3).get(0, 0, 0), "k=" + k + " x=" + x);
        }
        assertEquals(255, found, "every k has a float32 halfway input (checked with numpy)");
    }

    private static float halfwayInput(int k) {
        float x = (float) ((k + 0.5) / 255.0);
        for (int step = 0; step < 8; step++) {
            for (float candidate : new float[] {x, Math.nextUp(x), Math.nextDown(x)}) {
                if (candidate * 255f == k + 0.5f) {
                    return candidate;
                }
            }
            x = Math.nextUp(x);
        }
        return Float.NaN;
    }

    /** denormalize is {@code x / 2 + 0.5} in float32, then clamp; out-of-range values saturate. */
    @Test
    void fromMinusOneToOneDenormalisesAndClamps() {
        float[] chw = {-1f, 1f, 0f, -7f, 3f, Float.NEGATIVE_INFINITY, // R plane, 1 row of 6
                0.5f, -0.5f, 1e-8f, 0.99f, -0.99f, Float.POSITIVE_INFINITY, // G
                0f, 0f, 0f, 0f, 0f, 0f}; // B
        Image img = Images.fromFloatChw(chw, 3, 1, 6, true);
        int[] r = {0, 255, 128, 0, 255, 0};
        int[] g = {191, 64, 128, 254, 1, 255};
        for (int x = 0; x < 6; x++) {
            assertEquals(r[x], img.get(x, 0, 0), "R x=" + x);
            assertEquals(g[x], img.get(x, 0, 1), "G x=" + x);
            assertEquals(128, img.get(x, 0, 2));
        }
        // 0 -> 0.5 -> 127.5 exactly -> half to even -> 128
        assertEquals(128, Images.fromFloatChw(new float[] {0f, 0f, 0f}, 3, 1, 1, true).get(0, 0, 0));
    }

    @Test
    void nanAndBadShapesAreRejected() {
        float[] hwc = new float[12];
        hwc[7] = Float.NaN;
        var e = assertThrows(IllegalArgumentException.class, () -> Images.fromFloatHwc(hwc, 2, 2, 3));
        assertTrue(e.getMessage().contains("NaN") && e.getMessage().contains("7"), e.getMessage());
        var shape = assertThrows(IllegalArgumentException.class,
                () -> Images.fromFloatChw(new float[11], 3, 2, 2, true));
        assertTrue(shape.getMessage().contains("11") && shape.getMessage().contains("12"), shape.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Images.fromFloatHwc(new float[8], 2, 2, 2));
    }

    /** preprocess: {@code uint8 / 255} in float32, then {@code 2x - 1}; CHW order. */
    @Test
    void toFloatChwIsVaePreprocess() {
        byte[] px = {0, (byte) 128, (byte) 255, 10, 20, 30};
        Image img = new Image(2, 1, 3, px);
        float[] unit = Images.toFloatChw(img, false);
        assertArrayEquals(new float[] {0f, 10 / 255f, 128 / 255f, 20 / 255f, 1f, 30 / 255f}, unit);
        float[] signed = Images.toFloatChw(img, true);
        assertEquals(-1f, signed[0]);
        assertEquals(1f, signed[4]);
        assertEquals(2f * (128 / 255f) - 1f, signed[2]);
        // Round trip: every byte survives preprocess -> postprocess.
        byte[] all = new byte[256 * 3];
        for (int i = 0; i < all.length; i++) {
            all[i] = (byte) (i / 3);
        }
        Image ramp = new Image(256, 1, 3, all);
        assertEquals(ramp, Images.fromFloatChw(Images.toFloatChw(ramp, true), 3, 1, 256, true));
        assertEquals(ramp, Images.fromFloatChw(Images.toFloatChw(ramp, false), 3, 1, 256, false));
    }

    // ---- crop ----

    /** transformers center_crop: offset (orig - crop) // 2, so odd surpluses leave the extra pixel bottom/right. */
    @Test
    void centerCropUsesFloorOffsets() {
        Image src = indexed(7, 6);
        Image crop = Images.centerCrop(src, 4, 3); // left (7-4)//2 = 1, top (6-3)//2 = 1
        for (int y = 0; y < 3; y++) {
            for (int x = 0; x < 4; x++) {
                assertEquals(src.get(x + 1, y + 1, 0), crop.get(x, y, 0));
                assertEquals(src.get(x + 1, y + 1, 2), crop.get(x, y, 2));
            }
        }
        assertEquals(src, Images.centerCrop(src, 7, 6));
    }

    /** A crop larger than the image pads with zeros and puts the image at ceil((crop - orig) / 2). */
    @Test
    void centerCropPadsWithZeros() {
        Image src = indexed(3, 2);
        Image out = Images.centerCrop(src, 6, 5); // image at x 2..4 (ceil(3/2)), y 2..3 (ceil(3/2))
        for (int y = 0; y < 5; y++) {
            for (int x = 0; x < 6; x++) {
                boolean inside = x >= 2 && x < 5 && y >= 2 && y < 4;
                int expected = inside ? src.get(x - 2, y - 2, 1) : 0;
                assertEquals(expected, out.get(x, y, 1), "x=" + x + " y=" + y);
            }
        }
        // Wider but shorter: crop rows, pad columns.
        Image mixed = Images.centerCrop(indexed(3, 6), 5, 2);
        assertEquals(indexed(3, 6).get(0, 2, 0), mixed.get(1, 0, 0));
        assertEquals(0, mixed.get(0, 0, 0));
        assertEquals(0, mixed.get(4, 1, 0));
    }

    @Test
    void shortestEdgeTruncatesTheLongSide() {
        Image wide = Images.resizeShortestEdge(indexed(45, 31), 32, Images.Filter.BICUBIC);
        assertEquals(32, wide.height());
        assertEquals(46, wide.width()); // int(32 * 45 / 31) = int(46.45)
        Image tall = Images.resizeShortestEdge(indexed(45, 60), 32, Images.Filter.BICUBIC);
        assertEquals(32, tall.width());
        assertEquals(42, tall.height()); // int(32 * 60 / 45) = int(42.67)
    }

    @Test
    void imageRecordValidates() {
        var e = assertThrows(IllegalArgumentException.class, () -> new Image(2, 2, 3, new byte[11]));
        assertTrue(e.getMessage().contains("11") && e.getMessage().contains("12"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Image(2, 2, 2, new byte[8]));
        assertThrows(IllegalArgumentException.class, () -> new Image(0, 2, 3, new byte[0]));
        assertThrows(IllegalArgumentException.class, () -> new Image(2, 2, 3, null));
        Image rgba = new Image(1, 1, 4, new byte[] {1, 2, 3, 4});
        assertArrayEquals(new byte[] {1, 2, 3}, rgba.toRgb().pixels());
    }

    // ---- helpers ----

    private static Image indexed(int w, int h) {
        byte[] px = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++) {
            px[i * 3] = (byte) (i + 1);
            px[i * 3 + 1] = (byte) (2 * i + 1);
            px[i * 3 + 2] = (byte) (255 - i);
        }
        return new Image(w, h, 3, px);
    }

    private static JsonNode manifest(String name) throws IOException {
        return new ObjectMapper().readTree(GoldenFloats.resource(DIR + "manifest.json").toFile()).get("read").get(name);
    }

    private static Image pilDecoded(String name) throws IOException {
        JsonNode m = manifest(name);
        return new Image(m.get("width").asInt(), m.get("height").asInt(), 3,
                GoldenFloats.bytes(DIR + "read_" + name + ".rgb"));
    }
}
