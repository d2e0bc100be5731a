package koala4j.tensor.quant;

import java.lang.foreign.ValueLayout;

/**
 * The Q4_0 reference: quantising one block exactly as ggml's {@code quantize_row_q4_0_ref} (ggml-quants.c) and
 * reading values back as {@code dequantize_row_q4_0}. Stateless.
 */
public final class Q4 {

    private Q4() {
    }

    /**
     * Quantises {@code x[off .. off+32)} into block {@code block} of {@code dst}: max = the value of largest |x|
     * (the first of equals), d = max / -8 (float), stored as F16; q = min(15, (int8) (x * (1/d) + 8.5)), C's
     * truncating conversion, 8 (zero) for an all-zero block. The quants use the float d, not its F16 rounding, as
     * ggml does.
     */
    public static void quantizeBlock(float[] x, int off, Q4Storage dst, long block) {
        float amax = 0f;
        float max = 0f;
        for (int j = 0; j < Q4Storage.BLOCK; j++) {
            float v = x[off + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8f;
        float id = d != 0f ? 1f / d : 0f;
        dst.scales().set(Q8Storage.F16_LE, block * 2, Float.floatToFloat16(d));
        int half = Q4Storage.BLOCK / 2;
        long at = block * half;
        for (int j = 0; j < half; j++) {
            int q0 = Math.min(15, (byte) (int) (x[off + j] * id + 8.5f));
            int q1 = Math.min(15, (byte) (int) (x[off + half + j] * id + 8.5f));
            dst.quants().set(ValueLayout.JAVA_BYTE, at + j, (byte) (q0 | q1 << 4));
        }
    }

    /** Zeroed storage for {@code elements} values (a multiple of 32), in memory the garbage collector frees. */
    public static Q4Storage allocate(long elements) {
        if (elements % Q4Storage.BLOCK != 0) {
            throw new IllegalArgumentException(elements + " elements are not a whole number of " + Q4Storage.BLOCK
                    + "-element Q4_0 blocks");
        }
        var arena = java.lang.foreign.Arena.ofAuto();
        return new Q4Storage(arena.allocate(elements / 2, 64), arena.allocate(elements / Q4Storage.BLOCK * 2, 64));
    }

    /** Bytes a Q4_0 copy of {@code elements} values takes: 18 per 32 (4.5 bits per weight). */
    public static long bytesFor(long elements) {
        return elements / Q4Storage.BLOCK * Q4Storage.BLOCK_BYTES;
    }
}
