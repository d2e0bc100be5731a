package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/**
 * {@link FastExp} against Math.exp in double. Metric: relative error in units of float epsilon (2^-23) over a dense
 * sweep of the domain softmax uses; bound 3 (the polynomials are ~1-2 ulp, plus the float rounding of the result).
 */
class FastExpTest {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    @Test
    void expIsWithinThreeEpsilonsDownToTheNormalRange() {
        double worst = 0;
        float[] x = new float[F.length()];
        float[] y = new float[F.length()];
        for (float start = -87f; start <= 0f; start += 0.001f * F.length()) {
            for (int i = 0; i < x.length; i++) {
                x[i] = Math.min(0f, start + 0.001f * i);
            }
            FastExp.exp(FloatVector.fromArray(F, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) {
                double want = Math.exp(x[i]);
                worst = Math.max(worst, Math.abs(y[i] - want) / want / 0x1p-23);
            }
        }
        assertTrue(worst <= 3, "worst relative error " + worst + " eps");
    }

    @Test
    void exp2IsWithinThreeEpsilonsAndAgreesWithScalar() {
        double worst = 0;
        float[] x = new float[F.length()];
        float[] y = new float[F.length()];
        for (float start = -126f; start <= 12f; start += 0.0007f * F.length()) {
            for (int i = 0; i < x.length; i++) {
                x[i] = start + 0.0007f * i;
            }
            FastExp.exp2(FloatVector.fromArray(F, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) {
                double want = Math.pow(2, x[i]);
                worst = Math.max(worst, Math.abs(y[i] - want) / want / 0x1p-23);
                assertEquals(y[i], FastExp.exp2(x[i]), "scalar and vector exp2 differ at " + x[i]);
            }
        }
        assertTrue(worst <= 3, "worst relative error " + worst + " eps");
    }

    @Test
    void edgesFlushToZeroAndKeepNan() {
        float[] x = new float[F.length()];
        float[] y = new float[F.length()];
        x[0] = Float.NEGATIVE_INFINITY;
        x[1] = -1000f;
        x[2] = Float.NaN;
        x[3] = 0f;
        FastExp.exp(FloatVector.fromArray(F, x, 0)).intoArray(y, 0);
        assertEquals(0f, y[0]);
        assertEquals(0f, y[1]);
        assertTrue(Float.isNaN(y[2]));
        assertEquals(1f, y[3]);
        FastExp.exp2(FloatVector.fromArray(F, x, 0)).intoArray(y, 0);
        assertEquals(0f, y[0]);
        assertEquals(0f, y[1]);
        assertTrue(Float.isNaN(y[2]));
        assertEquals(1f, y[3]);
        assertEquals(0f, FastExp.exp2(Float.NEGATIVE_INFINITY));
    }
}
