package koala4j.schedulers;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import koala4j.io.json.Json;

/**
 * A scheduler_config.json as diffusers reads it with {@code from_config}: a key the file does not set (or lists
 * in {@code _use_default_values}) takes the default of the scheduler class being built, so the same file gives
 * Euler 'linspace' spacing but PNDM 'leading' when neither is written.
 */
public final class SchedulerConfig {

    private final Json json;
    private final Set<String> defaulted;
    private final Map<String, Object> overrides;

    private SchedulerConfig(Json json, Map<String, Object> overrides) {
        this.json = json;
        this.defaulted = new HashSet<>();
        if (json.has("_use_default_values") && !json.isNull("_use_default_values")) {
            defaulted.addAll(json.stringList("_use_default_values"));
        }
        this.overrides = Map.copyOf(overrides);
    }

    public static SchedulerConfig of(Json json) {
        return new SchedulerConfig(json, Map.of());
    }

    /** This config with {@code key} set, as diffusers' {@code from_config(config, key=value)}. */
    public SchedulerConfig with(String key, Object value) {
        Map<String, Object> next = new HashMap<>(overrides);
        next.put(key, value);
        return new SchedulerConfig(json, next);
    }

    public Json json() {
        return json;
    }

    /** The {@code _class_name} the file names, or empty. */
    public String className() {
        return json.stringOr("_class_name", "");
    }

    private boolean set(String key) {
        return json.has(key) && !json.isNull(key) && !defaulted.contains(key);
    }

    public int intOr(String key, int dflt) {
        if (overrides.get(key) instanceof Number n) {
            return n.intValue();
        }
        return set(key) ? json.intOr(key, dflt) : dflt;
    }

    public double doubleOr(String key, double dflt) {
        if (overrides.get(key) instanceof Number n) {
            return n.doubleValue();
        }
        return set(key) ? json.doubleOr(key, dflt) : dflt;
    }

    public boolean boolOr(String key, boolean dflt) {
        if (overrides.get(key) instanceof Boolean b) {
            return b;
        }
        return set(key) ? json.boolOr(key, dflt) : dflt;
    }

    /** A string field restricted to {@code accepted}; anything else is an error naming the file and key. */
    public String choice(String key, String dflt, List<String> accepted) {
        String v = overrides.get(key) instanceof String o ? o
                : set(key) ? json.stringOr(key, dflt).toLowerCase(Locale.ROOT) : dflt;
        if (!accepted.contains(v)) {
            throw new IllegalArgumentException(json.file() + ": " + key + " = \"" + v + "\" is not supported, expected one of "
                    + accepted);
        }
        return v;
    }

    public boolean hasTrainedBetas() {
        return set("trained_betas");
    }

    public List<Double> trainedBetas() {
        return json.doubleList("trained_betas");
    }
}
