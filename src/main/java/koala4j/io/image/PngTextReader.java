package koala4j.io.image;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * {@link Png#readText}: walks the chunk list, decodes {@code tEXt}, {@code zTXt} and {@code iTXt} as PIL's
 * PngImagePlugin does ({@code chunk_tEXt}, {@code chunk_zTXt}, {@code chunk_iTXt}), skips everything else unread.
 * Unlike PIL, a malformed iTXt chunk is an error rather than silently dropped.
 */
final class PngTextReader {

    private static final HexFormat HEX = HexFormat.ofDelimiter(" ");

    private PngTextReader() {
    }

    static Map<String, String> read(InputStream in, Path file) throws IOException {
        byte[] signature = in.readNBytes(Png.SIGNATURE.length);
        if (!Arrays.equals(signature, Png.SIGNATURE)) {
            throw new ImageFileException(file, signature.length == 0 ? "not a PNG file: the file is empty"
                    : "not a PNG file: starts with bytes %s, expected the PNG signature %s".formatted(
                            HEX.formatHex(signature), HEX.formatHex(Png.SIGNATURE)));
        }
        Map<String, String> text = new LinkedHashMap<>();
        long offset = Png.SIGNATURE.length;
        long textBytes = 0;
        boolean first = true;
        while (true) {
            byte[] header = in.readNBytes(8);
            if (header.length < 8) {
                throw new ImageFileException(file, "truncated PNG: the file ends at byte %d without an IEND chunk"
                        .formatted(offset + header.length));
            }
            long length = ByteBuffer.wrap(header).getInt() & 0xFFFFFFFFL;
            String type = new String(header, 4, 4, StandardCharsets.ISO_8859_1);
            if (!type.chars().allMatch(ch -> ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z')) {
                throw new ImageFileException(file, "corrupt PNG: chunk type bytes %s at byte %d are not 4 ASCII letters"
                        .formatted(HEX.formatHex(header, 4, 8), offset + 4));
            }
            if (length > Integer.MAX_VALUE) {
                throw new ImageFileException(file,
                        "corrupt PNG: chunk %s at byte %d has length %d, more than the PNG limit 2^31-1"
                        .formatted(type, offset, length));
            }
            if (first && !type.equals("IHDR")) {
                throw new ImageFileException(file, "corrupt PNG: first chunk is %s, expected IHDR".formatted(type));
            }
            first = false;
            boolean isText = type.equals("tEXt") || type.equals("zTXt") || type.equals("iTXt");
            if (isText) {
                if (length > Png.MAX_TEXT_CHUNK_BYTES) {
                    throw new ImageFileException(file, "PNG %s chunk at byte %d holds %d bytes, more than the limit %d"
                            .formatted(type, offset, length, Png.MAX_TEXT_CHUNK_BYTES));
                }
                byte[] data = in.readNBytes((int) length);
                byte[] crcBytes = in.readNBytes(4);
                if (data.length < length || crcBytes.length < 4) {
                    throw new ImageFileException(file, "truncated PNG: the file ends inside the %s chunk at byte %d"
                            .formatted(type, offset));
                }
                var crc = new CRC32();
                crc.update(header, 4, 4);
                crc.update(data);
                int stored = ByteBuffer.wrap(crcBytes).getInt();
                if ((int) crc.getValue() != stored) {
                    throw new ImageFileException(file, "corrupt PNG: %s chunk at byte %d has CRC %08x, expected %08x"
                            .formatted(type, offset, stored, (int) crc.getValue()));
                }
                String[] kv = parseText(type, data, file, offset);
                textBytes += kv[1].length();
                if (textBytes > Png.MAX_TEXT_TOTAL_BYTES) {
                    throw new ImageFileException(file, "PNG text chunks hold more than %d characters in all"
                            .formatted(Png.MAX_TEXT_TOTAL_BYTES));
                }
                text.put(kv[0], kv[1]);
            } else {
                try {
                    in.skipNBytes(length + 4);
                } catch (EOFException e) {
                    throw new ImageFileException(file, "truncated PNG: the file ends inside the %s chunk at byte %d"
                            .formatted(type, offset));
                }
            }
            if (type.equals("IEND")) {
                return text;
            }
            offset += 12 + length;
        }
    }

    /** Splits a text chunk's data into {keyword, text}. */
    private static String[] parseText(String type, byte[] data, Path file, long offset) throws ImageFileException {
        int keyEnd = indexOf(data, 0);
        String where = "PNG %s chunk at byte %d".formatted(type, offset);
        if (type.equals("tEXt")) {
            // Like PIL, a tEXt chunk without a separator is a keyword with empty text.
            if (keyEnd < 0) {
                return new String[] {new String(data, StandardCharsets.ISO_8859_1), ""};
            }
            return new String[] {new String(data, 0, keyEnd, StandardCharsets.ISO_8859_1),
                    new String(data, keyEnd + 1, data.length - keyEnd - 1, StandardCharsets.ISO_8859_1)};
        }
        if (keyEnd < 0) {
            throw new ImageFileException(file, where + ": no NUL after the keyword");
        }
        String key = new String(data, 0, keyEnd, StandardCharsets.ISO_8859_1);
        if (type.equals("zTXt")) {
            if (keyEnd + 1 >= data.length || data[keyEnd + 1] != 0) {
                throw new ImageFileException(file, "%s (key \"%s\"): compression method %s, expected 0 (zlib)"
                        .formatted(where, key, keyEnd + 1 < data.length ? data[keyEnd + 1] & 0xFF : "missing"));
            }
            byte[] raw = inflate(data, keyEnd + 2, file, where + " (key \"" + key + "\")");
            return new String[] {key, new String(raw, StandardCharsets.ISO_8859_1)};
        }
        // iTXt: keyword NUL flag method language NUL translated-keyword NUL text
        int p = keyEnd + 1;
        if (p + 2 > data.length) {
            throw new ImageFileException(file, where + " (key \"" + key + "\"): ends before the compression flag");
        }
        int flag = data[p] & 0xFF;
        int method = data[p + 1] & 0xFF;
        if (flag > 1 || flag == 1 && method != 0) {
            throw new ImageFileException(file,
                    "%s (key \"%s\"): compression flag %d method %d, expected flag 0, or 1 with method 0"
                    .formatted(where, key, flag, method));
        }
        int langEnd = indexOf(data, p + 2);
        int translatedEnd = langEnd < 0 ? -1 : indexOf(data, langEnd + 1);
        if (translatedEnd < 0) {
            throw new ImageFileException(file, where + " (key \"" + key
                    + "\"): missing NUL after the language tag or the translated keyword");
        }
        byte[] utf8 = flag == 1 ? inflate(data, translatedEnd + 1, file, where + " (key \"" + key + "\")")
                : Arrays.copyOfRange(data, translatedEnd + 1, data.length);
        return new String[] {key, new String(utf8, StandardCharsets.UTF_8)};
    }

    private static byte[] inflate(byte[] data, int from, Path file, String where) throws ImageFileException {
        var inflater = new Inflater();
        try {
            inflater.setInput(data, from, data.length - from);
            var out = new ByteArrayOutputStream();
            byte[] buf = new byte[1 << 14];
            while (!inflater.finished()) {
                int n = inflater.inflate(buf);
                if (n == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
                    throw new ImageFileException(file, where + ": compressed text ends early");
                }
                out.write(buf, 0, n);
                if (out.size() > Png.MAX_TEXT_CHUNK_BYTES) {
                    throw new ImageFileException(file, "%s: text inflates to more than %d bytes"
                            .formatted(where, Png.MAX_TEXT_CHUNK_BYTES));
                }
            }
            return out.toByteArray();
        } catch (DataFormatException e) {
            throw new ImageFileException(file, where + ": corrupt compressed text (" + e.getMessage() + ")", e);
        } finally {
            inflater.end();
        }
    }

    private static int indexOf(byte[] data, int from) {
        for (int i = from; i < data.length; i++) {
            if (data[i] == 0) {
                return i;
            }
        }
        return -1;
    }
}
