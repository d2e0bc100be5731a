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
import koala4j.tensor.quant.Q4;
import koala4j.tensor.quant.Q4Storage;
import koala4j.tensor.quant.Q8;
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
            case Q8_0, Q4_0 -> null;
        };
        if (storage == null) {
            if (shape.length == 0 || shape[shape.length - 1] % Q8Storage.BLOCK != 0) {
                throw new IllegalArgumentException("empty " + dtype + " tensor of shape " + Arrays.toString(shape)
                        + ": expected a last dim divisible by " + Q8Storage.BLOCK + " (whole blocks)");
            }
            if (dtype == DType.Q8_0) {
                return Q8.allocate(n).tensor(this, shape);                              // zero scales: all zeros
            }
            Q4Storage q4 = Q4.allocate(n);
            q4.quants().fill((byte) 0x88);     // quants of 8 (value 0), as quantising zeros stores them: +0, not -0
            return q4.tensor(this, shape);
        }
        return Tensor.dense(this, storage, shape);
    }

    Tensor dense(float[] data, int... shape) {
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
        if (dtype.isQuantised()) {
            throw new IllegalArgumentException("wrap of " + dtype + " memory: build its storage (Q8Storage, Q4Storage) "
                    + "and call its tensor(ops, shape)");
        }
        long bytes = Tensor.numel(shape) * dtype.byteSize();
        if (hostData.byteSize() != bytes) {
            throw new IllegalArgumentException("memory of " + hostData.byteSize() + " bytes for " + dtype + " "
                    + Arrays.toString(shape) + " (" + bytes + " bytes expected)");
        }
        return Tensor.dense(this, new HostStorage(hostData, dtype), shape);
    }

    static HostStorage host(Tensor x) {
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
        if (dst.storage() instanceof Q8Storage || dst.storage() instanceof Q4Storage) {
            copyIntoBlocks(src, dst);
            return;
        }
        HostStorage d = host(dst);
        if (d.segment().isReadOnly()) {
            throw new IllegalArgumentException("copyInto: the destination " + dst + " is read-only (a mapped weight?)");
        }
        Tensor s = src.dtype() == dst.dtype() ? src : cast(src, dst.dtype());
        long[] srcStrides = Strided.broadcastStrides(s.shape(), s.strides(), dst.shape());
        Strided.copy(host(s).segment(), s.offset(), srcStrides, d.segment(), dst.offset(), dst.strides(), dst.shape(),
                dst.dtype().byteSize());
    }

    /**
     * Writes into a Q8_0 or Q4_0 view whose rows (along its contiguous last dim) are whole blocks: a source of the
     * same format and shape is copied block for block, anything else is quantised as {@link #cast} does (ggml's
     * quantize_row_q8_0_ref / quantize_row_q4_0_ref), broadcast to the destination's shape first.
     */
    private void copyIntoBlocks(Tensor src, Tensor dst) {
        int width = dst.rank() == 0 ? 0 : dst.size(-1);
        boolean aligned = width > 0 && width % Q8Storage.BLOCK == 0 && dst.stride(-1) == 1
                && dst.offset() % Q8Storage.BLOCK == 0;
        for (int i = 0; i < dst.rank() - 1; i++) {
            aligned &= dst.stride(i) % Q8Storage.BLOCK == 0 || dst.size(i) == 1;
        }
        if (!aligned) {
            throw new IllegalArgumentException("copyInto: the " + dst.dtype() + " destination " + dst + " must be "
                    + "whole blocks of " + Q8Storage.BLOCK + " along its contiguous last dim");
        }
        Blocks to = Blocks.of(dst);
        if (to.quants().isReadOnly()) {
            throw new IllegalArgumentException("copyInto: the destination " + dst + " is read-only");
        }
        long[] starts = rowStarts(dst);
        if (src.dtype() == dst.dtype() && Arrays.equals(src.shape(), dst.shape()) && src.stride(-1) == 1) {
            long[] fromStarts = rowStarts(src);
            if (Arrays.stream(fromStarts).allMatch(r -> r % Q8Storage.BLOCK == 0)) {
                copyBlockRows(Blocks.of(src), fromStarts, to, starts, width);
                return;
            }
        }
        float[] values = floats(Arrays.equals(src.shape(), dst.shape()) ? src : src.expand(dst.shape()));
        Q8Storage q8 = dst.storage() instanceof Q8Storage q ? q : null;
        Q4Storage q4 = dst.storage() instanceof Q4Storage q ? q : null;
        Parallel.forRange(starts.length, 64, (a, b) -> {
            for (int r = a; r < b; r++) {
                for (int c = 0; c < width; c += Q8Storage.BLOCK) {
                    long block = (starts[r] + c) / Q8Storage.BLOCK;
                    if (q8 != null) {
                        Q8.quantizeBlock(values, r * width + c, q8, block);
                    } else {
                        Q4.quantizeBlock(values, r * width + c, q4, block);
                    }
                }
            }
        });
    }

    /** The two regions of Q8_0 or Q4_0 storage and the bits per quant (8 or 4). */
    private record Blocks(MemorySegment quants, MemorySegment scales, int bits) {

        static Blocks of(Tensor t) {
            return t.storage() instanceof Q4Storage q4 ? new Blocks(q4.quants(), q4.scales(), 4)
                    : new Blocks(((Q8Storage) t.storage()).quants(), ((Q8Storage) t.storage()).scales(), 8);
        }

        long quantByte(long element) {
            return element * bits / 8;
        }
    }

    /** Block-aligned rows of {@code width} values, quants and scales as they are; adjacent rows in one copy. */
    private static void copyBlockRows(Blocks from, long[] fromStarts, Blocks to, long[] toStarts, int width) {
        for (int r = 0; r < toStarts.length; ) {
            int end = r + 1;
            while (end < toStarts.length && fromStarts[end] == fromStarts[end - 1] + width
                    && toStarts[end] == toStarts[end - 1] + width) {
                end++;
            }
            long values = (long) (end - r) * width;
            MemorySegment.copy(from.quants(), from.quantByte(fromStarts[r]), to.quants(), to.quantByte(toStarts[r]),
                    to.quantByte(values));
            MemorySegment.copy(from.scales(), fromStarts[r] / Q8Storage.BLOCK * 2, to.scales(),
                    toStarts[r] / Q8Storage.BLOCK * 2, values / Q8Storage.BLOCK * 2);
            r = end;
        }
    }

    /** The storage index of every row's first element (rows in row-major order over all dims but the last). */
    private static long[] rowStarts(Tensor t) {
        int outer = t.rank() - 1;
        long[] starts = new long[Math.toIntExact(t.rank() == 0 ? 1 : t.numel() / Math.max(1, t.size(-1)))];
        int[] index = new int[Math.max(outer, 0)];
        long at = t.offset();
        for (int r = 0; r < starts.length; r++) {
            starts[r] = at;
            for (int i = outer - 1; i >= 0; i--) {
                if (++index[i] < t.size(i)) {
                    at += t.stride(i);
                    break;
                }
                at -= (long) (index[i] - 1) * t.stride(i);
                index[i] = 0;
            }
        }
        return starts;
    }

    /** Elements [from, from + n) of a Q8_0 or Q4_0 tensor's storage as floats. */
    private static float[] quantised(Tensor x, long from, int n) {
        return x.storage() instanceof Q4Storage q4 ? Q4Gemm.dequantize(q4, from, n)
                : Q8Gemm.dequantize((Q8Storage) x.storage(), from, n);
    }

    /** A dense F32 copy, or the array itself when {@code x} already is one (callers must not write to it). */
    static float[] floats(Tensor x) {
        if (x.storage() instanceof Q8Storage || x.storage() instanceof Q4Storage) {
            if (x.isContiguous() && x.offset() % Q8Storage.BLOCK == 0) {
                return quantised(x, x.offset(), Math.toIntExact(x.numel()));
            }
            return floats(quantValues(x));
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
    static FloatSource storageSource(Tensor x) {
        HostStorage h = host(x);
        if (h.array() instanceof float[] a) {
            return FloatSource.of(a);
        }
        return FloatSource.of(h.segment(), x.dtype());
    }

    /**
     * Any view of a Q8_0 or Q4_0 tensor as the same view over an F32 copy of its whole storage (the slow, general
     * path).
     */
    static Tensor quantValues(Tensor x) {
        float[] all = quantised(x, 0, Math.toIntExact(x.storage().size()));
        return new Tensor(x.ops(), HostStorage.of(all), x.shape(), x.strides(), x.offset());
    }

    @Override
    public Tensor cast(Tensor x, DType dtype) {
        if (x.dtype() == dtype) {
            return x.dtype().isQuantised() ? x : contiguous(x);
        }
        if (dtype == DType.Q8_0) {
            return quantizeQ8(x);
        }
        if (dtype == DType.Q4_0) {
            return quantizeQ4(x);
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

    /** Q4_0 blocks along the last dim, which must be a multiple of 32 (ggml's rule for Q4_0 rows). */
    private Tensor quantizeQ4(Tensor x) {
        if (x.rank() == 0 || x.size(-1) % Q4Storage.BLOCK != 0 || !x.dtype().isFloating()) {
            throw new IllegalArgumentException("cast of " + x + " to Q4_0: expected a floating tensor whose last dim is "
                    + "a multiple of " + Q4Storage.BLOCK);
        }
        Tensor dense = x.storage() instanceof HostStorage ? x.contiguous() : dense(floats(x), x.shape());
        return Q4Gemm.quantize(source(dense), 0, dense.numel()).tensor(this, x.shape());
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
    static Tensor f32View(Tensor x) {
        if (x.dtype() == DType.F32 && host(x).array() instanceof float[]) {
            return x;
        }
        CpuOps cpu = x.ops() instanceof CpuOps c ? c : new CpuOps();
        return cpu.dense(floats(x).clone(), x.shape());
    }

    static float[] array(Tensor f32) {
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
            return rows ? indexSelectQ8(x, a, toLongArray(index)) : indexSelect(quantValues(x), axis, index);
        }
        if (x.storage() instanceof Q4Storage) {
            return indexSelect(quantValues(x), axis, index);
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

    // ---- neural-network kernels (CpuMatmul, CpuLayers)

    @Override
    public Tensor matmul(Tensor a, Tensor b, Tensor bias, Activation act) {
        return CpuMatmul.matmul(this, a, b, bias, act);
    }

    @Override
    public Tensor linear(Tensor x, Tensor weight, Tensor bias, Activation act) {
        return CpuMatmul.linear(this, x, weight, bias, act);
    }

    @Override
    public Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int stride, int padding, int groups, Activation act) {
        return CpuLayers.conv2d(this, x, weight, bias, stride, padding, groups, act);
    }

    @Override
    public Tensor groupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, Activation act) {
        return CpuLayers.groupNorm(this, x, groups, gamma, beta, eps, act);
    }

    @Override
    public Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, float eps) {
        return CpuLayers.layerNorm(this, x, gamma, beta, eps);
    }

    @Override
    public Tensor rmsNorm(Tensor x, Tensor gamma, float eps) {
        return CpuLayers.rmsNorm(this, x, gamma, eps);
    }

    @Override
    public Tensor softmax(Tensor x, int axis) {
        return CpuLayers.softmax(this, x, axis);
    }

    @Override
    public Tensor logSoftmax(Tensor x, int axis) {
        return CpuLayers.logSoftmax(this, x, axis);
    }

    @Override
    public Tensor attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, float scale) {
        return CpuLayers.attention(this, q, k, v, mask, causal, scale);
    }

    @Override
    public Tensor geglu(Tensor x) {
        return CpuLayers.geglu(this, x);
    }

    @Override
    public Tensor upsampleNearest2x(Tensor x) {
        return CpuLayers.upsampleNearest2x(this, x);
    }

    @Override
    public Tensor avgPool2d(Tensor x, int kernel, int stride, int padding, boolean ceilMode, boolean countIncludePad) {
        return CpuLayers.avgPool2d(this, x, kernel, stride, padding, ceilMode, countIncludePad);
    }

    @Override
    public Tensor resize(Tensor x, int height, int width, ResizeMode mode, boolean alignCorners, boolean antialias) {
        return CpuLayers.resize(this, x, height, width, mode, alignCorners, antialias);
    }

    static float[] biasVector(Tensor bias, int n, String op) {
        if (bias == null) {
            return null;
        }
        if (bias.rank() != 1 || bias.size(0) != n) {
            throw new IllegalArgumentException(op + ": bias of shape " + Arrays.toString(bias.shape())
                    + ", expected [" + n + "]");
        }
        return floats(bias);
    }
}
