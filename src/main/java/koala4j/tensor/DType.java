package koala4j.tensor;

/**
 * Element types a tensor can hold. Floating types other than F32 are storage formats: the CPU kernels
 * compute in F32 and convert while they read (see README, "Weights in memory").
 */
public enum DType {
    F32(4, true),
    F16(2, true),
    BF16(2, true),
    I32(4, false),
    I64(8, false),
    /**
     * llama.cpp's Q8_0 weight format, made by {@code cast(x, Q8_0)} (see {@code koala4j.tensor.quant.Q8Storage}):
     * byteSize counts the int8 quant of each element; each block of 32 adds a 2-byte F16 scale (34 bytes per 32).
     */
    Q8_0(1, true),
    /**
     * llama.cpp's Q4_0 weight format, made by {@code cast(x, Q4_0)} (see {@code koala4j.tensor.quant.Q4Storage}):
     * half a byte per element plus a 2-byte F16 scale per block of 32 (18 bytes per 32); byteSize is not a size
     * here (sizes come from {@code Q4.bytesFor}).
     */
    Q4_0(1, true);

    private final int byteSize;
    private final boolean floating;

    DType(int byteSize, boolean floating) {
        this.byteSize = byteSize;
        this.floating = floating;
    }

    public int byteSize() {
        return byteSize;
    }

    public boolean isFloating() {
        return floating;
    }

    /** Whether this is a block format of llama.cpp's (Q8_0, Q4_0): 32 values per block, one F16 scale each. */
    public boolean isQuantised() {
        return this == Q8_0 || this == Q4_0;
    }

    /** IEEE half (binary16) bits to float, exact. */
    public static float f16ToF32(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** Float to IEEE half bits, round to nearest even (what torch's {@code .half()} does). */
    public static short f32ToF16(float value) {
        return Float.floatToFloat16(value);
    }

    /** bfloat16 bits to float, exact: bf16 is the top half of an IEEE float. */
    public static float bf16ToF32(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** Float to bfloat16 bits, round to nearest even; NaN stays a quiet NaN (as torch does). */
    public static short f32ToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }
}
