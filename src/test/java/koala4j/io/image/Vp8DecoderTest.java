package koala4j.io.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Hostile lossy WebP input: every failure is an {@link ImageFileException} naming the file and the reason. */
class Vp8DecoderTest {

    /** Payload offset of the "VP8 " chunk in the simple-format fixtures (RIFF header 12 + chunk header 8). */
    private static final int VP8 = 20;

    @TempDir
    Path tmp;

    private static byte[] fixture(String name) throws IOException {
        return Files.readAllBytes(GoldenFloats.resource("webp/" + name + ".webp"));
    }

    private ImageFileException readFails(byte[] data) throws IOException {
        Path file = tmp.resolve("hostile.webp");
        Files.write(file, data);
        var e = assertThrows(ImageFileException.class, () -> Images.read(file));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        return e;
    }

    private static void putU16(byte[] b, int at, int v) {
        b[at] = (byte) v;
        b[at + 1] = (byte) (v >> 8);
    }

    /** The reason given for lossy_q80 with its frame header's size changed to width x height. */
    private String frameSizeFails(int width, int height) throws IOException {
        byte[] b = fixture("lossy_q80");
        putU16(b, VP8 + 6, width);
        putU16(b, VP8 + 8, height);
        return readFails(b).reason();
    }

    @Test
    void zeroWidthIsAnError() throws IOException {
        assertTrue(frameSizeFails(0, 64).contains("frame size 0x64"), "reason names the size");
    }

    @Test
    void absurdSizeIsRefusedBeforeDecoding() throws IOException {
        String reason = frameSizeFails(0x3fff, 0x3fff);
        assertTrue(reason.contains("16383x16383") && reason.contains("more than the limit"), reason);
    }

    @Test
    void sizeUnderTheLimitButTooBigForTheDataIsTruncation() throws IOException {
        String reason = frameSizeFails(9000, 9000);
        assertTrue(reason.contains("cannot hold the modes of"), reason);
    }

    @Test
    void interFrameIsAnError() throws IOException {
        byte[] b = fixture("lossy_q80");
        b[VP8] |= 1;
        assertTrue(readFails(b).reason().contains("inter frame, expected a key frame"));
    }

    @Test
    void partitionSizeBeyondTheDataIsAnError() throws IOException {
        byte[] b = fixture("lossy_partitions2");
        int bits = (b[VP8] & 0xFF) | (b[VP8 + 1] & 0xFF) << 8 | (b[VP8 + 2] & 0xFF) << 16;
        int sizes = VP8 + 10 + (bits >>> 5);   // the first token partition's 3-byte size follows partition 0
        b[sizes] = b[sizes + 1] = b[sizes + 2] = (byte) 0xFF;
        String reason = readFails(b).reason();
        assertTrue(reason.contains("no data left for token partition 2 of 2"), reason);
    }

    @Test
    void chunkAndRiffSizesBeyondTheFileAreErrors() throws IOException {
        byte[] b = fixture("lossy_q80");
        assertTrue(readFails(Arrays.copyOf(b, b.length - 1)).reason().contains("the RIFF header says"));
        byte[] chunk = b.clone();
        chunk[16] = (byte) 0xF0;   // "VP8 " chunk size, low byte
        chunk[17] = (byte) 0xFF;
        assertTrue(readFails(chunk).reason().contains("chunk \"VP8\" at byte 12 says"));
    }

    @Test
    void truncatedTokensAreAnError() throws IOException {
        byte[] b = fixture("lossy_photo");
        int cut = b.length / 2;
        byte[] t = Arrays.copyOf(b, cut);
        putU16(t, 4, cut - 8);   // consistent RIFF and chunk sizes: only the VP8 data is short
        putU16(t, 6, 0);
        putU16(t, 16, cut - VP8);
        putU16(t, 18, 0);
        String reason = readFails(t).reason();
        assertTrue(reason.contains("truncated: token partition 0 ends in macroblock"), reason);
    }

    @Test
    void canvasOtherThanTheFrameIsAnError() throws IOException {
        byte[] b = fixture("lossy_alpha");
        assertEquals("VP8X", new String(b, 12, 4, java.nio.charset.StandardCharsets.ISO_8859_1));
        b[24] = 0;   // canvas width - 1, low byte: 95 -> 0
        assertTrue(readFails(b).reason().contains("VP8X canvas 1x64, but the VP8 frame is 96x64"));
    }

    /**
     * A seeded fuzz over all lossy fixtures: truncations (with and without consistent container sizes), random byte
     * changes anywhere, and changes within the first 64 bytes (container and frame headers). Each copy must decode
     * or throw {@link ImageFileException}: no array or arithmetic exception, no hang, no huge allocation.
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void mutatedFilesDecodeOrFailCleanly() throws IOException {
        List<byte[]> sources = new ArrayList<>();
        try (Stream<Path> files = Files.list(GoldenFloats.resource("webp"))) {
            for (Path f : files.filter(f -> f.toString().endsWith(".webp")).sorted().toList()) {
                sources.add(Files.readAllBytes(f));
            }
        }
        Random random = new Random(20240611);
        Path name = Path.of("<fuzz>");
        int decoded = 0;
        int failed = 0;
        for (int i = 0; i < 4000; i++) {
            byte[] src = sources.get(random.nextInt(sources.size()));
            byte[] b = mutate(src, random);
            try {
                if (!WebpLossy.isRiffWebp(b)) {
                    continue;
                }
                WebpLossy.Frame frame = WebpLossy.find(name, b);
                if (frame != null) {
                    assertNotNull(WebpLossy.decode(name, b, frame));
                    decoded++;
                }
            } catch (ImageFileException e) {
                assertTrue(e.getMessage().startsWith("<fuzz>: "), e.getMessage());
                failed++;
            } catch (RuntimeException | OutOfMemoryError e) {
                fail("mutation " + i + " of a " + src.length + "-byte fixture: " + e, e);
            }
        }
        assertTrue(decoded > 100 && failed > 100, "both outcomes exercised: " + decoded + " decoded, " + failed
                + " failed");
    }

    private static byte[] mutate(byte[] src, Random random) {
        byte[] b = src.clone();
        switch (random.nextInt(4)) {
            case 0 -> b = Arrays.copyOf(b, random.nextInt(b.length));
            case 1 -> {
                int cut = 12 + random.nextInt(b.length - 12);
                b = Arrays.copyOf(b, cut);
                putU16(b, 4, cut - 8);   // the RIFF size agrees: the chunks inside are short
                putU16(b, 6, 0);
            }
            case 2 -> {
                for (int n = 1 + random.nextInt(8); n > 0; n--) {
                    b[random.nextInt(b.length)] = (byte) random.nextInt(256);
                }
            }
            default -> {
                for (int n = 1 + random.nextInt(3); n > 0; n--) {
                    b[random.nextInt(Math.min(64, b.length))] = (byte) random.nextInt(256);
                }
            }
        }
        return b;
    }
}
