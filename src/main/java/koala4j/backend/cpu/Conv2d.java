package koala4j.backend.cpu;

import static koala4j.backend.cpu.GemmKernel.NR;
import static koala4j.backend.cpu.GemmVector.F;
import static koala4j.backend.cpu.GemmVector.VL;

import java.util.Arrays;
import java.util.Objects;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;

import koala4j.tensor.Activation;

/**
 * torch.nn.functional.conv2d on NCHW float32 as an implicit GEMM: per image and group,
 * out[coutG, ho*wo] = W[coutG, cinG*kh*kw] . im2col[cinG*kh*kw, ho*wo], where the im2col matrix is never built:
 * {@link Im2col} gathers each KC x NC block of it straight from the input into the GEMM's B-panel layout, so the
 * extra memory is one L2-sized block per thread whatever the image size. A 1x1, stride-1, unpadded conv is the plain
 * GEMM W . x. The weight (F32/F16/BF16, possibly mmap'ed) is packed as the A operand; bias and activation run in
 * the GEMM epilogue. Thread-safe; the scalar twin is {@link ScalarConv2d}.
 */
public final class Conv2d {

    private Conv2d() {
    }

    /**
     * torch.nn.functional.conv2d on NCHW float32: x [n, cin, h, w] contiguous at xOffset; weight
     * [cout, cin/groups, kh, kw]; bias (nullable) [cout]; out [n, cout, ho, wo] contiguous at outOffset,
     * ho = (h + 2*padH - kh)/strideH + 1 (same for w); act applied after bias (fused epilogue, e.g. SiLU).
     *
     * @throws IllegalArgumentException naming the value when cin or cout is not divisible by groups, the output
     *                                  would be empty, or an array is too short
     */
    public static void conv2d(float[] x, int xOffset, int n, int cin, int h, int w, FloatSource weight, int cout,
                              int kh, int kw, float[] bias, int strideH, int strideW, int padH, int padW, int groups,
                              Activation act, float[] out, int outOffset) {
        check(x, xOffset, n, cin, h, w, weight, cout, kh, kw, bias, strideH, strideW, padH, padW, groups, act, out,
                outOffset);
        if (n == 0) {
            return;
        }
        int ho = (h + 2 * padH - kh) / strideH + 1;
        int wo = (w + 2 * padW - kw) / strideW + 1;
        int cinG = cin / groups;
        int coutG = cout / groups;
        int k = cinG * kh * kw;
        int pixels = ho * wo;
        if (cinG == 1) {
            // depthwise: K = kh*kw is far too short for the packed GEMM to pay off
            depthwise(x, xOffset, n, cin, h, w, weight, cout, kh, kw, bias, strideH, strideW, padH, padW, act, out,
                    outOffset, ho, wo);
            return;
        }
        // batch index b = image * groups + group: input, output and weight slices all step linearly with it
        // (the weight and the bias only every `groups` steps)
        var a = new GemmPacking.RefA(new Gemm.MatrixRef(weight, 0, k, false, (long) coutG * k), groups);
        GemmPacking.BPanels b;
        if (kh == 1 && kw == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0) {
            b = new GemmPacking.RefB(new Gemm.MatrixRef(FloatSource.of(x), xOffset, h * w, false, (long) cinG * h * w), 0);
        } else {
            b = new Im2col(x, xOffset, cinG, h, w, kh, kw, strideH, strideW, padH, padW, wo);
        }
        Gemm.Epilogue ep = new Gemm.Epilogue(1f, bias, true, act, false);
        Gemm.run(n * groups, coutG, pixels, k, a, b, out, outOffset, pixels, (long) coutG * pixels, ep, groups, coutG);
    }

    /**
     * Direct convolution for one input channel per group (depthwise, channel multiplier coutG): each output row is
     * a sum of kh*kw scaled, shifted input rows, accumulated in a row buffer and then sent through the epilogue.
     */
    private static void depthwise(float[] x, int xOffset, int n, int cin, int h, int w, FloatSource weight, int cout,
                                  int kh, int kw, float[] bias, int sh, int sw, int ph, int pw, Activation act,
                                  float[] out, int outOffset, int ho, int wo) {
        int multiplier = cout / cin;
        int taps = kh * kw;
        Parallel.forRange(n * cout, 1, (from, to) -> {
            float[] acc = GemmWorkspace.get().out(wo);
            float[] wv = new float[taps];
            for (int t = from; t < to; t++) {
                int img = t / cout;
                int co = t % cout;
                int plane = xOffset + (img * cin + co / multiplier) * h * w;
                weight.read((long) co * taps, wv, 0, taps);
                float rowBias = bias == null ? 0f : bias[co];
                for (int oy = 0; oy < ho; oy++) {
                    Arrays.fill(acc, 0, wo, 0f);
                    for (int ky = 0; ky < kh; ky++) {
                        int iy = oy * sh - ph + ky;
                        if (iy < 0 || iy >= h) {
                            continue;
                        }
                        int row = plane + iy * w;
                        for (int kx = 0; kx < kw; kx++) {
                            // output columns whose input column ox*sw - pw + kx lies inside [0, w)
                            int lo = Math.max(0, Math.ceilDiv(pw - kx, sw));
                            int hi = Math.min(wo, Math.floorDiv(w - 1 + pw - kx, sw) + 1);
                            axpy(wv[ky * kw + kx], x, row - pw + kx, sw, acc, lo, hi);
                        }
                    }
                    GemmVector.finishRow(acc, 0, out, outOffset + (t * ho + oy) * wo, wo, 1f, null, 0, false,
                            rowBias, act, false);
                }
            }
        });
    }

    /** acc[ox] += a * x[base + ox*stride] for ox in [lo, hi). */
    private static void axpy(float a, float[] x, int base, int stride, float[] acc, int lo, int hi) {
        int ox = lo;
        if (stride == 1) {
            FloatVector av = FloatVector.broadcast(F, a);
            for (; ox <= hi - VL; ox += VL) {
                FloatVector.fromArray(F, x, base + ox).fma(av, FloatVector.fromArray(F, acc, ox)).intoArray(acc, ox);
            }
        }
        for (; ox < hi; ox++) {
            acc[ox] += a * x[base + ox * stride];
        }
    }

    /**
     * The B operand of the implicit GEMM: element (p, j) with p = (ci, ky, kx) and j = (oy, ox) is
     * x[ci, oy*strideH - padH + ky, ox*strideW - padW + kx], or 0 in the padding.
     */
    static final class Im2col extends GemmPacking.BPanels {
        /** Lanes 0, 2, 4, ... of two concatenated vectors (indexes past VL select from the second). */
        private static final VectorShuffle<Float> EVEN_LANES = VectorShuffle.fromOp(F, i -> 2 * i);

        private final float[] x;
        private final long xOffset;
        private final int cinG;
        private final int h;
        private final int w;
        private final int kh;
        private final int kw;
        private final int sh;
        private final int sw;
        private final int ph;
        private final int pw;
        private final int wo;

        Im2col(float[] x, long xOffset, int cinG, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int wo) {
            this.x = x;
            this.xOffset = xOffset;
            this.cinG = cinG;
            this.h = h;
            this.w = w;
            this.kh = kh;
            this.kw = kw;
            this.sh = sh;
            this.sw = sw;
            this.ph = ph;
            this.pw = pw;
            this.wo = wo;
        }

        @Override
        void pack(int b, int p0, int kc, int j0, int nc, float[] dst) {
            int xb = (int) (xOffset + (long) b * cinG * h * w);
            int taps = kh * kw;
            int panels = (nc + NR - 1) / NR;
            // The block's output pixels fall into runs that stay in one output row and one panel; per run: where
            // it lands in a packed row, its length, and the input position of its first pixel before adding the
            // tap offset (ky, kx). At most one run per pixel, so nc + panels entries always suffice.
            int[] runDst = new int[nc + panels];
            int[] runLen = new int[nc + panels];
            int[] runIy = new int[nc + panels];
            int[] runIx = new int[nc + panels];
            int runs = 0;
            for (int q = 0; q < panels; q++) {
                int cols = Math.min(NR, nc - q * NR);
                for (int t = 0, j = j0 + q * NR; t < cols; runs++) {
                    int oy = j / wo;
                    int ox = j - oy * wo;
                    int len = Math.min(cols - t, wo - ox);
                    runDst[runs] = q * kc * NR + t;
                    runLen[runs] = len;
                    runIy[runs] = oy * sh - ph;
                    runIx[runs] = ox * sw - pw;
                    t += len;
                    j += len;
                }
            }
            int tail = nc - (panels - 1) * NR;
            int ci = p0 / taps;
            int ky = p0 % taps / kw;
            int kx = p0 % kw;
            // One (channel, tap) row of im2col at a time, all panels: the input row is then read front to back,
            // which the hardware prefetcher follows even when the image is far larger than the caches.
            for (int p = 0; p < kc; p++) {
                int plane = xb + ci * h * w;
                for (int r = 0; r < runs; r++) {
                    copyRun(plane, runIy[r] + ky, runIx[r] + kx, runLen[r], dst, runDst[r] + p * NR);
                }
                if (tail < NR) {
                    int d = (panels - 1) * kc * NR + p * NR;
                    Arrays.fill(dst, d + tail, d + NR, 0f);
                }
                if (++kx == kw) {
                    kx = 0;
                    if (++ky == kh) {
                        ky = 0;
                        ci++;
                    }
                }
            }
        }

        /**
         * dst[d .. d + len) = input row iy at columns ix0, ix0 + sw, ..., zero where that falls in the padding.
         * Stride 1 is a (masked) vector copy; stride 2 loads twice the span and keeps the even lanes.
         */
        private void copyRun(int plane, int iy, int ix0, int len, float[] dst, int d) {
            if (iy < 0 || iy >= h) {
                Arrays.fill(dst, d, d + len, 0f);
                return;
            }
            int row = plane + iy * w;
            if (sw == 1) {
                if (len == NR && ix0 >= 0 && ix0 + NR <= w) {
                    FloatVector.fromArray(F, x, row + ix0).intoArray(dst, d);
                    FloatVector.fromArray(F, x, row + ix0 + VL).intoArray(dst, d + VL);
                    return;
                }
                for (int v = 0; v < len; v += VL) {
                    // lanes past len are read (same row or masked off) but never stored
                    FloatVector.fromArray(F, x, row + ix0 + v, F.indexInRange(ix0 + v, w))
                            .intoArray(dst, d + v, F.indexInRange(v, len));
                }
            } else if (sw == 2) {
                for (int v = 0; v < len; v += VL) {
                    int at = ix0 + 2 * v;
                    FloatVector lo = FloatVector.fromArray(F, x, row + at, F.indexInRange(at, w));
                    FloatVector hi = FloatVector.fromArray(F, x, row + at + VL, F.indexInRange(at + VL, w));
                    lo.rearrange(EVEN_LANES, hi).intoArray(dst, d + v, F.indexInRange(v, len));
                }
            } else {
                for (int t = 0; t < len; t++) {
                    int ix = ix0 + t * sw;
                    dst[d + t] = ix >= 0 && ix < w ? x[row + ix] : 0f;
                }
            }
        }
    }

    /** Argument checks shared with the scalar twin, so both reject the same calls with the same messages. */
    static void check(float[] x, int xOffset, int n, int cin, int h, int w, FloatSource weight, int cout, int kh,
                      int kw, float[] bias, int strideH, int strideW, int padH, int padW, int groups,
                      Activation act, float[] out, int outOffset) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(weight, "weight");
        Objects.requireNonNull(out, "out");
        Objects.requireNonNull(act, "act (use Activation.NONE)");
        if (n < 0 || cin < 1 || h < 1 || w < 1 || cout < 1 || kh < 1 || kw < 1) {
            throw new IllegalArgumentException("conv2d n=%d cin=%d h=%d w=%d cout=%d kh=%d kw=%d: expected n >= 0, rest >= 1"
                    .formatted(n, cin, h, w, cout, kh, kw));
        }
        if (strideH < 1 || strideW < 1 || padH < 0 || padW < 0 || xOffset < 0 || outOffset < 0) {
            throw new IllegalArgumentException(
                    "conv2d stride=(%d, %d) padding=(%d, %d) xOffset=%d outOffset=%d: expected strides >= 1, rest >= 0"
                            .formatted(strideH, strideW, padH, padW, xOffset, outOffset));
        }
        if (groups < 1 || cin % groups != 0) {
            throw new IllegalArgumentException("conv2d in_channels=%d is not divisible by groups=%d".formatted(cin, groups));
        }
        if (cout % groups != 0) {
            throw new IllegalArgumentException("conv2d out_channels=%d is not divisible by groups=%d".formatted(cout, groups));
        }
        int ho = Math.floorDiv(h + 2 * padH - kh, strideH) + 1;
        int wo = Math.floorDiv(w + 2 * padW - kw, strideW) + 1;
        if (ho < 1 || wo < 1) {
            throw new IllegalArgumentException(
                    "conv2d output would be %d x %d (input %d x %d, kernel %d x %d, padding (%d, %d), stride (%d, %d)): expected >= 1 x 1"
                            .formatted(ho, wo, h, w, kh, kw, padH, padW, strideH, strideW));
        }
        long xNeed = xOffset + (long) n * cin * h * w;
        if (x.length < xNeed) {
            throw new IllegalArgumentException("conv2d x has %d floats, expected >= %d (offset %d + [%d, %d, %d, %d])"
                    .formatted(x.length, xNeed, xOffset, n, cin, h, w));
        }
        long wNeed = (long) cout * (cin / groups) * kh * kw;
        if (weight.size() < wNeed) {
            throw new IllegalArgumentException("conv2d weight has %d elements, expected %d ([%d, %d, %d, %d])"
                    .formatted(weight.size(), wNeed, cout, cin / groups, kh, kw));
        }
        if (bias != null && bias.length < cout) {
            throw new IllegalArgumentException("conv2d bias has %d floats, expected %d (out_channels)"
                    .formatted(bias.length, cout));
        }
        long outNeed = outOffset + (long) n * cout * ho * wo;
        if (out.length < outNeed) {
            throw new IllegalArgumentException("conv2d out has %d floats, expected >= %d (offset %d + [%d, %d, %d, %d])"
                    .formatted(out.length, outNeed, outOffset, n, cout, ho, wo));
        }
        if (xNeed > Integer.MAX_VALUE || outNeed > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("conv2d x needs %d and out %d floats, past a Java array's limit"
                    .formatted(xNeed, outNeed));
        }
    }
}
