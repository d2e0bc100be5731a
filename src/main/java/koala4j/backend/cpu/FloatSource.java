package koala4j.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import koala4j.tensor.DType;

/**
 * A read-only run of numbers stored as F32, F16 or BF16 (a heap array or an mmap'ed file region), read as float.
 * Kernels that take weights read them through this, so F16/BF16 checkpoints are converted while a kernel packs
 * its panels and never held as a second F32 copy.
 */
public sealed interface FloatSource {

    ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Number of elements. */
    long size();

    float get(long index);

    /** Copies {@code n} consecutive elements starting at {@code from} into {@code dst[dstOff ..]} as float. */
    void read(long from, float[] dst, int dstOff, int n);

    /** The backing array when this is a plain heap F32 source, else null (kernels take a faster path then). */
    default float[] array() {
        return null;
    }

    static FloatSource of(float[] data) {
        return new ArraySource(data);
    }

    /** A little-endian region of {@code dtype} elements, as safetensors stores them. */
    static FloatSource of(MemorySegment segment, DType dtype) {
        if (dtype == DType.F32 && segment.heapBase().orElse(null) instanceof float[] a
                && segment.byteSize() == (long) a.length * 4 && segment.address() == 0) {
            return new ArraySource(a);
        }
        return switch (dtype) {
            case F32 -> new SegmentSource(segment, dtype, segment.byteSize() / 4);
            case F16, BF16 -> new SegmentSource(segment, dtype, segment.byteSize() / 2);
            default -> throw new IllegalArgumentException("not a floating dtype: " + dtype);
        };
    }

    record ArraySource(float[] data) implements FloatSource {
        @Override
        public long size() {
            return data.length;
        }

        @Override
        public float get(long index) {
            return data[(int) index];
        }

        @Override
        public void read(long from, float[] dst, int dstOff, int n) {
            System.arraycopy(data, (int) from, dst, dstOff, n);
        }

        @Override
        public float[] array() {
            return data;
        }
    }

    record SegmentSource(MemorySegment segment, DType dtype, long size) implements FloatSource {
        @Override
        public float get(long index) {
            return switch (dtype) {
                case F32 -> segment.getAtIndex(F32_LE, index);
                case F16 -> Float.float16ToFloat(segment.getAtIndex(I16_LE, index));
                default -> DType.bf16ToF32(segment.getAtIndex(I16_LE, index));
            };
        }

        @Override
        public void read(long from, float[] dst, int dstOff, int n) {
            switch (dtype) {
                case F32 -> MemorySegment.copy(segment, F32_LE, from * 4, dst, dstOff, n);
                default -> {
                    // vector conversion for the bulk (checkpoint weights are read this way), scalar tail
                    GemmVector.Kind kind = dtype == DType.F16 ? GemmVector.Kind.SEG_F16 : GemmVector.Kind.SEG_BF16;
                    int i = 0;
                    for (; i <= n - GemmVector.VL; i += GemmVector.VL) {
                        GemmVector.load(kind, null, segment, from + i).intoArray(dst, dstOff + i);
                    }
                    for (; i < n; i++) {
                        dst[dstOff + i] = get(from + i);
                    }
                }
            }
        }
    }
}
