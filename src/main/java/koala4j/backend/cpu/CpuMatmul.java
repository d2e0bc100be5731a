package koala4j.backend.cpu;

import java.util.Arrays;

import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Q4Storage;
import koala4j.tensor.quant.Q8Storage;

/** {@link CpuOps}' matrix products: torch.matmul with broadcast batches, F.linear (F32/F16/BF16, Q8_0 and Q4_0 weights). */
final class CpuMatmul {

    private CpuMatmul() {
    }

    /** A matrix operand read in place when its last two dims are row- or column-major, else a dense copy. */
    private static Tensor matrixLayout(Tensor x) {
        long rowStride = x.stride(-2);
        long colStride = x.stride(-1);
        int rows = x.size(-2);
        int cols = x.size(-1);
        boolean rowMajor = colStride == 1 || cols == 1;
        boolean colMajor = rowStride == 1 || rows == 1;
        boolean ldOk = rowMajor ? rowStride >= cols || rows == 1 : colStride >= rows || cols == 1;
        if ((rowMajor || colMajor) && ldOk) {
            return x;
        }
        return x.contiguous();
    }

    private static Gemm.MatrixRef ref(Tensor m, long batchOffset, long batchStride) {
        int rows = m.size(-2);
        int cols = m.size(-1);
        long rowStride = m.stride(-2);
        long colStride = m.stride(-1);
        boolean rowMajor = (colStride == 1 || cols == 1) && (rowStride >= cols || rows == 1);
        if (rowMajor) {
            int ld = rows == 1 ? Math.max(cols, 1) : Math.toIntExact(rowStride);
            return new Gemm.MatrixRef(CpuOps.storageSource(m), m.offset() + batchOffset, ld, false, batchStride);
        }
        int ld = cols == 1 ? Math.max(rows, 1) : Math.toIntExact(colStride);
        return new Gemm.MatrixRef(CpuOps.storageSource(m), m.offset() + batchOffset, ld, true, batchStride);
    }

    static Tensor matmul(CpuOps ops, Tensor a, Tensor b, Tensor bias, Activation act) {
        if (a.rank() < 1 || b.rank() < 1) {
            throw new IllegalArgumentException("matmul of a scalar: " + a + " and " + b);
        }
        // torch.matmul promotes vectors to matrices and drops the added dim afterwards
        boolean aVector = a.rank() == 1;
        boolean bVector = b.rank() == 1;
        Tensor am = aVector ? a.unsqueeze(0) : a;
        Tensor bm = bVector ? b.unsqueeze(1) : b;
        int m = am.size(-2);
        int k = am.size(-1);
        int n = bm.size(-1);
        if (bm.size(-2) != k) {
            throw new IllegalArgumentException("matmul: " + Arrays.toString(a.shape()) + " · " + Arrays.toString(b.shape())
                    + ": inner dims " + k + " and " + bm.size(-2) + " differ");
        }
        if (quantised(am) || quantised(bm)) {
            // only F.linear has Q8_0 and Q4_0 kernels; any other product reads the values back first
            am = quantised(am) ? CpuOps.quantValues(am) : am;
            bm = quantised(bm) ? CpuOps.quantValues(bm) : bm;
        }
        int[] aBatch = Arrays.copyOf(am.shape(), am.rank() - 2);
        int[] bBatch = Arrays.copyOf(bm.shape(), bm.rank() - 2);
        int[] batchShape = Strided.broadcast(aBatch, bBatch);
        int batch = Math.toIntExact(Tensor.numel(batchShape));
        am = matrixLayout(am.dtype().isFloating() ? am : am.to(DType.F32));
        bm = matrixLayout(bm.dtype().isFloating() ? bm : bm.to(DType.F32));
        float[] biasValues = CpuOps.biasVector(bias, n, "matmul");
        float[] out = new float[Math.toIntExact((long) batch * m * n)];
        long[] aStrides = Strided.broadcastStrides(aBatch, Arrays.copyOf(am.strides(), aBatch.length), batchShape);
        long[] bStrides = Strided.broadcastStrides(bBatch, Arrays.copyOf(bm.strides(), bBatch.length), batchShape);
        Gemm.Epilogue epilogue = new Gemm.Epilogue(1f, biasValues, false, act, false);
        long aUniform = uniformStride(batchShape, aStrides);
        long bUniform = uniformStride(batchShape, bStrides);
        if (aUniform != Long.MIN_VALUE && bUniform != Long.MIN_VALUE) {
            Gemm.gemm(batch, m, n, k, ref(am, 0, aUniform), ref(bm, 0, bUniform), out, 0, n, (long) m * n, epilogue);
        } else {
            int[] idx = new int[batchShape.length];
            for (int p = 0; p < batch; p++) {
                long ao = 0;
                long bo = 0;
                for (int d = 0; d < idx.length; d++) {
                    ao += idx[d] * aStrides[d];
                    bo += idx[d] * bStrides[d];
                }
                Gemm.gemm(1, m, n, k, ref(am, ao, 0), ref(bm, bo, 0), out, p * m * n, n, 0, epilogue);
                for (int d = idx.length - 1; d >= 0; d--) {
                    if (++idx[d] < batchShape[d]) {
                        break;
                    }
                    idx[d] = 0;
                }
            }
        }
        int[] shape = Arrays.copyOf(batchShape, batchShape.length + 2);
        shape[batchShape.length] = m;
        shape[batchShape.length + 1] = n;
        Tensor result = ops.dense(out, shape);
        if (aVector) {
            result = result.squeeze(-2);
        }
        if (bVector) {
            result = result.squeeze(-1);
        }
        return result;
    }

    /** One stride that walks the flattened batch, or MIN_VALUE when the batch dims are not evenly strided. */
    private static long uniformStride(int[] batchShape, long[] strides) {
        long stride = 0;
        boolean set = false;
        long expectedNext = 0;
        for (int d = batchShape.length - 1; d >= 0; d--) {
            if (batchShape[d] == 1) {
                continue;
            }
            if (!set) {
                stride = strides[d];
                expectedNext = strides[d] * batchShape[d];
                set = true;
            } else if (strides[d] != expectedNext) {
                return Long.MIN_VALUE;
            } else {
                expectedNext = strides[d] * batchShape[d];
            }
        }
        return stride;
    }

    static Tensor linear(CpuOps ops, Tensor x, Tensor weight, Tensor bias, Activation act) {
        if (weight.rank() != 2 || x.rank() < 1 || x.size(-1) != weight.size(1)) {
            throw new IllegalArgumentException("linear: input " + Arrays.toString(x.shape()) + " and weight "
                    + Arrays.toString(weight.shape()) + ", expected weight [out, " + (x.rank() > 0 ? x.size(-1) : "?") + "]");
        }
        int in = weight.size(1);
        int outFeatures = weight.size(0);
        long offset = weight.offset();
        QuantisedLinear kernel = weight.storage() instanceof Q8Storage q
                ? (input, rows, b, out) -> Q8Gemm.linear(input, 0, rows, in, q, offset, outFeatures, b, act, out)
                : weight.storage() instanceof Q4Storage q
                ? (input, rows, b, out) -> Q4Gemm.linear(input, 0, rows, in, q, offset, outFeatures, b, act, out)
                : null;
        if (kernel != null) {
            // both formats' blocks run along rows of 32: a view starting off the grid reads its values back instead
            if (weight.isContiguous() && offset % Q8Storage.BLOCK == 0) {
                return linearQuantised(ops, x, weight, bias, kernel);
            }
            weight = CpuOps.quantValues(weight);
        }
        Tensor flat = x.reshape(-1, in);
        Tensor result = matmul(ops, flat, weight.transpose(0, 1), bias, act);
        int[] shape = x.shape();
        shape[shape.length - 1] = outFeatures;
        return result.reshape(shape);
    }

    private static boolean quantised(Tensor t) {
        return t.dtype().isQuantised();
    }

    /** A Q8_0 or Q4_0 kernel: out [rows, n] for input [rows, k] and the bias (null: none). */
    @FunctionalInterface
    private interface QuantisedLinear {
        void run(float[] input, int rows, float[] bias, float[] out);
    }

    private static Tensor linearQuantised(CpuOps ops, Tensor x, Tensor weight, Tensor bias, QuantisedLinear kernel) {
        int in = weight.size(1);
        int outFeatures = weight.size(0);
        int rows = Math.toIntExact(x.numel() / Math.max(in, 1));
        float[] out = new float[Math.toIntExact((long) rows * outFeatures)];
        kernel.run(CpuOps.floats(x), rows, CpuOps.biasVector(bias, outFeatures, "linear"), out);
        int[] shape = x.shape();
        shape[shape.length - 1] = outFeatures;
        return ops.dense(out, shape);
    }
}
