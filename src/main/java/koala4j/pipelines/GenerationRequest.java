package koala4j.pipelines;

import java.util.List;

/**
 * One text-to-image (or image-to-image) request. Null fields take the model family's defaults
 * ({@link FamilyDefaults}). Validated by {@link #validate()} with messages that name the field.
 */
public record GenerationRequest(List<String> prompts, String negativePrompt, Integer steps, Double guidance,
                                String scheduler, String timestepSpacing, Integer width, Integer height, long seed,
                                int imagesPerPrompt, double guidanceRescale, float[] initImageChw, int initWidth,
                                int initHeight, double strength) {

    public static GenerationRequest textToImage(String prompt, long seed) {
        return new GenerationRequest(List.of(prompt), null, null, null, null, null, null, null, seed, 1, 0.0, null,
                0, 0, 1.0);
    }

    public GenerationRequest validate() {
        if (prompts == null || prompts.isEmpty()) {
            throw new IllegalArgumentException("prompt: at least one prompt is required");
        }
        for (String p : prompts) {
            if (p == null) {
                throw new IllegalArgumentException("prompt: null");
            }
        }
        if (steps != null && (steps < 1 || steps > 1000)) {
            throw new IllegalArgumentException("steps = " + steps + ": expected 1 .. 1000");
        }
        if (guidance != null && (!Double.isFinite(guidance) || guidance < 0 || guidance > 100)) {
            throw new IllegalArgumentException("guidance = " + guidance + ": expected 0 .. 100");
        }
        for (Integer size : new Integer[] {width, height}) {
            if (size != null && (size < 8 || size > 8192 || size % 8 != 0)) {
                throw new IllegalArgumentException((size == width ? "width" : "height") + " = " + size
                        + ": expected a multiple of 8 between 8 and 8192");
            }
        }
        if (imagesPerPrompt < 1 || imagesPerPrompt > 64) {
            throw new IllegalArgumentException("images per prompt = " + imagesPerPrompt + ": expected 1 .. 64");
        }
        if (!(guidanceRescale >= 0 && guidanceRescale <= 1)) {
            throw new IllegalArgumentException("guidance rescale = " + guidanceRescale + ": expected 0 .. 1");
        }
        if (initImageChw != null && !(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength = " + strength + ": expected a value in (0, 1]");
        }
        return this;
    }
}
