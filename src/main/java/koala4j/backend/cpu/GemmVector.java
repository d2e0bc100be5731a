package koala4j.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import koala4j.tensor.Activation;
import koala4j.tensor.DType;

/**
 * Vector pieces shared by the GEMM and conv kernels: the fused epilogue (alpha, bias, activation, accumulate) and
 * loads that turn F32/F16/BF16 storage into float lanes. Stateless; safe from any thread.
 */
final class GemmVector {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int VL = F.length();
    /** As many shorts as {@link #F} has floats, so one load of stored halves fills one float vector. */
    static final VectorSpecies<Short> H = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, VectorShape.forBitSize(F.vectorBitSize()));

    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Lane i paired with lane i ^ d, for the levels of {@link #sum}'s tree; unused where d >= VL. */
    private static final VectorShuffle<Float> PAIR16 = pairs(16);
    private static final VectorShuffle<Float> PAIR8 = pairs(8);
    private static final VectorShuffle<Float> PAIR4 = pairs(4);
    private static final VectorShuffle<Float> PAIR2 = pairs(2);
    private static final VectorShuffle<Float> PAIR1 = pairs(1);

    private static VectorShuffle<Float> pairs(int d) {
        return VectorShuffle.fromOp(F, i -> d < VL ? i ^ d : i);
    }

    /** How a {@link FloatSource} is read by the vector loops; resolved once per call, not per element. */
    enum Kind { ARRAY, SEG_F32, SEG_F16, SEG_BF16 }

    private GemmVector() {
    }

    /**
     * The sum of v's lanes in one fixed order, a tree of lanewise adds (lane i + lane i ^ d, d halving). The Vector
     * API's {@code reduceLanes(ADD)} adds left to right while a kernel runs interpreted or under C1 and in another
     * order once C2 has compiled it, so the same product gave different last bits in a process's first few hundred
     * calls than later (a token on a near-tie could change); lanewise adds and shuffles round the same in every mode.
     */
    static float sum(FloatVector v) {
        if (VL > 32) {
            throw new IllegalStateException("vectors of " + VL + " floats: sum covers at most 32 lanes");
        }
        if (VL > 16) {
            v = v.add(v.rearrange(PAIR16));
        }
        if (VL > 8) {
            v = v.add(v.rearrange(PAIR8));
        }
        if (VL > 4) {
            v = v.add(v.rearrange(PAIR4));
        }
        if (VL > 2) {
            v = v.add(v.rearrange(PAIR2));
        }
        if (VL > 1) {
            v = v.add(v.rearrange(PAIR1));
        }
        return v.lane(0);
    }

    static Kind kindOf(FloatSource src) {
        return switch (src) {
            case FloatSource.ArraySource a -> Kind.ARRAY;
            case FloatSource.SegmentSource s -> switch (s.dtype()) {
                case F32 -> Kind.SEG_F32;
                case F16 -> Kind.SEG_F16;
                case BF16 -> Kind.SEG_BF16;
                default -> throw new IllegalArgumentException("not a floating dtype: " + s.dtype());
            };
        };
    }

    static MemorySegment segmentOf(FloatSource src) {
        return src instanceof FloatSource.SegmentSource s ? s.segment() : null;
    }

    /** VL consecutive elements starting at element {@code index}, converted to float; the caller checks bounds. */
    static FloatVector load(Kind kind, float[] arr, MemorySegment seg, long index) {
        return switch (kind) {
            case ARRAY -> FloatVector.fromArray(F, arr, (int) index);
            case SEG_F32 -> FloatVector.fromMemorySegment(F, seg, index * 4, LE);
            case SEG_F16 -> f16ToF32(ShortVector.fromMemorySegment(H, seg, index * 2, LE));
            case SEG_BF16 -> bf16ToF32(ShortVector.fromMemorySegment(H, seg, index * 2, LE));
        };
    }

    /** bf16 is the top half of an IEEE float, so widening and shifting is exact. */
    static FloatVector bf16ToF32(ShortVector bits) {
        IntVector wide = (IntVector) bits.convertShape(VectorOperators.S2I, I, 0);
        return wide.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /**
     * IEEE half to float, exact (same values as {@link Float#float16ToFloat}). Placing the 15 exponent+mantissa bits
     * under a float exponent and scaling by 2^112 re-biases normals and turns half subnormals into the right float;
     * only Inf/NaN (half exponent 31) need their float exponent forced to 255.
     */
    static FloatVector f16ToF32(ShortVector bits) {
        IntVector h = (IntVector) bits.convertShape(VectorOperators.S2I, I, 0);
        IntVector em = h.and(0x7FFF);
        IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        IntVector shifted = em.lanewise(VectorOperators.LSHL, 13);
        FloatVector finite = shifted.reinterpretAsFloats().mul(0x1p112f);
        VectorMask<Integer> special = em.compare(VectorOperators.GE, 0x7C00);
        IntVector magnitude = finite.reinterpretAsInts().blend(shifted.or(0x7F800000), special);
        return magnitude.or(sign).reinterpretAsFloats();
    }

    /**
     * One row of the fused epilogue, {@code dst[dOff + j] = (acc ? dst : 0) + act(alpha * src[sOff + j] + bias)} for
     * j in [0, len), where the bias is {@code bias[biasOff + j]} when {@code biasPerCol}, else the scalar {@code rowBias}.
     * {@code src} is the caller's scratch and is overwritten. The activation runs as its own loop over the row: kept
     * inline in one loop with a switch, C2 compiled it out of line and boxed every vector (4x slower).
     */
    static void finishRow(float[] src, int sOff, float[] dst, int dOff, int len, float alpha,
                          float[] bias, int biasOff, boolean biasPerCol, float rowBias, Activation act, boolean acc) {
        FloatVector rb = FloatVector.broadcast(F, rowBias);
        boolean direct = act == Activation.NONE;
        for (int j = 0; j < len; j += VL) {
            VectorMask<Float> m = F.indexInRange(j, len);
            FloatVector v = FloatVector.fromArray(F, src, sOff + j, m).mul(alpha);
            v = v.add(biasPerCol ? FloatVector.fromArray(F, bias, biasOff + j, m) : rb);
            if (!direct) {
                v.intoArray(src, sOff + j, m);
                continue;
            }
            if (acc) {
                v = v.add(FloatVector.fromArray(F, dst, dOff + j, m));
            }
            v.intoArray(dst, dOff + j, m);
        }
        if (direct) {
            return;
        }
        switch (act) {
            case RELU -> relu(src, sOff, len);
            // Activations' own exponential and erf: the Vector API's EXP / TANH round one way interpreted and another
            // once C2 has compiled them, so a batched decoding step and a lone one differed now and then
            case SILU, QUICK_GELU, GELU_TANH, GELU -> Activations.apply(act, src, sOff, len, src, sOff);
            case NONE -> throw new AssertionError();
        }
        for (int j = 0; j < len; j += VL) {
            VectorMask<Float> m = F.indexInRange(j, len);
            FloatVector v = FloatVector.fromArray(F, src, sOff + j, m);
            if (acc) {
                v = v.add(FloatVector.fromArray(F, dst, dOff + j, m));
            }
            v.intoArray(dst, dOff + j, m);
        }
    }

    /** torch relu. */
    private static void relu(float[] a, int off, int len) {
        for (int j = 0; j < len; j += VL) {
            VectorMask<Float> m = F.indexInRange(j, len);
            FloatVector.fromArray(F, a, off + j, m).max(0f).intoArray(a, off + j, m);
        }
    }


    /** Scalar reads of one element, for edges the vector loops do not cover. */
    static float get(Kind kind, float[] arr, MemorySegment seg, long index) {
        return switch (kind) {
            case ARRAY -> arr[(int) index];
            case SEG_F32 -> seg.getAtIndex(FloatSource.F32_LE, index);
            case SEG_F16 -> Float.float16ToFloat(seg.getAtIndex(FloatSource.I16_LE, index));
            case SEG_BF16 -> DType.bf16ToF32(seg.getAtIndex(FloatSource.I16_LE, index));
        };
    }
}
