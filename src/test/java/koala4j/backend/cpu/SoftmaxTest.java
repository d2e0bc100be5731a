package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * {@link Softmax} against its scalar twin {@link ScalarSoftmax} (double). Metric: max |fast - scalar| <=
 * 1e-5 * (1 + max |scalar|) over the finite outputs, and NaN exactly where the twin has NaN (all -inf rows, as torch).
 */
class SoftmaxTest {

    private static final float SENTINEL = -777f;

    @ParameterizedTest
    @CsvSource({"1, 1", "3, 5", "7, 16", "2, 17", "33, 100", "5, 1000", "3, 4097", "400, 77", "1, 0", "0, 9"})
    void agreesWithScalar(int rows, int cols) {
        var rnd = new Random(rows * 131L + cols);
        float[] x = new float[rows * cols + 3];
        for (int i = 0; i < x.length; i++) {
            // Mixed scales, so some rows hold spreads of ~100 (exp underflow) and a few -inf entries.
            x[i] = (float) (rnd.nextGaussian() * (i % 7 == 0 ? 30 : 2));
            if (rnd.nextInt(20) == 0) {
                x[i] = Float.NEGATIVE_INFINITY;
            }
        }
        if (rows > 2 && cols > 0) {
            Arrays.fill(x, 3 + cols, 3 + 2 * cols, Float.NEGATIVE_INFINITY);   // row 1 entirely -inf
        }
        compare(false, x, 3, rows, cols);
        compare(true, x, 3, rows, cols);
    }

    @Test
    void allNegativeInfinityRowGivesNanLikeTorch() {
        float[] x = {1f, 2f, 3f, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY};
        float[] out = new float[6];
        Softmax.softmax(x, 0, 2, 3, out, 0);
        assertEquals(1f, out[0] + out[1] + out[2], 1e-6f);
        for (int j = 3; j < 6; j++) {
            assertTrue(Float.isNaN(out[j]), "softmax col " + j + ": " + out[j]);
        }
        Softmax.logSoftmax(x, 0, 2, 3, out, 0);
        assertEquals(-0.40760596f, out[2], 1e-6f);                          // torch.log_softmax([1, 2, 3])[2]
        for (int j = 3; j < 6; j++) {
            assertTrue(Float.isNaN(out[j]), "logSoftmax col " + j + ": " + out[j]);
        }
    }

    @Test
    void inPlaceMatchesOutOfPlace() {
        var rnd = new Random(2);
        int rows = 9, cols = 53;
        float[] x = new float[rows * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian() * 4;
        }
        float[] want = new float[x.length];
        Softmax.softmax(x, 0, rows, cols, want, 0);
        float[] y = x.clone();
        Softmax.softmax(y, 0, rows, cols, y, 0);
        assertTrue(Arrays.equals(want, y));
        Softmax.logSoftmax(x, 0, rows, cols, want, 0);
        y = x.clone();
        Softmax.logSoftmax(y, 0, rows, cols, y, 0);
        assertTrue(Arrays.equals(want, y));
    }

    @Test
    void rejectsOutOfRange() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> Softmax.softmax(new float[10], 1, 2, 5, new float[10], 0));
        assertTrue(e.getMessage().contains("x [2, 5] at offset 1 needs 11 floats, array has 10"), e.getMessage());
    }

    private static void compare(boolean log, float[] x, int off, int rows, int cols) {
        int len = rows * cols;
        float[] want = new float[off + len + 2];
        float[] got = new float[off + len + 2];
        Arrays.fill(got, SENTINEL);
        if (log) {
            ScalarSoftmax.logSoftmax(x, off, rows, cols, want, off);
            Softmax.logSoftmax(x, off, rows, cols, got, off);
        } else {
            ScalarSoftmax.softmax(x, off, rows, cols, want, off);
            Softmax.softmax(x, off, rows, cols, got, off);
        }
        double maxRef = 0;
        for (int i = off; i < off + len; i++) {
            if (Float.isFinite(want[i])) {
                maxRef = Math.max(maxRef, Math.abs(want[i]));
            }
        }
        double tol = 1e-5 * (1 + maxRef);
        String what = (log ? "logSoftmax" : "softmax") + " [" + rows + ", " + cols + "]";
        for (int i = off; i < off + len; i++) {
            String at = what + " at row " + (i - off) / cols + " col " + (i - off) % cols;
            if (Float.isNaN(want[i]) || Float.isInfinite(want[i])) {
                assertEquals(want[i], got[i], at);               // NaN == NaN and -inf == -inf for assertEquals
            } else {
                assertTrue(Math.abs(got[i] - want[i]) <= tol, at + ": got " + got[i] + ", want " + want[i]
                        + ", tolerance " + tol);
            }
        }
        for (int i = 0; i < off; i++) {
            assertEquals(SENTINEL, got[i], "wrote before the output at " + i);
        }
        for (int i = off + len; i < got.length; i++) {
            assertEquals(SENTINEL, got[i], "wrote past the output at " + i);
        }
    }
}
