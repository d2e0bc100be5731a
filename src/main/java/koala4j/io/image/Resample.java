package koala4j.io.image;

import koala4j.io.image.Images.Filter;

/**
 * PIL's {@code Image.resize(size, filter)} for 8-bit images, step by step as Pillow's {@code Image.resize}
 * (Image.py), {@code _resize} (_imaging.c), {@code ImagingResample} (libImaging/Resample.c) and
 * {@code ImagingScaleAffine} (libImaging/Geometry.c) do it, so that the pixels come out bit-identical:
 * <ul>
 * <li>BILINEAR / BICUBIC / LANCZOS: separable convolution, horizontal pass first (vertical first only for images
 * taller than 100x their width that shrink in height). The filter is stretched by the scale when downsampling
 * (support 1, 2, 3 input pixels times max(1, in/out)); each output pixel's weights are normalised to sum 1 in double,
 * then turned into 22-bit fixed point (round half away from zero); a pass sums {@code sample * weight} in 32-bit ints
 * starting at 2^21 (= +0.5) and keeps {@code clamp(sum >> 22, 0, 255)}. The intermediate image between the passes is
 * 8-bit, as in PIL.
 * <li>RGBA: premultiplied by alpha before ({@code (v*a + 128 + ((v*a + 128) >> 8)) >> 8}) and divided after
 * ({@code min(255, 255*v / a)}, integer division, unchanged when a is 0 or 255), as PIL's "RGBa" detour.
 * <li>NEAREST: the source pixel under each output pixel centre, {@code floor((x + 0.5) * in / out)}, accumulated in
 * double as Geometry.c does.
 * </ul>
 * The weights use {@link StrictMath#sin} (fdlibm) so that results do not depend on the JIT's intrinsics.
 */
final class Resample {

    private static final int PRECISION_BITS = 32 - 8 - 2;

    private Resample() {
    }

    static Image resize(Image src, int width, int height, Filter filter) {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("resize %s to %dx%d: width and height must be >= 1"
                    .formatted(src, width, height));
        }
        if (width == src.width() && height == src.height()) {
            return new Image(width, height, src.channels(), src.pixels().clone());
        }
        if (filter == Filter.NEAREST) {
            return nearest(src, width, height);
        }
        boolean alpha = src.channels() == 4;
        Image in = alpha ? premultiply(src) : src;
        Image out;
        if (in.height() > in.width() * 100 && height < in.height()) {
            // Image.resize's special case for very tall images: shrink the height first.
            out = horizontal(vertical(in, height, filter), width, filter);
        } else {
            out = vertical(horizontal(in, width, filter), height, filter);
        }
        return alpha ? unpremultiply(out) : out;
    }

    /**
     * Filter weights for one axis in 22-bit fixed point, {@code ksize} slots per output index i; {@code bounds[2i]}
     * is the first input index used and {@code bounds[2i+1]} how many.
     */
    record Coefficients(int ksize, int[] bounds, int[] weights) {
    }

    /** {@code precompute_coeffs} then {@code normalize_coeffs_8bpc} of Resample.c, for the box (0, inSize). */
    static Coefficients coefficients(int inSize, int outSize, Filter filter) {
        double support0 = switch (filter) {
            case BILINEAR -> 1.0;
            case BICUBIC -> 2.0;
            case LANCZOS -> 3.0;
            case NEAREST -> throw new IllegalArgumentException("NEAREST has no convolution kernel");
        };
        double scale = (double) inSize / outSize;
        double filterScale = Math.max(scale, 1.0);
        double support = support0 * filterScale;
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] bounds = new int[outSize * 2];
        int[] weights = new int[outSize * ksize];
        double[] k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++) {
            double center = (xx + 0.5) * scale;
            double ss = 1.0 / filterScale;
            // (int) truncates toward zero, as the C cast does, before the clamp to the image.
            int xmin = Math.max((int) (center - support + 0.5), 0);
            int xmax = Math.min((int) (center + support + 0.5), inSize) - xmin;
            double ww = 0.0;
            for (int x = 0; x < xmax; x++) {
                double w = kernel(filter, (x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++) {
                double w = ww != 0.0 ? k[x] / ww : k[x];
                double fixed = w * (1 << PRECISION_BITS);
                weights[xx * ksize + x] = (int) (w < 0 ? -0.5 + fixed : 0.5 + fixed);
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return new Coefficients(ksize, bounds, weights);
    }

    static double kernel(Filter filter, double x) {
        return switch (filter) {
            case BILINEAR -> {
                double ax = Math.abs(x);
                yield ax < 1.0 ? 1.0 - ax : 0.0;
            }
            case BICUBIC -> {
                // Keys' cubic convolution with a = -0.5, in Resample.c's Horner form.
                double a = -0.5;
                double ax = Math.abs(x);
                if (ax < 1.0) {
                    yield ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1;
                }
                yield ax < 2.0 ? (((ax - 5) * ax + 8) * ax - 4) * a : 0.0;
            }
            case LANCZOS -> -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
            case NEAREST -> throw new IllegalArgumentException("NEAREST has no convolution kernel");
        };
    }

    private static double sinc(double x) {
        if (x == 0.0) {
            return 1.0;
        }
        double px = x * Math.PI;
        return StrictMath.sin(px) / px;
    }

    private static int clip8(int sum) {
        return Math.clamp(sum >> PRECISION_BITS, 0, 255);
    }

    /** One horizontal pass ({@code ImagingResampleHorizontal_8bpc}); identity when the width does not change. */
    private static Image horizontal(Image in, int width, Filter filter) {
        if (width == in.width()) {
            return in;
        }
        Coefficients co = coefficients(in.width(), width, filter);
        int ch = in.channels();
        int inW = in.width();
        byte[] src = in.pixels();
        byte[] dst = new byte[width * in.height() * ch];
        for (int y = 0; y < in.height(); y++) {
            int rowIn = y * inW * ch;
            int rowOut = y * width * ch;
            for (int xx = 0; xx < width; xx++) {
                int xmin = co.bounds[xx * 2];
                int count = co.bounds[xx * 2 + 1];
                int kOff = xx * co.ksize;
                for (int c = 0; c < ch; c++) {
                    int ss = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < count; x++) {
                        ss += (src[rowIn + (x + xmin) * ch + c] & 0xFF) * co.weights[kOff + x];
                    }
                    dst[rowOut + xx * ch + c] = (byte) clip8(ss);
                }
            }
        }
        return new Image(width, in.height(), ch, dst);
    }

    /** One vertical pass ({@code ImagingResampleVertical_8bpc}); identity when the height does not change. */
    private static Image vertical(Image in, int height, Filter filter) {
        if (height == in.height()) {
            return in;
        }
        Coefficients co = coefficients(in.height(), height, filter);
        int ch = in.channels();
        int rowBytes = in.width() * ch;
        byte[] src = in.pixels();
        byte[] dst = new byte[rowBytes * height];
        int[] acc = new int[rowBytes];
        for (int yy = 0; yy < height; yy++) {
            int ymin = co.bounds[yy * 2];
            int count = co.bounds[yy * 2 + 1];
            int kOff = yy * co.ksize;
            java.util.Arrays.fill(acc, 1 << (PRECISION_BITS - 1));
            // Row-at-a-time accumulation: the same integer sums as PIL's per-pixel loop (int addition commutes).
            for (int y = 0; y < count; y++) {
                int w = co.weights[kOff + y];
                int rowIn = (y + ymin) * rowBytes;
                for (int i = 0; i < rowBytes; i++) {
                    acc[i] += (src[rowIn + i] & 0xFF) * w;
                }
            }
            int rowOut = yy * rowBytes;
            for (int i = 0; i < rowBytes; i++) {
                dst[rowOut + i] = (byte) clip8(acc[i]);
            }
        }
        return new Image(in.width(), height, ch, dst);
    }

    /** {@code ImagingScaleAffine}: nearest neighbour with positions accumulated in double. */
    private static Image nearest(Image in, int width, int height) {
        int ch = in.channels();
        double a0 = (double) in.width() / width;
        double a4 = (double) in.height() / height;
        int[] xin = new int[width];
        double xo = a0 * 0.5;
        for (int x = 0; x < width; x++) {
            xin[x] = coord(xo);
            xo += a0;
        }
        byte[] src = in.pixels();
        byte[] dst = new byte[width * height * ch];
        double yo = a4 * 0.5;
        for (int y = 0; y < height; y++) {
            int yi = coord(yo);
            yo += a4;
            if (yi < 0 || yi >= in.height()) {
                continue; // PIL fills pixels outside the source with 0
            }
            for (int x = 0; x < width; x++) {
                if (xin[x] >= 0 && xin[x] < in.width()) {
                    System.arraycopy(src, (yi * in.width() + xin[x]) * ch, dst, (y * width + x) * ch, ch);
                }
            }
        }
        return new Image(width, height, ch, dst);
    }

    private static int coord(double v) {
        return v < 0.0 ? -1 : (int) v;
    }

    /** PIL's RGBA to "RGBa" ({@code rgbA2rgba} with {@code MULDIV255}). */
    static Image premultiply(Image in) {
        byte[] p = in.pixels();
        byte[] out = new byte[p.length];
        for (int i = 0; i < p.length; i += 4) {
            int a = p[i + 3] & 0xFF;
            for (int c = 0; c < 3; c++) {
                int tmp = (p[i + c] & 0xFF) * a + 128;
                out[i + c] = (byte) (((tmp >> 8) + tmp) >> 8);
            }
            out[i + 3] = (byte) a;
        }
        return new Image(in.width(), in.height(), 4, out);
    }

    /** PIL's "RGBa" to RGBA ({@code rgba2rgbA}). */
    static Image unpremultiply(Image in) {
        byte[] p = in.pixels();
        byte[] out = new byte[p.length];
        for (int i = 0; i < p.length; i += 4) {
            int a = p[i + 3] & 0xFF;
            for (int c = 0; c < 3; c++) {
                int v = p[i + c] & 0xFF;
                out[i + c] = (byte) (a == 0 || a == 255 ? v : Math.min(255, 255 * v / a));
            }
            out[i + 3] = (byte) a;
        }
        return new Image(in.width(), in.height(), 4, out);
    }
}
