package koala4j.tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * An n-dimensional view over a {@link Storage}: shape, strides and offset in elements. Views (reshape of a dense
 * tensor, permute, transpose, slice, expand) share storage; every computing method returns a new dense tensor made
 * by this tensor's {@link Ops}. Immutable and safe to share between threads; the storage it views is mutated only
 * by the op that creates it.
 */
public final class Tensor {

    private final Ops ops;
    private final Storage storage;
    private final int[] shape;
    private final long[] strides;
    private final long offset;

    public Tensor(Ops ops, Storage storage, int[] shape, long[] strides, long offset) {
        if (shape.length != strides.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " and strides "
                    + Arrays.toString(strides) + " differ in rank");
        }
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
        }
        this.ops = ops;
        this.storage = storage;
        this.shape = shape.clone();
        this.strides = strides.clone();
        this.offset = offset;
    }

    /** A dense row-major tensor over the whole storage, starting at element 0. */
    public static Tensor dense(Ops ops, Storage storage, int... shape) {
        return new Tensor(ops, storage, shape, denseStrides(shape), 0);
    }

    public static long[] denseStrides(int[] shape) {
        long[] strides = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = s;
            s *= Math.max(shape[i], 1);
        }
        return strides;
    }

    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    // ---- metadata

    public Ops ops() {
        return ops;
    }

    public Storage storage() {
        return storage;
    }

    public DType dtype() {
        return storage.dtype();
    }

    public Device device() {
        return storage.device();
    }

    public int[] shape() {
        return shape.clone();
    }

    public long[] strides() {
        return strides.clone();
    }

    public long offset() {
        return offset;
    }

    public int rank() {
        return shape.length;
    }

    /** Size of {@code axis}; negative axes count from the end as in torch. */
    public int size(int axis) {
        return shape[axis(axis)];
    }

    public long stride(int axis) {
        return strides[axis(axis)];
    }

    public long numel() {
        return numel(shape);
    }

    /** Row-major dense with no gaps (size-1 dims may have any stride). */
    public boolean isContiguous() {
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    /** Normalises a possibly negative axis against this tensor's rank. */
    public int axis(int axis) {
        return normaliseAxis(axis, shape.length);
    }

    static int normaliseAxis(int axis, int rank) {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) {
            throw new IllegalArgumentException("axis " + axis + " out of range for rank " + rank);
        }
        return a;
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape) + " " + dtype() + " on " + ops.name();
    }

    // ---- views

    /** torch.reshape: a view when this tensor is dense, else a dense copy reshaped. One dim may be -1. */
    public Tensor reshape(int... newShape) {
        int[] target = inferShape(newShape);
        if (!isContiguous()) {
            return contiguous().reshape(target);
        }
        return new Tensor(ops, storage, target, denseStrides(target), offset);
    }

    private int[] inferShape(int[] newShape) {
        int[] target = newShape.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < target.length; i++) {
            if (target[i] == -1) {
                if (infer >= 0) {
                    throw new IllegalArgumentException("reshape " + Arrays.toString(newShape) + ": only one -1 allowed");
                }
                infer = i;
            } else if (target[i] < 0) {
                throw new IllegalArgumentException("reshape " + Arrays.toString(newShape) + ": negative dimension");
            } else {
                known *= target[i];
            }
        }
        long n = numel();
        if (infer >= 0) {
            if (known == 0 || n % known != 0) {
                throw new IllegalArgumentException("cannot reshape " + Arrays.toString(shape) + " (" + n
                        + " elements) into " + Arrays.toString(newShape));
            }
            target[infer] = Math.toIntExact(n / known);
        } else if (known != n) {
            throw new IllegalArgumentException("cannot reshape " + Arrays.toString(shape) + " (" + n
                    + " elements) into " + Arrays.toString(newShape) + " (" + known + " elements)");
        }
        return target;
    }

    /** torch.permute. */
    public Tensor permute(int... axes) {
        if (axes.length != shape.length) {
            throw new IllegalArgumentException("permute " + Arrays.toString(axes) + " of a rank-" + shape.length + " tensor");
        }
        int[] s = new int[axes.length];
        long[] st = new long[axes.length];
        boolean[] seen = new boolean[axes.length];
        for (int i = 0; i < axes.length; i++) {
            int a = axis(axes[i]);
            if (seen[a]) {
                throw new IllegalArgumentException("permute " + Arrays.toString(axes) + ": axis " + a + " repeated");
            }
            seen[a] = true;
            s[i] = shape[a];
            st[i] = strides[a];
        }
        return new Tensor(ops, storage, s, st, offset);
    }

    /** torch.transpose(a, b). */
    public Tensor transpose(int a, int b) {
        int[] axes = new int[shape.length];
        for (int i = 0; i < axes.length; i++) {
            axes[i] = i;
        }
        int x = axis(a);
        int y = axis(b);
        axes[x] = y;
        axes[y] = x;
        return permute(axes);
    }

    /** x[..., start:end, ...] along {@code axis} (negative bounds count from the end, clamped as Python slices). */
    public Tensor slice(int axis, int start, int end) {
        int a = axis(axis);
        int n = shape[a];
        int s = Math.clamp(start < 0 ? start + n : start, 0, n);
        int e = Math.clamp(end < 0 ? end + n : end, 0, n);
        int[] sh = shape.clone();
        sh[a] = Math.max(0, e - s);
        return new Tensor(ops, storage, sh, strides, offset + s * strides[a]);
    }

    /** x[..., index, ...]: drops {@code axis}. */
    public Tensor select(int axis, int index) {
        int a = axis(axis);
        int i = index < 0 ? index + shape[a] : index;
        if (i < 0 || i >= shape[a]) {
            throw new IllegalArgumentException("index " + index + " out of range for axis " + a + " of size " + shape[a]);
        }
        int[] sh = new int[shape.length - 1];
        long[] st = new long[shape.length - 1];
        for (int k = 0, j = 0; k < shape.length; k++) {
            if (k != a) {
                sh[j] = shape[k];
                st[j++] = strides[k];
            }
        }
        return new Tensor(ops, storage, sh, st, offset + i * strides[a]);
    }

    /** torch.chunk into {@code parts} equal pieces (the axis size must divide evenly). */
    public List<Tensor> chunk(int parts, int axis) {
        int a = axis(axis);
        if (parts < 1 || shape[a] % parts != 0) {
            throw new IllegalArgumentException("cannot split axis " + a + " of size " + shape[a] + " into " + parts
                    + " equal parts");
        }
        int step = shape[a] / parts;
        List<Tensor> out = new ArrayList<>(parts);
        for (int i = 0; i < parts; i++) {
            out.add(slice(a, i * step, (i + 1) * step));
        }
        return out;
    }

    /** torch.split with explicit sizes along {@code axis}; the sizes must add up to the axis size. */
    public List<Tensor> split(int axis, int... sizes) {
        int a = axis(axis);
        int total = Arrays.stream(sizes).sum();
        if (total != shape[a]) {
            throw new IllegalArgumentException("split sizes " + Arrays.toString(sizes) + " add up to " + total
                    + ", expected axis " + a + " size " + shape[a]);
        }
        List<Tensor> out = new ArrayList<>(sizes.length);
        int at = 0;
        for (int size : sizes) {
            out.add(slice(a, at, at + size));
            at += size;
        }
        return out;
    }

    public Tensor unsqueeze(int axis) {
        int a = normaliseAxis(axis, shape.length + 1);
        int[] sh = new int[shape.length + 1];
        long[] st = new long[shape.length + 1];
        for (int i = 0, j = 0; i < sh.length; i++) {
            if (i == a) {
                sh[i] = 1;
                st[i] = j < shape.length ? strides[j] * shape[j] : 1;
            } else {
                sh[i] = shape[j];
                st[i] = strides[j++];
            }
        }
        return new Tensor(ops, storage, sh, st, offset);
    }

    /** Removes {@code axis}, which must have size 1. */
    public Tensor squeeze(int axis) {
        int a = axis(axis);
        if (shape[a] != 1) {
            throw new IllegalArgumentException("squeeze axis " + a + " of size " + shape[a] + ", expected size 1");
        }
        return select(a, 0);
    }

    /** torch.flatten(startAxis, endAxis). */
    public Tensor flatten(int startAxis, int endAxis) {
        int s = axis(startAxis);
        int e = axis(endAxis);
        int[] sh = new int[shape.length - (e - s)];
        int j = 0;
        for (int i = 0; i < s; i++) {
            sh[j++] = shape[i];
        }
        long merged = 1;
        for (int i = s; i <= e; i++) {
            merged *= shape[i];
        }
        sh[j++] = Math.toIntExact(merged);
        for (int i = e + 1; i < shape.length; i++) {
            sh[j++] = shape[i];
        }
        return reshape(sh);
    }

    /** torch.expand: size-1 dims repeat with stride 0; -1 keeps a dim; new leading dims may be added. */
    public Tensor expand(int... newShape) {
        if (newShape.length < shape.length) {
            throw new IllegalArgumentException("expand " + Arrays.toString(shape) + " to fewer dims " + Arrays.toString(newShape));
        }
        int lead = newShape.length - shape.length;
        int[] sh = new int[newShape.length];
        long[] st = new long[newShape.length];
        for (int i = 0; i < newShape.length; i++) {
            if (i < lead) {
                if (newShape[i] < 0) {
                    throw new IllegalArgumentException("expand: -1 not allowed for the new leading dim " + i);
                }
                sh[i] = newShape[i];
                st[i] = 0;
                continue;
            }
            int old = shape[i - lead];
            int want = newShape[i] == -1 ? old : newShape[i];
            if (want == old) {
                sh[i] = old;
                st[i] = strides[i - lead];
            } else if (old == 1) {
                sh[i] = want;
                st[i] = 0;
            } else {
                throw new IllegalArgumentException("cannot expand " + Arrays.toString(shape) + " to "
                        + Arrays.toString(newShape) + ": dim " + i + " has size " + old);
            }
        }
        return new Tensor(ops, storage, sh, st, offset);
    }

    // ---- copies and conversion

    public Tensor contiguous() {
        return isContiguous() ? this : ops.contiguous(this);
    }

    /** Writes {@code src} into this view in place (see {@link Ops#copyInto}). */
    public void copyFrom(Tensor src) {
        ops.copyInto(src, this);
    }

    public Tensor to(DType dtype) {
        return dtype == dtype() ? this : ops.cast(this, dtype);
    }

    public float[] toFloatArray() {
        return ops.toFloatArray(this);
    }

    public long[] toLongArray() {
        return ops.toLongArray(this);
    }

    /** The single value of a one-element tensor. */
    public float item() {
        if (numel() != 1) {
            throw new IllegalArgumentException("item() of a tensor with shape " + Arrays.toString(shape));
        }
        return toFloatArray()[0];
    }

    // ---- elementwise

    public Tensor add(Tensor other) {
        return ops.binary(BinaryOp.ADD, this, other);
    }

    public Tensor sub(Tensor other) {
        return ops.binary(BinaryOp.SUB, this, other);
    }

    public Tensor mul(Tensor other) {
        return ops.binary(BinaryOp.MUL, this, other);
    }

    public Tensor div(Tensor other) {
        return ops.binary(BinaryOp.DIV, this, other);
    }

    public Tensor maximum(Tensor other) {
        return ops.binary(BinaryOp.MAXIMUM, this, other);
    }

    public Tensor minimum(Tensor other) {
        return ops.binary(BinaryOp.MINIMUM, this, other);
    }

    public Tensor pow(Tensor exponent) {
        return ops.binary(BinaryOp.POW, this, exponent);
    }

    public Tensor compare(BinaryOp comparison, Tensor other) {
        if (!comparison.isComparison()) {
            throw new IllegalArgumentException(comparison + " is not a comparison");
        }
        return ops.binary(comparison, this, other);
    }

    public Tensor add(float value) {
        return ops.unary(UnaryOp.ADD_SCALAR, this, value);
    }

    public Tensor sub(float value) {
        return ops.unary(UnaryOp.ADD_SCALAR, this, -value);
    }

    public Tensor mul(float value) {
        return ops.unary(UnaryOp.MUL_SCALAR, this, value);
    }

    public Tensor div(float value) {
        return ops.unary(UnaryOp.MUL_SCALAR, this, 1f / value);
    }

    /** {@code value - this}. */
    public Tensor rsub(float value) {
        return ops.unary(UnaryOp.RSUB_SCALAR, this, value);
    }

    public Tensor pow(float exponent) {
        return ops.unary(UnaryOp.POW_SCALAR, this, exponent);
    }

    public Tensor clamp(float min, float max) {
        return ops.unary(UnaryOp.CLAMP_MAX, ops.unary(UnaryOp.CLAMP_MIN, this, min), max);
    }

    public Tensor apply(UnaryOp op) {
        return ops.unary(op, this, 0f);
    }

    public Tensor neg() {
        return apply(UnaryOp.NEG);
    }

    public Tensor abs() {
        return apply(UnaryOp.ABS);
    }

    public Tensor exp() {
        return apply(UnaryOp.EXP);
    }

    public Tensor log() {
        return apply(UnaryOp.LOG);
    }

    public Tensor sqrt() {
        return apply(UnaryOp.SQRT);
    }

    public Tensor rsqrt() {
        return apply(UnaryOp.RSQRT);
    }

    public Tensor tanh() {
        return apply(UnaryOp.TANH);
    }

    public Tensor sigmoid() {
        return apply(UnaryOp.SIGMOID);
    }

    public Tensor sin() {
        return apply(UnaryOp.SIN);
    }

    public Tensor cos() {
        return apply(UnaryOp.COS);
    }

    public Tensor activation(Activation act) {
        return act == Activation.NONE ? this : ops.activation(act, this);
    }

    public Tensor silu() {
        return activation(Activation.SILU);
    }

    public Tensor gelu() {
        return activation(Activation.GELU);
    }

    /** torch.where(this != 0, ifTrue, ifFalse). */
    public Tensor where(Tensor ifTrue, Tensor ifFalse) {
        return ops.where(this, ifTrue, ifFalse);
    }

    /** A 1/0 keep-mask as an additive attention bias: 0 where kept, -inf where masked (what SDPA does with bools). */
    public Tensor maskToBias() {
        Tensor zero = ops.full(0f, DType.F32);
        Tensor minusInf = ops.full(Float.NEGATIVE_INFINITY, DType.F32);
        return ops.where(this, zero, minusInf);
    }

    // ---- reductions

    public Tensor sum(int axis, boolean keepDim) {
        return ops.reduce(ReduceOp.SUM, this, axis, keepDim);
    }

    public Tensor mean(int axis, boolean keepDim) {
        return ops.reduce(ReduceOp.MEAN, this, axis, keepDim);
    }

    public Tensor max(int axis, boolean keepDim) {
        return ops.reduce(ReduceOp.MAX, this, axis, keepDim);
    }

    public Tensor min(int axis, boolean keepDim) {
        return ops.reduce(ReduceOp.MIN, this, axis, keepDim);
    }

    /** torch.var with Bessel's correction as its default ({@code correction} = 1); pass 0 for the biased one. */
    public Tensor var(int axis, int correction, boolean keepDim) {
        return ops.variance(this, axis, correction, keepDim);
    }

    public Tensor argmax(int axis, boolean keepDim) {
        return ops.argmax(this, axis, keepDim);
    }

    /** Sum of all elements, as a 0-dim tensor. */
    public Tensor sum() {
        return ops.reduce(ReduceOp.SUM, reshape(-1), 0, false);
    }

    /** Mean of all elements, as a 0-dim tensor. */
    public Tensor mean() {
        return ops.reduce(ReduceOp.MEAN, reshape(-1), 0, false);
    }

    // ---- combining and indexing

    public static Tensor concat(List<Tensor> xs, int axis) {
        if (xs.isEmpty()) {
            throw new IllegalArgumentException("concat of no tensors");
        }
        return xs.getFirst().ops.concat(xs, axis);
    }

    /** torch.stack: a new axis, then concat. */
    public static Tensor stack(List<Tensor> xs, int axis) {
        if (xs.isEmpty()) {
            throw new IllegalArgumentException("stack of no tensors");
        }
        List<Tensor> expanded = new ArrayList<>(xs.size());
        for (Tensor x : xs) {
            expanded.add(x.unsqueeze(axis));
        }
        return concat(expanded, axis);
    }

    public Tensor indexSelect(int axis, Tensor index) {
        return ops.indexSelect(this, axis, index);
    }

    /** Rows of this [num, dim] table for ids of any shape: result [..., dim]. */
    public Tensor embedding(Tensor ids) {
        int[] idShape = ids.shape();
        Tensor rows = ops.indexSelect(this, 0, ids.reshape(-1));
        int[] out = Arrays.copyOf(idShape, idShape.length + 1);
        out[idShape.length] = size(1);
        return rows.reshape(out);
    }

    // ---- neural-network ops

    public Tensor matmul(Tensor other) {
        return ops.matmul(this, other, null, Activation.NONE);
    }

    /** x · weightᵀ + bias, as torch.nn.functional.linear; bias may be null. */
    public Tensor linear(Tensor weight, Tensor bias) {
        return ops.linear(this, weight, bias, Activation.NONE);
    }

    public Tensor softmax(int axis) {
        return ops.softmax(this, axis);
    }

    public Tensor logSoftmax(int axis) {
        return ops.logSoftmax(this, axis);
    }
}
