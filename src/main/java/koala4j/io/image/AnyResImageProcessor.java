package koala4j.io.image;

import java.util.ArrayList;
import java.util.List;

import koala4j.io.json.Json;

/**
 * transformers' {@code LlavaNextImageProcessor} (LLaVA-NeXT's "anyres", PIL backend): the image is resized, keeping
 * its aspect ratio, to fit the best of {@code image_grid_pinpoints} (select_best_resolution: the most of the image's
 * own pixels kept, then the least padding), padded with zeros to it, centred, and cut into tiles of the crop size,
 * row by row; a copy of the whole image resized to the square base size comes first. Every tile then goes through
 * the CLIP steps ({@link ClipImageProcessor}: resize, centre crop, rescale, normalise). Immutable and thread-safe.
 *
 * @param tiles      the per-tile CLIP steps and the base size ({@code size}) and tile size ({@code crop_size})
 * @param pinpoints  the candidate resolutions as {height, width}
 */
public record AnyResImageProcessor(ClipImageProcessor tiles, List<int[]> pinpoints) {

    /**
     * One processed image: its tiles as {@code [1 + rows * cols, 3, S, S]} (the base image first), the image's own
     * size and the grid of tiles it was cut into.
     */
    public record Tiles(PixelValues pixels, int imageHeight, int imageWidth, int rows, int cols) {
    }

    public AnyResImageProcessor {
        pinpoints = List.copyOf(pinpoints);
        if (pinpoints.isEmpty()) {
            throw new IllegalArgumentException("image_grid_pinpoints is empty, expected resolutions [height, width]");
        }
    }

    /**
     * Reads a LlavaNextImageProcessor config (its own {@code preprocessor_config.json} or processor_config.json's
     * {@code image_processor}); {@code pinpoints} are its {@code image_grid_pinpoints}, parsed by the caller.
     */
    public static AnyResImageProcessor from(Json j, List<int[]> pinpoints) {
        ClipImageProcessor clip = ClipImageProcessor.from(j, List.of("LlavaNextImageProcessor",
                "LlavaNextImageProcessorFast", "LlavaNextImageProcessorPil"));
        return new AnyResImageProcessor(clip, pinpoints);
    }

    /** The tile size: crop_size's height, else size's height, else its shortest edge. */
    public int tileSize() {
        if (tiles.doCenterCrop()) {
            return tiles.cropHeight();
        }
        return tiles.size().shortestEdge() > 0 ? tiles.size().shortestEdge() : tiles.size().height();
    }

    public Tiles preprocess(Image image) {
        Image rgb = image.channels() == 3 ? image : image.toRgb();
        int h = rgb.height();
        int w = rgb.width();
        int[] best = selectBestResolution(h, w, pinpoints);
        int[] fitted = patchOutputSize(h, w, best[0], best[1]);
        Image resized = Images.resize(rgb, fitted[1], fitted[0], tiles.resample());
        // np.pad with zeros, the image offset (target - size) // 2 on each axis
        Image padded = Images.window(resized, -(best[1] - resized.width()) / 2, -(best[0] - resized.height()) / 2,
                best[1], best[0]);
        int side = tileSize();
        List<Image> all = new ArrayList<>();
        ClipImageProcessor.Size size = tiles.size();
        int baseHeight = size.shortestEdge() > 0 ? size.shortestEdge() : size.height();
        int baseWidth = size.shortestEdge() > 0 ? size.shortestEdge() : size.width();
        all.add(Images.resize(rgb, baseWidth, baseHeight, tiles.resample()));
        for (int y = 0; y < best[0]; y += side) {
            for (int x = 0; x < best[1]; x += side) {
                all.add(Images.window(padded, x, y, Math.min(side, best[1] - x), Math.min(side, best[0] - y)));
            }
        }
        return new Tiles(tiles.preprocess(all), h, w, Math.ceilDiv(best[0], side), Math.ceilDiv(best[1], side));
    }

    /**
     * image_processing_utils.select_best_resolution: per candidate {height, width}, the image scaled to fit it
     * (int of the scaled sides); the candidate keeping the most of the image's pixels wins, ties by the least
     * wasted area, then the first.
     */
    public static int[] selectBestResolution(int height, int width, List<int[]> candidates) {
        int[] best = null;
        long maxEffective = 0;
        double minWasted = Double.POSITIVE_INFINITY;
        for (int[] c : candidates) {
            double scale = Math.min((double) c[1] / width, (double) c[0] / height);
            long downW = (long) (width * scale);
            long downH = (long) (height * scale);
            long effective = Math.min(downW * downH, (long) width * height);
            long wasted = (long) c[0] * c[1] - effective;
            if (effective > maxEffective || effective == maxEffective && wasted < minWasted) {
                maxEffective = effective;
                minWasted = wasted;
                best = c;
            }
        }
        if (best == null) {
            throw new IllegalArgumentException("no resolution of " + candidates.size() + " keeps any pixel of a "
                    + width + "x" + height + " image");
        }
        return best.clone();
    }

    /** get_patch_output_size: the image's size scaled to fit {targetHeight, targetWidth}, sides rounded up. */
    static int[] patchOutputSize(int height, int width, int targetHeight, int targetWidth) {
        double scaleW = (double) targetWidth / width;
        double scaleH = (double) targetHeight / height;
        if (scaleW < scaleH) {
            return new int[] {(int) Math.min(Math.ceil(height * scaleW), targetHeight), targetWidth};
        }
        return new int[] {targetHeight, (int) Math.min(Math.ceil(width * scaleH), targetWidth)};
    }


}
