package koala4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * Host memory: a heap array wrapped as a segment (activations) or a read-only mmap view (weights).
 * Owned by whoever created the segment: heap arrays by the garbage collector, mappings by the checkpoint that
 * opened them.
 */
public record HostStorage(MemorySegment segment, DType dtype) implements Storage {

    public HostStorage {
        if (segment.byteSize() % dtype.byteSize() != 0) {
            throw new IllegalArgumentException("segment of " + segment.byteSize() + " bytes is not a whole number of "
                    + dtype + " elements");
        }
    }

    public static HostStorage of(float[] data) {
        return new HostStorage(MemorySegment.ofArray(data), DType.F32);
    }

    public static HostStorage of(long[] data) {
        return new HostStorage(MemorySegment.ofArray(data), DType.I64);
    }

    public static HostStorage of(int[] data) {
        return new HostStorage(MemorySegment.ofArray(data), DType.I32);
    }

    /** F16 or BF16 bits. */
    public static HostStorage of(short[] data, DType dtype) {
        if (dtype != DType.F16 && dtype != DType.BF16) {
            throw new IllegalArgumentException("short[] holds F16 or BF16, not " + dtype);
        }
        return new HostStorage(MemorySegment.ofArray(data), dtype);
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public long size() {
        return segment.byteSize() / dtype.byteSize();
    }

    /** The heap array behind this storage (float[], long[], int[] or short[]), or null for off-heap memory. */
    public Object array() {
        if (segment.address() != 0) {
            return null;
        }
        return segment.heapBase().orElse(null);
    }
}
