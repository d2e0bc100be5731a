package koala4j.backend.cpu;

import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Softmax and log-softmax over the last dim of a contiguous [rows, cols] float32 block, computed like
 * {@code torch.softmax(x, -1)} / {@code torch.log_softmax(x, -1)} on CPU (ATen's vectorised last-dim kernel):
 * subtract the row maximum, exponentiate, sum, then multiply by 1/sum (softmax) or subtract max + log(sum)
 * (log-softmax). Rows are spread over {@link Parallel}'s threads.
 *
 * <p>A row that is entirely -inf gives NaN in every column, as torch does (its max is -inf and -inf - -inf is NaN).
 * A row holding NaN or +inf also gives NaN throughout. Exponentials come from {@link FastExp#exp} (about 2 ulp);
 * values below e^-87.3 (~1e-38) relative to the row maximum are flushed to 0.
 *
 * <p>{@code out} may be {@code x} at the same offset (in place); other overlaps are not supported.
 */
public final class Softmax {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final float NEG_INF = Float.NEGATIVE_INFINITY;
    /** Elements per parallel chunk at least, so small blocks stay on one thread. */
    private static final int GRAIN_ELEMENTS = 1 << 14;

    private Softmax() {
    }

    /** out[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)) for each of {@code rows} rows of {@code cols}. */
    public static void softmax(float[] x, int xOffset, int rows, int cols, float[] out, int outOffset) {
        check("softmax", x, xOffset, rows, cols, out, outOffset);
        Parallel.forRange(rows, Math.max(1, GRAIN_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                softmaxRow(x, xOffset + r * cols, cols, out, outOffset + r * cols);
            }
        });
    }

    /** out[r, :] = x[r, :] - max - log(sum(exp(x[r, :] - max))) for each of {@code rows} rows of {@code cols}. */
    public static void logSoftmax(float[] x, int xOffset, int rows, int cols, float[] out, int outOffset) {
        check("logSoftmax", x, xOffset, rows, cols, out, outOffset);
        Parallel.forRange(rows, Math.max(1, GRAIN_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                logSoftmaxRow(x, xOffset + r * cols, cols, out, outOffset + r * cols);
            }
        });
    }

    private static void softmaxRow(float[] x, int xo, int n, float[] out, int oo) {
        float max = rowMax(x, xo, n);
        if (max == NEG_INF) {
            Arrays.fill(out, oo, oo + n, Float.NaN);
            return;
        }
        FloatVector mv = FloatVector.broadcast(F, max);
        FloatVector sum = FloatVector.zero(F);
        int full = n - n % L;
        int j = 0;
        for (; j < full; j += L) {
            FloatVector e = FastExp.exp(FloatVector.fromArray(F, x, xo + j).sub(mv));
            e.intoArray(out, oo + j);
            sum = sum.add(e);
        }
        if (j < n) {
            VectorMask<Float> in = F.indexInRange(j, n);
            FloatVector e = FastExp.exp(FloatVector.fromArray(F, x, xo + j, in).sub(mv)).blend(0f, in.not());
            e.intoArray(out, oo + j, in);
            sum = sum.add(e);
        }
        FloatVector inv = FloatVector.broadcast(F, 1f / sum.reduceLanes(VectorOperators.ADD));
        for (j = 0; j < full; j += L) {
            FloatVector.fromArray(F, out, oo + j).mul(inv).intoArray(out, oo + j);
        }
        if (j < n) {
            VectorMask<Float> in = F.indexInRange(j, n);
            FloatVector.fromArray(F, out, oo + j, in).mul(inv).intoArray(out, oo + j, in);
        }
    }

    private static void logSoftmaxRow(float[] x, int xo, int n, float[] out, int oo) {
        float max = rowMax(x, xo, n);
        if (max == NEG_INF) {
            Arrays.fill(out, oo, oo + n, Float.NaN);
            return;
        }
        FloatVector mv = FloatVector.broadcast(F, max);
        FloatVector sum = FloatVector.zero(F);
        int full = n - n % L;
        int j = 0;
        for (; j < full; j += L) {
            sum = sum.add(FastExp.exp(FloatVector.fromArray(F, x, xo + j).sub(mv)));
        }
        if (j < n) {
            VectorMask<Float> in = F.indexInRange(j, n);
            sum = sum.add(FastExp.exp(FloatVector.fromArray(F, x, xo + j, in).sub(mv)).blend(0f, in.not()));
        }
        FloatVector shift = FloatVector.broadcast(F, max + (float) Math.log(sum.reduceLanes(VectorOperators.ADD)));
        for (j = 0; j < full; j += L) {
            FloatVector.fromArray(F, x, xo + j).sub(shift).intoArray(out, oo + j);
        }
        if (j < n) {
            VectorMask<Float> in = F.indexInRange(j, n);
            FloatVector.fromArray(F, x, xo + j, in).sub(shift).intoArray(out, oo + j, in);
        }
    }

    /**
     * Row maximum by compare + blend (cheaper than FloatVector.max's Math.max semantics). It may skip a NaN, but a
     * NaN still reaches the sum and so every output, as in torch; a row of -inf gives -inf.
     */
    private static float rowMax(float[] x, int xo, int n) {
        FloatVector vmax = FloatVector.broadcast(F, NEG_INF);
        int full = n - n % L;
        int j = 0;
        for (; j < full; j += L) {
            FloatVector v = FloatVector.fromArray(F, x, xo + j);
            vmax = vmax.blend(v, vmax.compare(VectorOperators.LT, v));
        }
        if (j < n) {
            VectorMask<Float> in = F.indexInRange(j, n);
            FloatVector v = FloatVector.fromArray(F, x, xo + j, in);
            vmax = vmax.blend(v, vmax.compare(VectorOperators.LT, v, in));
        }
        return vmax.reduceLanes(VectorOperators.MAX);
    }

    private static void check(String op, float[] x, int xOffset, int rows, int cols, float[] out, int outOffset) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("%s: rows=%d cols=%d, expected both >= 0".formatted(op, rows, cols));
        }
        long len = (long) rows * cols;
        if (x == null || xOffset < 0 || xOffset + len > x.length) {
            throw new IllegalArgumentException("%s: x [%d, %d] at offset %d needs %d floats, array has %s"
                    .formatted(op, rows, cols, xOffset, xOffset + len, x == null ? "null" : String.valueOf(x.length)));
        }
        if (out == null || outOffset < 0 || outOffset + len > out.length) {
            throw new IllegalArgumentException("%s: out [%d, %d] at offset %d needs %d floats, array has %s"
                    .formatted(op, rows, cols, outOffset, outOffset + len,
                            out == null ? "null" : String.valueOf(out.length)));
        }
    }
}
