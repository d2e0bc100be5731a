package koala4j.nn;

import java.lang.foreign.MemorySegment;

import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/** Seeded uniform tensors (a 64-bit LCG, fast enough for billions of values) for benchmarks of real shapes. */
public final class RandomWeights {

    private RandomWeights() {
    }

    /** Uniform in [-scale, scale], stored as F32, F16 or BF16. */
    public static Tensor uniform(Ops ops, int[] shape, DType dtype, long seed, float scale) {
        int n = Math.toIntExact(Tensor.numel(shape));
        long state = seed * 0x9E3779B97F4A7C15L + 1;
        if (dtype == DType.F32) {
            float[] v = new float[n];
            for (int i = 0; i < n; i++) {
                state = state * 6364136223846793005L + 1442695040888963407L;
                v[i] = ((state >>> 40) / (float) (1L << 24) * 2f - 1f) * scale;
            }
            return ops.wrap(MemorySegment.ofArray(v), DType.F32, shape);
        }
        if (dtype != DType.F16 && dtype != DType.BF16) {
            throw new IllegalArgumentException("random weights as " + dtype + ": expected F32, F16 or BF16");
        }
        short[] v = new short[n];
        for (int i = 0; i < n; i++) {
            state = state * 6364136223846793005L + 1442695040888963407L;
            float f = ((state >>> 40) / (float) (1L << 24) * 2f - 1f) * scale;
            v[i] = dtype == DType.F16 ? DType.f32ToF16(f) : DType.f32ToBf16(f);
        }
        return ops.wrap(MemorySegment.ofArray(v), dtype, shape);
    }
}
