package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vectorised exponentials of {@code x - m} over a run of floats, for softmax-like kernels where m is a row maximum.
 * Same method as Cephes {@code expf}/{@code exp2f}: round to the nearest power of two, a degree-6 polynomial on the
 * remainder, 2^n built in the exponent bits. About 1-2 ulp and two to three times faster than
 * {@link VectorOperators#EXP} on AVX-512. Results below 2^-126 (x - m under about -87.3, or -126 in base 2) are
 * flushed to 0, which no softmax can tell from the true subnormal; there is no overflow handling, so
 * {@code x - m} must stay below 88 (127 in base 2). NaN in gives NaN out.
 *
 * <p>Each entry point loops over arrays and takes and returns only arrays and scalars. A helper that takes or
 * returns a vector is only fast while C2 inlines it, and C2 gives up inlining on bodies this size (node-count
 * budget) depending on profile; a vector crossing a real call is boxed, which makes the loop ~10x slower.
 */
final class FastExp {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** 1.5 * 2^23: adding it rounds a float in [-2^22, 2^22] to an integer held in the low mantissa bits. */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
    private static final float LOG2E = 1.44269504088896341f;
    // ln 2 split so that n * LN2_HI is exact for |n| <= 2^9 (Cody-Waite), as in Cephes expf.
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    // Cephes exp2f: 2^f = 1 + f * P(f) on [-0.5, 0.5].
    private static final float P0 = 1.535336188319500e-4f;
    private static final float P1 = 1.339887440266574e-3f;
    private static final float P2 = 9.618437357674640e-3f;
    private static final float P3 = 5.550332471162809e-2f;
    private static final float P4 = 2.402264791363012e-1f;
    private static final float P5 = 6.931472028550421e-1f;
    // Cephes expf: e^f = 1 + f + f^2 * Q(f) on [-ln2/2, ln2/2].
    private static final float Q0 = 1.9875691500e-4f;
    private static final float Q1 = 1.3981999507e-3f;
    private static final float Q2 = 8.3334519073e-3f;
    private static final float Q3 = 4.1665795894e-2f;
    private static final float Q4 = 1.6666665459e-1f;
    private static final float Q5 = 5.0000001201e-1f;

    private FastExp() {
    }

    /**
     * a[i] = 2^(a[i] - m) for i in [from, to), a multiple of the vector length long; returns the sum of the results.
     */
    static float exp2InPlace(float[] a, int from, int to, float m) {
        FloatVector mv = FloatVector.broadcast(F, m);
        FloatVector lo = FloatVector.broadcast(F, -127f);
        FloatVector round = FloatVector.broadcast(F, ROUND);
        FloatVector p2 = FloatVector.broadcast(F, P2);
        FloatVector p3 = FloatVector.broadcast(F, P3);
        FloatVector p4 = FloatVector.broadcast(F, P4);
        FloatVector p5 = FloatVector.broadcast(F, P5);
        FloatVector one = FloatVector.broadcast(F, 1f);
        FloatVector sum = FloatVector.zero(F);
        for (int i = from; i < to; i += L) {
            FloatVector x = FloatVector.fromArray(F, a, i).sub(mv);
            // Below -127 the exponent field would underflow; -127 itself maps to the bit pattern of +0.
            // (compare + blend rather than max(): FloatVector.max follows Math.max's NaN/-0.0 rules, which cost more)
            x = x.blend(lo, x.compare(VectorOperators.LT, lo));
            FloatVector t = x.add(round);
            FloatVector f = x.sub(t.sub(round));                               // in [-0.5, 0.5]
            FloatVector p = f.fma(P0, P1).fma(f, p2).fma(f, p3).fma(f, p4).fma(f, p5).fma(f, one);
            FloatVector scale = ((IntVector) t.reinterpretAsInts()).add(127 - ROUND_BITS)
                    .lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
            FloatVector y = p.mul(scale);
            y.intoArray(a, i);
            sum = sum.add(y);
        }
        return GemmVector.sum(sum);
    }

    /**
     * out[oo + i] = e^(x[xo + i] - m) for i in [0, n) (not stored when out is null); returns the sum of the
     * results. Any n: the last partial vector goes through the scalar {@link #exp(float)}.
     */
    static float exp(float[] x, int xo, float[] out, int oo, int n, float m) {
        FloatVector mv = FloatVector.broadcast(F, m);
        FloatVector lo = FloatVector.broadcast(F, -88f);
        FloatVector round = FloatVector.broadcast(F, ROUND);
        FloatVector log2e = FloatVector.broadcast(F, LOG2E);
        FloatVector ln2hi = FloatVector.broadcast(F, -LN2_HI);
        FloatVector ln2lo = FloatVector.broadcast(F, -LN2_LO);
        FloatVector q2 = FloatVector.broadcast(F, Q2);
        FloatVector q3 = FloatVector.broadcast(F, Q3);
        FloatVector q4 = FloatVector.broadcast(F, Q4);
        FloatVector q5 = FloatVector.broadcast(F, Q5);
        FloatVector one = FloatVector.broadcast(F, 1f);
        FloatVector sum = FloatVector.zero(F);
        int full = n - n % L;
        for (int i = 0; i < full; i += L) {
            FloatVector v = FloatVector.fromArray(F, x, xo + i).sub(mv);
            v = v.blend(lo, v.compare(VectorOperators.LT, lo));
            FloatVector t = v.fma(log2e, round);
            FloatVector k = t.sub(round);
            FloatVector f = k.fma(ln2lo, k.fma(ln2hi, v));                      // v - k ln2, |f| <= ln2/2
            FloatVector q = f.fma(Q0, Q1).fma(f, q2).fma(f, q3).fma(f, q4).fma(f, q5);
            q = q.mul(f.mul(f)).add(f).add(one);
            FloatVector scale = ((IntVector) t.reinterpretAsInts()).add(127 - ROUND_BITS)
                    .lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
            FloatVector y = q.mul(scale);
            if (out != null) {
                y.intoArray(out, oo + i);
            }
            sum = sum.add(y);
        }
        float total = GemmVector.sum(sum);
        for (int i = full; i < n; i++) {
            float y = exp(x[xo + i] - m);
            if (out != null) {
                out[oo + i] = y;
            }
            total += y;
        }
        return total;
    }

    /** Scalar e^x for x < 88, the same steps as {@link #exp(float[], int, float[], int, int, float)}. */
    static float exp(float x) {
        x = Math.max(x, -88f);
        float t = Math.fma(x, LOG2E, ROUND);
        float k = t - ROUND;
        float f = Math.fma(k, -LN2_LO, Math.fma(k, -LN2_HI, x));
        float q = Math.fma(f, Q0, Q1);
        q = Math.fma(q, f, Q2);
        q = Math.fma(q, f, Q3);
        q = Math.fma(q, f, Q4);
        q = Math.fma(q, f, Q5);
        q = q * (f * f) + f + 1f;
        return q * Float.intBitsToFloat((Float.floatToRawIntBits(t) + 127 - ROUND_BITS) << 23);
    }

    /** Scalar 2^x for x <= 127, the same polynomial as {@link #exp2InPlace}. */
    static float exp2(float x) {
        x = Math.max(x, -127f);
        float t = x + ROUND;
        float f = x - (t - ROUND);
        float p = Math.fma(f, P0, P1);
        p = Math.fma(p, f, P2);
        p = Math.fma(p, f, P3);
        p = Math.fma(p, f, P4);
        p = Math.fma(p, f, P5);
        p = Math.fma(p, f, 1f);
        return p * Float.intBitsToFloat((Float.floatToRawIntBits(t) + 127 - ROUND_BITS) << 23);
    }
}
