package koala4j.io.image;

import java.nio.file.Path;
import java.util.List;

import koala4j.io.image.Images.Filter;
import koala4j.io.json.Json;
import koala4j.io.json.Json.Kind;

/**
 * transformers {@code CLIPImageProcessor} (models/clip/image_processing_clip.py, the PIL-based "slow" processor),
 * read from a {@code preprocessor_config.json} with the reference defaults (OpenAI CLIP at 224 px). For each image,
 * in the reference's order: {@code convert_to_rgb} (PIL {@code convert("RGB")}: alpha dropped), resize (PIL, exact
 * 8-bit arithmetic), {@code center_crop}, {@code rescale} ({@code uint8 * rescale_factor} in float64, stored as
 * float32), {@code normalize} ({@code (x - mean) / std} in float32, mean and std cast to float32 first), channels
 * first. Immutable and thread-safe.
 *
 * <p>{@code CLIPImageProcessorFast} (torchvision resize and a fused rescale+normalize) is not what this implements;
 * its values differ slightly from the slow processor's.
 *
 * @param size the resize target: {@code {"shortest_edge": n}} keeps the aspect ratio, {@code {"height", "width"}}
 *             does not
 */
public record ClipImageProcessor(boolean doResize, Size size, Filter resample, boolean doCenterCrop, int cropHeight,
                                 int cropWidth, boolean doRescale, double rescaleFactor, boolean doNormalize,
                                 List<Double> imageMean, List<Double> imageStd, boolean doConvertRgb) {

    /** OPENAI_CLIP_MEAN and OPENAI_CLIP_STD of transformers' image_utils.py. */
    public static final List<Double> OPENAI_CLIP_MEAN = List.of(0.48145466, 0.4578275, 0.40821073);
    public static final List<Double> OPENAI_CLIP_STD = List.of(0.26862954, 0.26130258, 0.27577711);

    /** {@code shortestEdge > 0}, or {@code height} and {@code width} > 0 with {@code shortestEdge == 0}. */
    public record Size(int shortestEdge, int height, int width) {
        public Size {
            if (shortestEdge > 0 ? height != 0 || width != 0 : shortestEdge < 0 || height < 1 || width < 1) {
                throw new IllegalArgumentException("resize size shortest_edge=%d height=%d width=%d: expected"
                        .formatted(shortestEdge, height, width) + " either shortest_edge or height and width, >= 1");
            }
        }

        public static Size shortestEdge(int n) {
            return new Size(n, 0, 0);
        }

        public static Size of(int height, int width) {
            return new Size(0, height, width);
        }
    }

    public ClipImageProcessor {
        imageMean = List.copyOf(imageMean);
        imageStd = List.copyOf(imageStd);
        if (imageMean.size() != PixelValues.CHANNELS || imageStd.size() != PixelValues.CHANNELS) {
            throw new IllegalArgumentException("image_mean " + imageMean + " and image_std " + imageStd
                    + ": expected 3 values each (RGB)");
        }
        if (cropHeight < 1 || cropWidth < 1) {
            throw new IllegalArgumentException("crop_size %dx%d: expected >= 1".formatted(cropHeight, cropWidth));
        }
    }

    /** CLIPImageProcessor() with no arguments. */
    public static ClipImageProcessor defaults() {
        return new ClipImageProcessor(true, Size.shortestEdge(224), Filter.BICUBIC, true, 224, 224, true, 1 / 255.0,
                true, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, true);
    }

    public static ClipImageProcessor from(Path preprocessorConfig) {
        return from(Json.read(preprocessorConfig));
    }

    /**
     * Reads {@code preprocessor_config.json}. {@code size} may be an int (legacy configs: the shortest edge) or an
     * object; {@code crop_size} an int (a square) or {@code {"height", "width"}}; {@code image_mean}/{@code image_std}
     * a number or a list of three. {@code image_processor_type} (or legacy {@code feature_extractor_type}), when
     * given, must be a CLIP processor.
     */
    public static ClipImageProcessor from(Json j) {
        return from(j, List.of("CLIPImageProcessor", "CLIPImageProcessorFast", "CLIPFeatureExtractor"));
    }

    /** {@link #from(Json)} for a config whose {@code image_processor_type} may be one of {@code types}. */
    static ClipImageProcessor from(Json j, List<String> types) {
        for (String key : List.of("image_processor_type", "feature_extractor_type")) {
            if (j.kind(key) == Kind.STRING) {
                String type = j.string(key);
                if (!types.contains(type)) {
                    throw j.error(key, Json.quote(type), String.join(" or ", types) + " (the image processors koala4j"
                            + " implements)");
                }
            }
        }
        Size size = switch (j.kind("size")) {
            case MISSING, NULL -> Size.shortestEdge(224);
            // get_size_dict(size, default_to_square=False): an int is the shortest edge
            case NUMBER -> Size.shortestEdge(positive(j, "size", j.intValue("size")));
            case OBJECT -> {
                Json s = j.object("size");
                if (s.has("shortest_edge")) {
                    yield Size.shortestEdge(positive(s, "shortest_edge", s.intValue("shortest_edge")));
                }
                if (s.has("height") && s.has("width")) {
                    yield Size.of(positive(s, "height", s.intValue("height")), positive(s, "width",
                            s.intValue("width")));
                }
                throw j.error("size", s.node().toString(), "{\"shortest_edge\": n} or {\"height\": h, \"width\": w}");
            }
            default -> throw j.error("size", j.kind("size").toString().toLowerCase(), "an int or an object");
        };
        if (j.boolOr("use_square_size", false) && size.shortestEdge() > 0) {
            size = Size.of(size.shortestEdge(), size.shortestEdge());       // CLIPImageProcessor.__init__'s legacy kwarg
        }
        int cropHeight;
        int cropWidth;
        switch (j.kind("crop_size")) {
            case MISSING, NULL -> {
                cropHeight = 224;
                cropWidth = 224;
            }
            case NUMBER -> {
                cropHeight = positive(j, "crop_size", j.intValue("crop_size"));
                cropWidth = cropHeight;
            }
            case OBJECT -> {
                Json c = j.object("crop_size");
                cropHeight = positive(c, "height", c.intValue("height"));
                cropWidth = positive(c, "width", c.intValue("width"));
            }
            default -> throw j.error("crop_size", j.kind("crop_size").toString().toLowerCase(),
                    "an int or {\"height\": h, \"width\": w}");
        }
        Filter resample;
        try {
            resample = Filter.fromPilCode(j.intOr("resample", 3));
        } catch (IllegalArgumentException e) {
            throw j.error("resample", Integer.toString(j.intValue("resample")), e.getMessage());
        }
        return new ClipImageProcessor(j.boolOr("do_resize", true), size, resample, j.boolOr("do_center_crop", true),
                cropHeight, cropWidth, j.boolOr("do_rescale", true), j.doubleOr("rescale_factor", 1 / 255.0),
                j.boolOr("do_normalize", true), triple(j, "image_mean", OPENAI_CLIP_MEAN),
                triple(j, "image_std", OPENAI_CLIP_STD), j.boolOr("do_convert_rgb", true));
    }

    private static int positive(Json j, String key, int value) {
        if (value < 1) {
            throw j.error(key, Integer.toString(value), "an int >= 1");
        }
        return value;
    }

    private static List<Double> triple(Json j, String key, List<Double> dflt) {
        return switch (j.kind(key)) {
            case MISSING, NULL -> dflt;
            case NUMBER -> List.of(j.doubleValue(key), j.doubleValue(key), j.doubleValue(key));
            default -> {
                List<Double> values = j.doubleList(key);
                if (values.size() != 3) {
                    throw j.error(key, values.size() + " values", "3 (one per RGB channel) or a single number");
                }
                yield values;
            }
        };
    }

    /** The processed image as {@code [1, 3, H, W]}. */
    public PixelValues preprocess(Image image) {
        return preprocess(List.of(image));
    }

    /** Each image processed on its own, stacked as {@code [B, 3, H, W]}; all must come out at the same size. */
    public PixelValues preprocess(List<Image> images) {
        if (images.isEmpty()) {
            throw new IllegalArgumentException("no images to preprocess");
        }
        float[] data = null;
        int height = 0;
        int width = 0;
        for (int b = 0; b < images.size(); b++) {
            Image img = transform(images.get(b));
            if (data == null) {
                height = img.height();
                width = img.width();
                data = new float[Math.multiplyExact(images.size(), 3 * height * width)];
            } else if (img.height() != height || img.width() != width) {
                throw new IllegalArgumentException("image %d of %d comes out %dx%d, image 0 %dx%d: enable"
                        .formatted(b, images.size(), img.width(), img.height(), width, height)
                        + " do_center_crop or resize to height and width to stack them");
            }
            toFloats(img, data, b * 3 * height * width);
        }
        return new PixelValues(images.size(), height, width, data);
    }

    /** The 8-bit steps: convert_to_rgb, resize, center_crop. */
    Image transform(Image image) {
        if (image.channels() != 3) {
            if (!doConvertRgb) {
                throw new IllegalArgumentException(image + " with do_convert_rgb false: normalising needs 3 channels,"
                        + " the reference fails the same way");
            }
            image = image.toRgb();
        }
        if (doResize) {
            image = size.shortestEdge() > 0 ? Images.resizeShortestEdge(image, size.shortestEdge(), resample)
                    : Images.resize(image, size.width(), size.height(), resample);
        }
        if (doCenterCrop) {
            image = Images.centerCrop(image, cropWidth, cropHeight);
        }
        return image;
    }

    /** rescale then normalize, written channels first at {@code offset}. */
    private void toFloats(Image image, float[] out, int offset) {
        int plane = image.width() * image.height();
        byte[] px = image.pixels();
        for (int c = 0; c < 3; c++) {
            float mean = (float) (double) imageMean.get(c);
            float std = (float) (double) imageStd.get(c);
            int base = offset + c * plane;
            for (int i = 0; i < plane; i++) {
                int v = px[i * 3 + c] & 0xFF;
                // image_transforms.rescale: image.astype(float64) * scale, then .astype(float32)
                float x = doRescale ? (float) (v * rescaleFactor) : v;
                // image_transforms.normalize: float32 image, mean/std as float32 arrays
                out[base + i] = doNormalize ? (x - mean) / std : x;
            }
        }
    }

    /**
     * LLaVA-1.5's {@code image_aspect_ratio="pad"} (llava/mm_utils.py {@code expand2square(image,
     * tuple(int(x*255) for x in image_processor.image_mean))}): the image, as RGB, centred on a square canvas of its
     * longer side filled with the mean colour, offset {@code (long - short) // 2}; a square image is returned as is.
     */
    public Image expandToSquare(Image image) {
        int[] background = new int[3];
        for (int c = 0; c < 3; c++) {
            background[c] = (int) (imageMean.get(c) * 255);          // Python int(): truncation toward zero
        }
        return expandToSquare(image, background);
    }

    /** {@code expand2square(image, background)} with an explicit RGB colour (each 0..255). */
    public static Image expandToSquare(Image image, int[] background) {
        if (background.length != 3) {
            throw new IllegalArgumentException("background " + java.util.Arrays.toString(background)
                    + ": expected 3 values (RGB)");
        }
        Image rgb = image.toRgb();
        int w = rgb.width();
        int h = rgb.height();
        if (w == h) {
            return rgb;
        }
        int side = Math.max(w, h);
        byte[] px = new byte[side * side * 3];
        for (int i = 0; i < side * side; i++) {
            for (int c = 0; c < 3; c++) {
                if (background[c] < 0 || background[c] > 255) {
                    throw new IllegalArgumentException("background colour " + background[c] + ": expected 0..255");
                }
                px[i * 3 + c] = (byte) background[c];
            }
        }
        int left = w > h ? 0 : (h - w) / 2;
        int top = w > h ? (w - h) / 2 : 0;
        for (int y = 0; y < h; y++) {
            System.arraycopy(rgb.pixels(), y * w * 3, px, ((top + y) * side + left) * 3, w * 3);
        }
        return new Image(side, side, 3, px);
    }
}
