package koala4j.io.image;

/**
 * RFC 6386 section 7 boolean entropy decoder over {@code data[start, end)}, with libwebp's state and end-of-data
 * rules (src/utils/bit_reader_utils.h, bit_reader_inl_utils.h): the range is kept minus one, reading past the end
 * feeds zero bits once and raises {@link #eof()}, and {@link #signed} renormalises by exactly one bit as libwebp's
 * {@code VP8GetSigned} does (which differs from a plain {@code getBit(128)} when the range is 255, so it must be
 * copied for the decoded coefficients to be libwebp's).
 */
final class Vp8BoolDecoder {

    private final byte[] data;
    private int pos;
    private final int end;
    /** Undecoded bits; the current 8-bit window sits above the lowest {@link #bits} bits. */
    private long value;
    /** Range minus one, in [126, 254] between calls (255 after {@link #signed}, as in libwebp). */
    private int range = 255 - 1;
    /** Bits available in {@link #value} below the window; negative: a byte must be loaded first. */
    private int bits = -8;
    private boolean eof;

    Vp8BoolDecoder(byte[] data, int start, int end) {
        this.data = data;
        this.pos = start;
        this.end = end;
        load();
    }

    /** Whether a read went past the end of the data (the bits read there were zeros). */
    boolean eof() {
        return eof;
    }

    private void load() {
        if (pos < end) {
            value = (value << 8) | (data[pos++] & 0xFF);
            bits += 8;
        } else if (!eof) {
            value <<= 8;
            bits += 8;
            eof = true;
        } else {
            bits = 0;
        }
    }

    /** One bit that is 0 with probability {@code prob / 256}. */
    int getBit(int prob) {
        int r = range;
        if (bits < 0) {
            load();
        }
        int split = (r * prob) >>> 8;
        int window = (int) (value >>> bits);
        int bit;
        if (window > split) {
            r -= split;
            value -= (long) (split + 1) << bits;
            bit = 1;
        } else {
            r = split + 1;
            bit = 0;
        }
        int shift = 7 ^ (31 - Integer.numberOfLeadingZeros(r));
        r <<= shift;
        bits -= shift;
        range = r - 1;
        return bit;
    }

    /** {@code n} bits at probability 1/2, most significant first (RFC 6386 {@code L(n)}). */
    int getValue(int n) {
        int v = 0;
        while (n-- > 0) {
            v |= getBit(0x80) << n;
        }
        return v;
    }

    /** A magnitude of {@code n} bits followed by a sign bit. */
    int getSignedValue(int n) {
        int v = getValue(n);
        return getValue(1) != 0 ? -v : v;
    }

    /** {@code v} with a sign read at probability 1/2, renormalising by one bit (libwebp {@code VP8GetSigned}). */
    int signed(int v) {
        if (bits < 0) {
            load();
        }
        int split = range >>> 1;
        int window = (int) (value >>> bits);
        int mask = (split - window) >> 31;   // -1 when the sign bit is 1
        bits -= 1;
        range = (range + mask) | 1;
        value -= (long) ((split + 1) & mask) << (bits + 1);
        return (v ^ mask) - mask;
    }
}
