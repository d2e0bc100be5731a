package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vectorised exponentials for softmax-like kernels, where every argument is {@code x - max(x) <= 0}.
 * Same method as Cephes {@code expf}/{@code exp2f} (round to the nearest power of two, degree-6 polynomial on the
 * remainder, build 2^n from the exponent bits): about 1-2 ulp, several times cheaper than
 * {@link VectorOperators#EXP}. Results below 2^-126 (arguments under about -87.3, or -126 for exp2) are flushed to 0,
 * which softmax cannot tell from the true subnormal value. NaN in gives NaN out.
 */
final class FastExp {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** 1.5 * 2^23: adding it rounds a float in [-2^22, 2^22] to an integer held in the low mantissa bits. */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
    private static final float LOG2E = 1.44269504088896341f;
    // ln 2 split so that n * LN2_HI is exact for |n| <= 2^9 (Cody-Waite), as in Cephes expf.
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;

    private FastExp() {
    }

    /** 2^x for x <= 127 (no overflow handling: callers subtract a running row maximum first). */
    static FloatVector exp2(FloatVector x) {
        // Below -127 the exponent field would underflow; -127 itself maps to the bit pattern of +0.
        x = atLeast(x, -127f);
        FloatVector t = x.add(ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector f = x.sub(n);                                          // in [-0.5, 0.5]
        // Cephes exp2f minimax coefficients for 2^f - 1 = f * P(f) on [-0.5, 0.5].
        FloatVector p = f.fma(1.535336188319500e-4f, 1.339887440266574e-3f)
                .fma(f, c(9.618437357674640e-3f))
                .fma(f, c(5.550332471162809e-2f))
                .fma(f, c(2.402264791363012e-1f))
                .fma(f, c(6.931472028550421e-1f))
                .fma(f, c(1f));
        return p.mul(scale(t));
    }

    /** e^x for x <= 0. */
    static FloatVector exp(FloatVector x) {
        x = atLeast(x, -88f);
        FloatVector t = x.fma(LOG2E, ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector f = n.fma(c(-LN2_LO), n.fma(c(-LN2_HI), x));            // x - n ln2, |f| <= ln2/2
        // Cephes expf coefficients: e^f = 1 + f + f^2 * P(f).
        FloatVector p = f.fma(1.9875691500e-4f, 1.3981999507e-3f)
                .fma(f, c(8.3334519073e-3f))
                .fma(f, c(4.1665795894e-2f))
                .fma(f, c(1.6666665459e-1f))
                .fma(f, c(5.0000001201e-1f));
        p = p.mul(f.mul(f)).add(f).add(1f);
        return p.mul(scale(t));
    }

    /**
     * max(x, floor) as compare + blend: FloatVector.max follows Math.max (NaN, -0.0), which costs C2 several
     * instructions per call on x86; here a NaN lane simply stays NaN.
     */
    static FloatVector atLeast(FloatVector x, float floor) {
        return x.blend(floor, x.compare(VectorOperators.LT, floor));
    }

    private static FloatVector c(float value) {
        return FloatVector.broadcast(F, value);
    }

    /** 2^n from t = n + ROUND: the integer sits in t's low mantissa bits; move it into the exponent field. */
    private static FloatVector scale(FloatVector t) {
        IntVector bits = (IntVector) t.reinterpretAsInts();
        return bits.add(127 - ROUND_BITS).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    }

    /** Scalar 2^x for x <= 127, the same polynomial as {@link #exp2(FloatVector)}. */
    static float exp2(float x) {
        x = Math.max(x, -127f);
        float t = x + ROUND;
        float n = t - ROUND;
        float f = x - n;
        float p = Math.fma(f, 1.535336188319500e-4f, 1.339887440266574e-3f);
        p = Math.fma(p, f, 9.618437357674640e-3f);
        p = Math.fma(p, f, 5.550332471162809e-2f);
        p = Math.fma(p, f, 2.402264791363012e-1f);
        p = Math.fma(p, f, 6.931472028550421e-1f);
        p = Math.fma(p, f, 1f);
        return p * Float.intBitsToFloat((Float.floatToRawIntBits(t) + 127 - ROUND_BITS) << 23);
    }
}
