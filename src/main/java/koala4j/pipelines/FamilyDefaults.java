package koala4j.pipelines;

import java.util.Locale;

/**
 * Model-card defaults per family: what the publishers' own examples use. Every value can be overridden by the
 * request; the scheduler default is the pipeline folder's own scheduler unless a family says otherwise.
 */
public record FamilyDefaults(String family, int steps, double guidance, String negativePrompt, String scheduler,
                             String timestepSpacing) {

    /** KOALA's model card example negative prompt. */
    public static final String KOALA_NEGATIVE = "worst quality, low quality, illustration, low resolution";

    /** Chooses by the model id or folder name and the pipeline class. */
    public static FamilyDefaults of(String modelName, boolean xl) {
        String n = modelName.toLowerCase(Locale.ROOT);
        if (n.contains("koala-lightning") || n.contains("koala_lightning")) {
            return new FamilyDefaults("koala-lightning", 10, 3.5, KOALA_NEGATIVE, "euler", "trailing");
        }
        if (n.contains("koala")) {
            return new FamilyDefaults("koala", 25, 7.5, KOALA_NEGATIVE, null, null);
        }
        if (n.contains("bk-sdm") || n.contains("bk_sdm")) {
            return new FamilyDefaults("bk-sdm", 25, 7.5, null, null, null);
        }
        if (n.contains("ssd-1b") || n.contains("vega")) {
            return new FamilyDefaults(n.contains("vega") ? "vega" : "ssd-1b", 25, 9.0, null, null, null);
        }
        if (xl) {
            return new FamilyDefaults("sdxl", 50, 5.0, null, null, null);
        }
        return new FamilyDefaults("sd", 50, 7.5, null, null, null);
    }
}
