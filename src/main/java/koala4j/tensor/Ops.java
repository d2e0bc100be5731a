package koala4j.tensor;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The op contract: everything model code can ask of a backend. A backend (CPU, CUDA) implements all of it;
 * model code reaches it only through {@link Tensor} methods, never by naming a backend.
 *
 * <p>Inputs may be any view (strided, broadcast, transposed); outputs are new dense tensors of this backend.
 * Floating outputs are F32 unless a method says otherwise. Shape errors are {@link IllegalArgumentException}s
 * that name the shapes involved.
 */
public interface Ops {

    /** A short name and the device it computes on. */
    String name();

    Device device();

    // ---- creation and transfer

    /** A tensor of the given shape, contents unspecified (Q8_0: zeros; its last dim a whole number of blocks). */
    Tensor empty(DType dtype, int... shape);

    Tensor full(float value, DType dtype, int... shape);

    /** Copies {@code data} into a new F32 tensor; data.length must equal the shape's element count. */
    Tensor fromArray(float[] data, int... shape);

    Tensor fromArray(long[] data, int... shape);

    Tensor fromArray(int[] data, int... shape);

    /**
     * A tensor over host memory (for example an mmap'ed checkpoint region), zero-copy where the device allows.
     * The caller keeps the memory alive as long as the tensor is used.
     */
    Tensor wrap(MemorySegment hostData, DType dtype, int... shape);

    /** Dense row-major copy of any view. */
    Tensor contiguous(Tensor x);

    /**
     * Writes {@code src} (broadcast to the destination's shape, converted to its dtype) into the view {@code dst}
     * in place. The one mutating op: for caches (a KV cache written one position at a time) and buffers the caller
     * owns; never use it on weights or on a tensor another thread reads. A Q8_0 destination takes whole blocks
     * along its contiguous last dim: quantised as {@code cast(src, Q8_0)} would, or block for block from Q8_0.
     */
    void copyInto(Tensor src, Tensor dst);

    /**
     * Conversion to another dtype (float to int truncates toward zero as torch does). To {@link DType#Q8_0}: blocks of
     * 32 along the last dim (which must be a multiple of 32), quantised as ggml's Q8_0 reference does.
     */
    Tensor cast(Tensor x, DType dtype);

    /** Values as float, in row-major order of the view. */
    float[] toFloatArray(Tensor x);

    /** Values as long, in row-major order of the view (floats truncated toward zero). */
    long[] toLongArray(Tensor x);

    // ---- elementwise

    Tensor unary(UnaryOp op, Tensor x, float arg);

    Tensor activation(Activation act, Tensor x);

    /** Broadcasting binary op (numpy rules); comparisons give F32 1/0. */
    Tensor binary(BinaryOp op, Tensor a, Tensor b);

    /** torch.where(cond != 0, a, b) with broadcasting. */
    Tensor where(Tensor cond, Tensor a, Tensor b);

    // ---- reductions and indexing

    Tensor reduce(ReduceOp op, Tensor x, int axis, boolean keepDim);

    /** torch.var(x, dim, correction): sum((x - mean)^2) / (n - correction). */
    Tensor variance(Tensor x, int axis, int correction, boolean keepDim);

    /** Index (I64) of the first maximum along {@code axis}, as torch.argmax. */
    Tensor argmax(Tensor x, int axis, boolean keepDim);

    Tensor concat(List<Tensor> xs, int axis);

    /** torch.index_select(x, axis, index) with an I32/I64 index vector; an embedding lookup is axis 0. */
    Tensor indexSelect(Tensor x, int axis, Tensor index);

    // ---- neural-network kernels

    /**
     * torch.matmul for tensors of rank >= 2 (batch dims broadcast), then {@code + bias} over the last dim and
     * the activation, fused. Transposed views are read in place, without a copy.
     */
    Tensor matmul(Tensor a, Tensor b, Tensor bias, Activation act);

    /** torch.nn.functional.linear: x [..., in] · weight[out, in]ᵀ + bias[out], then act. The weight may be Q8_0. */
    Tensor linear(Tensor x, Tensor weight, Tensor bias, Activation act);

    /** torch.nn.functional.conv2d on NCHW, then act; bias may be null. */
    Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int stride, int padding, int groups, Activation act);

    /** torch.nn.GroupNorm on [N, C, ...] then act (NONE or SILU); gamma/beta may be null. */
    Tensor groupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, Activation act);

    /** torch.nn.LayerNorm over the last dim; gamma/beta may be null. */
    Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, float eps);

    /** LlamaRMSNorm / T5LayerNorm over the last dim; gamma may be null. */
    Tensor rmsNorm(Tensor x, Tensor gamma, float eps);

    Tensor softmax(Tensor x, int axis);

    Tensor logSoftmax(Tensor x, int axis);

    /**
     * torch.nn.functional.scaled_dot_product_attention on q [B, nH, Nq, D], k/v [B, nKV, Nk, D] (grouped-query
     * attention when nKV divides nH). The mask, if any, is additive float broadcastable to [B, nH, Nq, Nk]
     * (convert boolean masks with {@link Tensor#maskToBias()}); causal is bottom-right aligned.
     */
    Tensor attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, float scale);

    /** diffusers GEGLU after its projection: x [..., 2C] gives x[..., :C] * gelu(x[..., C:]). */
    Tensor geglu(Tensor x);

    /** F.interpolate(scale_factor=2, mode='nearest') on [N, C, H, W]. */
    Tensor upsampleNearest2x(Tensor x);

    /** F.avg_pool2d on [N, C, H, W] (count_include_pad=True, ceil_mode=False unless given). */
    Tensor avgPool2d(Tensor x, int kernel, int stride, int padding, boolean ceilMode, boolean countIncludePad);

    /** F.interpolate(size=(height, width), mode, align_corners, antialias) on [N, C, H, W]. */
    Tensor resize(Tensor x, int height, int width, ResizeMode mode, boolean alignCorners, boolean antialias);
}
