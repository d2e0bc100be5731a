package koala4j.io.torchbin;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import koala4j.tensor.DType;

/**
 * Gathers a strided view of a storage into a dense, row-major (C order) little-endian copy, converting the element
 * type when the storage's has no koala4j counterpart: float64 to float32 (round to nearest even, what torch's
 * {@code copy_} into a float32 parameter does) and int16/int8/uint8/bool to int32 (exact).
 */
final class DenseCopy {
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private DenseCopy() {}

    /**
     * Copies the view ({@code offset}, {@code size}, {@code stride}, in elements of {@code type}) of {@code storage}
     * into {@code out}, which holds {@code numel} elements of {@code target} ({@code type.direct} or
     * {@code type.convertTo}). Bounds were checked when the file was opened.
     */
    static void copy(MemorySegment storage, TorchStorage type, long offset, long[] size, long[] stride,
                     DType target, MemorySegment out) {
        int rank = size.length;
        long numel = 1;
        for (long d : size) numel *= d;
        if (numel == 0) return;
        int es = type.elementSize;
        int outEs = target.byteSize();
        boolean same = type.direct == target;
        // Rows along the last dim: one bulk copy per row when that dim is unit-strided and nothing converts.
        long row = rank == 0 ? 1 : size[rank - 1];
        long rowStride = rank == 0 ? 1 : stride[rank - 1];
        long[] index = new long[Math.max(rank - 1, 0)];
        long written = 0;
        while (written < numel) {
            long source = offset;
            for (int d = 0; d < index.length; d++) source += index[d] * stride[d];
            if (same && rowStride == 1) {
                MemorySegment.copy(storage, source * es, out, written * outEs, row * es);
            } else {
                for (long j = 0; j < row; j++) {
                    long at = (source + j * rowStride) * es;
                    long to = (written + j) * outEs;
                    if (same) {
                        MemorySegment.copy(storage, at, out, to, es);
                    } else {
                        convert(storage, at, type, out, to);
                    }
                }
            }
            written += row;
            for (int d = index.length - 1; d >= 0; d--) {   // odometer over the leading dims
                if (++index[d] < size[d]) break;
                index[d] = 0;
            }
        }
    }

    private static void convert(MemorySegment storage, long at, TorchStorage type, MemorySegment out, long to) {
        switch (type) {
            case DOUBLE -> out.set(F32, to, (float) storage.get(F64, at));
            case SHORT -> out.set(I32, to, storage.get(I16, at));
            case CHAR -> out.set(I32, to, storage.get(ValueLayout.JAVA_BYTE, at));
            case BYTE -> out.set(I32, to, Byte.toUnsignedInt(storage.get(ValueLayout.JAVA_BYTE, at)));
            case BOOL -> out.set(I32, to, storage.get(ValueLayout.JAVA_BYTE, at) != 0 ? 1 : 0);
            default -> throw new IllegalArgumentException(type + " is not converted");
        }
    }
}
