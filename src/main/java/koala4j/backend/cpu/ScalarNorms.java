package koala4j.backend.cpu;

import koala4j.tensor.Activation;

/**
 * Plain-loop twins of {@link Norms}, same signatures: each statistic is a textbook two-pass sum in double. Used by
 * tests (and by other backends' tests) as the reference; not tuned for speed.
 */
public final class ScalarNorms {
    private ScalarNorms() {
    }

    /** Twin of {@link Norms#groupNorm}. */
    public static void groupNorm(float[] x, int xOff, int n, int channels, int spatial, int groups, float[] gamma,
            float[] beta, float eps, Activation act, float[] out, int outOff) {
        if (groups <= 0 || channels % groups != 0) {
            throw new IllegalArgumentException("channels=%d is not divisible by groups=%d".formatted(channels, groups));
        }
        int total = n * channels * spatial;
        float[] src = copyOf(x, xOff, total);
        int perGroup = channels / groups;
        int groupSize = perGroup * spatial;
        for (int b = 0; b < n; b++) {
            for (int g = 0; g < groups; g++) {
                int base = (b * groups + g) * groupSize;
                double mean = 0;
                for (int i = 0; i < groupSize; i++) {
                    mean += src[base + i];
                }
                mean /= groupSize;
                double var = 0;
                for (int i = 0; i < groupSize; i++) {
                    double d = src[base + i] - mean;
                    var += d * d;
                }
                var /= groupSize;
                double rstd = 1.0 / Math.sqrt(var + eps);
                for (int k = 0; k < perGroup; k++) {
                    int c = g * perGroup + k;
                    for (int s = 0; s < spatial; s++) {
                        int i = base + k * spatial + s;
                        double y = (src[i] - mean) * rstd * (gamma == null ? 1.0 : gamma[c])
                                + (beta == null ? 0.0 : beta[c]);
                        out[outOff + i] = act.apply((float) y);
                    }
                }
            }
        }
    }

    /** Twin of {@link Norms#layerNorm}. */
    public static void layerNorm(float[] x, int xOff, int rows, int cols, float[] gamma, float[] beta, float eps,
            float[] out, int outOff) {
        float[] src = copyOf(x, xOff, rows * cols);
        for (int r = 0; r < rows; r++) {
            int base = r * cols;
            double mean = 0;
            for (int j = 0; j < cols; j++) {
                mean += src[base + j];
            }
            mean /= cols;
            double var = 0;
            for (int j = 0; j < cols; j++) {
                double d = src[base + j] - mean;
                var += d * d;
            }
            var /= cols;
            double rstd = 1.0 / Math.sqrt(var + eps);
            for (int j = 0; j < cols; j++) {
                double y = (src[base + j] - mean) * rstd * (gamma == null ? 1.0 : gamma[j])
                        + (beta == null ? 0.0 : beta[j]);
                out[outOff + base + j] = (float) y;
            }
        }
    }

    /** Twin of {@link Norms#rmsNorm}. */
    public static void rmsNorm(float[] x, int xOff, int rows, int cols, float[] gamma, float eps, float[] out,
            int outOff) {
        float[] src = copyOf(x, xOff, rows * cols);
        for (int r = 0; r < rows; r++) {
            int base = r * cols;
            double ss = 0;
            for (int j = 0; j < cols; j++) {
                ss += (double) src[base + j] * src[base + j];
            }
            double rstd = 1.0 / Math.sqrt(ss / cols + eps);
            for (int j = 0; j < cols; j++) {
                out[outOff + base + j] = (float) (src[base + j] * rstd * (gamma == null ? 1.0 : gamma[j]));
            }
        }
    }

    /** Reading from a copy makes every aliasing of x and out behave like separate arrays. */
    private static float[] copyOf(float[] x, int off, int len) {
        float[] c = new float[len];
        System.arraycopy(x, off, c, 0, len);
        return c;
    }
}
