package koala4j.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.nio.file.Paths;

/** Element-wise |actual - expected| <= atol + rtol·|expected|, reporting the worst element on failure. */
public final class Close {

    private Close() {
    }

    public static void assertClose(float[] expected, float[] actual, double atol, double rtol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        int worst = -1;
        double worstExcess = 0;
        double maxAbs = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs((double) actual[i] - expected[i]);
            if (Double.isNaN(d)) {
                fail(what + ": NaN at " + i + " (expected " + expected[i] + ", got " + actual[i] + ")");
            }
            maxAbs = Math.max(maxAbs, d);
            double excess = d - (atol + rtol * Math.abs(expected[i]));
            if (excess > worstExcess) {
                worstExcess = excess;
                worst = i;
            }
        }
        if (worst >= 0) {
            fail(what + ": index " + worst + " expected " + expected[worst] + ", got " + actual[worst]
                    + " (max |Δ| " + maxAbs + ", atol " + atol + ", rtol " + rtol + ")");
        }
    }

    /** A test resource folder or file under src/test/resources. */
    public static Path resource(String relative) {
        try {
            var url = Close.class.getClassLoader().getResource(relative);
            if (url == null) {
                throw new IllegalStateException("test resource " + relative + " not found");
            }
            return Paths.get(url.toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
