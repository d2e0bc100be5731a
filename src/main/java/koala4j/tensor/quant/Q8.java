package koala4j.tensor.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The Q8_0 reference: quantising one block and reading values back, exactly as ggml's
 * {@code quantize_row_q8_0_ref} / {@code dequantize_row_q8_0} (ggml-quants.c). Backends quantise with this so every
 * backend makes the same bytes. Stateless.
 */
public final class Q8 {

    private Q8() {
    }

    /**
     * Quantises {@code x[off .. off+32)} into block {@code block} of {@code dst}: d = max|x| / 127 (float),
     * stored as F16; q = roundf(x * (1/d)) with ties away from zero (C's roundf), 0 when the block is all zeros.
     * The quants use the float d, not its F16 rounding, as ggml does.
     */
    public static void quantizeBlock(float[] x, int off, Q8Storage dst, long block) {
        float amax = 0f;
        for (int j = 0; j < Q8Storage.BLOCK; j++) {
            amax = Math.max(amax, Math.abs(x[off + j]));
        }
        float d = amax / 127f;
        float id = d != 0f ? 1f / d : 0f;
        dst.scales().set(Q8Storage.F16_LE, block * 2, Float.floatToFloat16(d));
        long at = block * Q8Storage.BLOCK;
        for (int j = 0; j < Q8Storage.BLOCK; j++) {
            dst.quants().set(ValueLayout.JAVA_BYTE, at + j, (byte) roundAway(x[off + j] * id));
        }
    }

    /** C's roundf: halfway cases away from zero (Java's Math.round rounds them up). */
    static int roundAway(float v) {
        return v < 0 ? -Math.round(-v) : Math.round(v);
    }

    /** Values of elements [from, from + n) into {@code out[outOff ..]}. */
    public static void dequantize(Q8Storage src, long from, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i++) {
            out[outOff + i] = src.get(from + i);
        }
    }

    /** Zeroed storage for {@code elements} values (a multiple of 32), in memory the garbage collector frees. */
    public static Q8Storage allocate(long elements) {
        if (elements % Q8Storage.BLOCK != 0) {
            throw new IllegalArgumentException(elements + " elements are not a whole number of " + Q8Storage.BLOCK
                    + "-element Q8_0 blocks");
        }
        var arena = java.lang.foreign.Arena.ofAuto();
        MemorySegment quants = arena.allocate(elements, 64);
        MemorySegment scales = arena.allocate(elements / Q8Storage.BLOCK * 2, 64);
        return new Q8Storage(quants, scales);
    }

    /** Bytes a Q8_0 copy of {@code elements} values takes: 34 per 32 (8.5 bits per weight). */
    public static long bytesFor(long elements) {
        return elements / Q8Storage.BLOCK * Q8Storage.BLOCK_BYTES;
    }
}
