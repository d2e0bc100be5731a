package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import koala4j.tensor.Activation;

/**
 * Normalisation kernels on contiguous float32 spans: torch.nn.GroupNorm (with the activation that diffusers'
 * ResnetBlock2D applies right after it fused in), torch.nn.LayerNorm over the last dimension, and
 * transformers' LlamaRMSNorm / T5LayerNorm.
 *
 * <p>Statistics are exact to float32 output precision even when the mean dwarfs the spread (values ~1e3 with unit
 * noise): means come from sums shifted by the first element, variances from a second pass over the centred values
 * with the residual mean folded back in, and the running sums are flushed from float lanes into doubles every
 * {@value #BLOCK} elements. The normalised value is formed as (x - mean) * scale + shift, never as x * scale + c,
 * which would cancel catastrophically for large means.
 *
 * <p>{@code out} may be {@code x} at the same offset; other overlaps go through a temporary copy. Gamma and beta are
 * nullable (elementwise_affine=False). Stateless and thread-safe.
 */
public final class Norms {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Elements summed in float lanes before the partial sum moves to a double (2 x 16 lanes x 128 adds each). */
    static final int BLOCK = 4096;
    /** Elements per parallel chunk of rows. */
    private static final int GRAIN = 1 << 14;

    private Norms() {
    }

    /**
     * torch.nn.GroupNorm(groups, channels, eps, affine) on x [N, C, HW], biased variance, followed by {@code act}.
     *
     * @param x     [n, channels, spatial], spatial = H * W
     * @param gamma [channels] or null
     * @param beta  [channels] or null
     * @param act   applied to the normalised, affine-transformed value (diffusers: NONE or SILU)
     * @param out   [n, channels, spatial]
     */
    public static void groupNorm(float[] x, int xOff, int n, int channels, int spatial, int groups, float[] gamma,
            float[] beta, float eps, Activation act, float[] out, int outOff) {
        Spans.nonNegative("n", n);
        Spans.nonNegative("channels", channels);
        Spans.nonNegative("spatial", spatial);
        Spans.positive("groups", groups);
        if (channels % groups != 0) {
            throw new IllegalArgumentException("channels=%d is not divisible by groups=%d (torch.nn.GroupNorm requires it)"
                    .formatted(channels, groups));
        }
        if (act == null) {
            throw new NullPointerException("act is null (use Activation.NONE)");
        }
        Spans.checkParam("gamma", gamma, channels);
        Spans.checkParam("beta", beta, channels);
        int total = Spans.size("groupNorm input [n, channels, spatial]", n, channels, spatial);
        Spans.check("x", x, xOff, total);
        Spans.check("out", out, outOff, total);
        if (total == 0) {
            return;
        }
        if (Spans.shiftedOverlap(x, xOff, total, out, outOff, total)) {
            float[] tmp = new float[total];
            groupNorm(x, xOff, n, channels, spatial, groups, gamma, beta, eps, act, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, total);
            return;
        }
        int perGroup = channels / groups;
        int groupSize = perGroup * spatial;
        // One job is one (sample, group): its statistics and its normalisation stay on one thread, so the group's
        // data (up to a few MB) is read three times while it is still in that core's cache.
        Parallel.forRange(n * groups, 1, (from, to) -> {
            double[] stats = new double[2];
            for (int job = from; job < to; job++) {
                int base = job * groupSize;
                meanAndRstd(x, xOff + base, groupSize, eps, stats);
                float meanHi = (float) stats[0];
                float meanLo = (float) (stats[0] - meanHi);
                int c0 = (job % groups) * perGroup;
                for (int k = 0; k < perGroup; k++) {
                    int c = c0 + k;
                    float scale = (float) (stats[1] * (gamma == null ? 1f : gamma[c]));
                    float shift = beta == null ? 0f : beta[c];
                    int off = base + k * spatial;
                    normalizePlane(x, xOff + off, spatial, meanHi, meanLo, scale, shift, act, out, outOff + off);
                }
            }
        });
    }

    /**
     * torch.nn.LayerNorm(cols, eps, elementwise_affine) applied to each row of x [rows, cols].
     *
     * @param gamma [cols] or null
     * @param beta  [cols] or null
     */
    public static void layerNorm(float[] x, int xOff, int rows, int cols, float[] gamma, float[] beta, float eps,
            float[] out, int outOff) {
        Spans.nonNegative("rows", rows);
        Spans.nonNegative("cols", cols);
        Spans.checkParam("gamma", gamma, cols);
        Spans.checkParam("beta", beta, cols);
        int total = Spans.size("layerNorm input [rows, cols]", rows, cols);
        Spans.check("x", x, xOff, total);
        Spans.check("out", out, outOff, total);
        if (total == 0) {
            return;
        }
        if (Spans.shiftedOverlap(x, xOff, total, out, outOff, total)) {
            float[] tmp = new float[total];
            layerNorm(x, xOff, rows, cols, gamma, beta, eps, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, total);
            return;
        }
        Parallel.forRange(rows, Math.max(1, GRAIN / cols), (from, to) -> {
            double[] stats = new double[2];
            for (int r = from; r < to; r++) {
                int xr = xOff + r * cols;
                int or = outOff + r * cols;
                meanAndRstd(x, xr, cols, eps, stats);
                float meanHi = (float) stats[0];
                float meanLo = (float) (stats[0] - meanHi);
                float rstd = (float) stats[1];
                int j = 0;
                for (int bound = S.loopBound(cols); j < bound; j += L) {
                    FloatVector d = FloatVector.fromArray(S, x, xr + j).sub(meanHi).sub(meanLo).mul(rstd);
                    affine(d, gamma, beta, j, null).intoArray(out, or + j);
                }
                if (j < cols) {
                    VectorMask<Float> m = S.indexInRange(j, cols);
                    FloatVector d = FloatVector.fromArray(S, x, xr + j, m).sub(meanHi).sub(meanLo).mul(rstd);
                    affine(d, gamma, beta, j, m).intoArray(out, or + j, m);
                }
            }
        });
    }

    /**
     * transformers' LlamaRMSNorm / T5LayerNorm on each row of x [rows, cols]:
     * {@code x * rsqrt(mean(x^2) + eps) * gamma}, the mean of squares accumulated in double.
     *
     * @param gamma [cols] or null (no weight)
     */
    public static void rmsNorm(float[] x, int xOff, int rows, int cols, float[] gamma, float eps, float[] out,
            int outOff) {
        Spans.nonNegative("rows", rows);
        Spans.nonNegative("cols", cols);
        Spans.checkParam("gamma", gamma, cols);
        int total = Spans.size("rmsNorm input [rows, cols]", rows, cols);
        Spans.check("x", x, xOff, total);
        Spans.check("out", out, outOff, total);
        if (total == 0) {
            return;
        }
        if (Spans.shiftedOverlap(x, xOff, total, out, outOff, total)) {
            float[] tmp = new float[total];
            rmsNorm(x, xOff, rows, cols, gamma, eps, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, total);
            return;
        }
        Parallel.forRange(rows, Math.max(1, GRAIN / cols), (from, to) -> {
            for (int r = from; r < to; r++) {
                int xr = xOff + r * cols;
                int or = outOff + r * cols;
                float rstd = (float) (1.0 / Math.sqrt(sumOfSquares(x, xr, cols) / cols + eps));
                int j = 0;
                for (int bound = S.loopBound(cols); j < bound; j += L) {
                    FloatVector v = FloatVector.fromArray(S, x, xr + j).mul(rstd);
                    if (gamma != null) {
                        v = v.mul(FloatVector.fromArray(S, gamma, j));
                    }
                    v.intoArray(out, or + j);
                }
                if (j < cols) {
                    VectorMask<Float> m = S.indexInRange(j, cols);
                    FloatVector v = FloatVector.fromArray(S, x, xr + j, m).mul(rstd);
                    if (gamma != null) {
                        v = v.mul(FloatVector.fromArray(S, gamma, j, m));
                    }
                    v.intoArray(out, or + j, m);
                }
            }
        });
    }

    private static FloatVector affine(FloatVector d, float[] gamma, float[] beta, int j, VectorMask<Float> m) {
        if (gamma != null) {
            FloatVector g = m == null ? FloatVector.fromArray(S, gamma, j) : FloatVector.fromArray(S, gamma, j, m);
            d = d.mul(g);
        }
        if (beta != null) {
            FloatVector b = m == null ? FloatVector.fromArray(S, beta, j) : FloatVector.fromArray(S, beta, j, m);
            d = d.add(b);
        }
        return d;
    }

    /** out = act((x - mean) * scale + shift) over one channel plane. */
    private static void normalizePlane(float[] x, int xOff, int len, float meanHi, float meanLo, float scale,
            float shift, Activation act, float[] out, int outOff) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += L) {
            FloatVector d = FloatVector.fromArray(S, x, xOff + i).sub(meanHi).sub(meanLo);
            Activations.activate(act, d.fma(scale, shift)).intoArray(out, outOff + i);
        }
        if (i < len) {
            VectorMask<Float> m = S.indexInRange(i, len);
            FloatVector d = FloatVector.fromArray(S, x, xOff + i, m).sub(meanHi).sub(meanLo);
            Activations.activate(act, d.fma(scale, shift)).intoArray(out, outOff + i, m);
        }
    }

    /**
     * Biased mean and 1/sqrt(var + eps) of a[off .. off + len) into stats[0], stats[1]. Pass 1 sums x - a[off]
     * (small numbers when the spread is small against the mean); pass 2 sums d = x - mean and d^2 and uses the
     * first to correct both the mean and the variance (the "corrected two-pass" algorithm).
     */
    static void meanAndRstd(float[] a, int off, int len, float eps, double[] stats) {
        float pivot = a[off];
        double mean = pivot + sumShifted(a, off, len, pivot) / len;
        float meanHi = (float) mean;
        float meanLo = (float) (mean - meanHi);
        double sumD = 0;
        double sumD2 = 0;
        for (int start = 0; start < len; start += BLOCK) {
            int end = Math.min(len, start + BLOCK);
            FloatVector s1 = FloatVector.zero(S);
            FloatVector s2 = FloatVector.zero(S);
            int i = start;
            for (int bound = start + S.loopBound(end - start); i < bound; i += L) {
                FloatVector d = FloatVector.fromArray(S, a, off + i).sub(meanHi).sub(meanLo);
                s1 = s1.add(d);
                s2 = d.fma(d, s2);
            }
            if (i < end) {
                VectorMask<Float> m = S.indexInRange(i, end);
                FloatVector d = FloatVector.fromArray(S, a, off + i, m).sub(meanHi).sub(meanLo);
                s1 = s1.add(d, m);
                s2 = s2.add(d.mul(d), m);
            }
            sumD += GemmVector.sum(s1);
            sumD2 += GemmVector.sum(s2);
        }
        double dm = sumD / len;
        double var = Math.max(0.0, sumD2 / len - dm * dm);
        stats[0] = mean + dm;
        stats[1] = 1.0 / Math.sqrt(var + eps);
    }

    private static double sumShifted(float[] a, int off, int len, float pivot) {
        double total = 0;
        for (int start = 0; start < len; start += BLOCK) {
            int end = Math.min(len, start + BLOCK);
            FloatVector s0 = FloatVector.zero(S);
            FloatVector s1 = FloatVector.zero(S);
            int i = start;
            for (int bound = start + ((end - start) / (2 * L)) * (2 * L); i < bound; i += 2 * L) {
                s0 = s0.add(FloatVector.fromArray(S, a, off + i).sub(pivot));
                s1 = s1.add(FloatVector.fromArray(S, a, off + i + L).sub(pivot));
            }
            for (; i + L <= end; i += L) {
                s0 = s0.add(FloatVector.fromArray(S, a, off + i).sub(pivot));
            }
            if (i < end) {
                VectorMask<Float> m = S.indexInRange(i, end);
                s1 = s1.add(FloatVector.fromArray(S, a, off + i, m).sub(pivot), m);
            }
            total += GemmVector.sum(s0.add(s1));
        }
        return total;
    }

    private static double sumOfSquares(float[] a, int off, int len) {
        double total = 0;
        for (int start = 0; start < len; start += BLOCK) {
            int end = Math.min(len, start + BLOCK);
            FloatVector s0 = FloatVector.zero(S);
            FloatVector s1 = FloatVector.zero(S);
            int i = start;
            for (int bound = start + ((end - start) / (2 * L)) * (2 * L); i < bound; i += 2 * L) {
                FloatVector v0 = FloatVector.fromArray(S, a, off + i);
                FloatVector v1 = FloatVector.fromArray(S, a, off + i + L);
                s0 = v0.fma(v0, s0);
                s1 = v1.fma(v1, s1);
            }
            for (; i + L <= end; i += L) {
                FloatVector v = FloatVector.fromArray(S, a, off + i);
                s0 = v.fma(v, s0);
            }
            if (i < end) {
                FloatVector v = FloatVector.fromArray(S, a, off + i, S.indexInRange(i, end));
                s1 = v.fma(v, s1);                            // masked-off lanes load as 0
            }
            total += GemmVector.sum(s0.add(s1));
        }
        return total;
    }
}
