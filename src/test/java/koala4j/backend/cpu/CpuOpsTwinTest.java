package koala4j.backend.cpu;

import static koala4j.testing.Close.assertClose;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.ResizeMode;
import koala4j.tensor.Tensor;

/**
 * The neural-network ops through the {@link CpuOps} contract, fed non-contiguous views (permuted, sliced,
 * F16), against the scalar twins on the dense values: proves the wiring (layout, strides, dtype conversion, axis
 * handling) rather than the kernels, which their own tests cover. |Δ| <= 1e-5 + 1e-5·|ref|.
 */
class CpuOpsTwinTest {

    private final CpuOps ops = new CpuOps();
    private final SplittableRandom rnd = new SplittableRandom(11);

    private float[] random(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    /** An NCHW tensor stored as NHWC and permuted back: same values, channels-last strides. */
    private Tensor channelsLast(float[] nchw, int n, int c, int h, int w) {
        float[] nhwc = new float[nchw.length];
        for (int b = 0; b < n; b++) {
            for (int ch = 0; ch < c; ch++) {
                for (int y = 0; y < h; y++) {
                    for (int x = 0; x < w; x++) {
                        nhwc[((b * h + y) * w + x) * c + ch] = nchw[((b * c + ch) * h + y) * w + x];
                    }
                }
            }
        }
        return ops.fromArray(nhwc, n, h, w, c).permute(0, 3, 1, 2);
    }

    @Test
    void conv2dOnAChannelsLastViewWithF16Weights() {
        int n = 2, cin = 6, h = 9, w = 7, cout = 4;
        float[] x = random(n * cin * h * w);
        float[] weight = random(cout * cin / 2 * 9);
        float[] bias = random(cout);
        Tensor w16 = ops.fromArray(weight, cout, cin / 2, 3, 3).to(DType.F16);
        float[] wRounded = w16.toFloatArray();
        Tensor out = ops.conv2d(channelsLast(x, n, cin, h, w), w16, ops.fromArray(bias, cout), 2, 1, 2, Activation.SILU);
        int ho = (h + 2 - 3) / 2 + 1;
        int wo = (w + 2 - 3) / 2 + 1;
        float[] ref = new float[n * cout * ho * wo];
        ScalarConv2d.conv2d(x, 0, n, cin, h, w, FloatSource.of(wRounded), cout, 3, 3, bias, 2, 2, 1, 1, 2,
                Activation.SILU, ref, 0);
        assertClose(ref, out.toFloatArray(), 1e-5, 1e-5, "conv2d");
    }

    @Test
    void normsOnViews() {
        int n = 2, c = 8, h = 5, w = 3;
        float[] x = random(n * c * h * w);
        float[] gamma = random(c);
        float[] beta = random(c);
        Tensor out = ops.groupNorm(channelsLast(x, n, c, h, w), 4, ops.fromArray(gamma, c), ops.fromArray(beta, c), 1e-5f,
                Activation.SILU);
        float[] ref = new float[x.length];
        ScalarNorms.groupNorm(x, 0, n, c, h * w, 4, gamma, beta, 1e-5f, Activation.SILU, ref, 0);
        assertClose(ref, out.toFloatArray(), 1e-5, 1e-5, "group_norm");

        int rows = 7, cols = 19;
        float[] y = random(rows * cols);
        float[] g = random(cols);
        float[] b = random(cols);
        Tensor transposed = ops.fromArray(y, rows, cols).transpose(0, 1).contiguous().transpose(0, 1);
        float[] lref = new float[y.length];
        ScalarNorms.layerNorm(y, 0, rows, cols, g, b, 1e-5f, lref, 0);
        assertClose(lref, ops.layerNorm(transposed, ops.fromArray(g, cols), ops.fromArray(b, cols), 1e-5f).toFloatArray(),
                1e-5, 1e-5, "layer_norm");
        float[] rref = new float[y.length];
        ScalarNorms.rmsNorm(y, 0, rows, cols, g, 1e-6f, rref, 0);
        assertClose(rref, ops.rmsNorm(transposed, ops.fromArray(g, cols), 1e-6f).toFloatArray(), 1e-5, 1e-5, "rms_norm");
    }

    @Test
    void softmaxOverAnInnerAxis() {
        float[] x = random(3 * 5 * 4);
        Tensor t = ops.fromArray(x, 3, 5, 4);
        Tensor sm = ops.softmax(t, 1);                                    // over the 5
        float[] moved = t.transpose(1, 2).contiguous().toFloatArray();   // [3, 4, 5]
        float[] ref = new float[moved.length];
        ScalarSoftmax.softmax(moved, 0, 12, 5, ref, 0);
        assertClose(ref, sm.transpose(1, 2).contiguous().toFloatArray(), 1e-6, 1e-6, "softmax axis 1");
        float[] lref = new float[moved.length];
        ScalarSoftmax.logSoftmax(moved, 0, 12, 5, lref, 0);
        assertClose(lref, ops.logSoftmax(t, 1).transpose(1, 2).contiguous().toFloatArray(), 1e-5, 1e-5, "log_softmax");
    }

    @Test
    void attentionOnSplitHeadViewsWithAPaddingMask() {
        int b = 2, heads = 4, kvHeads = 2, n = 9, m = 6, d = 8;
        float[] qkv = random(b * n * heads * d);
        Tensor q = ops.fromArray(qkv, b, n, heads, d).transpose(1, 2);            // [B, nH, N, D] view
        float[] kv = random(b * m * kvHeads * d * 2);
        Tensor kvT = ops.fromArray(kv, b, m, 2, kvHeads, d);
        Tensor k = kvT.select(2, 0).transpose(1, 2);                               // [B, nKV, M, D] views
        Tensor v = kvT.select(2, 1).transpose(1, 2);
        float[] keep = new float[b * m];
        java.util.Arrays.fill(keep, 1f);
        keep[m - 1] = 0f;                                                          // batch 0 hides its last key
        Tensor mask = ops.fromArray(keep, b, 1, 1, m).maskToBias();
        Tensor out = ops.attention(q, k, v, mask, false, 0.3f);
        float[] qd = q.contiguous().toFloatArray();
        float[] kd = k.contiguous().toFloatArray();
        float[] vd = v.contiguous().toFloatArray();
        float[] md = mask.expand(b, heads, n, m).contiguous().toFloatArray();
        float[] ref = new float[b * heads * n * d];
        long sq = (long) heads * n * d;
        long sk = (long) kvHeads * m * d;
        ScalarAttention.attention(b, heads, kvHeads, n, m, d, d,
                new Attention.Operand(qd, 0, sq, (long) n * d, d), new Attention.Operand(kd, 0, sk, (long) m * d, d),
                new Attention.Operand(vd, 0, sk, (long) m * d, d),
                new Attention.Mask(md, 0, (long) heads * n * m, (long) n * m, m), false, 0.3f, ref, 0);
        assertClose(ref, out.toFloatArray(), 1e-5, 1e-5, "attention");
    }

    @Test
    void activationsGegluAndResamplingOnViews() {
        float[] x = random(2 * 3 * 6 * 5);
        Tensor view = channelsLast(x, 2, 3, 6, 5);
        float[] up = new float[x.length * 4];
        ScalarResample.upsampleNearest2x(x, 0, 6, 6, 5, up, 0);
        assertClose(up, ops.upsampleNearest2x(view).toFloatArray(), 0, 0, "upsample");
        float[] pooled = new float[6 * 3 * 2];
        ScalarResample.avgPool2d(x, 0, 6, 6, 5, 2, 2, 0, true, false, pooled, 0);
        assertClose(pooled, ops.avgPool2d(view, 2, 2, 0, false, true).toFloatArray(), 1e-6, 1e-6, "avg_pool");
        float[] resized = new float[6 * 4 * 7];
        ScalarResample.resize(x, 0, 6, 6, 5, 4, 7, Resample.Mode.BICUBIC, false, true, resized, 0);
        assertClose(resized, ops.resize(view, 4, 7, ResizeMode.BICUBIC, false, true).toFloatArray(), 1e-5, 1e-5, "resize");
        float[] g = random(3 * 10);
        float[] gref = new float[15];
        ScalarActivations.geglu(g, 0, 3, 5, gref, 0);
        assertClose(gref, ops.geglu(ops.fromArray(g, 3, 10)).toFloatArray(), 1e-6, 1e-6, "geglu");
        float[] aref = new float[x.length];
        ScalarActivations.apply(Activation.GELU_TANH, x, 0, x.length, aref, 0);
        assertClose(aref, ops.activation(Activation.GELU_TANH, ops.fromArray(x, x.length)).toFloatArray(), 2e-6, 2e-6, "gelu_tanh");
    }
}
