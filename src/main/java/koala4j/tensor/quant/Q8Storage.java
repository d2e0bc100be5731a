package koala4j.tensor.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import koala4j.tensor.DType;
import koala4j.tensor.Device;
import koala4j.tensor.Ops;
import koala4j.tensor.Storage;
import koala4j.tensor.Tensor;

/**
 * Weights in llama.cpp's Q8_0 format (ggml-quants.c, {@code block_q8_0}): every run of {@link #BLOCK} consecutive
 * elements shares one F16 scale {@code d}, and each element is an int8 {@code q} with value {@code d * q}. The
 * blocks run along the flattened row-major order, so a [rows, cols] weight with cols a multiple of 32 has
 * cols / 32 blocks per row. Unlike ggml, which interleaves {d, q[32]} in 34-byte structs, the quants and the scales
 * are two separate regions (same numbers, same 34 bytes per 32 weights): 32 quants are then one aligned vector load.
 *
 * <p>{@code quants} holds one byte per element; {@code scales} one little-endian F16 per block. Both are read-only
 * once built and may be shared by any number of threads. Whoever allocated the segments owns them.
 */
public record Q8Storage(MemorySegment quants, MemorySegment scales) implements Storage {

    /** Elements per block (ggml's QK8_0). */
    public static final int BLOCK = 32;
    /** Bytes per block: 32 quants and a 2-byte F16 scale. */
    public static final int BLOCK_BYTES = BLOCK + 2;

    /** Little-endian F16 scales (shared with {@link Q4Storage}). */
    static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Q8Storage {
        if (quants.byteSize() % BLOCK != 0 || scales.byteSize() != quants.byteSize() / BLOCK * 2) {
            throw new IllegalArgumentException("Q8_0 storage of " + quants.byteSize() + " quants and "
                    + scales.byteSize() + " scale bytes, expected a multiple of " + BLOCK
                    + " quants and 2 scale bytes per " + BLOCK);
        }
    }

    /** A dense tensor of {@code ops} over this storage; the last dim must be a whole number of blocks. */
    public Tensor tensor(Ops ops, int... shape) {
        return blockTensor(this, ops, shape);
    }

    /** A dense tensor over block-quantised storage (Q8_0, Q4_0): all its elements, whole blocks along the last dim. */
    static Tensor blockTensor(Storage storage, Ops ops, int... shape) {
        if (shape.length == 0 || shape[shape.length - 1] % BLOCK != 0 || Tensor.numel(shape) != storage.size()) {
            throw new IllegalArgumentException(storage.dtype() + " tensor of shape " + java.util.Arrays.toString(shape)
                    + " over " + storage.size() + " elements, expected that many elements and a last dim divisible by "
                    + BLOCK);
        }
        return Tensor.dense(ops, storage, shape);
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public DType dtype() {
        return DType.Q8_0;
    }

    @Override
    public long size() {
        return quants.byteSize();
    }

    /** Bytes held: quants plus scales. */
    public long byteSize() {
        return quants.byteSize() + scales.byteSize();
    }

    /** The scale of block {@code block}, as float. */
    public float scale(long block) {
        return Float.float16ToFloat(scales.get(F16_LE, block * 2));
    }

    /** The value of element {@code index}: d * q. */
    public float get(long index) {
        return scale(index / BLOCK) * quants.get(ValueLayout.JAVA_BYTE, index);
    }
}
