package koala4j.backend.cpu;

import static koala4j.backend.cpu.GemmKernel.NR;
import static koala4j.backend.cpu.GemmVector.F;
import static koala4j.backend.cpu.GemmVector.VL;

import java.util.Arrays;
import java.util.Objects;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

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
     * The B operand of the implicit GEMM: element (p, j) with p = (ci, ky, kx) and j = (oy, ox) is
     * x[ci, oy*strideH - padH + ky, ox*strideW - padW + kx], or 0 in the padding.
     */
    static final class Im2col extends GemmPacking.BPanels {
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
            for (int q = 0; q * NR < nc; q++) {
                int jq = j0 + q * NR;
                int cols = Math.min(NR, nc - q * NR);
                int d0 = q * kc * NR;
                int oy = jq / wo;
                int ox = jq - oy * wo;
                boolean oneRow = sw == 1 && cols == NR && ox + NR <= wo;
                int ci = p0 / taps;
                int ky = p0 % taps / kw;
                int kx = p0 % kw;
                for (int p = 0; p < kc; p++) {
                    int d = d0 + p * NR;
                    if (oneRow) {
                        packRun(xb + ci * h * w, oy * sh - ph + ky, ox - pw + kx, dst, d);
                    } else {
                        packScattered(xb + ci * h * w, jq, cols, ky, kx, dst, d);
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
        }

        /** NR consecutive output pixels of one output row at stride 1: one contiguous run of input row iy. */
        private void packRun(int plane, int iy, int ix0, float[] dst, int d) {
            if (iy < 0 || iy >= h) {
                Arrays.fill(dst, d, d + NR, 0f);
            } else if (ix0 >= 0 && ix0 + NR <= w) {
                int at = plane + iy * w + ix0;
                FloatVector.fromArray(F, x, at).intoArray(dst, d);
                FloatVector.fromArray(F, x, at + VL).intoArray(dst, d + VL);
            } else {
                // the run hangs over the left or right padding: masked loads read only the columns inside the image
                int row = plane + iy * w;
                for (int v = 0; v < NR; v += VL) {
                    VectorMask<Float> inside = F.indexInRange(ix0 + v, w);
                    FloatVector.fromArray(F, x, row + ix0 + v, inside).intoArray(dst, d + v);
                }
            }
        }

        /** Any stride, or a panel that wraps to the next output row: pixel by pixel. */
        private void packScattered(int plane, int jq, int cols, int ky, int kx, float[] dst, int d) {
            int oy = jq / wo;
            int ox = jq - oy * wo;
            for (int t = 0; t < cols; t++) {
                int iy = oy * sh - ph + ky;
                int ix = ox * sw - pw + kx;
                dst[d + t] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[plane + iy * w + ix] : 0f;
                if (++ox == wo) {
                    ox = 0;
                    oy++;
                }
            }
            Arrays.fill(dst, d + cols, d + NR, 0f);
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
