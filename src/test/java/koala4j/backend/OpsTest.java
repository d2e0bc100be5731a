package koala4j.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import koala4j.tensor.Activation;
import koala4j.tensor.BinaryOp;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.ReduceOp;
import koala4j.tensor.Tensor;
import koala4j.tensor.UnaryOp;

/**
 * Every tensor-level op on every available backend, against plain loops over the row-major values, on random
 * shapes with odd sizes and on non-contiguous views (transposes, slices, broadcasts). The kernels behind them are
 * compared with their scalar twins in koala4j.backend.cpu; here the point is the wiring: strides, broadcasting,
 * axes and shapes. Metric: max |Δ| <= 1e-5 * (1 + max|ref|) unless a test says otherwise.
 */
class OpsTest {

    static Stream<Backend> backends() {
        return Backends.available().stream();
    }

    private static float[] random(SplittableRandom rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextDouble() * 4 - 2);
        }
        return a;
    }

    /** A [rows, cols] tensor that is a transposed view of a dense [cols, rows] one. */
    private static Tensor transposed(Ops ops, float[] rowMajor, int rows, int cols) {
        float[] t = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = rowMajor[r * cols + c];
            }
        }
        Tensor view = ops.fromArray(t, cols, rows).transpose(0, 1);
        assertTrue(!view.isContiguous() || rows == 1 || cols == 1);
        return view;
    }

    private static void close(float[] expected, float[] actual, double rel) {
        assertEquals(expected.length, actual.length, "length");
        double scale = 0;
        for (float e : expected) {
            if (Float.isFinite(e)) {
                scale = Math.max(scale, Math.abs(e));
            }
        }
        for (int i = 0; i < expected.length; i++) {
            if (!Float.isFinite(expected[i])) {
                assertEquals(expected[i], actual[i], "index " + i);
                continue;
            }
            assertEquals(expected[i], actual[i], rel * (1 + scale), "index " + i);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void viewsShareStorageAndCopiesAreDense(Backend be) {
        Ops ops = be.ops();
        float[] data = new float[2 * 3 * 5];
        for (int i = 0; i < data.length; i++) {
            data[i] = i;
        }
        Tensor x = ops.fromArray(data, 2, 3, 5);
        Tensor p = x.permute(2, 0, 1);
        assertArrayEquals(new int[] {5, 2, 3}, p.shape());
        float[] pv = p.toFloatArray();
        for (int a = 0; a < 5; a++) {
            for (int b = 0; b < 2; b++) {
                for (int c = 0; c < 3; c++) {
                    assertEquals(data[b * 15 + c * 5 + a], pv[a * 6 + b * 3 + c]);
                }
            }
        }
        Tensor s = x.slice(2, 1, 4).select(0, 1);
        assertArrayEquals(new float[] {16, 17, 18, 21, 22, 23, 26, 27, 28}, s.toFloatArray());
        assertArrayEquals(new float[] {16, 17, 18, 21, 22, 23, 26, 27, 28}, s.reshape(-1).toFloatArray());
        Tensor e = ops.fromArray(new float[] {1, 2, 3}, 3, 1).expand(2, 3, 4);
        assertEquals(24, e.toFloatArray().length);
        assertEquals(3f, e.toFloatArray()[23]);
        List<Tensor> chunks = x.chunk(5, -1);
        assertEquals(5, chunks.size());
        assertArrayEquals(new float[] {4, 9, 14, 19, 24, 29}, chunks.get(4).toFloatArray());
        assertThrows(IllegalArgumentException.class, () -> x.chunk(4, -1));
        assertThrows(IllegalArgumentException.class, () -> x.reshape(7, -1));
        assertThrows(IllegalArgumentException.class, () -> x.expand(2, 4, 5));
        assertArrayEquals(new int[] {2, 1, 3, 5}, x.unsqueeze(1).shape());
        assertArrayEquals(new int[] {6, 5}, x.flatten(0, 1).shape());
    }

    @ParameterizedTest
    @MethodSource("backends")
    void binaryOpsBroadcastOverViews(Backend be) {
        Ops ops = be.ops();
        SplittableRandom rnd = new SplittableRandom(1);
        int rows = 7;
        int cols = 37;
        float[] a = random(rnd, rows * cols);
        float[] b = random(rnd, cols);
        float[] c = random(rnd, rows);
        Tensor at = transposed(ops, a, rows, cols);                 // [7, 37] non-contiguous
        Tensor bt = ops.fromArray(b, cols);                          // broadcast along rows
        Tensor ct = ops.fromArray(c, rows, 1);                       // broadcast along cols
        for (BinaryOp op : BinaryOp.values()) {
            float[] expected = new float[rows * cols];
            float[] expected2 = new float[rows * cols];
            for (int r = 0; r < rows; r++) {
                for (int k = 0; k < cols; k++) {
                    float bv = op == BinaryOp.POW ? Math.abs(b[k]) : b[k];
                    expected[r * cols + k] = op.apply(op == BinaryOp.POW ? Math.abs(a[r * cols + k]) : a[r * cols + k], bv);
                    expected2[r * cols + k] = op.apply(c[r], b[k]);
                }
            }
            Tensor lhs = op == BinaryOp.POW ? at.abs() : at;
            Tensor rhs = op == BinaryOp.POW ? bt.abs() : bt;
            close(expected, ops.binary(op, lhs, rhs).toFloatArray(), 1e-6);
            close(expected2, ops.binary(op, ct, bt).toFloatArray(), 1e-6);
        }
        assertThrows(IllegalArgumentException.class, () -> at.add(ops.fromArray(new float[5], 5)));
    }

    @ParameterizedTest
    @MethodSource("backends")
    void unaryOpsAndActivationsMatchTheirFormulas(Backend be) {
        Ops ops = be.ops();
        SplittableRandom rnd = new SplittableRandom(2);
        float[] a = random(rnd, 5 * 67);
        Tensor view = transposed(ops, a, 5, 67);
        for (UnaryOp op : UnaryOp.values()) {
            float arg = op == UnaryOp.POW_SCALAR ? 2f : 0.5f;
            float[] expected = new float[a.length];
            for (int i = 0; i < a.length; i++) {
                expected[i] = op.apply(a[i], arg);
            }
            // log/sqrt of negatives are NaN in both; transcendental lanes are within a few ulp
            close(expected, ops.unary(op, view, arg).toFloatArray(), 2e-6);
        }
        for (Activation act : Activation.values()) {
            float[] expected = new float[a.length];
            for (int i = 0; i < a.length; i++) {
                expected[i] = act.apply(a[i]);
            }
            close(expected, view.activation(act).toFloatArray(), 2e-6);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void reductionsOverEveryAxis(Backend be) {
        Ops ops = be.ops();
        SplittableRandom rnd = new SplittableRandom(3);
        int[] shape = {3, 19, 5};
        float[] a = random(rnd, 3 * 19 * 5);
        Tensor x = ops.fromArray(a, shape);
        for (int axis = 0; axis < 3; axis++) {
            int outer = axis == 0 ? 1 : axis == 1 ? 3 : 57;
            int len = shape[axis];
            int inner = axis == 0 ? 95 : axis == 1 ? 5 : 1;
            for (ReduceOp op : ReduceOp.values()) {
                float[] expected = new float[outer * inner];
                for (int o = 0; o < outer; o++) {
                    for (int j = 0; j < inner; j++) {
                        double acc = op == ReduceOp.MAX ? Double.NEGATIVE_INFINITY
                                : op == ReduceOp.MIN ? Double.POSITIVE_INFINITY : 0;
                        for (int l = 0; l < len; l++) {
                            float v = a[(o * len + l) * inner + j];
                            acc = switch (op) {
                                case SUM, MEAN -> acc + v;
                                case MAX -> Math.max(acc, v);
                                case MIN -> Math.min(acc, v);
                            };
                        }
                        expected[o * inner + j] = (float) (op == ReduceOp.MEAN ? acc / len : acc);
                    }
                }
                close(expected, ops.reduce(op, x, axis, false).toFloatArray(), 1e-6);
                assertEquals(1, ops.reduce(op, x, axis, true).size(axis));
            }
            float[] var = new float[outer * inner];
            long[] arg = new long[outer * inner];
            for (int o = 0; o < outer; o++) {
                for (int j = 0; j < inner; j++) {
                    double mean = 0;
                    float best = Float.NEGATIVE_INFINITY;
                    for (int l = 0; l < len; l++) {
                        float v = a[(o * len + l) * inner + j];
                        mean += v;
                        if (v > best) {
                            best = v;
                            arg[o * inner + j] = l;
                        }
                    }
                    mean /= len;
                    double ss = 0;
                    for (int l = 0; l < len; l++) {
                        double d = a[(o * len + l) * inner + j] - mean;
                        ss += d * d;
                    }
                    var[o * inner + j] = (float) (ss / (len - 1));
                }
            }
            close(var, x.var(axis, 1, false).toFloatArray(), 1e-6);
            assertArrayEquals(arg, x.argmax(axis, false).toLongArray());
        }
        assertEquals(sum(a), x.sum().item(), 1e-4);
    }

    private static double sum(float[] a) {
        double s = 0;
        for (float v : a) {
            s += v;
        }
        return s;
    }

    @ParameterizedTest
    @MethodSource("backends")
    void concatStackIndexSelectAndWhere(Backend be) {
        Ops ops = be.ops();
        Tensor a = ops.fromArray(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor b = ops.fromArray(new float[] {7, 8}, 2, 1);
        assertArrayEquals(new float[] {1, 2, 3, 7, 4, 5, 6, 8}, Tensor.concat(List.of(a, b), 1).toFloatArray());
        assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6, 1, 2, 3, 4, 5, 6},
                Tensor.concat(List.of(a.transpose(0, 1).reshape(-1), a.reshape(-1)), 0).toFloatArray());
        assertArrayEquals(new int[] {2, 2, 3}, Tensor.stack(List.of(a, a), 0).shape());
        Tensor ids = ops.fromArray(new long[] {2, 0, -1}, 3);
        assertArrayEquals(new float[] {3, 1, 3, 6, 4, 6}, a.indexSelect(1, ids).toFloatArray());
        Tensor table = ops.fromArray(new float[] {0, 0, 1, 1, 2, 2}, 3, 2);
        Tensor emb = table.embedding(ops.fromArray(new long[] {2, 1, 0, 2}, 2, 2));
        assertArrayEquals(new int[] {2, 2, 2}, emb.shape());
        assertArrayEquals(new float[] {2, 2, 1, 1, 0, 0, 2, 2}, emb.toFloatArray());
        Tensor f16Table = table.to(DType.F16);
        assertArrayEquals(new float[] {1, 1}, f16Table.embedding(ops.fromArray(new long[] {1}, 1)).toFloatArray());
        assertThrows(IllegalArgumentException.class, () -> table.embedding(ops.fromArray(new long[] {3}, 1)));
        Tensor longs = ops.fromArray(new long[] {5, 6}, 2);
        assertArrayEquals(new long[] {5, 6, 5, 6}, Tensor.concat(List.of(longs, longs), 0).toLongArray());
        Tensor cond = ops.fromArray(new float[] {1, 0, 1}, 3);
        assertArrayEquals(new float[] {1, 8, 3, 4, 8, 6},
                cond.where(a, ops.full(8f, DType.F32)).toFloatArray());
        Tensor bias = ops.fromArray(new float[] {1, 0}, 2).maskToBias();
        assertArrayEquals(new float[] {0, Float.NEGATIVE_INFINITY}, bias.toFloatArray());
    }

    @ParameterizedTest
    @MethodSource("backends")
    void copyIntoWritesAViewInPlace(Backend be) {
        Ops ops = be.ops();
        Tensor cache = ops.full(0f, DType.F32, 2, 4, 3);                 // [heads, positions, D]
        Tensor step = ops.fromArray(new float[] {1, 2, 3, 4, 5, 6}, 2, 1, 3);
        cache.slice(1, 2, 3).copyFrom(step);
        float[] v = cache.toFloatArray();
        assertArrayEquals(new float[] {1, 2, 3}, java.util.Arrays.copyOfRange(v, 6, 9));
        assertArrayEquals(new float[] {4, 5, 6}, java.util.Arrays.copyOfRange(v, 18, 21));
        assertEquals(21f, cache.sum().item(), 0f);
        Tensor longs = ops.fromArray(new long[] {0, 0, 0}, 3);
        longs.slice(0, 1, 3).copyFrom(ops.fromArray(new float[] {7, 8}, 2));
        assertArrayEquals(new long[] {0, 7, 8}, longs.toLongArray());
    }

    @ParameterizedTest
    @MethodSource("backends")
    void castsRoundTrip(Backend be) {
        Ops ops = be.ops();
        Tensor x = ops.fromArray(new float[] {1.5f, -2.25f, 3f, 65504f}, 2, 2);
        for (DType dt : DType.values()) {
            if (dt == DType.Q8_0 || dt == DType.Q4_0) {
                continue;   // lossy block formats with their own tests (backend/cpu/Q8Test, Q4Test)
            }
            Tensor back = x.transpose(0, 1).to(dt).to(DType.F32);
            float[] expected = dt.isFloating() ? new float[] {1.5f, 3f, -2.25f, 65504f} : new float[] {1, 3, -2, 65504};
            assertArrayEquals(expected, back.toFloatArray(), dt == DType.BF16 ? 300f : 0f, dt.toString());
        }
    }

    /** Plain-loop torch.matmul on row-major values with batch broadcasting. */
    private static float[] refMatmul(float[] a, int[] aShape, float[] b, int[] bShape, int[] outShape) {
        int m = aShape[aShape.length - 2];
        int k = aShape[aShape.length - 1];
        int n = bShape[bShape.length - 1];
        int batch = outShape.length == 2 ? 1 : outShape[0];
        int aBatch = aShape.length == 2 ? 1 : aShape[0];
        int bBatch = bShape.length == 2 ? 1 : bShape[0];
        float[] out = new float[batch * m * n];
        for (int p = 0; p < batch; p++) {
            int pa = aBatch == 1 ? 0 : p;
            int pb = bBatch == 1 ? 0 : p;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int l = 0; l < k; l++) {
                        acc += (double) a[(pa * m + i) * k + l] * b[(pb * k + l) * n + j];
                    }
                    out[(p * m + i) * n + j] = (float) acc;
                }
            }
        }
        return out;
    }

    @ParameterizedTest
    @MethodSource("backends")
    void matmulBroadcastsBatchesAndReadsTransposedViews(Backend be) {
        Ops ops = be.ops();
        SplittableRandom rnd = new SplittableRandom(4);
        int m = 13;
        int k = 29;
        int n = 11;
        float[] a = random(rnd, 3 * m * k);
        float[] b = random(rnd, k * n);
        float[] bias = random(rnd, n);
        Tensor at = ops.fromArray(a, 3, m, k);
        Tensor bt = transposed(ops, b, k, n);
        float[] expected = refMatmul(a, new int[] {3, m, k}, b, new int[] {k, n}, new int[] {3, m, n});
        close(expected, at.matmul(bt).toFloatArray(), 1e-5);
        float[] withBias = expected.clone();
        for (int i = 0; i < withBias.length; i++) {
            withBias[i] = Activation.GELU.apply(withBias[i] + bias[i % n]);
        }
        close(withBias, ops.matmul(at, bt, ops.fromArray(bias, n), Activation.GELU).toFloatArray(), 1e-5);
        // linear: weight [out, in], read transposed in place
        float[] w = random(rnd, n * k);
        float[] wt = new float[k * n];
        for (int o = 0; o < n; o++) {
            for (int i = 0; i < k; i++) {
                wt[i * n + o] = w[o * k + i];
            }
        }
        float[] lin = refMatmul(a, new int[] {3, m, k}, wt, new int[] {k, n}, new int[] {3, m, n});
        close(lin, at.linear(ops.fromArray(w, n, k), null).toFloatArray(), 1e-5);
        // F16 weights, as a checkpoint stores them
        Tensor w16 = ops.fromArray(w, n, k).to(DType.F16);
        close(ops.fromArray(lin, 3, m, n).toFloatArray(), at.linear(w16, null).toFloatArray(), 2e-3);
        // a batch of transposed left operands (attention's q·kᵀ pattern)
        Tensor kT = at.transpose(1, 2);                              // [3, k, m]
        float[] kTv = kT.toFloatArray();
        float[] expected2 = refMatmul(a, new int[] {3, m, k}, kTv, new int[] {3, k, m}, new int[] {3, m, m});
        close(expected2, at.matmul(kT).toFloatArray(), 1e-5);
        // vectors
        assertArrayEquals(new int[] {3, m}, at.matmul(ops.fromArray(random(rnd, k), k)).shape());
        assertThrows(IllegalArgumentException.class, () -> at.matmul(ops.fromArray(new float[6], 2, 3)));
    }

    @Test
    void selectReportsTheBackendAndRejectsUnknownDevices() {
        Backend cpu = Backends.select("cpu");
        assertEquals("cpu", cpu.name());
        assertTrue(cpu.reason().contains("threads"), cpu.reason());
        assertTrue(Backends.select("auto").reason().startsWith("auto"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Backends.select("tpu"));
        assertTrue(e.getMessage().contains("tpu") && e.getMessage().contains("expected"), e.getMessage());
    }
}
