package koala4j.models.llava;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import koala4j.io.json.Json;

/** LLaVA-NeXT's tile grid: the {@code image_grid_pinpoints} setting and unpad_image's geometry. */
public final class AnyResGrid {

    /** transformers' default grid (LLaVA-NeXT at 336 px), as {height, width}. */
    public static final List<int[]> DEFAULT_PINPOINTS = List.of(new int[] {336, 672}, new int[] {672, 336},
            new int[] {672, 672}, new int[] {1008, 336}, new int[] {336, 1008});

    /** The part of a feature grid that shows the image: rows [rowStart, rowEnd) and columns [colStart, colEnd). */
    public record Unpadded(int rowStart, int rowEnd, int colStart, int colEnd) {
    }

    private AnyResGrid() {
    }

    /** {@code key} as a list of [height, width] pairs of positive ints; the default grid when missing or null. */
    public static List<int[]> pinpoints(Json j, String key) {
        return pinpoints(j, key, "[height, width]");
    }

    /**
     * {@code key} as a list of pairs of positive ints, each as given ({@code pair} names their order in errors:
     * the original LLaVA repository writes [width, height]); the default grid when missing or null.
     */
    static List<int[]> pinpoints(Json j, String key, String pair) {
        if (j.kind(key) == Json.Kind.MISSING || j.kind(key) == Json.Kind.NULL) {
            return DEFAULT_PINPOINTS;
        }
        if (j.kind(key) != Json.Kind.LIST) {
            throw j.error(key, j.kind(key).toString().toLowerCase(Locale.ROOT), "a list of " + pair + " resolutions");
        }
        List<int[]> out = new ArrayList<>();
        for (var item : j.node().get(key)) {
            if (!item.isArray() || item.size() != 2 || !item.get(0).canConvertToInt() || !item.get(1).canConvertToInt()
                    || item.get(0).asInt() < 1 || item.get(1).asInt() < 1) {
                throw j.error(key, item.toString(), pair + " with positive integers");
            }
            out.add(new int[] {item.get(0).asInt(), item.get(1).asInt()});
        }
        if (out.isEmpty()) {
            throw j.error(key, "[]", "at least one " + pair + " resolution");
        }
        return out;
    }

    /**
     * modeling_llava_next.unpad_image on a grid of {@code height x width} feature positions made from an image of
     * {@code imageHeight x imageWidth}: the padding the image processor added is cut off again, on the rows when the
     * image is wider than the grid, else on the columns. Python's {@code int(round(x, 7))} and floor division.
     */
    public static Unpadded unpad(int imageHeight, int imageWidth, int height, int width) {
        return unpad(imageHeight, imageWidth, height, width, true);
    }

    /**
     * {@link #unpad(int, int, int, int)}; without {@code roundTo7} the kept side is truncated as the original LLaVA
     * repository's unpad_image does ({@code int(original_height * scale_factor)}), which transformers later changed
     * to round first (a product like 335.99999999 keeps 336 rows there, 335 here).
     */
    public static Unpadded unpad(int imageHeight, int imageWidth, int height, int width, boolean roundTo7) {
        double originalAspect = (double) imageWidth / imageHeight;
        double currentAspect = (double) width / height;
        if (originalAspect > currentAspect) {
            double kept = imageHeight * ((double) width / imageWidth);
            int newHeight = roundTo7 ? roundTo7(kept) : (int) kept;
            int padding = Math.floorDiv(height - newHeight, 2);
            return new Unpadded(padding, height - padding, 0, width);
        }
        double kept = imageWidth * ((double) height / imageHeight);
        int newWidth = roundTo7 ? roundTo7(kept) : (int) kept;
        int padding = Math.floorDiv(width - newWidth, 2);
        return new Unpadded(0, height, padding, width - padding);
    }

    /** Python's int(round(x, 7)): round half to even at 7 decimals of the exact binary value, then truncate. */
    private static int roundTo7(double x) {
        return new BigDecimal(x).setScale(7, RoundingMode.HALF_EVEN).intValue();
    }
}
