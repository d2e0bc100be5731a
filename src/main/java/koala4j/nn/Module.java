package koala4j.nn;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A node of a model tree whose paths are the reference's state-dict keys: a child registered as "attn1" under a
 * parent registered as "transformer_blocks.0" owns the keys "transformer_blocks.0.attn1.*". Keys are written
 * once, where children and parameters are registered; loading walks the tree. Immutable after construction
 * except for parameter values, which {@link #load} sets once; forward passes are then safe from many threads.
 */
public abstract class Module {

    private final Map<String, Module> children = new LinkedHashMap<>();
    private final Map<String, Parameter> parameters = new LinkedHashMap<>();

    /** Registers a child module under {@code name} and returns it (for a final field). */
    protected final <M extends Module> M child(String name, M module) {
        if (name.isEmpty() || name.contains(".")) {
            throw new IllegalArgumentException("child name '" + name + "' must be one path segment");
        }
        if (children.putIfAbsent(name, module) != null || parameters.containsKey(name)) {
            throw new IllegalArgumentException("child '" + name + "' registered twice in " + getClass().getSimpleName());
        }
        return module;
    }

    /** Declares a parameter under {@code name} with the shape the configuration implies. */
    protected final Parameter parameter(String name, int... shape) {
        Parameter p = new Parameter(shape);
        if (parameters.putIfAbsent(name, p) != null || children.containsKey(name)) {
            throw new IllegalArgumentException("parameter '" + name + "' registered twice in " + getClass().getSimpleName());
        }
        return p;
    }

    /** Every parameter by its full key, in registration order. */
    public final Map<String, Parameter> namedParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        collect("", out);
        return Collections.unmodifiableMap(out);
    }

    private void collect(String prefix, Map<String, Parameter> out) {
        parameters.forEach((name, p) -> out.put(prefix + name, p));
        children.forEach((name, c) -> c.collect(prefix + name + ".", out));
    }

    /** Total number of parameter elements. */
    public final long parameterCount() {
        long n = 0;
        for (Parameter p : namedParameters().values()) {
            n += koala4j.tensor.Tensor.numel(p.shape());
        }
        return n;
    }

    /**
     * Fills every parameter with seeded uniform values in [-scale, scale] stored as {@code dtype}, for benchmarks of
     * real shapes without checkpoints. Deterministic for a seed; not an initialisation scheme for training.
     */
    public final void initRandom(koala4j.tensor.Ops ops, koala4j.tensor.DType dtype, long seed, float scale) {
        long salt = seed;
        for (Parameter p : namedParameters().values()) {
            p.set(RandomWeights.uniform(ops, p.shape(), dtype, salt++, scale));
        }
    }

    /** What loading found: keys in the source that no parameter claimed (diffusers warns about these). */
    public record LoadReport(List<String> unexpectedKeys) {
    }

    /**
     * Loads every parameter from {@code source} under {@code prefix} (empty for the root). A missing key or a
     * shape mismatch is an error naming the source, the key, the found and expected shapes; all missing keys
     * are listed together.
     */
    public final LoadReport load(WeightSource source, String prefix) {
        List<String> missing = new ArrayList<>();
        Set<String> claimed = new TreeSet<>();
        for (Map.Entry<String, Parameter> e : namedParameters().entrySet()) {
            String key = prefix + e.getKey();
            var tensor = source.tensor(key);
            if (tensor.isEmpty()) {
                missing.add(key);
                continue;
            }
            claimed.add(key);
            int[] found = tensor.get().shape();
            int[] expected = e.getValue().shape();
            if (!Arrays.equals(found, expected)) {
                throw new WeightException(source.describe(), key, "shape " + Arrays.toString(found) + ", expected "
                        + Arrays.toString(expected) + " from the model's config");
            }
            e.getValue().set(tensor.get());
        }
        if (!missing.isEmpty()) {
            throw new WeightException(source.describe(), missing.getFirst(), missing.size() + " parameter(s) missing: "
                    + (missing.size() <= 8 ? missing : missing.subList(0, 8) + " ..."));
        }
        List<String> unexpected = new ArrayList<>();
        for (String key : source.keys()) {
            if (key.startsWith(prefix) && !claimed.contains(key)) {
                unexpected.add(key);
            }
        }
        return new LoadReport(List.copyOf(unexpected));
    }

    public final LoadReport load(WeightSource source) {
        return load(source, "");
    }
}
