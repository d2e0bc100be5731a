package koala4j.backend.cpu;

/**
 * Scalar twin of {@link Gemm}: the definition, as plain loops with double accumulation, used only by tests.
 * Same signature and same argument checks.
 */
final class ScalarGemm {

    private ScalarGemm() {
    }

    static void gemm(int batch, int m, int n, int k, Gemm.MatrixRef a, Gemm.MatrixRef b, float[] c, int cOffset,
                     int ldc, long cBatchStride, Gemm.Epilogue ep) {
        Gemm.check(batch, m, n, k, a, b, c, cOffset, ldc, cBatchStride, ep);
        for (int bi = 0; bi < batch; bi++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) {
                        acc += (double) element(a, bi, i, p) * element(b, bi, p, j);
                    }
                    float v = (float) (ep.alpha() * acc);
                    if (ep.bias() != null) {
                        v += ep.bias()[ep.biasPerRow() ? i : j];
                    }
                    v = ep.act().apply(v);
                    int at = (int) (cOffset + bi * cBatchStride + (long) i * ldc + j);
                    c[at] = ep.accumulate() ? c[at] + v : v;
                }
            }
        }
    }

    static float element(Gemm.MatrixRef x, int bi, int r, int col) {
        long at = x.offset() + bi * x.batchStride() + (x.transposed() ? (long) col * x.ld() + r : (long) r * x.ld() + col);
        return x.data().get(at);
    }
}
