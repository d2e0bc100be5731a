package koala4j.backend.cpu;

import koala4j.tensor.Activation;
import koala4j.tensor.quant.Q8Storage;

/**
 * Scalar twin of {@link Q8Gemm}: the definition as plain loops (each weight read back as d * q, products summed in
 * double), used only by tests. Same arguments and checks.
 */
final class ScalarQ8 {

    private ScalarQ8() {
    }

    static void linear(float[] x, int xOff, int m, int k, Q8Storage w, long wOffset, int n, float[] bias,
                       Activation act, float[] out) {
        Q8Gemm.check(x, xOff, m, k, w, wOffset, n, bias, out);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    acc += (double) x[xOff + i * k + p] * w.get(wOffset + (long) j * k + p);
                }
                float v = (float) acc + (bias == null ? 0f : bias[j]);
                out[i * n + j] = act.apply(v);
            }
        }
    }
}
