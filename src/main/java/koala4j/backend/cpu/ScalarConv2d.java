package koala4j.backend.cpu;

import koala4j.tensor.Activation;

/**
 * Scalar twin of {@link Conv2d}: torch.nn.functional.conv2d written as the direct seven-loop sum in double, used
 * only by tests. Same signature and same argument checks.
 */
final class ScalarConv2d {

    private ScalarConv2d() {
    }

    static void conv2d(float[] x, int xOffset, int n, int cin, int h, int w, FloatSource weight, int cout, int kh,
                       int kw, float[] bias, int strideH, int strideW, int padH, int padW, int groups,
                       Activation act, float[] out, int outOffset) {
        Conv2d.check(x, xOffset, n, cin, h, w, weight, cout, kh, kw, bias, strideH, strideW, padH, padW, groups, act,
                out, outOffset);
        int ho = (h + 2 * padH - kh) / strideH + 1;
        int wo = (w + 2 * padW - kw) / strideW + 1;
        int cinG = cin / groups;
        int coutG = cout / groups;
        for (int img = 0; img < n; img++) {
            for (int co = 0; co < cout; co++) {
                int g = co / coutG;
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        double acc = 0;
                        for (int c = 0; c < cinG; c++) {
                            int ci = g * cinG + c;
                            for (int ky = 0; ky < kh; ky++) {
                                int iy = oy * strideH - padH + ky;
                                if (iy < 0 || iy >= h) {
                                    continue;
                                }
                                for (int kx = 0; kx < kw; kx++) {
                                    int ix = ox * strideW - padW + kx;
                                    if (ix < 0 || ix >= w) {
                                        continue;
                                    }
                                    float xv = x[xOffset + ((img * cin + ci) * h + iy) * w + ix];
                                    float wv = weight.get((((long) co * cinG + c) * kh + ky) * kw + kx);
                                    acc += (double) xv * wv;
                                }
                            }
                        }
                        float v = (float) acc;
                        if (bias != null) {
                            v += bias[co];
                        }
                        out[outOffset + ((img * cout + co) * ho + oy) * wo + ox] = act.apply(v);
                    }
                }
            }
        }
    }
}
