package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@link FastExp} against Math.exp / Math.pow in double. Metric: relative error in units of float epsilon
 * (2^-23) over a dense sweep of the domain softmax uses; bound 3 (the polynomials are ~1-2 ulp, plus the rounding
 * of the result). Vector and scalar paths must agree bit for bit (the vector path's tail uses the scalar one).
 */
class FastExpTest {

    @Test
    void expIsWithinThreeEpsilonsDownToTheNormalRange() {
        int n = 87_001;                                    // not a multiple of the vector length: exercises the tail
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = -87f * i / (n - 1);
        }
        float[] y = new float[n];
        float sum = FastExp.exp(x, 0, y, 0, n, 0f);
        double worst = 0;
        double want = 0;
        for (int i = 0; i < n; i++) {
            double e = Math.exp(x[i]);
            want += e;
            worst = Math.max(worst, Math.abs(y[i] - e) / e / 0x1p-23);
            assertEquals(y[i], FastExp.exp(x[i]), "scalar and vector exp differ at " + x[i]);
        }
        assertTrue(worst <= 3, "worst relative error " + worst + " eps");
        assertEquals(want, sum, want * 1e-5);
        assertEquals(sum, FastExp.exp(x, 0, null, 0, n, 0f), "sum without storing");
    }

    @Test
    void exp2IsWithinThreeEpsilonsAndAgreesWithScalar() {
        int n = 16 * 12_000;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = -126f + 138f * i / n;                   // up to +12: lazy rescaling lets p exceed 1
        }
        float[] y = x.clone();
        FastExp.exp2InPlace(y, 0, n, 0f);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double want = Math.pow(2, x[i]);
            worst = Math.max(worst, Math.abs(y[i] - want) / want / 0x1p-23);
            assertEquals(y[i], FastExp.exp2(x[i]), "scalar and vector exp2 differ at " + x[i]);
        }
        assertTrue(worst <= 3, "worst relative error " + worst + " eps");
    }

    @Test
    void edgesFlushToZeroAndKeepNan() {
        float[] x = new float[64];
        x[0] = Float.NEGATIVE_INFINITY;
        x[1] = -1000f;
        x[2] = Float.NaN;
        float[] y = new float[64];
        FastExp.exp(x, 0, y, 0, 64, 0f);
        assertEquals(0f, y[0]);
        assertEquals(0f, y[1]);
        assertTrue(Float.isNaN(y[2]));
        assertEquals(1f, y[3]);
        y = x.clone();
        FastExp.exp2InPlace(y, 0, 64, 0f);
        assertEquals(0f, y[0]);
        assertEquals(0f, y[1]);
        assertTrue(Float.isNaN(y[2]));
        assertEquals(1f, y[3]);
        assertEquals(0f, FastExp.exp2(Float.NEGATIVE_INFINITY));
        assertEquals(0f, FastExp.exp(Float.NEGATIVE_INFINITY));
    }
}
