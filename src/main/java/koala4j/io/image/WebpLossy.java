package koala4j.io.image;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Lossy WebP files decoded here rather than by the ImageIO plugin: the RIFF container (simple {@code "VP8 "} files,
 * and extended {@code VP8X} files that are not animated) is walked to the {@code "VP8 "} chunk, which
 * {@link Vp8Decoder} and {@link Vp8Upsampler} turn into libwebp's RGB. An {@code ALPH} chunk is skipped: the
 * result is RGB, as PIL's {@code convert("RGB")} drops alpha. Lossless ({@code VP8L}) and animated files are left
 * to the plugin.
 */
final class WebpLossy {

    private WebpLossy() {
    }

    /** Where the VP8 frame lies in the file, and the canvas size a VP8X header declares (0 without one). */
    record Frame(int offset, int length, int canvasWidth, int canvasHeight) {
    }

    private static final int ANIMATION_FLAG = 0x02;

    static boolean isRiffWebp(byte[] head) {
        return head.length >= 12 && fourcc(head, 0).equals("RIFF") && fourcc(head, 8).equals("WEBP");
    }

    /**
     * The lossy frame of a RIFF/WEBP file, or null when the file is lossless or animated (the plugin's cases).
     *
     * @throws ImageFileException a malformed container: sizes past the end, a missing image chunk
     */
    static Frame find(Path file, byte[] data) throws ImageFileException {
        long riffSize = u32(data, 4);
        if (riffSize < 4 || riffSize + 8 > data.length) {
            throw new ImageFileException(file, "truncated WebP: the RIFF header says %d bytes follow, the file has %d"
                    .formatted(riffSize, data.length - 8));
        }
        int end = (int) (riffSize + 8);
        int pos = 12;
        int canvasWidth = 0;
        int canvasHeight = 0;
        boolean first = true;
        while (true) {
            if (end - pos < 8) {
                throw new ImageFileException(file, "corrupt WebP: no VP8, VP8L or VP8X image chunk in the file");
            }
            String tag = fourcc(data, pos);
            long size = u32(data, pos + 4);
            int payload = pos + 8;
            if (size > end - payload) {
                throw new ImageFileException(file, "truncated WebP: chunk \"%s\" at byte %d says %d bytes, %d are left"
                        .formatted(tag.strip(), pos, size, end - payload));
            }
            switch (tag) {
                case "VP8 " -> {
                    return new Frame(payload, (int) size, canvasWidth, canvasHeight);
                }
                case "VP8L", "ANIM", "ANMF" -> {
                    return null;
                }
                case "VP8X" -> {
                    if (!first || size < 10) {
                        throw new ImageFileException(file, "corrupt WebP: VP8X chunk at byte %d of %d bytes, expected"
                                .formatted(pos, size) + " the first chunk with at least 10 bytes");
                    }
                    if ((data[payload] & ANIMATION_FLAG) != 0) {
                        return null;
                    }
                    canvasWidth = 1 + u24(data, payload + 4);
                    canvasHeight = 1 + u24(data, payload + 7);
                }
                default -> {
                    if (first) {
                        throw new ImageFileException(file, "corrupt WebP: first chunk \"%s\", expected VP8, VP8L or VP8X"
                                .formatted(tag.strip()));
                    }
                    // ALPH, ICCP, EXIF, XMP and unknown chunks: nothing the RGB result needs.
                }
            }
            first = false;
            pos = payload + (int) size + (int) (size & 1);
        }
    }

    /** Decodes the lossy frame to RGB as libwebp (and so Pillow) does. */
    static Image decode(Path file, byte[] data, Frame frame) throws ImageFileException {
        if (frame.canvasWidth() > 0) {
            int[] size = Vp8Decoder.size(file, data, frame.offset(), frame.length());
            if (size[0] != frame.canvasWidth() || size[1] != frame.canvasHeight()) {
                throw new ImageFileException(file, "corrupt WebP: VP8X canvas %dx%d, but the VP8 frame is %dx%d"
                        .formatted(frame.canvasWidth(), frame.canvasHeight(), size[0], size[1]));
            }
        }
        return Vp8Upsampler.toRgb(Vp8Decoder.decode(file, data, frame.offset(), frame.length()));
    }

    private static String fourcc(byte[] b, int at) {
        return new String(b, at, 4, StandardCharsets.ISO_8859_1);
    }

    private static long u32(byte[] b, int at) {
        return (b[at] & 0xFFL) | (b[at + 1] & 0xFFL) << 8 | (b[at + 2] & 0xFFL) << 16 | (b[at + 3] & 0xFFL) << 24;
    }

    private static int u24(byte[] b, int at) {
        return (b[at] & 0xFF) | (b[at + 1] & 0xFF) << 8 | (b[at + 2] & 0xFF) << 16;
    }
}
