package koala4j.backend.cpu;

/**
 * Argument checks and aliasing rules shared by the norm, activation and resampling kernels, which all take
 * (array, offset, length) spans of float32 data instead of tensors.
 */
final class Spans {
    private Spans() {
    }

    /** Throws unless {@code a[off .. off + len)} lies inside {@code a}. */
    static void check(String name, float[] a, int off, long len) {
        if (a == null) {
            throw new NullPointerException(name + " is null");
        }
        if (off < 0 || len < 0 || off + len > a.length) {
            throw new IllegalArgumentException("%s: offset %d + length %d does not fit array length %d"
                    .formatted(name, off, len, a.length));
        }
    }

    /** Throws unless an optional per-channel parameter (gamma, beta) is null or has exactly {@code len} entries. */
    static void checkParam(String name, float[] a, int len) {
        if (a != null && a.length != len) {
            throw new IllegalArgumentException("%s has %d entries, expected %d (one per normalised channel)"
                    .formatted(name, a.length, len));
        }
    }

    static void nonNegative(String name, long v) {
        if (v < 0) {
            throw new IllegalArgumentException("%s=%d, expected >= 0".formatted(name, v));
        }
    }

    static void positive(String name, long v) {
        if (v <= 0) {
            throw new IllegalArgumentException("%s=%d, expected >= 1".formatted(name, v));
        }
    }

    /** Element count of a shape, failing when it cannot be addressed by a Java array. */
    static int size(String what, long... dims) {
        long n = 1;
        for (long d : dims) {
            n = Math.multiplyExact(n, d);
        }
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("%s has %d elements, more than a Java array holds".formatted(what, n));
        }
        return (int) n;
    }

    /**
     * True when two spans of the same array share elements. Kernels that write element i from element i only
     * handle {@code out == x} at the same offset directly; any other overlap goes through a temporary.
     */
    static boolean overlap(float[] a, int aOff, long aLen, float[] b, int bOff, long bLen) {
        return a == b && aLen > 0 && bLen > 0 && aOff < bOff + bLen && bOff < aOff + aLen;
    }

    /** Overlap that is not the exact same span start: element-wise in-place does not cover it. */
    static boolean shiftedOverlap(float[] a, int aOff, long aLen, float[] b, int bOff, long bLen) {
        return aOff != bOff && overlap(a, aOff, aLen, b, bOff, bLen);
    }
}
