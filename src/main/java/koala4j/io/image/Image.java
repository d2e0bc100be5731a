package koala4j.io.image;

import java.util.Arrays;

/**
 * 8-bit RGB(A) pixels, row-major, interleaved: the sample of channel {@code c} at column {@code x}, row {@code y} is
 * {@code pixels[(y * width + x) * channels + c]}, read unsigned. The same layout as
 * {@code np.array(pil_image)} for PIL modes "RGB" and "RGBA" (alpha straight, not premultiplied).
 *
 * <p>The record keeps the array it is given (no copy, for the sake of multi-megapixel images): whoever builds an
 * {@code Image} hands the array over and must not change it afterwards. Every method in this package that returns
 * an {@code Image} returns one over a fresh array.
 */
public record Image(int width, int height, int channels, byte[] pixels) {

    /** PIL's {@code Image.MAX_IMAGE_PIXELS * 2}: the size above which PIL refuses to open a file. */
    static final long MAX_PIXELS = 2L * 89_478_485;

    public Image {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("image size %dx%d: width and height must be >= 1"
                    .formatted(width, height));
        }
        if (channels != 3 && channels != 4) {
            throw new IllegalArgumentException("image channels " + channels + ": expected 3 (RGB) or 4 (RGBA)");
        }
        if ((long) width * height > MAX_PIXELS) {
            throw new IllegalArgumentException("image size %dx%d = %d pixels: more than the limit %d"
                    .formatted(width, height, (long) width * height, MAX_PIXELS));
        }
        if (pixels == null) {
            throw new IllegalArgumentException("image pixels: null, expected %d bytes".formatted(
                    (long) width * height * channels));
        }
        long expected = (long) width * height * channels;
        if (pixels.length != expected) {
            throw new IllegalArgumentException("image %dx%dx%d: pixels has %d bytes, expected %d"
                    .formatted(width, height, channels, pixels.length, expected));
        }
    }

    /** A fresh, zero-filled image (black, and transparent when {@code channels == 4}). */
    public static Image blank(int width, int height, int channels) {
        return new Image(width, height, channels, new byte[Math.multiplyExact(Math.multiplyExact(width, height),
                channels)]);
    }

    /** The sample of channel {@code c} at column {@code x}, row {@code y}, in {@code [0, 255]}. */
    public int get(int x, int y, int c) {
        if (x < 0 || x >= width || y < 0 || y >= height || c < 0 || c >= channels) {
            throw new IndexOutOfBoundsException("pixel (x=%d, y=%d, c=%d) outside %dx%dx%d"
                    .formatted(x, y, c, width, height, channels));
        }
        return pixels[(y * width + x) * channels + c] & 0xFF;
    }

    public boolean hasAlpha() {
        return channels == 4;
    }

    /** PIL's {@code convert("RGB")} of an RGBA image: the alpha channel is dropped, not composited. */
    public Image toRgb() {
        if (channels == 3) {
            return this;
        }
        int n = width * height;
        byte[] rgb = new byte[n * 3];
        for (int i = 0; i < n; i++) {
            rgb[i * 3] = pixels[i * 4];
            rgb[i * 3 + 1] = pixels[i * 4 + 1];
            rgb[i * 3 + 2] = pixels[i * 4 + 2];
        }
        return new Image(width, height, 3, rgb);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Image other && width == other.width && height == other.height
                && channels == other.channels && Arrays.equals(pixels, other.pixels);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * (31 * width + height) + channels) + Arrays.hashCode(pixels);
    }

    @Override
    public String toString() {
        return "Image[%dx%d, %s]".formatted(width, height, channels == 3 ? "RGB" : "RGBA");
    }
}
