package koala4j.tensor.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import koala4j.tensor.DType;
import koala4j.tensor.Device;
import koala4j.tensor.Ops;
import koala4j.tensor.Storage;
import koala4j.tensor.Tensor;

/**
 * Weights in llama.cpp's Q4_0 format (ggml-common.h, {@code block_q4_0}): every run of {@link #BLOCK} consecutive
 * elements shares one F16 scale {@code d}; each element is a 4-bit {@code q} in 0..15 with value {@code d * (q - 8)}.
 * Within a block, byte j (0..15) holds element j in its low nibble and element j + 16 in its high nibble, as ggml
 * packs them. As in {@link Q8Storage}, quants and scales are two regions (16 + 2 bytes per 32 weights, 4.5 bits per
 * weight, the same numbers as ggml's 18-byte structs).
 *
 * <p>Read-only once built; any number of threads may read it. Whoever allocated the segments owns them.
 */
public record Q4Storage(MemorySegment quants, MemorySegment scales) implements Storage {

    /** Elements per block (ggml's QK4_0). */
    public static final int BLOCK = 32;
    /** Bytes per block: 16 bytes of nibbles and a 2-byte F16 scale. */
    public static final int BLOCK_BYTES = BLOCK / 2 + 2;

    public Q4Storage {
        if (quants.byteSize() % (BLOCK / 2) != 0 || scales.byteSize() != quants.byteSize() / (BLOCK / 2) * 2) {
            throw new IllegalArgumentException("Q4_0 storage of " + quants.byteSize() + " quant and "
                    + scales.byteSize() + " scale bytes, expected " + BLOCK / 2 + " quant bytes and 2 scale bytes per "
                    + BLOCK + " elements");
        }
    }

    /** A dense tensor of {@code ops} over this storage; the last dim must be a whole number of blocks. */
    public Tensor tensor(Ops ops, int... shape) {
        return Q8Storage.blockTensor(this, ops, shape);
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public DType dtype() {
        return DType.Q4_0;
    }

    /** Elements held: two per quant byte. */
    @Override
    public long size() {
        return quants.byteSize() * 2;
    }

    /** Bytes held: quants plus scales. */
    public long byteSize() {
        return quants.byteSize() + scales.byteSize();
    }

    /** The scale of block {@code block}, as float. */
    public float scale(long block) {
        return Float.float16ToFloat(scales.get(Q8Storage.F16_LE, block * 2));
    }

    /** The 4-bit quant (0..15) of element {@code index}. */
    public int quant(long index) {
        long block = index / BLOCK;
        int j = (int) (index % BLOCK);
        int b = quants.get(ValueLayout.JAVA_BYTE, block * (BLOCK / 2) + (j & (BLOCK / 2 - 1))) & 0xFF;
        return j < BLOCK / 2 ? b & 0x0F : b >>> 4;
    }

    /** The value of element {@code index}: d * (q - 8). */
    public float get(long index) {
        return scale(index / BLOCK) * (quant(index) - 8);
    }
}
