package koala4j.backend.cpu;

import koala4j.backend.cpu.Attention.Mask;
import koala4j.backend.cpu.Attention.Operand;

/**
 * Slow twin of {@link Attention#attention}: the textbook {@code softmax(q·kᵀ*scale + mask) · v} one query row at a
 * time, scores held in full and everything accumulated in double. Only tests use it.
 */
final class ScalarAttention {

    private ScalarAttention() {
    }

    /** Same contract as {@link Attention#attention}, including 0 for a row whose keys are all masked. */
    static void attention(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                          Operand q, Operand k, Operand v, Mask mask, boolean causal, float scale,
                          float[] out, int outOffset) {
        int group = heads / kvHeads;
        double[] s = new double[nk];
        for (int bi = 0; bi < b; bi++) {
            for (int h = 0; h < heads; h++) {
                int kvh = h / group;
                for (int i = 0; i < nq; i++) {
                    long qo = q.offset() + bi * q.strideB() + h * q.strideH() + i * q.strideN();
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < nk; j++) {
                        long ko = k.offset() + bi * k.strideB() + kvh * k.strideH() + j * k.strideN();
                        double dot = 0;
                        for (int dd = 0; dd < d; dd++) {
                            dot += (double) q.data()[(int) (qo + dd)] * k.data()[(int) (ko + dd)];
                        }
                        double x = dot * scale;
                        if (mask != null) {
                            x += mask.data()[(int) (mask.offset() + bi * mask.strideB() + h * mask.strideH()
                                    + i * mask.strideN() + j)];
                        }
                        if (causal && j > i + (nk - nq)) {
                            x = Double.NEGATIVE_INFINITY;
                        }
                        s[j] = x;
                        max = Math.max(max, x);
                    }
                    int dst = outOffset + ((bi * heads + h) * nq + i) * dv;
                    if (max == Double.NEGATIVE_INFINITY) {
                        for (int c = 0; c < dv; c++) {
                            out[dst + c] = 0f;
                        }
                        continue;
                    }
                    double sum = 0;
                    for (int j = 0; j < nk; j++) {
                        s[j] = Math.exp(s[j] - max);
                        sum += s[j];
                    }
                    for (int c = 0; c < dv; c++) {
                        double acc = 0;
                        for (int j = 0; j < nk; j++) {
                            acc += s[j] * v.data()[(int) (v.offset() + bi * v.strideB() + kvh * v.strideH()
                                    + j * v.strideN() + c)];
                        }
                        out[dst + c] = (float) (acc / sum);
                    }
                }
            }
        }
    }
}
