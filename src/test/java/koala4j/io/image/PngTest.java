package koala4j.io.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class PngTest {

    @TempDir
    Path tmp;

    static Image random(int w, int h, int channels, long seed) {
        byte[] px = new byte[w * h * channels];
        Random r = new Random(seed);
        for (int i = 0; i < px.length; i++) {
            // Half smooth, half noise, so that every filter type wins somewhere.
            px[i] = (byte) ((i / channels) % w < w / 2 ? (i / channels) % w * 3 + i % channels * 40 : r.nextInt(256));
        }
        return new Image(w, h, channels, px);
    }

    /** What we write, ImageIO (an independent decoder) reads back byte for byte, alpha included. */
    @ParameterizedTest
    @ValueSource(ints = {3, 4})
    void pixelsRoundTripThroughImageIo(int channels) throws IOException {
        Image img = random(37, 11, channels, 42 + channels);
        Path file = tmp.resolve("round.png");
        Png.write(file, img, Map.of());
        BufferedImage bi = ImageIO.read(file.toFile());
        assertEquals(37, bi.getWidth());
        assertEquals(11, bi.getHeight());
        assertEquals(channels == 4, bi.getColorModel().hasAlpha());
        for (int y = 0; y < 11; y++) {
            for (int x = 0; x < 37; x++) {
                int argb = bi.getRGB(x, y);
                assertEquals(img.get(x, y, 0), (argb >> 16) & 0xFF);
                assertEquals(img.get(x, y, 1), (argb >> 8) & 0xFF);
                assertEquals(img.get(x, y, 2), argb & 0xFF);
                if (channels == 4) {
                    assertEquals(img.get(x, y, 3), argb >>> 24);
                }
            }
        }
        // And through Images.read (alpha dropped, as PIL's convert("RGB")).
        assertEquals(img.toRgb(), Images.read(file));
    }

    @Test
    void textRoundTripsLatin1InTextAndKoreanInItxt() throws IOException {
        Map<String, String> text = new LinkedHashMap<>();
        text.put("prompt", "a koala eating eucalyptus leaves, café au lait ×2");
        text.put("negative_prompt", "");
        text.put("ko", "코알라 캐릭터 일러스트");
        text.put("parameters", "Steps: 4, Sampler: Euler\nSeed: 21");
        text.put("Ünïcode key ok", "emoji 🐨 outside the BMP");
        Path file = tmp.resolve("meta.png");
        Png.write(file, random(8, 8, 3, 1), text);

        Map<String, String> back = Png.readText(file);
        assertEquals(text, back);
        assertEquals(List.copyOf(text.keySet()), List.copyOf(back.keySet()), "file order kept");
        assertEquals(text, Png.readText(Files.readAllBytes(file)));

        // Chunk types: Latin-1 values in tEXt, the rest in uncompressed iTXt, all before IDAT.
        List<String> types = chunkTypes(Files.readAllBytes(file));
        assertEquals(List.of("IHDR", "tEXt", "tEXt", "iTXt", "tEXt", "iTXt", "IDAT", "IEND"), types);
        // The pixels are still readable with text chunks in front of the image data.
        assertEquals(8, ImageIO.read(file.toFile()).getWidth());
    }

    /**
     * golden/pil_image/text_pil.png: Pillow 12.3.0 wrote a tEXt, a zTXt, a compressed iTXt with language tag and
     * translated keyword, and an uncompressed iTXt; its {@code Image.text} is in manifest.json.
     */
    @Test
    void readsEveryTextChunkKindPillowWrites() throws IOException {
        JsonNode expected = new ObjectMapper().readTree(
                GoldenFloats.resource("golden/pil_image/manifest.json").toFile()).get("text_pil");
        Map<String, String> text = Png.readText(GoldenFloats.resource("golden/pil_image/text_pil.png"));
        assertEquals(expected.size(), text.size());
        expected.properties().forEach(e -> assertEquals(e.getValue().asText(), text.get(e.getKey()), e.getKey()));
        List<String> types = chunkTypes(GoldenFloats.bytes("golden/pil_image/text_pil.png"));
        assertTrue(types.containsAll(List.of("tEXt", "zTXt", "iTXt")), types.toString());
    }

    @Test
    void badKeysAndValuesAreRejected() {
        Image img = random(2, 2, 3, 3);
        for (String key : new String[] {"", "x".repeat(80), " lead", "trail ", "two  spaces", "tab\tkey", "코알라",
                "nul\0"}) {
            var e = assertThrows(IllegalArgumentException.class, () -> Png.encode(img, Map.of(key, "v")),
                    "key " + key);
            assertTrue(e.getMessage().contains("PNG text key"), e.getMessage());
        }
        Png.encode(img, Map.of("x".repeat(79), "v")); // the longest legal keyword
        var nul = assertThrows(IllegalArgumentException.class, () -> Png.encode(img, Map.of("k", "a\0b")));
        assertTrue(nul.getMessage().contains("NUL") && nul.getMessage().contains("\"k\""), nul.getMessage());
        Map<String, String> nullValue = new LinkedHashMap<>();
        nullValue.put("k", null);
        assertThrows(IllegalArgumentException.class, () -> Png.encode(img, nullValue));
    }

    @Test
    void writeReplacesAtomicallyAndLeavesNoTemporaryFiles() throws IOException {
        Path file = tmp.resolve("out.png");
        Files.writeString(file, "old content");
        Png.write(file, random(5, 4, 4, 9), Map.of("k", "v"));
        assertEquals(Map.of("k", "v"), Png.readText(file));
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of(file), files.toList());
        }
        // A failed write (folder missing) leaves nothing behind and says which path.
        Path missing = tmp.resolve("no/such/dir/out.png");
        var e = assertThrows(IOException.class, () -> Png.write(missing, random(1, 1, 3, 1), Map.of()));
        assertTrue(e.getMessage().contains("no/such/dir"), e.getMessage());
    }

    @Test
    void readTextErrorsNameTheFileAndReason() throws IOException {
        byte[] png = Png.encode(random(16, 16, 3, 5), Map.of("prompt", "koala"));

        Path cut = tmp.resolve("cut.png");
        Files.write(cut, Arrays.copyOf(png, png.length - 30));
        var truncated = assertThrows(ImageFileException.class, () -> Png.readText(cut));
        assertTrue(truncated.getMessage().startsWith(cut.toString()) && truncated.reason().contains("truncated"),
                truncated.getMessage());

        byte[] badCrc = png.clone();
        int textAt = indexOf(png, "tEXt".getBytes(StandardCharsets.US_ASCII));
        badCrc[textAt + 6] ^= 1; // flip a bit in the keyword
        Path corrupt = tmp.resolve("crc.png");
        Files.write(corrupt, badCrc);
        var crc = assertThrows(ImageFileException.class, () -> Png.readText(corrupt));
        assertTrue(crc.reason().contains("CRC") && crc.reason().contains("tEXt"), crc.reason());

        Path jpeg = GoldenFloats.resource("golden/pil_image/read_q75_420.jpg");
        var notPng = assertThrows(ImageFileException.class, () -> Png.readText(jpeg));
        assertTrue(notPng.reason().contains("not a PNG"), notPng.reason());

        var empty = assertThrows(ImageFileException.class, () -> Png.readText(new byte[0]));
        assertTrue(empty.reason().contains("empty"), empty.reason());
    }

    /** A zTXt that inflates past the per-chunk limit is refused instead of exhausting memory. */
    @Test
    void zipBombTextIsRefused() throws IOException {
        byte[] zeros = new byte[Png.MAX_TEXT_CHUNK_BYTES + 1];
        var deflater = new java.util.zip.Deflater(9);
        deflater.setInput(zeros);
        deflater.finish();
        byte[] buf = new byte[1 << 20];
        int n = deflater.deflate(buf);
        assertTrue(deflater.finished());
        deflater.end();
        // keyword "bomb", NUL, compression method 0, zlib stream
        byte[] chunkData = new byte[6 + n];
        System.arraycopy("bomb".getBytes(StandardCharsets.US_ASCII), 0, chunkData, 0, 4);
        System.arraycopy(buf, 0, chunkData, 6, n);
        byte[] png = insertChunk(Png.encode(random(2, 2, 3, 1), Map.of()), "zTXt", chunkData);
        var e = assertThrows(ImageFileException.class, () -> Png.readText(png));
        assertTrue(e.reason().contains("inflates to more than"), e.reason());
    }

    @Test
    void compressionIsReasonable() throws IOException {
        // A smooth 256x256 gradient must compress far below its raw size (filters + deflate are working).
        byte[] px = new byte[256 * 256 * 3];
        for (int y = 0; y < 256; y++) {
            for (int x = 0; x < 256; x++) {
                px[(y * 256 + x) * 3] = (byte) x;
                px[(y * 256 + x) * 3 + 1] = (byte) y;
                px[(y * 256 + x) * 3 + 2] = (byte) (x + y);
            }
        }
        byte[] png = Png.encode(new Image(256, 256, 3, px), Map.of());
        assertTrue(png.length < px.length / 20, "PNG of a gradient is " + png.length + " bytes");
        BufferedImage bi = ImageIO.read(new ByteArrayInputStream(png));
        assertEquals(((200 & 0xFF) << 16) | (100 << 8) | ((300) & 0xFF), bi.getRGB(200, 100) & 0xFFFFFF);
    }

    // ---- helpers ----

    static List<String> chunkTypes(byte[] png) {
        var types = new java.util.ArrayList<String>();
        ByteBuffer b = ByteBuffer.wrap(png);
        int pos = 8;
        while (pos < png.length) {
            int len = b.getInt(pos);
            types.add(new String(png, pos + 4, 4, StandardCharsets.US_ASCII));
            pos += 12 + len;
        }
        return types;
    }

    static byte[] insertChunk(byte[] png, String type, byte[] data) {
        int afterIhdr = 8 + 12 + 13;
        var crc = new java.util.zip.CRC32();
        crc.update(type.getBytes(StandardCharsets.US_ASCII));
        crc.update(data);
        ByteBuffer chunk = ByteBuffer.allocate(12 + data.length);
        chunk.putInt(data.length).put(type.getBytes(StandardCharsets.US_ASCII)).put(data).putInt((int) crc.getValue());
        byte[] out = new byte[png.length + chunk.capacity()];
        System.arraycopy(png, 0, out, 0, afterIhdr);
        System.arraycopy(chunk.array(), 0, out, afterIhdr, chunk.capacity());
        System.arraycopy(png, afterIhdr, out, afterIhdr + chunk.capacity(), png.length - afterIhdr);
        return out;
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
