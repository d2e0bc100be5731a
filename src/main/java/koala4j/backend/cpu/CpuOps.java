package koala4j.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;

import koala4j.tensor.Activation;
import koala4j.tensor.BinaryOp;
import koala4j.tensor.DType;
import koala4j.tensor.Device;
import koala4j.tensor.HostStorage;
import koala4j.tensor.Ops;
import koala4j.tensor.ReduceOp;
import koala4j.tensor.ResizeMode;
import koala4j.tensor.Tensor;
import koala4j.tensor.UnaryOp;
import koala4j.tensor.quant.Q8Storage;

/**
 * The CPU backend: host memory, F32 compute with Vector API kernels on {@link Parallel#threads()} threads.
 * Stateless apart from the shared worker pool; safe to use from many threads at once.
 */
public final class CpuOps implements Ops {

    /** Width of the vectors the kernels use on this machine. */
    public static int vectorBits() {
        return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    // ---- creation and transfer

    @Override
    public Tensor empty(DType dtype, int... shape) {
        int n = Math.toIntExact(Tensor.numel(shape));
        HostStorage storage = switch (dtype) {
            case F32 -> HostStorage.of(new float[n]);
            case F16, BF16 -> HostStorage.of(new short[n], dtype);
            case I32 -> HostStorage.of(new int[n]);
            case I64 -> HostStorage.of(new long[n]);
            case Q8_0 -> throw new IllegalArgumentException("a Q8_0 tensor is made by cast(x, Q8_0), not empty()");
        };
        return Tensor.dense(this, storage, shape);
    }

    private Tensor dense(float[] data, int... shape) {
        return Tensor.dense(this, HostStorage.of(data), shape);
    }

    @Override
    public Tensor full(float value, DType dtype, int... shape) {
        int n = Math.toIntExact(Tensor.numel(shape));
        return switch (dtype) {
            case F32 -> {
                float[] data = new float[n];
                Arrays.fill(data, value);
                yield dense(data, shape);
            }
            case I64 -> {
                long[] data = new long[n];
                Arrays.fill(data, (long) value);
                yield Tensor.dense(this, HostStorage.of(data), shape);
            }
            default -> cast(full(value, DType.F32, shape), dtype);
        };
    }

    @Override
    public Tensor fromArray(float[] data, int... shape) {
        checkLength(data.length, shape);
        return dense(data.clone(), shape);
    }

    @Override
    public Tensor fromArray(long[] data, int... shape) {
        checkLength(data.length, shape);
        return Tensor.dense(this, HostStorage.of(data.clone()), shape);
    }

    @Override
    public Tensor fromArray(int[] data, int... shape) {
        checkLength(data.length, shape);
        return Tensor.dense(this, HostStorage.of(data.clone()), shape);
    }

    private static void checkLength(int length, int[] shape) {
        if (length != Tensor.numel(shape)) {
            throw new IllegalArgumentException("array of " + length + " values for shape " + Arrays.toString(shape)
                    + " (" + Tensor.numel(shape) + " values)");
        }
    }

    @Override
    public Tensor wrap(MemorySegment hostData, DType dtype, int... shape) {
        if (dtype == DType.Q8_0) {
            throw new IllegalArgumentException("wrap of Q8_0 memory: build a Q8Storage and call its tensor(ops, shape)");
        }
        long bytes = Tensor.numel(shape) * dtype.byteSize();
        if (hostData.byteSize() != bytes) {
            throw new IllegalArgumentException("memory of " + hostData.byteSize() + " bytes for " + dtype + " "
                    + Arrays.toString(shape) + " (" + bytes + " bytes expected)");
        }
        return Tensor.dense(this, new HostStorage(hostData, dtype), shape);
    }

    private static HostStorage host(Tensor x) {
        if (x.storage() instanceof HostStorage h) {
            return h;
        }
        throw new IllegalArgumentException(x + " is not in host memory; move it to the CPU first");
    }

    @Override
    public Tensor contiguous(Tensor x) {
        Tensor out = empty(x.dtype(), x.shape());
        Strided.copyToDense(host(x).segment(), x.offset(), x.shape(), x.strides(), host(out).segment(), 0,
                x.dtype().byteSize());
        return out;
    }

    @Override
    public void copyInto(Tensor src, Tensor dst) {
        HostStorage d = host(dst);
        if (d.segment().isReadOnly()) {
            throw new IllegalArgumentException("copyInto: the destination " + dst + " is read-only (a mapped weight?)");
        }
        Tensor s = src.dtype() == dst.dtype() ? src : cast(src, dst.dtype());
        long[] srcStrides = Strided.broadcastStrides(s.shape(), s.strides(), dst.shape());
        Strided.copy(host(s).segment(), s.offset(), srcStrides, d.segment(), dst.offset(), dst.strides(), dst.shape(),
                dst.dtype().byteSize());
    }

    /** A dense F32 copy, or the array itself when {@code x} already is one (callers must not write to it). */
    static float[] floats(Tensor x) {
        if (x.storage() instanceof Q8Storage q) {
            if (x.isContiguous() && x.offset() % Q8Storage.BLOCK == 0) {
                return Q8Gemm.dequantize(q, x.offset(), Math.toIntExact(x.numel()));
            }
            return floats(q8Values(x));
        }
        HostStorage h = host(x);
        if (x.dtype() == DType.F32 && x.isContiguous() && x.offset() == 0 && h.array() instanceof float[] a
                && a.length == x.numel()) {
            return a;
        }
        int n = Math.toIntExact(x.numel());
        float[] out = new float[n];
        if (x.dtype() == DType.F32 || !x.dtype().isFloating()) {
            Tensor dense = x.isContiguous() ? x : x.ops().contiguous(x);
            readAsFloat(host(dense), dense.offset(), out, n);
        } else {
            Tensor dense = x.isContiguous() ? x : x.ops().contiguous(x);
            source(dense).read(0, out, 0, n);
        }
        return out;
    }

    private static void readAsFloat(HostStorage h, long offset, float[] out, int n) {
        MemorySegment seg = h.segment();
        switch (h.dtype()) {
            case F32 -> MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT_UNALIGNED, offset * 4, out, 0, n);
            case I32 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = seg.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, offset + i);
                }
            }
            case I64 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = seg.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, offset + i);
                }
            }
            default -> new FloatSource.SegmentSource(seg.asSlice(offset * 2, (long) n * 2), h.dtype(), n)
                    .read(0, out, 0, n);
        }
    }

    /** A dense tensor's elements as a float source in its own storage format (no copy). */
    static FloatSource source(Tensor dense) {
        HostStorage h = host(dense);
        if (!dense.isContiguous()) {
            throw new IllegalArgumentException("source of a non-dense view " + dense);
        }
        int bytes = dense.dtype().byteSize();
        if (!dense.dtype().isFloating()) {
            throw new IllegalArgumentException("expected a floating tensor, got " + dense.dtype());
        }
        if (h.dtype() == DType.F32 && h.array() instanceof float[] a && dense.offset() == 0 && a.length == dense.numel()) {
            return FloatSource.of(a);
        }
        return FloatSource.of(h.segment().asSlice(dense.offset() * bytes, dense.numel() * bytes), dense.dtype());
    }

    /** The whole storage of a floating tensor as a float source (views index into it with their own strides). */
    private static FloatSource storageSource(Tensor x) {
        HostStorage h = host(x);
        if (h.array() instanceof float[] a) {
            return FloatSource.of(a);
        }
        return FloatSource.of(h.segment(), x.dtype());
    }

    /** Any view of a Q8_0 tensor as the same view over an F32 copy of its whole storage (the slow, general path). */
    private static Tensor q8Values(Tensor x) {
        Q8Storage q = (Q8Storage) x.storage();
        float[] all = Q8Gemm.dequantize(q, 0, Math.toIntExact(q.size()));
        return new Tensor(x.ops(), HostStorage.of(all), x.shape(), x.strides(), x.offset());
    }

    @Override
    public Tensor cast(Tensor x, DType dtype) {
        if (x.dtype() == dtype) {
            return x.dtype() == DType.Q8_0 ? x : contiguous(x);
        }
        if (dtype == DType.Q8_0) {
            return quantizeQ8(x);
        }
        int n = Math.toIntExact(x.numel());
        if (dtype == DType.F32) {
            return dense(floats(x).clone(), x.shape());
        }
        if (dtype == DType.I64 || dtype == DType.I32) {
            if (!x.dtype().isFloating()) {
                long[] values = toLongArray(x);
                return dtype == DType.I64 ? Tensor.dense(this, HostStorage.of(values), x.shape())
                        : Tensor.dense(this, HostStorage.of(Arrays.stream(values).mapToInt(v -> (int) v).toArray()), x.shape());
            }
            float[] f = floats(x);
            if (dtype == DType.I64) {
                long[] out = new long[n];
                for (int i = 0; i < n; i++) {
                    out[i] = (long) f[i];
                }
                return Tensor.dense(this, HostStorage.of(out), x.shape());
            }
            int[] out = new int[n];
            for (int i = 0; i < n; i++) {
                out[i] = (int) f[i];
            }
            return Tensor.dense(this, HostStorage.of(out), x.shape());
        }
        float[] f = floats(x);
        short[] out = new short[n];
        for (int i = 0; i < n; i++) {
            out[i] = dtype == DType.F16 ? DType.f32ToF16(f[i]) : DType.f32ToBf16(f[i]);
        }
        return Tensor.dense(this, HostStorage.of(out, dtype), x.shape());
    }

    /** Q8_0 blocks along the last dim, which must be a multiple of 32 (ggml's rule for Q8_0 rows). */
    private Tensor quantizeQ8(Tensor x) {
        if (x.rank() == 0 || x.size(-1) % Q8Storage.BLOCK != 0 || !x.dtype().isFloating()) {
            throw new IllegalArgumentException("cast of " + x + " to Q8_0: expected a floating tensor whose last dim is "
                    + "a multiple of " + Q8Storage.BLOCK);
        }
        Tensor dense = x.contiguous();
        Q8Storage q = Q8Gemm.quantize(source(dense), 0, dense.numel());
        return q.tensor(this, x.shape());
    }

    @Override
    public float[] toFloatArray(Tensor x) {
        float[] f = floats(x);
        return x.storage() instanceof HostStorage h && f == h.array() ? f.clone() : f;
    }

    @Override
    public long[] toLongArray(Tensor x) {
        int n = Math.toIntExact(x.numel());
        if (x.dtype().isFloating()) {
            float[] f = floats(x);
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = (long) f[i];
            }
            return out;
        }
        Tensor dense = x.isContiguous() ? x : contiguous(x);
        MemorySegment seg = host(dense).segment();
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = dense.dtype() == DType.I64 ? seg.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, dense.offset() + i)
                    : seg.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, dense.offset() + i);
        }
        return out;
    }

    // ---- elementwise

    /** An F32 view usable in place (heap F32 storage), or a dense F32 copy of it. */
    private static Tensor f32View(Tensor x) {
        if (x.dtype() == DType.F32 && host(x).array() instanceof float[]) {
            return x;
        }
        CpuOps cpu = x.ops() instanceof CpuOps c ? c : new CpuOps();
        return cpu.dense(floats(x).clone(), x.shape());
    }

    private static float[] array(Tensor f32) {
        return (float[]) host(f32).array();
    }

    @Override
    public Tensor unary(UnaryOp op, Tensor x, float arg) {
        float[] in = floats(x);
        float[] out = new float[in.length];
        Parallel.forRange(in.length, 1 << 14, (from, to) -> Elementwise.unary(op, arg, in, from, out, from, to - from));
        return dense(out, x.shape());
    }

    @Override
    public Tensor activation(Activation act, Tensor x) {
        float[] in = floats(x);
        float[] out = new float[in.length];
        Parallel.forRange(in.length, 1 << 14, (from, to) -> Activations.apply(act, in, from, to - from, out, from));
        return dense(out, x.shape());
    }

    @Override
    public Tensor binary(BinaryOp op, Tensor a, Tensor b) {
        int[] shape = Strided.broadcast(a.shape(), b.shape());
        Tensor av = f32View(a);
        Tensor bv = f32View(b);
        float[] ad = array(av);
        float[] bd = array(bv);
        float[] out = new float[Math.toIntExact(Tensor.numel(shape))];
        long[][] strides = {
            Strided.broadcastStrides(av.shape(), av.strides(), shape),
            Strided.broadcastStrides(bv.shape(), bv.strides(), shape),
            Tensor.denseStrides(shape)
        };
        Strided.forEachRow(shape, new long[] {av.offset(), bv.offset(), 0}, strides, true,
                (n, off, inner) -> {
                    if (inner[2] == 1) {
                        Elementwise.binaryRow(op, ad, off[0], inner[0], bd, off[1], inner[1], out, off[2], n);
                    } else {
                        for (int i = 0; i < n; i++) {
                            out[(int) (off[2] + i * inner[2])] =
                                    op.apply(ad[(int) (off[0] + i * inner[0])], bd[(int) (off[1] + i * inner[1])]);
                        }
                    }
                });
        return dense(out, shape);
    }

    @Override
    public Tensor where(Tensor cond, Tensor a, Tensor b) {
        int[] shape = Strided.broadcast(Strided.broadcast(cond.shape(), a.shape()), b.shape());
        Tensor cv = f32View(cond);
        Tensor av = f32View(a);
        Tensor bv = f32View(b);
        float[] cd = array(cv);
        float[] ad = array(av);
        float[] bd = array(bv);
        float[] out = new float[Math.toIntExact(Tensor.numel(shape))];
        long[][] strides = {
            Strided.broadcastStrides(cv.shape(), cv.strides(), shape),
            Strided.broadcastStrides(av.shape(), av.strides(), shape),
            Strided.broadcastStrides(bv.shape(), bv.strides(), shape),
            Tensor.denseStrides(shape)
        };
        Strided.forEachRow(shape, new long[] {cv.offset(), av.offset(), bv.offset(), 0}, strides, true,
                (n, off, inner) -> {
                    for (int i = 0; i < n; i++) {
                        boolean c = cd[(int) (off[0] + i * inner[0])] != 0f;
                        out[(int) (off[3] + i * inner[3])] = c ? ad[(int) (off[1] + i * inner[1])]
                                : bd[(int) (off[2] + i * inner[2])];
                    }
                });
        return dense(out, shape);
    }

    // ---- reductions and indexing

    /** [outer, len, inner] sizes around {@code axis}. */
    private static int[] around(int[] shape, int axis) {
        long outer = 1;
        long inner = 1;
        for (int i = 0; i < axis; i++) {
            outer *= shape[i];
        }
        for (int i = axis + 1; i < shape.length; i++) {
            inner *= shape[i];
        }
        return new int[] {Math.toIntExact(outer), shape[axis], Math.toIntExact(inner)};
    }

    private static int[] reducedShape(int[] shape, int axis, boolean keepDim) {
        if (keepDim) {
            int[] out = shape.clone();
            out[axis] = 1;
            return out;
        }
        int[] out = new int[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++) {
            if (i != axis) {
                out[j++] = shape[i];
            }
        }
        return out;
    }

    @Override
    public Tensor reduce(ReduceOp op, Tensor x, int axis, boolean keepDim) {
        int a = x.axis(axis);
        int[] dims = around(x.shape(), a);
        float[] out = new float[dims[0] * dims[2]];
        Reductions.reduce(op, floats(x), dims[0], dims[1], dims[2], out);
        return dense(out, reducedShape(x.shape(), a, keepDim));
    }

    @Override
    public Tensor variance(Tensor x, int axis, int correction, boolean keepDim) {
        int a = x.axis(axis);
        int[] dims = around(x.shape(), a);
        float[] out = new float[dims[0] * dims[2]];
        Reductions.variance(floats(x), dims[0], dims[1], dims[2], correction, out);
        return dense(out, reducedShape(x.shape(), a, keepDim));
    }

    @Override
    public Tensor argmax(Tensor x, int axis, boolean keepDim) {
        int a = x.axis(axis);
        int[] dims = around(x.shape(), a);
        if (dims[1] == 0) {
            throw new IllegalArgumentException("argmax over axis " + a + " of size 0");
        }
        long[] out = new long[dims[0] * dims[2]];
        Reductions.argmax(floats(x), dims[0], dims[1], dims[2], out);
        return Tensor.dense(this, HostStorage.of(out), reducedShape(x.shape(), a, keepDim));
    }

    @Override
    public Tensor concat(List<Tensor> xs, int axis) {
        Tensor first = xs.getFirst();
        int a = first.axis(axis);
        int[] shape = first.shape();
        DType dtype = first.dtype();
        int total = 0;
        for (Tensor x : xs) {
            int[] s = x.shape();
            boolean same = s.length == shape.length;
            for (int i = 0; same && i < s.length; i++) {
                same = i == a || s[i] == shape[i];
            }
            if (!same) {
                throw new IllegalArgumentException("concat along axis " + a + ": shape " + Arrays.toString(s)
                        + " does not match " + Arrays.toString(shape));
            }
            if (x.dtype() != dtype) {
                throw new IllegalArgumentException("concat of " + dtype + " and " + x.dtype());
            }
            total += s[a];
        }
        shape[a] = total;
        Tensor out = empty(dtype, shape);
        MemorySegment dst = host(out).segment();
        long[] outStrides = out.strides();
        long at = 0;
        for (Tensor x : xs) {
            Strided.copy(host(x).segment(), x.offset(), x.strides(), dst, at * outStrides[a], outStrides, x.shape(),
                    dtype.byteSize());
            at += x.size(a);
        }
        return out;
    }

    @Override
    public Tensor indexSelect(Tensor x, int axis, Tensor index) {
        if (index.rank() != 1 || index.dtype().isFloating()) {
            throw new IllegalArgumentException("index must be a 1-D I32/I64 tensor, got " + index);
        }
        int a = x.axis(axis);
        if (x.storage() instanceof Q8Storage) {
            boolean rows = a != x.rank() - 1 && x.isContiguous() && x.offset() % Q8Storage.BLOCK == 0;
            return rows ? indexSelectQ8(x, a, toLongArray(index)) : indexSelect(q8Values(x), axis, index);
        }
        long[] ids = toLongArray(index);
        int[] dims = around(x.shape(), a);
        for (long id : ids) {
            if (id < -dims[1] || id >= dims[1]) {
                throw new IllegalArgumentException("index " + id + " out of range for axis " + a + " of size " + dims[1]);
            }
        }
        int[] shape = x.shape();
        shape[a] = ids.length;
        Tensor dense = x.contiguous();
        int inner = dims[2];
        if (x.dtype().isFloating()) {
            FloatSource src = source(dense);
            float[] out = new float[Math.toIntExact(Tensor.numel(shape))];
            Parallel.forRange(dims[0] * ids.length, Math.max(1, 4096 / Math.max(inner, 1)), (from, to) -> {
                for (int p = from; p < to; p++) {
                    int o = p / ids.length;
                    long id = ids[p % ids.length];
                    long row = id < 0 ? id + dims[1] : id;
                    src.read(((long) o * dims[1] + row) * inner, out, p * inner, inner);
                }
            });
            return dense(out, shape);
        }
        Tensor out = empty(x.dtype(), shape);
        int bytes = x.dtype().byteSize();
        MemorySegment src = host(dense).segment();
        MemorySegment dst = host(out).segment();
        for (int o = 0; o < dims[0]; o++) {
            for (int i = 0; i < ids.length; i++) {
                long row = ids[i] < 0 ? ids[i] + dims[1] : ids[i];
                MemorySegment.copy(src, (dense.offset() + ((long) o * dims[1] + row) * inner) * bytes,
                        dst, ((long) o * ids.length + i) * inner * bytes, (long) inner * bytes);
            }
        }
        return out;
    }

    /** Whole rows (slices along an outer axis) of a Q8_0 tensor, dequantised: an embedding lookup in a Q8 table. */
    private Tensor indexSelectQ8(Tensor x, int a, long[] ids) {
        int[] dims = around(x.shape(), a);
        long base = x.offset();
        int[] shape = x.shape();
        shape[a] = ids.length;
        float[] out = new float[Math.toIntExact(Tensor.numel(shape))];
        Q8Storage q = (Q8Storage) x.storage();
        int inner = dims[2];
        for (int o = 0; o < dims[0]; o++) {
            for (int i = 0; i < ids.length; i++) {
                long id = ids[i];
                if (id < -dims[1] || id >= dims[1]) {
                    throw new IllegalArgumentException("index " + id + " out of range for axis " + a + " of size " + dims[1]);
                }
                long row = id < 0 ? id + dims[1] : id;
                Q8Gemm.dequantize(q, base + ((long) o * dims[1] + row) * inner, inner, out,
                        (o * ids.length + i) * inner);
            }
        }
        return dense(out, shape);
    }

    // ---- neural-network kernels

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
            return new Gemm.MatrixRef(storageSource(m), m.offset() + batchOffset, ld, false, batchStride);
        }
        int ld = cols == 1 ? Math.max(rows, 1) : Math.toIntExact(colStride);
        return new Gemm.MatrixRef(storageSource(m), m.offset() + batchOffset, ld, true, batchStride);
    }

    @Override
    public Tensor matmul(Tensor a, Tensor b, Tensor bias, Activation act) {
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
        if (am.dtype() == DType.Q8_0 || bm.dtype() == DType.Q8_0) {
            // only F.linear has a Q8_0 kernel; any other product reads the values back first
            am = am.dtype() == DType.Q8_0 ? q8Values(am) : am;
            bm = bm.dtype() == DType.Q8_0 ? q8Values(bm) : bm;
        }
        int[] aBatch = Arrays.copyOf(am.shape(), am.rank() - 2);
        int[] bBatch = Arrays.copyOf(bm.shape(), bm.rank() - 2);
        int[] batchShape = Strided.broadcast(aBatch, bBatch);
        int batch = Math.toIntExact(Tensor.numel(batchShape));
        am = matrixLayout(am.dtype().isFloating() ? am : am.to(DType.F32));
        bm = matrixLayout(bm.dtype().isFloating() ? bm : bm.to(DType.F32));
        float[] biasValues = biasVector(bias, n, "matmul");
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
        Tensor result = dense(out, shape);
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

    private static float[] biasVector(Tensor bias, int n, String op) {
        if (bias == null) {
            return null;
        }
        if (bias.rank() != 1 || bias.size(0) != n) {
            throw new IllegalArgumentException(op + ": bias of shape " + Arrays.toString(bias.shape())
                    + ", expected [" + n + "]");
        }
        return floats(bias);
    }

    @Override
    public Tensor linear(Tensor x, Tensor weight, Tensor bias, Activation act) {
        if (weight.rank() != 2 || x.rank() < 1 || x.size(-1) != weight.size(1)) {
            throw new IllegalArgumentException("linear: input " + Arrays.toString(x.shape()) + " and weight "
                    + Arrays.toString(weight.shape()) + ", expected weight [out, " + (x.rank() > 0 ? x.size(-1) : "?") + "]");
        }
        int in = weight.size(1);
        int outFeatures = weight.size(0);
        if (weight.storage() instanceof Q8Storage q) {
            if (weight.isContiguous() && weight.offset() % Q8Storage.BLOCK == 0) {
                return linearQ8(x, weight, q, bias, act);
            }
            weight = q8Values(weight);
        }
        Tensor flat = x.reshape(-1, in);
        Tensor result = matmul(flat, weight.transpose(0, 1), bias, act);
        int[] shape = x.shape();
        shape[shape.length - 1] = outFeatures;
        return result.reshape(shape);
    }

    private Tensor linearQ8(Tensor x, Tensor weight, Q8Storage q, Tensor bias, Activation act) {
        int in = weight.size(1);
        int outFeatures = weight.size(0);
        int rows = Math.toIntExact(x.numel() / Math.max(in, 1));
        float[] input = floats(x);
        float[] out = new float[Math.toIntExact((long) rows * outFeatures)];
        Q8Gemm.linear(input, 0, rows, in, q, weight.offset(), outFeatures, biasVector(bias, outFeatures, "linear"), act,
                out);
        int[] shape = x.shape();
        shape[shape.length - 1] = outFeatures;
        return dense(out, shape);
    }

    @Override
    public Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int stride, int padding, int groups, Activation act) {
        if (x.rank() != 4 || weight.rank() != 4) {
            throw new IllegalArgumentException("conv2d: input " + Arrays.toString(x.shape()) + " and weight "
                    + Arrays.toString(weight.shape()) + ", expected [N, C, H, W] and [Cout, C/groups, kH, kW]");
        }
        int n = x.size(0);
        int cin = x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        int cout = weight.size(0);
        int kh = weight.size(2);
        int kw = weight.size(3);
        if (groups < 1 || cin % groups != 0 || weight.size(1) != cin / groups) {
            throw new IllegalArgumentException("conv2d: weight " + Arrays.toString(weight.shape()) + " for "
                    + cin + " input channels in " + groups + " groups, expected dim 1 = " + (groups > 0 ? cin / groups : "?"));
        }
        int ho = (h + 2 * padding - kh) / stride + 1;
        int wo = (w + 2 * padding - kw) / stride + 1;
        if (stride < 1 || ho < 1 || wo < 1) {
            throw new IllegalArgumentException("conv2d: input " + h + "x" + w + ", kernel " + kh + "x" + kw
                    + ", stride " + stride + ", padding " + padding + " give an empty output");
        }
        float[] out = new float[Math.toIntExact((long) n * cout * ho * wo)];
        Conv2d.conv2d(floats(x), 0, n, cin, h, w, source(weight.contiguous()), cout, kh, kw,
                biasVector(bias, cout, "conv2d"), stride, stride, padding, padding, groups, act, out, 0);
        return dense(out, n, cout, ho, wo);
    }

    @Override
    public Tensor groupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, Activation act) {
        int n = x.size(0);
        int c = x.size(1);
        if (groups < 1 || c % groups != 0) {
            throw new IllegalArgumentException("group_norm: " + c + " channels do not split into " + groups + " groups");
        }
        int spatial = Math.toIntExact(x.numel() / Math.max(1, (long) n * c));
        float[] out = new float[Math.toIntExact(x.numel())];
        Norms.groupNorm(floats(x), 0, n, c, spatial, groups, biasVector(gamma, c, "group_norm weight"),
                biasVector(beta, c, "group_norm bias"), eps, act, out, 0);
        return dense(out, x.shape());
    }

    @Override
    public Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, float eps) {
        int cols = x.size(-1);
        int rows = Math.toIntExact(x.numel() / Math.max(cols, 1));
        float[] out = new float[Math.toIntExact(x.numel())];
        Norms.layerNorm(floats(x), 0, rows, cols, biasVector(gamma, cols, "layer_norm weight"),
                biasVector(beta, cols, "layer_norm bias"), eps, out, 0);
        return dense(out, x.shape());
    }

    @Override
    public Tensor rmsNorm(Tensor x, Tensor gamma, float eps) {
        int cols = x.size(-1);
        int rows = Math.toIntExact(x.numel() / Math.max(cols, 1));
        float[] out = new float[Math.toIntExact(x.numel())];
        Norms.rmsNorm(floats(x), 0, rows, cols, biasVector(gamma, cols, "rms_norm weight"), eps, out, 0);
        return dense(out, x.shape());
    }

    @Override
    public Tensor softmax(Tensor x, int axis) {
        return softmaxLike(x, axis, false);
    }

    @Override
    public Tensor logSoftmax(Tensor x, int axis) {
        return softmaxLike(x, axis, true);
    }

    private Tensor softmaxLike(Tensor x, int axis, boolean log) {
        int a = x.axis(axis);
        int last = x.rank() - 1;
        Tensor moved = a == last ? x : x.transpose(a, last);
        int cols = moved.size(-1);
        int rows = Math.toIntExact(moved.numel() / Math.max(cols, 1));
        float[] in = floats(moved);
        float[] out = new float[in.length];
        if (log) {
            Softmax.logSoftmax(in, 0, rows, cols, out, 0);
        } else {
            Softmax.softmax(in, 0, rows, cols, out, 0);
        }
        Tensor result = dense(out, moved.shape());
        return a == last ? result : result.transpose(a, last).contiguous();
    }

    /** q/k/v view with a unit last-dim stride over heap F32, else a dense F32 copy. */
    private static Tensor attentionOperand(Tensor t, String name) {
        if (t.rank() != 4) {
            throw new IllegalArgumentException("attention: " + name + " of shape " + Arrays.toString(t.shape())
                    + ", expected [B, heads, N, D]");
        }
        Tensor v = f32View(t);
        return v.stride(-1) == 1 || v.size(-1) == 1 ? v : v.contiguous();
    }

    @Override
    public Tensor attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, float scale) {
        Tensor qv = attentionOperand(q, "query");
        Tensor kv = attentionOperand(k, "key");
        Tensor vv = attentionOperand(v, "value");
        int b = qv.size(0);
        int heads = qv.size(1);
        int nq = qv.size(2);
        int d = qv.size(3);
        int kvHeads = kv.size(1);
        int nk = kv.size(2);
        int dv = vv.size(3);
        if (kv.size(0) != b || vv.size(0) != b || kv.size(3) != d || vv.size(1) != kvHeads || vv.size(2) != nk
                || kvHeads < 1 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention: query " + Arrays.toString(q.shape()) + ", key "
                    + Arrays.toString(k.shape()) + ", value " + Arrays.toString(v.shape())
                    + ": expected key/value [B, heads/g, Nk, D] with the query's B and D");
        }
        Attention.Mask maskRef = null;
        if (mask != null) {
            int[] full = {b, heads, nq, nk};
            Tensor mv = f32View(mask);
            if (mv.stride(-1) != 1 && mv.size(-1) != 1) {
                mv = mv.contiguous();
            }
            long[] st = Strided.broadcastStrides(mv.shape(), mv.strides(), full);
            if (st[3] != 1) {
                // a mask broadcast along keys: materialise it once (small: one value per query row)
                mv = contiguous(mv.expand(full));
                st = mv.strides();
            }
            maskRef = new Attention.Mask(array(mv), Math.toIntExact(mv.offset()), st[0], st[1], st[2]);
        }
        float[] out = new float[Math.toIntExact((long) b * heads * nq * dv)];
        Attention.attention(b, heads, kvHeads, nq, nk, d, dv, operand(qv), operand(kv), operand(vv), maskRef, causal,
                scale, out, 0);
        return dense(out, b, heads, nq, dv);
    }

    private static Attention.Operand operand(Tensor t) {
        return new Attention.Operand(array(t), Math.toIntExact(t.offset()), t.stride(0), t.stride(1), t.stride(2));
    }

    @Override
    public Tensor geglu(Tensor x) {
        int twice = x.size(-1);
        if (twice % 2 != 0) {
            throw new IllegalArgumentException("geglu: last dim " + twice + " is odd, expected hidden and gate halves");
        }
        int rows = Math.toIntExact(x.numel() / Math.max(twice, 1));
        float[] out = new float[rows * (twice / 2)];
        Activations.geglu(floats(x), 0, rows, twice / 2, out, 0);
        int[] shape = x.shape();
        shape[shape.length - 1] = twice / 2;
        return dense(out, shape);
    }

    private static void requireNchw(Tensor x, String op) {
        if (x.rank() != 4) {
            throw new IllegalArgumentException(op + ": input of shape " + Arrays.toString(x.shape())
                    + ", expected [N, C, H, W]");
        }
    }

    @Override
    public Tensor upsampleNearest2x(Tensor x) {
        requireNchw(x, "upsample_nearest2x");
        int planes = x.size(0) * x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        float[] out = new float[planes * 4 * h * w];
        Resample.upsampleNearest2x(floats(x), 0, planes, h, w, out, 0);
        return dense(out, x.size(0), x.size(1), 2 * h, 2 * w);
    }

    @Override
    public Tensor avgPool2d(Tensor x, int kernel, int stride, int padding, boolean ceilMode, boolean countIncludePad) {
        requireNchw(x, "avg_pool2d");
        if (kernel < 1 || stride < 1 || padding < 0 || padding > kernel / 2) {
            throw new IllegalArgumentException("avg_pool2d: kernel " + kernel + ", stride " + stride + ", padding "
                    + padding + ": expected kernel, stride >= 1 and 0 <= padding <= kernel/2");
        }
        int planes = x.size(0) * x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        int ho = Resample.pooledSize(h, kernel, stride, padding, ceilMode);
        int wo = Resample.pooledSize(w, kernel, stride, padding, ceilMode);
        if (ho < 1 || wo < 1) {
            throw new IllegalArgumentException("avg_pool2d: input " + h + "x" + w + " is smaller than kernel " + kernel);
        }
        float[] out = new float[planes * ho * wo];
        Resample.avgPool2d(floats(x), 0, planes, h, w, kernel, stride, padding, countIncludePad, ceilMode, out, 0);
        return dense(out, x.size(0), x.size(1), ho, wo);
    }

    @Override
    public Tensor resize(Tensor x, int height, int width, ResizeMode mode, boolean alignCorners, boolean antialias) {
        requireNchw(x, "resize");
        if (height < 1 || width < 1) {
            throw new IllegalArgumentException("resize to " + height + "x" + width + ": expected a positive size");
        }
        int planes = x.size(0) * x.size(1);
        float[] out = new float[Math.toIntExact((long) planes * height * width)];
        Resample.Mode m = switch (mode) {
            case NEAREST -> Resample.Mode.NEAREST;
            case BILINEAR -> Resample.Mode.BILINEAR;
            case BICUBIC -> Resample.Mode.BICUBIC;
        };
        Resample.resize(floats(x), 0, planes, x.size(2), x.size(3), height, width, m, alignCorners, antialias, out, 0);
        return dense(out, x.size(0), x.size(1), height, width);
    }
}
