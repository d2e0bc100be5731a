package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import koala4j.tensor.ReduceOp;

/**
 * Reductions of a dense [outer, len, inner] block over its middle axis into [outer, inner]. Sums accumulate in
 * double when the reduced run is contiguous per output, in float lanes otherwise; the variance is two-pass.
 */
final class Reductions {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private Reductions() {
    }

    static void reduce(ReduceOp op, float[] x, int outer, int len, int inner, float[] out) {
        Parallel.forRange(outer, Math.max(1, (1 << 14) / Math.max(1, len * inner)), (from, to) -> {
            for (int o = from; o < to; o++) {
                int base = o * len * inner;
                if (inner == 1) {
                    out[o] = reduceRun(op, x, base, len);
                } else {
                    reduceColumns(op, x, base, len, inner, out, o * inner);
                }
            }
        });
    }

    private static float reduceRun(ReduceOp op, float[] x, int base, int len) {
        if (len == 0) {
            return switch (op) {
                case SUM -> 0f;
                case MEAN -> Float.NaN;
                case MAX, MIN -> throw new IllegalArgumentException(op + " of an empty axis has no identity");
            };
        }
        return switch (op) {
            case SUM -> (float) sumRun(x, base, len);
            case MEAN -> (float) (sumRun(x, base, len) / len);
            case MAX, MIN -> {
                int i = 0;
                int bound = S.loopBound(len);
                VectorOperators.Associative vop = op == ReduceOp.MAX ? VectorOperators.MAX : VectorOperators.MIN;
                float acc = x[base];
                if (bound > 0) {
                    FloatVector v = FloatVector.fromArray(S, x, base);
                    for (i = S.length(); i < bound; i += S.length()) {
                        v = v.lanewise(vop, FloatVector.fromArray(S, x, base + i));
                    }
                    acc = v.reduceLanes(vop);
                }
                for (; i < len; i++) {
                    float e = x[base + i];
                    acc = Float.isNaN(acc) || Float.isNaN(e) ? Float.NaN
                            : op == ReduceOp.MAX ? Math.max(acc, e) : Math.min(acc, e);
                }
                yield acc;
            }
        };
    }

    /** Sum of a run: float lanes per block of 64 values, blocks added in double (accurate and vectorised). */
    static double sumRun(float[] x, int base, int len) {
        double total = 0;
        int i = 0;
        int block = 64 * S.length();
        while (i + S.length() <= len) {
            int end = Math.min(len, i + block);
            FloatVector acc = FloatVector.zero(S);
            for (; i + S.length() <= end; i += S.length()) {
                acc = acc.add(FloatVector.fromArray(S, x, base + i));
            }
            total += GemmVector.sum(acc);
        }
        for (; i < len; i++) {
            total += x[base + i];
        }
        return total;
    }

    private static void reduceColumns(ReduceOp op, float[] x, int base, int len, int inner, float[] out, int outOff) {
        if (len == 0) {
            for (int j = 0; j < inner; j++) {
                out[outOff + j] = reduceRun(op, x, base, 0);
            }
            return;
        }
        System.arraycopy(x, base, out, outOff, inner);
        for (int l = 1; l < len; l++) {
            int row = base + l * inner;
            int j = 0;
            int bound = S.loopBound(inner);
            for (; j < bound; j += S.length()) {
                FloatVector acc = FloatVector.fromArray(S, out, outOff + j);
                FloatVector v = FloatVector.fromArray(S, x, row + j);
                acc = switch (op) {
                    case SUM, MEAN -> acc.add(v);
                    case MAX -> acc.max(v);
                    case MIN -> acc.min(v);
                };
                acc.intoArray(out, outOff + j);
            }
            for (; j < inner; j++) {
                float e = x[row + j];
                float a = out[outOff + j];
                out[outOff + j] = switch (op) {
                    case SUM, MEAN -> a + e;
                    case MAX -> Float.isNaN(a) || Float.isNaN(e) ? Float.NaN : Math.max(a, e);
                    case MIN -> Float.isNaN(a) || Float.isNaN(e) ? Float.NaN : Math.min(a, e);
                };
            }
        }
        if (op == ReduceOp.MEAN) {
            float inv = 1f / len;
            for (int j = 0; j < inner; j++) {
                out[outOff + j] *= inv;
            }
        }
    }

    /** torch.var over the middle axis: two passes in double. */
    static void variance(float[] x, int outer, int len, int inner, int correction, float[] out) {
        Parallel.forRange(outer * inner, Math.max(1, (1 << 14) / Math.max(1, len)), (from, to) -> {
            for (int p = from; p < to; p++) {
                int o = p / inner;
                int j = p % inner;
                int base = o * len * inner + j;
                double mean = 0;
                for (int l = 0; l < len; l++) {
                    mean += x[base + l * inner];
                }
                mean /= len;
                double ss = 0;
                for (int l = 0; l < len; l++) {
                    double d = x[base + l * inner] - mean;
                    ss += d * d;
                }
                out[p] = (float) (ss / Math.max(0, len - correction));
            }
        });
    }

    /** torch.argmax: first index of the maximum; a NaN counts as the maximum, as in torch. */
    static void argmax(float[] x, int outer, int len, int inner, long[] out) {
        for (int o = 0; o < outer; o++) {
            for (int j = 0; j < inner; j++) {
                int base = o * len * inner + j;
                int best = 0;
                float bestValue = x[base];
                for (int l = 1; l < len && !Float.isNaN(bestValue); l++) {
                    float v = x[base + l * inner];
                    if (v > bestValue || Float.isNaN(v)) {
                        best = l;
                        bestValue = v;
                    }
                }
                out[o * inner + j] = best;
            }
        }
    }
}
