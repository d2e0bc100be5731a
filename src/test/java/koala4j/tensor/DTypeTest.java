package koala4j.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class DTypeTest {
    @Test
    void halfAndBfloatRoundTripRepresentableValues() {
        for (float v : new float[] {0f, -0f, 1f, -2.5f, 65504f, 6.1035156e-5f}) {
            assertEquals(v, DType.f16ToF32(DType.f32ToF16(v)));
            assertEquals(v, DType.bf16ToF32(DType.f32ToBf16(v)), 1e-2f * Math.abs(v));
        }
    }

    @Test
    void bfloatRoundsToNearestEven() {
        // 1 + 2^-8 lies exactly halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even mantissa (1).
        assertEquals(1f, DType.bf16ToF32(DType.f32ToBf16(1f + 0x1p-8f)));
        assertEquals(1f + 0x1p-6f, DType.bf16ToF32(DType.f32ToBf16(1f + 0x1p-7f + 0x1p-8f)));
        assertEquals(0x7FC0, DType.f32ToBf16(Float.NaN) & 0x7FC0);
    }
}
