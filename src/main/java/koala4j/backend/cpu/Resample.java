package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Image resampling on contiguous [planes, H, W] float32 spans (planes = N * C): torch's F.interpolate
 * (nearest, bilinear, bicubic, with align_corners and antialias; aten/src/ATen/native/UpSample.h and
 * cpu/UpSampleKernel.cpp), F.avg_pool2d (cpu/AvgPoolKernel.cpp, output size from native/Pool.h) and the 2x nearest
 * upsample of diffusers' Upsample2D.
 *
 * <p>Source coordinates and weights are computed in float exactly as torch computes them for float32 tensors
 * (including its integer truncations), so tap positions agree with torch; only the order of the float sums
 * differs (vertical taps first here, horizontal first in torch), a difference of a few ulp.
 *
 * <p>{@code out} may share the input array; when the spans overlap the result goes through a temporary.
 * Stateless and thread-safe.
 */
public final class Resample {
    /** F.interpolate modes; NEAREST is torch's legacy 'nearest' (floor(dst * in/out)), not 'nearest-exact'. */
    public enum Mode { NEAREST, BILINEAR, BICUBIC }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final int GRAIN = 1 << 14;
    /** Lane i of the low / high output vector takes input lane i/2 / L/2 + i/2. */
    private static final VectorShuffle<Float> DUP_LO = VectorShuffle.fromOp(S, i -> i / 2);
    private static final VectorShuffle<Float> DUP_HI = VectorShuffle.fromOp(S, i -> L / 2 + i / 2);
    /** torch's bicubic constant without antialias (OpenCV's); with antialias torch uses Keys' -0.5 like PIL. */
    static final float CUBIC_A = -0.75f;
    static final float CUBIC_A_AA = -0.5f;

    private Resample() {
    }

    /**
     * F.interpolate(x, scale_factor=2, mode='nearest'): x [planes, h, w] to out [planes, 2h, 2w], each input pixel
     * copied to a 2x2 block (diffusers Upsample2D without output_size).
     */
    public static void upsampleNearest2x(float[] x, int xOff, int planes, int h, int w, float[] out, int outOff) {
        Spans.nonNegative("planes", planes);
        Spans.nonNegative("h", h);
        Spans.nonNegative("w", w);
        int inLen = Spans.size("upsample input [planes, h, w]", planes, h, w);
        int outLen = Spans.size("upsample output [planes, 2h, 2w]", planes, 2L * h, 2L * w);
        Spans.check("x", x, xOff, inLen);
        Spans.check("out", out, outOff, outLen);
        if (Spans.overlap(x, xOff, inLen, out, outOff, outLen)) {
            float[] tmp = new float[outLen];
            upsampleNearest2x(x, xOff, planes, h, w, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, outLen);
            return;
        }
        int ow = 2 * w;
        Parallel.forRange(planes * h, Math.max(1, GRAIN / Math.max(1, ow)), (from, to) -> {
            for (int r = from; r < to; r++) {      // r = plane * h + iy; output rows 2r and 2r + 1
                int src = xOff + r * w;
                int dst = outOff + 2 * r * ow;
                int j = 0;
                for (int bound = S.loopBound(w); j < bound; j += L) {
                    FloatVector v = FloatVector.fromArray(S, x, src + j);
                    v.rearrange(DUP_LO).intoArray(out, dst + 2 * j);
                    v.rearrange(DUP_HI).intoArray(out, dst + 2 * j + L);
                }
                for (; j < w; j++) {
                    float v = x[src + j];
                    out[dst + 2 * j] = v;
                    out[dst + 2 * j + 1] = v;
                }
                System.arraycopy(out, dst, out, dst + ow, ow);
            }
        });
    }

    /**
     * Output length of a pooling window sweep, torch's pooling_output_shape (dilation 1):
     * floor_or_ceil((in + 2 pad - kernel) / stride) + 1, and with ceil_mode the last window must start inside the
     * input or the left padding, else it is dropped.
     */
    public static int pooledSize(int in, int kernel, int stride, int pad, boolean ceilMode) {
        Spans.positive("kernel", kernel);
        Spans.positive("stride", stride);
        Spans.nonNegative("pad", pad);
        Spans.nonNegative("input size", in);
        if (pad > kernel / 2) {
            throw new IllegalArgumentException("pad=%d, expected at most half the kernel size %d (torch rule)"
                    .formatted(pad, kernel));
        }
        long size = Math.floorDiv((long) in + 2L * pad - kernel + (ceilMode ? stride - 1 : 0), stride) + 1;
        if (ceilMode && (size - 1) * stride >= (long) in + pad) {
            size--;
        }
        if (size < 1) {
            throw new IllegalArgumentException(("input size %d with kernel %d, stride %d, pad %d gives output size %d,"
                    + " expected >= 1").formatted(in, kernel, stride, pad, size));
        }
        return (int) size;
    }

    /**
     * F.avg_pool2d(x, kernel, stride, pad, ceil_mode, count_include_pad) with square kernel, stride and padding:
     * x [planes, h, w] to out [planes, pooledSize(h), pooledSize(w)]. The divisor is the window clipped to the
     * padded input (count_include_pad) or to the input itself; a window past the padding counts only its inside.
     */
    public static void avgPool2d(float[] x, int xOff, int planes, int h, int w, int kernel, int stride, int pad,
            boolean countIncludePad, boolean ceilMode, float[] out, int outOff) {
        Spans.nonNegative("planes", planes);
        int oh = pooledSize(h, kernel, stride, pad, ceilMode);
        int ow = pooledSize(w, kernel, stride, pad, ceilMode);
        int inLen = Spans.size("avgPool2d input [planes, h, w]", planes, h, w);
        int outLen = Spans.size("avgPool2d output [planes, oh, ow]", planes, oh, ow);
        Spans.check("x", x, xOff, inLen);
        Spans.check("out", out, outOff, outLen);
        if (Spans.overlap(x, xOff, inLen, out, outOff, outLen)) {
            float[] tmp = new float[outLen];
            avgPool2d(x, xOff, planes, h, w, kernel, stride, pad, countIncludePad, ceilMode, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, outLen);
            return;
        }
        Window rowsW = Window.of(h, oh, kernel, stride, pad);
        Window colsW = Window.of(w, ow, kernel, stride, pad);
        Parallel.forRange(planes * oh, Math.max(1, GRAIN / (w * Math.min(kernel, h) + ow * kernel)), (from, to) -> {
            float[] colSums = new float[w];
            for (int r = from; r < to; r++) {
                int p = r / oh;
                int oy = r % oh;
                int y0 = rowsW.start[oy];
                int y1 = rowsW.end[oy];
                int o = outOff + r * ow;
                if (y0 >= y1) {
                    java.util.Arrays.fill(out, o, o + ow, 0f);
                    continue;
                }
                // Sum the window's rows once per output row, then slide over columns.
                int base = xOff + p * h * w;
                System.arraycopy(x, base + y0 * w, colSums, 0, w);
                for (int y = y0 + 1; y < y1; y++) {
                    addRow(x, base + y * w, colSums, w);
                }
                for (int ox = 0; ox < ow; ox++) {
                    int x0 = colsW.start[ox];
                    int x1 = colsW.end[ox];
                    if (x0 >= x1) {
                        out[o + ox] = 0f;
                        continue;
                    }
                    float s = 0f;
                    for (int c = x0; c < x1; c++) {
                        s += colSums[c];
                    }
                    int divisor = countIncludePad ? rowsW.padded[oy] * colsW.padded[ox]
                            : (y1 - y0) * (x1 - x0);
                    out[o + ox] = s / divisor;
                }
            }
        });
    }

    /**
     * F.interpolate(x, size=(outH, outW), mode, align_corners, antialias) on x [planes, h, w] to
     * out [planes, outH, outW].
     *
     * <ul>
     *   <li>NEAREST: src = min(floor(dst * (in/out)), in - 1) in float; align_corners and antialias are errors,
     *       as in torch.</li>
     *   <li>BILINEAR / BICUBIC without antialias: src = scale (dst + 0.5) - 0.5 with scale = in/out, or
     *       src = dst (in-1)/(out-1) with align_corners; bilinear clamps src to &gt;= 0, bicubic (A = -0.75) clamps
     *       its four tap indices into [0, in - 1] instead.</li>
     *   <li>antialias: torch's separable PIL-style filter, support scaled by in/out when downscaling (triangle for
     *       bilinear, Keys cubic with a = -0.5 for bicubic), weights normalised per output pixel; an axis whose size
     *       does not change is copied. With align_corners only the scale becomes (in-1)/(out-1); the window
     *       centre stays scale (dst + 0.5), as in torch.</li>
     * </ul>
     */
    public static void resize(float[] x, int xOff, int planes, int h, int w, int outH, int outW, Mode mode,
            boolean alignCorners, boolean antialias, float[] out, int outOff) {
        checkResizeArgs(planes, h, w, outH, outW, mode, alignCorners, antialias);
        int inLen = Spans.size("resize input [planes, h, w]", planes, h, w);
        int outLen = Spans.size("resize output [planes, outH, outW]", planes, outH, outW);
        Spans.check("x", x, xOff, inLen);
        Spans.check("out", out, outOff, outLen);
        if (outLen == 0) {
            return;
        }
        if (h == outH && w == outW) {
            // Every mode maps each axis onto itself with weight exactly 1 (torch copies as well).
            System.arraycopy(x, xOff, out, outOff, inLen);
            return;
        }
        if (Spans.overlap(x, xOff, inLen, out, outOff, outLen)) {
            float[] tmp = new float[outLen];
            resize(x, xOff, planes, h, w, outH, outW, mode, alignCorners, antialias, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, outLen);
            return;
        }
        Taps vertical = Taps.of(h, outH, mode, alignCorners, antialias);
        Taps horizontal = Taps.of(w, outW, mode, alignCorners, antialias);
        int work = w * vertical.k + outW * horizontal.k;
        Parallel.forRange(planes * outH, Math.max(1, GRAIN / work), (from, to) -> {
            float[] row = new float[w];
            for (int r = from; r < to; r++) {          // r = plane * outH + oy
                int p = r / outH;
                int oy = r % outH;
                int base = xOff + p * h * w;
                float[] src;
                int srcOff;
                if (vertical.k == 1) {                 // weight 1: read the input row itself
                    src = x;
                    srcOff = base + vertical.idx[oy] * w;
                } else {
                    combineRows(x, base, w, vertical, oy, row);
                    src = row;
                    srcOff = 0;
                }
                horizontal.apply(src, srcOff, out, outOff + r * outW);
            }
        });
    }

    static void checkResizeArgs(int planes, int h, int w, int outH, int outW, Mode mode, boolean alignCorners,
            boolean antialias) {
        if (mode == null) {
            throw new NullPointerException("mode is null");
        }
        Spans.nonNegative("planes", planes);
        Spans.positive("h", h);
        Spans.positive("w", w);
        Spans.positive("outH", outH);
        Spans.positive("outW", outW);
        if (mode == Mode.NEAREST && alignCorners) {
            throw new IllegalArgumentException("alignCorners=true with mode NEAREST; torch allows align_corners only"
                    + " for the interpolating modes (bilinear, bicubic)");
        }
        if (mode == Mode.NEAREST && antialias) {
            throw new IllegalArgumentException("antialias=true with mode NEAREST; torch allows antialias only for"
                    + " bilinear and bicubic");
        }
    }

    /** row[0 .. w) = sum over the vertical taps of output row oy of weight * input row, in float lanes. */
    private static void combineRows(float[] x, int base, int w, Taps taps, int oy, float[] row) {
        int n = taps.out;
        int j = 0;
        for (int bound = S.loopBound(w); j < bound; j += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int t = 0; t < taps.k; t++) {
                float wt = taps.w[t * n + oy];
                if (wt != 0f) {
                    acc = FloatVector.fromArray(S, x, base + taps.idx[t * n + oy] * w + j).fma(FloatVector.broadcast(S, wt), acc);
                }
            }
            acc.intoArray(row, j);
        }
        if (j < w) {
            VectorMask<Float> m = S.indexInRange(j, w);
            FloatVector acc = FloatVector.zero(S);
            for (int t = 0; t < taps.k; t++) {
                float wt = taps.w[t * n + oy];
                if (wt != 0f) {
                    acc = FloatVector.fromArray(S, x, base + taps.idx[t * n + oy] * w + j, m).fma(FloatVector.broadcast(S, wt), acc);
                }
            }
            acc.intoArray(row, j, m);
        }
    }

    private static void addRow(float[] x, int off, float[] acc, int w) {
        int j = 0;
        for (int bound = S.loopBound(w); j < bound; j += L) {
            FloatVector.fromArray(S, acc, j).add(FloatVector.fromArray(S, x, off + j)).intoArray(acc, j);
        }
        for (; j < w; j++) {
            acc[j] += x[off + j];
        }
    }

    /** torch's area_pixel_compute_scale for float tensors (no scale_factor given). */
    static float areaScale(int in, int out, boolean alignCorners) {
        if (alignCorners) {
            return out > 1 ? (float) (in - 1) / (out - 1) : 0f;
        }
        return (float) in / out;
    }

    /** torch's cubic_convolution1 (|x| &lt;= 1) and cubic_convolution2 (1 &lt; |x| &lt; 2), in float. */
    static float cubic1(float x, float a) {
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    }

    static float cubic2(float x, float a) {
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    }

    /**
     * Pooling windows along one axis: [start, end) clipped to the input, and the window length clipped to the
     * padded input (the count_include_pad divisor), as in AvgPoolKernel.cpp.
     */
    private record Window(int[] start, int[] end, int[] padded) {
        static Window of(int in, int out, int kernel, int stride, int pad) {
            int[] start = new int[out];
            int[] end = new int[out];
            int[] padded = new int[out];
            for (int o = 0; o < out; o++) {
                int s = o * stride - pad;
                int e = Math.min(s + kernel, in + pad);
                padded[o] = e - s;
                start[o] = Math.max(s, 0);
                end[o] = Math.min(e, in);
            }
            return new Window(start, end, padded);
        }
    }

    /**
     * Interpolation taps along one axis, tap-major: output o reads input idx[t * out + o] with weight
     * w[t * out + o] for t &lt; k. Antialiased windows shorter than k are padded with weight 0 on an in-range index.
     */
    static final class Taps {
        final int out;
        final int k;
        final int[] idx;
        final float[] w;

        private Taps(int out, int k) {
            this.out = out;
            this.k = k;
            this.idx = new int[out * k];
            this.w = new float[out * k];
        }

        static Taps of(int in, int out, Mode mode, boolean alignCorners, boolean antialias) {
            if (in == out) {
                Taps t = new Taps(out, 1);        // every mode is the identity here; torch skips the axis
                for (int o = 0; o < out; o++) {
                    t.idx[o] = o;
                    t.w[o] = 1f;
                }
                return t;
            }
            if (antialias) {
                return antialiased(in, out, mode, alignCorners);
            }
            float scale = mode == Mode.NEAREST ? (float) in / out : areaScale(in, out, alignCorners);
            return switch (mode) {
                case NEAREST -> {
                    Taps t = new Taps(out, 1);
                    for (int o = 0; o < out; o++) {
                        t.idx[o] = Math.min((int) Math.floor(o * scale), in - 1);
                        t.w[o] = 1f;
                    }
                    yield t;
                }
                case BILINEAR -> {
                    Taps t = new Taps(out, 2);
                    for (int o = 0; o < out; o++) {
                        float src = alignCorners ? scale * o : Math.max(0f, scale * (o + 0.5f) - 0.5f);
                        int i0 = Math.min((int) Math.floor(src), in - 1);
                        float l1 = Math.min(Math.max(src - i0, 0f), 1f);
                        t.idx[o] = i0;
                        t.idx[out + o] = i0 + (i0 < in - 1 ? 1 : 0);
                        t.w[o] = 1f - l1;
                        t.w[out + o] = l1;
                    }
                    yield t;
                }
                case BICUBIC -> {
                    Taps t = new Taps(out, 4);
                    for (int o = 0; o < out; o++) {
                        float src = alignCorners ? scale * o : scale * (o + 0.5f) - 0.5f;
                        int i0 = Math.min((int) Math.floor(src), in - 1);
                        float f = Math.min(Math.max(src - i0, 0f), 1f);
                        float g = 1f - f;                  // torch rounds 1 - t before adding 1 for the far tap
                        float[] c = {cubic2(f + 1f, CUBIC_A), cubic1(f, CUBIC_A), cubic1(g, CUBIC_A),
                                cubic2(g + 1f, CUBIC_A)};
                        for (int j = 0; j < 4; j++) {
                            t.idx[j * out + o] = Math.clamp(i0 - 1 + j, 0, in - 1);
                            t.w[j * out + o] = c[j];
                        }
                    }
                    yield t;
                }
            };
        }

        /** torch's _compute_indices_min_size_weights_aa, keeping its float/double mix and truncations. */
        private static Taps antialiased(int in, int out, Mode mode, boolean alignCorners) {
            float scale = areaScale(in, out, alignCorners);
            int interp = mode == Mode.BICUBIC ? 4 : 2;
            float support = (float) (scale >= 1.0 ? interp * 0.5 * scale : interp * 0.5);
            int maxK = (int) Math.ceil(support) * 2 + 1;
            float invScale = (float) (scale >= 1.0 ? 1.0 / scale : 1.0);
            Taps t = new Taps(out, maxK);
            float[] wt = new float[maxK];
            for (int o = 0; o < out; o++) {
                float center = (float) (scale * (o + 0.5));
                int xmin = Math.max((int) (center - support + 0.5), 0);
                int xsize = Math.clamp(Math.min((int) (center + support + 0.5), in) - xmin, 0, maxK);
                float total = 0f;
                for (int j = 0; j < xsize; j++) {
                    float v = (float) ((j + xmin - center + 0.5) * invScale);
                    wt[j] = mode == Mode.BICUBIC ? keysCubic(v) : triangle(v);
                    total += wt[j];
                }
                for (int j = 0; j < maxK; j++) {
                    t.idx[j * out + o] = j < xsize ? xmin + j : Math.min(xmin, in - 1);
                    t.w[j * out + o] = j < xsize && total != 0f ? wt[j] / total : 0f;
                }
            }
            return t;
        }

        static float triangle(float v) {
            float a = Math.abs(v);
            return a < 1f ? (float) (1.0 - a) : 0f;
        }

        static float keysCubic(float v) {
            float a = Math.abs(v);
            if (a < 1f) {
                return cubic1(a, CUBIC_A_AA);
            }
            return a < 2f ? cubic2(a, CUBIC_A_AA) : 0f;
        }

        /** dst[dstOff + o] = sum_t w[t, o] * src[srcOff + idx[t, o]] for o in [0, out), gathering L outputs at once. */
        void apply(float[] src, int srcOff, float[] dst, int dstOff) {
            int o = 0;
            for (int bound = S.loopBound(out); o < bound; o += L) {
                FloatVector acc = FloatVector.fromArray(S, src, srcOff, idx, o).mul(FloatVector.fromArray(S, w, o));
                for (int t = 1; t < k; t++) {
                    FloatVector v = FloatVector.fromArray(S, src, srcOff, idx, t * out + o);
                    acc = v.fma(FloatVector.fromArray(S, w, t * out + o), acc);
                }
                acc.intoArray(dst, dstOff + o);
            }
            for (; o < out; o++) {
                float s = w[o] * src[srcOff + idx[o]];
                for (int t = 1; t < k; t++) {
                    s = Math.fma(w[t * out + o], src[srcOff + idx[t * out + o]], s);
                }
                dst[dstOff + o] = s;
            }
        }
    }
}
