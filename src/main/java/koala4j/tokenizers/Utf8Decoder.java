package koala4j.tokenizers;

/**
 * Python's {@code bytes.decode("utf-8", errors)} for the three handlers a tokenizer config may name. Each maximal
 * ill-formed subpart becomes one replacement character (Unicode's recommended practice, which CPython follows);
 * Java's own decoder differs on encoded surrogates ({@code ED A0 80} gives one U+FFFD there, three in Python).
 */
final class Utf8Decoder {

    /** The {@code errors} argument of {@code bytes.decode}. */
    enum Errors { REPLACE, IGNORE, STRICT }

    private Utf8Decoder() {
    }

    /** @throws IllegalArgumentException on ill-formed input when {@code errors} is {@link Errors#STRICT} */
    static String decode(byte[] bytes, int length, Errors errors) {
        StringBuilder out = new StringBuilder(length);
        int i = 0;
        while (i < length) {
            int b0 = bytes[i] & 0xFF;
            if (b0 < 0x80) {
                out.append((char) b0);
                i++;
                continue;
            }
            int trailing;
            int low = 0x80;                          // allowed range of the first continuation byte
            int high = 0xBF;
            if (b0 >= 0xC2 && b0 <= 0xDF) {
                trailing = 1;
            } else if (b0 == 0xE0) {
                trailing = 2;
                low = 0xA0;                          // no overlong 3-byte forms
            } else if (b0 == 0xED) {
                trailing = 2;
                high = 0x9F;                         // no surrogates
            } else if (b0 >= 0xE1 && b0 <= 0xEF) {
                trailing = 2;
            } else if (b0 == 0xF0) {
                trailing = 3;
                low = 0x90;                          // no overlong 4-byte forms
            } else if (b0 == 0xF4) {
                trailing = 3;
                high = 0x8F;                         // nothing above U+10FFFF
            } else if (b0 >= 0xF1 && b0 <= 0xF3) {
                trailing = 3;
            } else {
                i += invalid(out, errors, i, 1);
                continue;
            }
            int cp = b0 & (0x3F >> trailing);
            int taken = 1;
            while (taken <= trailing && i + taken < length) {
                int b = bytes[i + taken] & 0xFF;
                int lo = taken == 1 ? low : 0x80;
                int hi = taken == 1 ? high : 0xBF;
                if (b < lo || b > hi) {
                    break;
                }
                cp = (cp << 6) | (b & 0x3F);
                taken++;
            }
            if (taken == trailing + 1) {
                out.appendCodePoint(cp);
                i += taken;
            } else {
                i += invalid(out, errors, i, taken);
            }
        }
        return out.toString();
    }

    private static int invalid(StringBuilder out, Errors errors, int at, int length) {
        switch (errors) {
            case REPLACE -> out.append('\uFFFD');
            case IGNORE -> { }
            case STRICT -> throw new IllegalArgumentException(
                    "bytes %d..%d are not valid UTF-8 and errors=\"strict\" (Python raises UnicodeDecodeError)"
                            .formatted(at, at + length - 1));
        }
        return length;
    }
}
