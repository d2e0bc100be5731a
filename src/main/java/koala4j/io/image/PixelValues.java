package koala4j.io.image;

import java.util.Arrays;

import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * What an image processor returns as {@code pixel_values}: {@code [B, 3, H, W]} float32, row-major, one processed
 * image per batch row. The record keeps the array it is given (no copy); it must not be changed afterwards.
 */
public record PixelValues(int batch, int height, int width, float[] data) {

    public static final int CHANNELS = 3;

    public PixelValues {
        if (batch < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException("pixel values [%d, 3, %d, %d]: every size must be >= 1"
                    .formatted(batch, height, width));
        }
        long expected = (long) batch * CHANNELS * height * width;
        if (data == null || data.length != expected) {
            throw new IllegalArgumentException("pixel values [%d, 3, %d, %d]: %s floats, expected %d".formatted(
                    batch, height, width, data == null ? "null" : Integer.toString(data.length), expected));
        }
    }

    public int[] shape() {
        return new int[] {batch, CHANNELS, height, width};
    }

    /** The values as a {@code [B, 3, H, W]} F32 tensor of {@code ops}. */
    public Tensor toTensor(Ops ops) {
        return ops.fromArray(data, shape());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PixelValues p && batch == p.batch && height == p.height && width == p.width
                && Arrays.equals(data, p.data);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * (31 * batch + height) + width) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "PixelValues[%d, 3, %d, %d]".formatted(batch, height, width);
    }
}
