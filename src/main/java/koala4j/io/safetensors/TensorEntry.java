package koala4j.io.safetensors;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;
import koala4j.tensor.DType;

/**
 * One tensor of a safetensors file: its name (the state-dict key), dtype, shape and raw bytes.
 *
 * <p>{@code data} is a read-only region of exactly {@code numel() * dtype.byteSize()} bytes in safetensors' layout:
 * row-major (C order), little-endian. Read it with little-endian, <em>unaligned</em> layouts (e.g.
 * {@code ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN)}): files written by the reference are
 * 8-byte aligned, but the format does not promise it. For tensors read from a {@link SafetensorsFile} the region is a
 * view of the file's mapping and is valid only until that file is closed.
 *
 * <p>A scalar has shape {@code []} and one element; a shape containing 0 has no elements and no bytes.
 */
public record TensorEntry(String name, DType dtype, long[] shape, MemorySegment data) {

    public TensorEntry {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(data, "data");
        shape = shape.clone();
        long bytes;
        try {
            bytes = Math.multiplyExact(elementCount(name, shape), (long) dtype.byteSize());
        } catch (ArithmeticException overflow) {
            throw new IllegalArgumentException("tensor \"%s\": %s %s has more than 2^63-1 bytes"
                    .formatted(name, dtype, Arrays.toString(shape)));
        }
        if (data.byteSize() != bytes) {
            throw new IllegalArgumentException("tensor \"%s\": data is %d bytes, expected %d (%s %s)"
                    .formatted(name, data.byteSize(), bytes, dtype, Arrays.toString(shape)));
        }
        data = data.asReadOnly();
    }

    /** A copy: the entry stays immutable. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Number of elements: the product of the shape (1 for a scalar). */
    public long numel() {
        long n = 1;
        for (long d : shape) n *= d;   // cannot overflow: checked in the constructor
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorEntry e && name.equals(e.name) && dtype == e.dtype
                && Arrays.equals(shape, e.shape) && data.equals(e.data);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape));
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + Arrays.toString(shape);
    }

    static long elementCount(String name, long[] shape) {
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException("tensor \"%s\": shape %s has %d at dim %d, expected >= 0"
                        .formatted(name, Arrays.toString(shape), shape[i], i));
            }
            n = Math.multiplyExact(n, shape[i]);
        }
        return n;
    }
}
