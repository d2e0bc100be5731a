package koala4j.backend.cpu;

import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Softmax and log-softmax over the last dim of a contiguous [rows, cols] float32 block, computed like
 * {@code torch.softmax(x, -1)} / {@code torch.log_softmax(x, -1)} on CPU (ATen's vectorised last-dim kernel):
 * subtract the row maximum, exponentiate, sum, then multiply by 1/sum (softmax) or subtract max + log(sum)
 * (log-softmax). Rows are spread over {@link Parallel}'s threads.
 *
 * <p>A row that is entirely -inf gives NaN in every column, as torch does (its max is -inf and -inf - -inf is NaN).
 * A row holding NaN or +inf also gives NaN throughout. Exponentials come from FastExp (about 2 ulp);
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
        float sum = FastExp.exp(x, xo, out, oo, n, max);
        FloatVector inv = FloatVector.broadcast(F, 1f / sum);
        int full = n - n % L;
        int j = 0;
        for (; j < full; j += L) {
            FloatVector.fromArray(F, out, oo + j).mul(inv).intoArray(out, oo + j);
        }
        for (; j < n; j++) {
            out[oo + j] *= 1f / sum;
        }
    }

    private static void logSoftmaxRow(float[] x, int xo, int n, float[] out, int oo) {
        float max = rowMax(x, xo, n);
        if (max == NEG_INF) {
            Arrays.fill(out, oo, oo + n, Float.NaN);
            return;
        }
        float shift = max + (float) Math.log(FastExp.exp(x, xo, null, 0, n, max));
        FloatVector sv = FloatVector.broadcast(F, shift);
        int full = n - n % L;
        int j = 0;
        for (; j < full; j += L) {
            FloatVector.fromArray(F, x, xo + j).sub(sv).intoArray(out, oo + j);
        }
        for (; j < n; j++) {
            out[oo + j] = x[xo + j] - shift;
        }
    }

    /**
     * Row maximum by compare + blend (cheaper than FloatVector.max's Math.max semantics). It may skip a NaN, but a
     * NaN still reaches the sum and so every output, as in torch; a row of -inf gives -inf. Vector code stays
     * inside each method (no vector parameters or results), so nothing depends on C2's inlining choices.
     */
    private static float rowMax(float[] x, int xo, int n) {
        FloatVector vmax = FloatVector.broadcast(F, NEG_INF);
        int full = n - n % L;
        for (int j = 0; j < full; j += L) {
            FloatVector v = FloatVector.fromArray(F, x, xo + j);
            vmax = vmax.blend(v, vmax.compare(VectorOperators.LT, v));
        }
        float max = vmax.reduceLanes(VectorOperators.MAX);
        for (int j = full; j < n; j++) {
            max = x[xo + j] > max ? x[xo + j] : max;
        }
        return max;
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
