package koala4j.backend.cpu;

import koala4j.tensor.Activation;

/**
 * Plain-loop twins of {@link Activations}, same signatures, using the double-precision {@link Activation#apply}.
 * Infinite inputs follow the limits (act(+inf) = +inf, act(-inf) = 0 for all but NONE), where the double formulas
 * would give inf/inf or inf*0.
 */
public final class ScalarActivations {
    private ScalarActivations() {
    }

    /** act(x) with the limits at +-inf. */
    static float ref(Activation act, float x) {
        if (x == Float.NEGATIVE_INFINITY) {
            return switch (act) {
                case NONE -> x;
                case RELU -> 0f;
                default -> -0f;
            };
        }
        if (x == Float.POSITIVE_INFINITY) {
            return x;
        }
        return act.apply(x);
    }

    /** Twin of {@link Activations#apply}. */
    public static void apply(Activation act, float[] x, int xOff, int len, float[] out, int outOff) {
        float[] src = new float[len];
        System.arraycopy(x, xOff, src, 0, len);
        for (int i = 0; i < len; i++) {
            out[outOff + i] = ref(act, src[i]);
        }
    }

    /** Twin of {@link Activations#geglu}: out[r, j] = x[r, j] * gelu(x[r, cols + j]). */
    public static void geglu(float[] x, int xOff, int rows, int cols, float[] out, int outOff) {
        float[] src = new float[rows * 2 * cols];
        System.arraycopy(x, xOff, src, 0, src.length);
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                double hidden = src[r * 2 * cols + j];
                double gate = ref(Activation.GELU, src[r * 2 * cols + cols + j]);
                out[outOff + r * cols + j] = (float) (hidden * gate);
            }
        }
    }

    /** Twin of {@link Activations#swiglu}: out = silu(gate) * up. */
    public static void swiglu(float[] gate, int gateOff, float[] up, int upOff, int len, float[] out, int outOff) {
        float[] g = new float[len];
        float[] u = new float[len];
        System.arraycopy(gate, gateOff, g, 0, len);
        System.arraycopy(up, upOff, u, 0, len);
        for (int i = 0; i < len; i++) {
            out[outOff + i] = (float) ((double) ref(Activation.SILU, g[i]) * u[i]);
        }
    }
}
