package koala4j.backend.cpu;

/**
 * Slow twin of {@link Softmax}: the textbook max-subtracted softmax and log-softmax, one row at a time, in double.
 * An all -inf row gives NaN (max is -inf, -inf - -inf is NaN), as torch does. Only tests use it.
 */
final class ScalarSoftmax {

    private ScalarSoftmax() {
    }

    static void softmax(float[] x, int xOffset, int rows, int cols, float[] out, int outOffset) {
        for (int r = 0; r < rows; r++) {
            int xo = xOffset + r * cols;
            int oo = outOffset + r * cols;
            double max = max(x, xo, cols);
            double sum = 0;
            for (int j = 0; j < cols; j++) {
                sum += Math.exp(x[xo + j] - max);
            }
            for (int j = 0; j < cols; j++) {
                out[oo + j] = (float) (Math.exp(x[xo + j] - max) / sum);
            }
        }
    }

    static void logSoftmax(float[] x, int xOffset, int rows, int cols, float[] out, int outOffset) {
        for (int r = 0; r < rows; r++) {
            int xo = xOffset + r * cols;
            int oo = outOffset + r * cols;
            double max = max(x, xo, cols);
            double sum = 0;
            for (int j = 0; j < cols; j++) {
                sum += Math.exp(x[xo + j] - max);
            }
            double logSum = Math.log(sum);
            for (int j = 0; j < cols; j++) {
                out[oo + j] = (float) (x[xo + j] - max - logSum);
            }
        }
    }

    private static double max(float[] x, int xo, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            max = Math.max(max, x[xo + j]);
        }
        return max;
    }
}
