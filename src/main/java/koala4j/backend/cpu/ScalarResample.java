package koala4j.backend.cpu;

import koala4j.backend.cpu.Resample.Mode;

/**
 * Plain-loop twins of {@link Resample}, same signatures: each output pixel is computed on its own by a direct
 * transcription of torch's per-index formulas (UpSample.h, UpSampleKernel.cpp, AvgPoolKernel.cpp, Pool.h), with the
 * sums in double. Coordinates and weights stay in float as torch computes them for float32 tensors, because the
 * float rounding decides which input pixel a coordinate lands on.
 */
public final class ScalarResample {
    private ScalarResample() {
    }

    /** Twin of {@link Resample#upsampleNearest2x}. */
    public static void upsampleNearest2x(float[] x, int xOff, int planes, int h, int w, float[] out, int outOff) {
        float[] src = copyOf(x, xOff, planes * h * w);
        for (int p = 0; p < planes; p++) {
            for (int oy = 0; oy < 2 * h; oy++) {
                for (int ox = 0; ox < 2 * w; ox++) {
                    out[outOff + (p * 2 * h + oy) * 2 * w + ox] = src[(p * h + oy / 2) * w + ox / 2];
                }
            }
        }
    }

    /** Twin of {@link Resample#pooledSize}: torch's pooling_output_shape_pad_lr with dilation 1. */
    public static int pooledSize(int in, int kernel, int stride, int pad, boolean ceilMode) {
        if (kernel <= 0 || stride <= 0 || pad < 0 || pad > kernel / 2) {
            throw new IllegalArgumentException("kernel=%d stride=%d pad=%d".formatted(kernel, stride, pad));
        }
        int numerator = in + 2 * pad - (kernel - 1) - 1 + (ceilMode ? stride - 1 : 0);
        int size = Math.floorDiv(numerator, stride) + 1;      // div_rtn: rounds toward -inf
        if (ceilMode && (size - 1) * stride >= in + pad) {
            size--;
        }
        if (size < 1) {
            throw new IllegalArgumentException("output size " + size + " is too small");
        }
        return size;
    }

    /** Twin of {@link Resample#avgPool2d}: cpu_avg_pool in AvgPoolKernel.cpp. */
    public static void avgPool2d(float[] x, int xOff, int planes, int h, int w, int kernel, int stride, int pad,
            boolean countIncludePad, boolean ceilMode, float[] out, int outOff) {
        int oh = pooledSize(h, kernel, stride, pad, ceilMode);
        int ow = pooledSize(w, kernel, stride, pad, ceilMode);
        float[] src = copyOf(x, xOff, planes * h * w);
        for (int p = 0; p < planes; p++) {
            for (int oy = 0; oy < oh; oy++) {
                for (int ox = 0; ox < ow; ox++) {
                    int ih0 = oy * stride - pad;
                    int iw0 = ox * stride - pad;
                    int ih1 = Math.min(ih0 + kernel, h + pad);
                    int iw1 = Math.min(iw0 + kernel, w + pad);
                    int poolSize = (ih1 - ih0) * (iw1 - iw0);
                    ih0 = Math.max(ih0, 0);
                    iw0 = Math.max(iw0, 0);
                    ih1 = Math.min(ih1, h);
                    iw1 = Math.min(iw1, w);
                    int o = outOff + (p * oh + oy) * ow + ox;
                    if (ih0 >= ih1 || iw0 >= iw1) {
                        out[o] = 0f;
                        continue;
                    }
                    double sum = 0;
                    for (int ih = ih0; ih < ih1; ih++) {
                        for (int iw = iw0; iw < iw1; iw++) {
                            sum += src[(p * h + ih) * w + iw];
                        }
                    }
                    int divisor = countIncludePad ? poolSize : (ih1 - ih0) * (iw1 - iw0);
                    out[o] = (float) (sum / divisor);
                }
            }
        }
    }

    /** Twin of {@link Resample#resize}. */
    public static void resize(float[] x, int xOff, int planes, int h, int w, int outH, int outW, Mode mode,
            boolean alignCorners, boolean antialias, float[] out, int outOff) {
        Resample.checkResizeArgs(planes, h, w, outH, outW, mode, alignCorners, antialias);
        float[] src = copyOf(x, xOff, planes * h * w);
        if (antialias) {
            resizeAntialiased(src, planes, h, w, outH, outW, mode, alignCorners, out, outOff);
            return;
        }
        for (int p = 0; p < planes; p++) {
            for (int oy = 0; oy < outH; oy++) {
                Tap ty = tap(oy, h, outH, mode, alignCorners);
                for (int ox = 0; ox < outW; ox++) {
                    Tap tx = tap(ox, w, outW, mode, alignCorners);
                    double sum = 0;
                    for (int i = 0; i < ty.idx.length; i++) {
                        double rowSum = 0;
                        for (int j = 0; j < tx.idx.length; j++) {
                            rowSum += (double) tx.w[j] * src[(p * h + ty.idx[i]) * w + tx.idx[j]];
                        }
                        sum += ty.w[i] * rowSum;
                    }
                    out[outOff + (p * outH + oy) * outW + ox] = (float) sum;
                }
            }
        }
    }

    /** Input indices and weights for output index o along one axis. */
    private record Tap(int[] idx, float[] w) {
    }

    private static Tap tap(int o, int in, int out, Mode mode, boolean alignCorners) {
        switch (mode) {
            case NEAREST -> {
                float scale = (float) in / out;                               // compute_scales_value<float>
                int i = Math.min((int) Math.floor(o * scale), in - 1);        // nearest_neighbor_compute_source_index
                return new Tap(new int[] {i}, new float[] {1f});
            }
            case BILINEAR -> {
                if (in == out) {                                              // compute_source_index_and_lambda
                    return new Tap(new int[] {o, o}, new float[] {1f, 0f});
                }
                float real = sourceIndex(Resample.areaScale(in, out, alignCorners), o, alignCorners, false);
                int i0 = Math.min((int) Math.floor(real), in - 1);             // guard_index_and_lambda
                float lambda1 = Math.min(Math.max(real - i0, 0f), 1f);
                int i1 = i0 + (i0 < in - 1 ? 1 : 0);
                return new Tap(new int[] {i0, i1}, new float[] {1f - lambda1, lambda1});
            }
            default -> {
                float real = sourceIndex(Resample.areaScale(in, out, alignCorners), o, alignCorners, true);
                int i0 = Math.min((int) Math.floor(real), in - 1);
                float t = Math.min(Math.max(real - i0, 0f), 1f);
                float a = Resample.CUBIC_A;                                    // get_cubic_upsample_coefficients
                float x2 = 1f - t;
                float[] c = {Resample.cubic2(t + 1f, a), Resample.cubic1(t, a), Resample.cubic1(x2, a),
                        Resample.cubic2(x2 + 1f, a)};
                int[] idx = new int[4];
                for (int j = 0; j < 4; j++) {
                    idx[j] = Math.max(Math.min(i0 + j - 1, in - 1), 0);       // access clamped to the border
                }
                return new Tap(idx, c);
            }
        }
    }

    /** area_pixel_compute_source_index. */
    private static float sourceIndex(float scale, int dst, boolean alignCorners, boolean cubic) {
        if (alignCorners) {
            return scale * dst;
        }
        float src = scale * (dst + 0.5f) - 0.5f;
        return !cubic && src < 0f ? 0f : src;
    }

    /** separable_upsample_generic_Nd_kernel_impl: width pass, then height pass; an unchanged axis is skipped. */
    private static void resizeAntialiased(float[] src, int planes, int h, int w, int outH, int outW, Mode mode,
            boolean alignCorners, float[] out, int outOff) {
        double[] cur = new double[src.length];
        for (int i = 0; i < src.length; i++) {
            cur[i] = src[i];
        }
        if (w != outW) {
            double[] next = new double[planes * h * outW];
            for (int ox = 0; ox < outW; ox++) {
                int[] min = new int[1];
                float[] wt = aaWeights(ox, w, outW, mode, alignCorners, min);
                for (int row = 0; row < planes * h; row++) {
                    double sum = 0;
                    for (int j = 0; j < wt.length; j++) {
                        sum += wt[j] * cur[row * w + min[0] + j];
                    }
                    next[row * outW + ox] = sum;
                }
            }
            cur = next;
        }
        if (h != outH) {
            double[] next = new double[planes * outH * outW];
            for (int oy = 0; oy < outH; oy++) {
                int[] min = new int[1];
                float[] wt = aaWeights(oy, h, outH, mode, alignCorners, min);
                for (int p = 0; p < planes; p++) {
                    for (int ox = 0; ox < outW; ox++) {
                        double sum = 0;
                        for (int j = 0; j < wt.length; j++) {
                            sum += wt[j] * cur[(p * h + min[0] + j) * outW + ox];
                        }
                        next[(p * outH + oy) * outW + ox] = sum;
                    }
                }
            }
            cur = next;
        }
        for (int i = 0; i < cur.length; i++) {
            out[outOff + i] = (float) cur[i];
        }
    }

    /**
     * _compute_indices_min_size_weights_aa for output index i: returns the normalised weights of inputs
     * xmin[0] .. xmin[0] + length - 1. Types follow torch (float scale/center/support, double intermediates).
     */
    private static float[] aaWeights(int i, int in, int out, Mode mode, boolean alignCorners, int[] xminOut) {
        float scale = Resample.areaScale(in, out, alignCorners);
        int interpSize = mode == Mode.BICUBIC ? 4 : 2;
        float support = (float) (scale >= 1.0 ? (interpSize * 0.5) * scale : interpSize * 0.5);
        int maxInterpSize = (int) Math.ceil(support) * 2 + 1;
        float center = (float) (scale * (i + 0.5));
        float invscale = (float) (scale >= 1.0 ? 1.0 / scale : 1.0);
        int xmin = Math.max((int) (center - support + 0.5), 0);
        int xsize = Math.min((int) (center + support + 0.5), in) - xmin;
        xsize = Math.max(0, Math.min(xsize, maxInterpSize));
        float[] wt = new float[xsize];
        float total = 0f;
        for (int j = 0; j < xsize; j++) {
            float v = (float) ((j + xmin - center + 0.5) * invscale);
            float a = Math.abs(v);
            float f;
            if (mode == Mode.BICUBIC) {                                   // HelperInterpCubic::aa_filter, a = -0.5
                f = a < 1f ? Resample.cubic1(a, Resample.CUBIC_A_AA)
                        : a < 2f ? Resample.cubic2(a, Resample.CUBIC_A_AA) : 0f;
            } else {                                                      // HelperInterpLinear::aa_filter
                f = a < 1f ? (float) (1.0 - a) : 0f;
            }
            wt[j] = f;
            total += f;
        }
        if (total != 0f) {
            for (int j = 0; j < xsize; j++) {
                wt[j] /= total;
            }
        }
        xminOut[0] = xmin;
        return wt;
    }

    private static float[] copyOf(float[] x, int off, int len) {
        float[] c = new float[len];
        System.arraycopy(x, off, c, 0, len);
        return c;
    }
}
