package koala4j.models.clip;

import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import koala4j.nn.WeightSource;

/**
 * transformers 5 saves {@code CLIPVisionModel} and {@code CLIPTextModel} without their inner level: a tower's
 * {@code vision_model.embeddings.*} is stored as {@code embeddings.*} (inside LLaVA: {@code vision_tower.embeddings.*}),
 * a text encoder's {@code text_model.final_layer_norm.*} as {@code final_layer_norm.*}. CLIPModel and the
 * *WithProjection classes keep the level. This shows such a checkpoint under the 4.x names the modules load.
 */
final class ClipKeys {

    static final String VISION = "vision_model.";
    static final String TEXT = "text_model.";
    static final List<String> VISION_PARTS = List.of("embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm.");
    static final List<String> TEXT_PARTS = List.of("embeddings.", "encoder.", "final_layer_norm.");

    private ClipKeys() {
    }

    /**
     * {@code source} with every tower stored flat (a key {@code P + anchor} whose P does not end in {@code level})
     * seen under {@code P + level}; the source itself when it has none.
     */
    static WeightSource nested(WeightSource source, String anchor, String level, List<String> parts) {
        Set<String> flat = new TreeSet<>();
        for (String key : source.keys()) {
            if (key.endsWith(anchor)) {
                String prefix = key.substring(0, key.length() - anchor.length());
                if ((prefix.isEmpty() || prefix.endsWith(".")) && !prefix.endsWith(level)) {
                    flat.add(prefix);
                }
            }
        }
        if (flat.isEmpty()) {
            return source;
        }
        return WeightSource.renamed(source, stored -> {
            for (String prefix : flat) {
                String rest = stored.substring(Math.min(prefix.length(), stored.length()));
                if (stored.startsWith(prefix) && parts.stream().anyMatch(rest::startsWith)) {
                    return prefix + level + rest;
                }
            }
            return stored;
        }, seen -> {
            for (String prefix : flat) {
                if (seen.startsWith(prefix + level)) {
                    return prefix + seen.substring(prefix.length() + level.length());
                }
            }
            return seen;
        });
    }
}
