package koala4j.pipelines;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;

/**
 * JSON Schema's minimum / maximum (exclusive or not) and multipleOf for {@link JsonPrefix}, decided on the number's
 * text so far: a
 * prefix is kept only while some way to go on (more integer digits, a fraction) can still end inside the bounds, and
 * the number ends only inside them. Bounded numbers are written without an exponent (llama.cpp's integer grammars
 * have none either): with one, every prefix could reach almost any magnitude. Exact: decimal arithmetic on the text.
 */
final class NumberBounds {

    private NumberBounds() {
    }

    /**
     * Whether {@code text[0, length)} (a number's start: an optional '-', digits, an optional '.' and digits) can still
     * become a value within {@code s}'s bounds; {@code integer}: no fraction may follow.
     */
    static boolean feasible(byte[] text, int length, JsonSchema s, boolean integer) {
        boolean negative = length > 0 && text[0] == '-';
        int i = negative ? 1 : 0;
        int dot = -1;
        for (int j = i; j < length; j++) {
            if (text[j] == '.') {
                dot = j;
            }
        }
        int intEnd = dot < 0 ? length : dot;
        if (intEnd == i) {
            // no digit yet: any magnitude of this sign
            return negative ? meets(null, false, BigDecimal.ZERO, false, s, integer)
                    : meets(BigDecimal.ZERO, false, null, false, s, integer);
        }
        BigInteger whole = new BigInteger(new String(text, i, intEnd - i, java.nio.charset.StandardCharsets.US_ASCII));
        if (dot >= 0) {
            // [whole.fraction, + 10^-digits): the digits so far fix everything above the next one
            int digits = length - dot - 1;
            BigDecimal low = new BigDecimal(whole).add(digits == 0 ? BigDecimal.ZERO : new BigDecimal(new BigInteger(
                    new String(text, dot + 1, digits, java.nio.charset.StandardCharsets.US_ASCII)), digits));
            return magnitude(low, low.add(BigDecimal.ONE.movePointLeft(digits)), negative, s, integer);
        }
        if (whole.signum() == 0) {
            // "0" takes no more integer digits
            return magnitude(BigDecimal.ZERO, BigDecimal.ONE, negative, s, integer);
        }
        // more digits may follow: [whole, whole + 1) x 10^k for any k >= 0; the ranges grow apart as k grows
        BigDecimal w = new BigDecimal(whole);
        BigDecimal far = negative ? (s.minimum == null ? null : s.minimum.negate()) : s.maximum;
        for (int k = 0; ; k++) {
            BigDecimal low = w.scaleByPowerOfTen(k);
            if (far == null) {
                // no bound on this side: a long enough number passes any bound on the other
                return true;
            }
            if (low.compareTo(far) > 0) {
                return false;
            }
            if (magnitude(low, w.add(BigDecimal.ONE).scaleByPowerOfTen(k), negative, s, integer)) {
                return true;
            }
        }
    }

    /** Whether a magnitude in [low, high) with that sign meets the bounds. */
    private static boolean magnitude(BigDecimal low, BigDecimal high, boolean negative, JsonSchema s, boolean integer) {
        return negative ? meets(high.negate(), true, low.negate(), false, s, integer)
                : meets(low, false, high, true, s, integer);
    }

    /**
     * Whether some value between {@code a} and {@code b} (null: unbounded; open ends excluded) is within the bounds
     * (and an integer, with {@code integer}).
     */
    static boolean meets(BigDecimal a, boolean aOpen, BigDecimal b, boolean bOpen, JsonSchema s, boolean integer) {
        BigDecimal lo = a;
        boolean loOpen = aOpen;
        if (s.minimum != null && (lo == null || s.minimum.compareTo(lo) > 0
                || s.minimum.compareTo(lo) == 0 && s.minimumExclusive)) {
            lo = s.minimum;
            loOpen = s.minimumExclusive;
        }
        BigDecimal hi = b;
        boolean hiOpen = bOpen;
        if (s.maximum != null && (hi == null || s.maximum.compareTo(hi) < 0
                || s.maximum.compareTo(hi) == 0 && s.maximumExclusive)) {
            hi = s.maximum;
            hiOpen = s.maximumExclusive;
        }
        if (integer) {
            if (lo != null) {
                BigDecimal first = lo.setScale(0, RoundingMode.CEILING);
                lo = loOpen && first.compareTo(lo) == 0 ? first.add(BigDecimal.ONE) : first;
                loOpen = false;
            }
            if (hi != null) {
                BigDecimal last = hi.setScale(0, RoundingMode.FLOOR);
                hi = hiOpen && last.compareTo(hi) == 0 ? last.subtract(BigDecimal.ONE) : last;
                hiOpen = false;
            }
        }
        BigDecimal m = s.multipleOf;
        if (m != null && integer && m.scale() > 0) {
            // the integers among the multiples of a / 10^s are the multiples of a / gcd(a, 10^s)
            BigInteger units = m.unscaledValue();
            m = new BigDecimal(units.divide(units.gcd(BigInteger.TEN.pow(m.scale()))));
        }
        if (m != null) {
            // the first multiple at or past lo, and whether it is before hi; unbounded sides always have one
            if (lo == null || hi == null) {
                return true;
            }
            BigDecimal k = lo.divide(m, 0, RoundingMode.CEILING);
            BigDecimal first = k.multiply(m);
            if (loOpen && first.compareTo(lo) == 0) {
                first = first.add(m);
            }
            int c = first.compareTo(hi);
            return c < 0 || c == 0 && !hiOpen;
        }
        if (lo == null || hi == null) {
            return true;
        }
        int c = lo.compareTo(hi);
        return c < 0 || c == 0 && !loOpen && !hiOpen;
    }

    /** Whether the whole number {@code text[0, length)} is within {@code s}'s bounds (and a multiple). */
    static boolean within(byte[] text, int length, JsonSchema s) {
        BigDecimal v = new BigDecimal(new String(text, 0, length, java.nio.charset.StandardCharsets.US_ASCII));
        if (s.multipleOf != null && v.remainder(s.multipleOf).signum() != 0) {
            return false;
        }
        if (s.minimum != null) {
            int c = v.compareTo(s.minimum);
            if (c < 0 || c == 0 && s.minimumExclusive) {
                return false;
            }
        }
        if (s.maximum != null) {
            int c = v.compareTo(s.maximum);
            return c < 0 || c == 0 && !s.maximumExclusive;
        }
        return true;
    }
}
