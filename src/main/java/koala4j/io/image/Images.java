package koala4j.io.image;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Image decoding, float conversion, resizing and cropping with the semantics of the Python reference: diffusers
 * {@code VaeImageProcessor} (image_processor.py) for the VAE side, transformers {@code CLIPImageProcessor}
 * (image_transforms.py) for the vision-encoder side, and PIL underneath both. Stateless and thread-safe.
 */
public final class Images {

    /** PIL's {@code Image.Resampling} filters that the reference pipelines use. */
    public enum Filter {
        /** PIL {@code NEAREST} (0). */
        NEAREST,
        /** PIL {@code BILINEAR} (2): triangle filter, support 1. */
        BILINEAR,
        /** PIL {@code BICUBIC} (3): Keys cubic with a = -0.5, support 2; CLIPImageProcessor's {@code resample=3}. */
        BICUBIC,
        /** PIL {@code LANCZOS} (1): 3-lobe windowed sinc, support 3; VaeImageProcessor's default. */
        LANCZOS;

        /** The filter for a PIL/transformers {@code resample} code (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic). */
        public static Filter fromPilCode(int code) {
            return switch (code) {
                case 0 -> NEAREST;
                case 1 -> LANCZOS;
                case 2 -> BILINEAR;
                case 3 -> BICUBIC;
                default -> throw new IllegalArgumentException("PIL resample code " + code
                        + ": expected 0 (nearest), 1 (lanczos), 2 (bilinear) or 3 (bicubic);"
                        + " box (4) and hamming (5) are not supported");
            };
        }
    }

    private Images() {
    }

    /**
     * Reads a PNG, JPEG, WebP, GIF (first frame) or BMP file (any format this JVM's ImageIO reads; lossy WebP through
     * this package's own VP8 decoder, lossless and animated WebP through the TwelveMonkeys plugin this build bundles)
     * as 8-bit RGB, as PIL's {@code Image.open(file).convert("RGB")} does:
     * alpha is dropped (not composited), palette and grey images are expanded, 16-bit RGB samples keep their high
     * byte. Colour profiles (ICC, gAMA) are ignored, as PIL ignores them; EXIF orientation is not applied (diffusers'
     * {@code load_image} would apply it). Known differences from PIL: 16-bit grey keeps the high byte where PIL's
     * mode "I;16" clips every value above 255 to 255; CMYK JPEGs go through ImageIO's colour conversion; a GIF's
     * first frame comes at its own size, not composited onto the logical screen. WebP is byte-exact with Pillow 12.3
     * (libwebp 1.6): lossy files (simple, or VP8X with alpha, which is dropped) are decoded with libwebp's arithmetic
     * and its "fancy" chroma upsampling, lossless ones by the plugin; an animated file gives its first frame.
     *
     * @throws java.nio.file.NoSuchFileException the file does not exist
     * @throws ImageFileException not an image, an unsupported format, truncated or corrupt data, over PIL's
     *         decompression-bomb limit; the message names the file and the reason
     */
    public static Image read(Path file) throws IOException {
        return Decoding.read(file);
    }

    /**
     * diffusers {@code VaeImageProcessor.postprocess(output_type="pil")} for one image. {@code chw} is
     * {@code [C, H, W]}, as the VAE decoder returns it. When {@code fromMinusOneToOne}, each value is first
     * {@code denormalize}d: {@code x / 2 + 0.5} in float32; then {@code clamp(0, 1)}, {@code * 255} in float32 and
     * {@code numpy.round} (half to even), as {@code numpy_to_pil} does.
     *
     * @throws IllegalArgumentException a NaN in the input (an fp16 VAE overflow upstream; numpy would turn it into an
     *         undefined byte), or a length that is not {@code channels * height * width}
     */
    public static Image fromFloatChw(float[] chw, int channels, int height, int width, boolean fromMinusOneToOne) {
        checkFloats(chw, channels, height, width, "CHW");
        int plane = height * width;
        byte[] px = new byte[plane * channels];
        for (int c = 0; c < channels; c++) {
            for (int i = 0; i < plane; i++) {
                float v = chw[c * plane + i];
                if (fromMinusOneToOne) {
                    v = v / 2f + 0.5f;
                }
                px[i * channels + c] = toByte(v, chw, c * plane + i);
            }
        }
        return new Image(width, height, channels, px);
    }

    /**
     * diffusers {@code numpy_to_pil} for one {@code output_type="np"} image: {@code hwc} is {@code [H, W, C]} in
     * {@code [0, 1]}; {@code clamp(0, 1)} (a no-op for the reference's already clamped values), {@code * 255} in
     * float32, {@code numpy.round} (half to even).
     */
    public static Image fromFloatHwc(float[] hwc, int height, int width, int channels) {
        checkFloats(hwc, channels, height, width, "HWC");
        byte[] px = new byte[hwc.length];
        for (int i = 0; i < hwc.length; i++) {
            px[i] = toByte(hwc[i], hwc, i);
        }
        return new Image(width, height, channels, px);
    }

    /**
     * diffusers {@code VaeImageProcessor.preprocess} for a PIL image (without resizing): {@code pil_to_numpy}
     * ({@code uint8 / 255} in float32), {@code numpy_to_pt} (to {@code [C, H, W]}) and, when
     * {@code toMinusOneToOne}, {@code normalize} ({@code 2 * x - 1} in float32).
     *
     * @return {@code [C, H, W]}, C = {@code image.channels()}
     */
    public static float[] toFloatChw(Image image, boolean toMinusOneToOne) {
        int ch = image.channels();
        int plane = image.width() * image.height();
        byte[] px = image.pixels();
        float[] chw = new float[plane * ch];
        for (int c = 0; c < ch; c++) {
            for (int i = 0; i < plane; i++) {
                float v = (px[i * ch + c] & 0xFF) / 255f;
                chw[c * plane + i] = toMinusOneToOne ? 2f * v - 1f : v;
            }
        }
        return chw;
    }

    /**
     * PIL {@code Image.resize((width, height), filter)} with its exact 8-bit arithmetic (see {@link Resample}): what
     * {@code VaeImageProcessor.resize} (LANCZOS by default) and {@code CLIPImageProcessor.resize} (BICUBIC) do to a
     * PIL image. Returns a copy when the size is unchanged.
     */
    public static Image resize(Image image, int width, int height, Filter filter) {
        return Resample.resize(image, width, height, filter);
    }

    /**
     * transformers {@code CLIPImageProcessor.resize} with {@code size={"shortest_edge": n}}: the shorter side becomes
     * {@code shortestEdge} and the longer one {@code int(shortestEdge * long / short)} (truncated, as
     * {@code get_resize_output_image_size(default_to_square=False)}), then {@link #resize}.
     */
    public static Image resizeShortestEdge(Image image, int shortestEdge, Filter filter) {
        if (shortestEdge < 1) {
            throw new IllegalArgumentException("shortest_edge " + shortestEdge + ": expected >= 1");
        }
        int w = image.width();
        int h = image.height();
        int shortSide = Math.min(w, h);
        int longSide = Math.max(w, h);
        int newLong = (int) ((double) ((long) shortestEdge * longSide) / shortSide);
        return w <= h ? resize(image, shortestEdge, newLong, filter) : resize(image, newLong, shortestEdge, filter);
    }

    /**
     * transformers {@code image_transforms.center_crop}, which {@code CLIPImageProcessor} uses: the crop starts at
     * {@code (orig - crop) // 2} (floor), so an odd surplus leaves the extra pixel on the bottom/right; a crop larger
     * than the image pads with zeros, the image placed at {@code ceil((crop - orig) / 2)}. (torchvision and PIL's
     * {@code ImageOps.fit} round the offset instead, which differs for odd surpluses.)
     */
    public static Image centerCrop(Image image, int width, int height) {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("center crop %s to %dx%d: width and height must be >= 1"
                    .formatted(image, width, height));
        }
        return window(image, Math.floorDiv(image.width() - width, 2), Math.floorDiv(image.height() - height, 2),
                width, height);
    }

    /**
     * The width x height part of {@code image} whose top-left corner is at (left, top) of the image; where it reaches
     * past the image (negative offsets included) the pixels are 0: a crop, a zero padding, or both.
     */
    static Image window(Image image, int left, int top, int width, int height) {
        int ch = image.channels();
        byte[] src = image.pixels();
        byte[] dst = new byte[width * height * ch];
        // Source columns that land inside the crop: x in [x0, x1) of the output.
        int x0 = Math.max(0, -left);
        int x1 = Math.min(width, image.width() - left);
        for (int y = 0; y < height; y++) {
            int sy = y + top;
            if (sy < 0 || sy >= image.height() || x1 <= x0) {
                continue;
            }
            System.arraycopy(src, (sy * image.width() + x0 + left) * ch, dst, (y * width + x0) * ch, (x1 - x0) * ch);
        }
        return new Image(width, height, ch, dst);
    }

    private static void checkFloats(float[] values, int channels, int height, int width, String layout) {
        if (channels != 3 && channels != 4) {
            throw new IllegalArgumentException(layout + " image with " + channels
                    + " channels: expected 3 (RGB) or 4 (RGBA)");
        }
        if (height < 1 || width < 1) {
            throw new IllegalArgumentException("%s image %dx%d: height and width must be >= 1"
                    .formatted(layout, height, width));
        }
        long expected = (long) channels * height * width;
        if (values.length != expected) {
            throw new IllegalArgumentException("%s image C=%d H=%d W=%d: %d floats, expected %d"
                    .formatted(layout, channels, height, width, values.length, expected));
        }
    }

    /** {@code clamp(0, 1)}, {@code * 255} in float32, round half to even ({@link Math#rint} = numpy.round). */
    private static byte toByte(float v, float[] source, int index) {
        if (Float.isNaN(v)) {
            throw new IllegalArgumentException("image value NaN at flat index " + index + " of " + source.length
                    + ": expected finite values (a NaN VAE output usually means fp16 overflow in the decoder)");
        }
        float clamped = v < 0f ? 0f : Math.min(v, 1f);
        return (byte) (int) Math.rint(clamped * 255f);
    }
}
