package koala4j.io.image;

import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;

/**
 * PNG writing (8-bit RGB / RGBA, with text metadata) and reading of text metadata, per the PNG specification
 * (ISO/IEC 15948, W3C PNG 3rd edition): the generation parameters that diffusers-based tools store with an image
 * (as {@code PngInfo.add_text} does) travel in {@code tEXt} chunks, or {@code iTXt} when the value is not Latin-1
 * (PIL makes the same choice). Pixels are read back by {@link Images#read}. Stateless and thread-safe.
 */
public final class Png {

    static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    /** The longest keyword the PNG specification allows, in Latin-1 characters (= bytes). */
    static final int MAX_KEYWORD_LENGTH = 79;
    /** One text chunk, stored or inflated, may hold at most this many bytes (guards against zip bombs). */
    static final int MAX_TEXT_CHUNK_BYTES = 16 << 20;
    /** All text chunks of one file together (PIL's {@code MAX_TEXT_MEMORY}). */
    static final long MAX_TEXT_TOTAL_BYTES = 64L << 20;
    private static final int IDAT_CHUNK_BYTES = 1 << 18;

    private Png() {
    }

    /**
     * Writes {@code image} as a PNG with one text chunk per entry of {@code text} (in the map's iteration order),
     * to a temporary file in the same folder that is then renamed over {@code file}, so that readers never see a
     * half-written image.
     *
     * @throws IllegalArgumentException a key or value that PNG cannot carry (see {@link #encode})
     */
    public static void write(Path file, Image image, Map<String, String> text) throws IOException {
        byte[] png = encode(image, text);
        Path absolute = file.toAbsolutePath();
        Path dir = absolute.getParent();
        String suffix = Long.toHexString(ThreadLocalRandom.current().nextLong());
        Path temp = dir.resolve("." + absolute.getFileName() + "." + suffix + ".tmp");
        try {
            // CREATE_NEW (not createTempFile) so the final file gets the umask's permissions, not 0600.
            try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer buf = ByteBuffer.wrap(png);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            try {
                Files.move(temp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, absolute, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /**
     * The PNG file for {@code image}: 8-bit truecolour (colour type 2) or truecolour with alpha (6), not
     * interlaced, each row filtered with the filter type that minimises the sum of absolute differences (the libpng
     * heuristic), then zlib-compressed. Text chunks come after IHDR and before the image data.
     *
     * <p>Keys must be PNG keywords: 1 to 79 Latin-1 printable characters (codes 32-126 and 161-255), without leading,
     * trailing or consecutive spaces. A value that is entirely Latin-1 goes into a {@code tEXt} chunk; any other value
     * into an uncompressed {@code iTXt} chunk in UTF-8. Values may not contain NUL (U+0000), which neither chunk can
     * carry.
     */
    public static byte[] encode(Image image, Map<String, String> text) {
        Map<String, String> entries = text == null ? Map.of() : text;
        var out = new ByteArrayOutputStream(image.pixels().length / 2 + 1024);
        out.writeBytes(SIGNATURE);
        ByteBuffer ihdr = ByteBuffer.allocate(13);
        ihdr.putInt(image.width()).putInt(image.height());
        ihdr.put((byte) 8).put((byte) (image.channels() == 4 ? 6 : 2)).put((byte) 0).put((byte) 0).put((byte) 0);
        writeChunk(out, "IHDR", ihdr.array(), 13);
        for (var e : entries.entrySet()) {
            byte[] chunk = textChunk(e.getKey(), e.getValue());
            writeChunk(out, chunk[0] == 0 ? "tEXt" : "iTXt", chunk, 1, chunk.length - 1);
        }
        byte[] idat = compressRows(image);
        for (int off = 0; off < idat.length; off += IDAT_CHUNK_BYTES) {
            writeChunk(out, "IDAT", idat, off, Math.min(IDAT_CHUNK_BYTES, idat.length - off));
        }
        writeChunk(out, "IEND", new byte[0], 0);
        return out.toByteArray();
    }

    /**
     * The text metadata of a PNG file: every {@code tEXt}, {@code zTXt} and {@code iTXt} chunk as keyword to text, in
     * file order; a keyword that occurs twice keeps its last text (as PIL's {@code Image.text}). Image data is skipped,
     * not decoded.
     *
     * @throws ImageFileException not a PNG, truncated, a bad CRC on a text chunk, malformed or oversized text
     */
    public static Map<String, String> readText(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return PngTextReader.read(new BufferedInputStream(in, 1 << 16), file);
        }
    }

    /** {@link #readText(Path)} for a PNG already in memory (an upload); errors name the file {@code <bytes>}. */
    public static Map<String, String> readText(byte[] png) throws IOException {
        return PngTextReader.read(new ByteArrayInputStream(png), Path.of("<bytes>"));
    }

    // ---- writing ----

    /** Validates one entry; returns {flag, chunk data...} where flag 0 = tEXt, 1 = iTXt. */
    private static byte[] textChunk(String key, String value) {
        checkKeyword(key);
        if (value == null) {
            throw new IllegalArgumentException("PNG text value for key \"" + key + "\": null, expected a string");
        }
        int nul = value.indexOf('\0');
        if (nul >= 0) {
            throw new IllegalArgumentException(
                    "PNG text value for key \"%s\": NUL character at index %d; PNG text cannot contain NUL"
                    .formatted(key, nul));
        }
        var buf = new ByteArrayOutputStream(key.length() + value.length() + 8);
        CharsetEncoder latin1 = StandardCharsets.ISO_8859_1.newEncoder();
        if (latin1.canEncode(value)) {
            buf.write(0);
            buf.writeBytes(key.getBytes(StandardCharsets.ISO_8859_1));
            buf.write(0);
            buf.writeBytes(value.getBytes(StandardCharsets.ISO_8859_1));
        } else {
            // iTXt: keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL.
            buf.write(1);
            buf.writeBytes(key.getBytes(StandardCharsets.ISO_8859_1));
            buf.writeBytes(new byte[] {0, 0, 0, 0, 0});
            buf.writeBytes(value.getBytes(StandardCharsets.UTF_8));
        }
        return buf.toByteArray();
    }

    static void checkKeyword(String key) {
        if (key == null || key.isEmpty() || key.length() > MAX_KEYWORD_LENGTH) {
            throw new IllegalArgumentException("PNG text key %s: length %s, expected 1 to %d Latin-1 characters"
                    .formatted(key == null ? "null" : "\"" + key + "\"", key == null ? "-" : key.length(),
                            MAX_KEYWORD_LENGTH));
        }
        for (int i = 0; i < key.length(); i++) {
            char c = key.charAt(i);
            if (!(c >= 32 && c <= 126 || c >= 161 && c <= 255)) {
                throw new IllegalArgumentException(("PNG text key \"%s\": character U+%04X at index %d,"
                        + " expected printable Latin-1 (codes 32-126, 161-255)")
                        .formatted(key, (int) c, i));
            }
            if (c == ' ' && (i == 0 || i == key.length() - 1 || key.charAt(i - 1) == ' ')) {
                throw new IllegalArgumentException(("PNG text key \"%s\": space at index %d;"
                        + " keys may not have leading, trailing or consecutive spaces")
                        .formatted(key, i));
            }
        }
    }

    private static byte[] compressRows(Image image) {
        int bpp = image.channels();
        int stride = image.width() * bpp;
        byte[] px = image.pixels();
        var compressed = new ByteArrayOutputStream(px.length / 2 + 64);
        var deflater = new Deflater(Deflater.DEFAULT_COMPRESSION);
        try (OutputStream z = new DeflaterOutputStream(compressed, deflater, 1 << 16)) {
            byte[] prior = new byte[stride];
            byte[] row = new byte[stride];
            byte[] best = new byte[stride + 1];
            byte[] trial = new byte[stride + 1];
            for (int y = 0; y < image.height(); y++) {
                System.arraycopy(px, y * stride, row, 0, stride);
                long bestSum = Long.MAX_VALUE;
                for (int type = 0; type <= 4; type++) {
                    long sum = filterRow(type, row, prior, bpp, trial);
                    if (sum < bestSum) {
                        bestSum = sum;
                        byte[] t = best;
                        best = trial;
                        trial = t;
                    }
                }
                z.write(best, 0, stride + 1);
                byte[] t = prior;
                prior = row;
                row = t;
            }
        } catch (IOException e) {
            throw new IllegalStateException("in-memory deflate failed", e);
        } finally {
            deflater.end();
        }
        return compressed.toByteArray();
    }

    /** Writes filter byte + filtered row into {@code dst}; returns the sum of |signed filtered bytes|. */
    private static long filterRow(int type, byte[] row, byte[] prior, int bpp, byte[] dst) {
        dst[0] = (byte) type;
        long sum = 0;
        for (int i = 0; i < row.length; i++) {
            int x = row[i] & 0xFF;
            int a = i >= bpp ? row[i - bpp] & 0xFF : 0;
            int b = prior[i] & 0xFF;
            int c = i >= bpp ? prior[i - bpp] & 0xFF : 0;
            int predicted = switch (type) {
                case 0 -> 0;
                case 1 -> a;
                case 2 -> b;
                case 3 -> (a + b) >>> 1;
                default -> paeth(a, b, c);
            };
            byte f = (byte) (x - predicted);
            dst[i + 1] = f;
            sum += Math.abs(f);
        }
        return sum;
    }

    static int paeth(int a, int b, int c) {
        int p = a + b - c;
        int pa = Math.abs(p - a);
        int pb = Math.abs(p - b);
        int pc = Math.abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static void writeChunk(ByteArrayOutputStream out, String type, byte[] data, int length) {
        writeChunk(out, type, data, 0, length);
    }

    private static void writeChunk(ByteArrayOutputStream out, String type, byte[] data, int off, int length) {
        byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
        var crc = new CRC32();
        crc.update(typeBytes);
        crc.update(data, off, length);
        out.writeBytes(ByteBuffer.allocate(4).putInt(length).array());
        out.writeBytes(typeBytes);
        out.write(data, off, length);
        out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }
}
