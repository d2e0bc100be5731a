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

    /**
     * The defaults for a model: by its hub id when it is a known published model (an id, or a folder in the hub
     * cache named models--org--name), else the generic ones of its pipeline class. {@code family} (null for none)
     * names a family explicitly: koala, koala-lightning, sdxl, ssd-1b, vega, sd, bk-sdm.
     */
    public static FamilyDefaults forModel(String modelArgument, String family, boolean xl) {
        if (family != null) {
            FamilyDefaults d = of(family, xl);
            if (!d.family().equals(family.toLowerCase(Locale.ROOT))) {
                throw new IllegalArgumentException("--family " + family
                        + ": expected koala, koala-lightning, sdxl, ssd-1b, vega, sd or bk-sdm");
            }
            return d;
        }
        String id = hubId(modelArgument);
        return of(id == null ? "" : id, xl);
    }

    /** The catalog id a model argument names: the id itself, or the repo of a hub-cache snapshot path. */
    static String hubId(String modelArgument) {
        if (modelArgument == null) {
            return null;
        }
        if (ModelCatalog.find(modelArgument).isPresent()) {
            return modelArgument;
        }
        var m = java.util.regex.Pattern.compile("models--([^/\\\\]+?)--([^/\\\\]+)").matcher(modelArgument);
        if (m.find()) {
            String id = m.group(1) + "/" + m.group(2);
            return ModelCatalog.find(id).isPresent() ? id : null;
        }
        return null;
    }

    /** Chooses by a family or model name and the pipeline class. */
    static FamilyDefaults of(String modelName, boolean xl) {
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
