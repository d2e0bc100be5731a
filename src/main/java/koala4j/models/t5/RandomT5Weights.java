package koala4j.models.t5;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;

import koala4j.nn.Parameter;
import koala4j.nn.WeightSource;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * Seeded random weights for every parameter of a T5 model, made in memory (F32), with the scales of
 * {@code T5PreTrainedModel._init_weights} at initializer_factor 1 (embeddings and lm_head N(0, 1), wi and k/v
 * N(0, d_model^-0.5), wo N(0, d_ff^-0.5), q N(0, (d_model·d_kv)^-0.5), o N(0, (nH·d_kv)^-0.5), norms 1). For
 * benchmarks of the real shapes without downloading a checkpoint; the values mean nothing.
 */
public final class RandomT5Weights implements WeightSource {

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();

    /** Draws a tensor for each of {@code model}'s parameters; deterministic for a seed. */
    public RandomT5Weights(T5ForConditionalGeneration model, long seed, Ops ops) {
        T5Config c = model.config();
        for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
            String key = e.getKey();
            int[] shape = e.getValue().shape();
            float[] data = new float[Math.toIntExact(Tensor.numel(shape))];
            double std = std(key, c);
            if (std == 0) {
                java.util.Arrays.fill(data, 1f);
            } else {
                SplittableRandom rng = new SplittableRandom(seed ^ key.hashCode() * 0x9E3779B97F4A7C15L);
                for (int i = 0; i < data.length; i++) {
                    data[i] = (float) (rng.nextGaussian() * std);
                }
            }
            tensors.put(key, ops.fromArray(data, shape));
        }
    }

    /** The init scale for a key; 0 for norm weights and BatchNorm variances, which are ones. */
    private static double std(String key, T5Config c) {
        if (key.endsWith("layer_norm.weight") || key.endsWith(".running_var")) {
            return 0;
        }
        if (key.startsWith("shared.") || key.startsWith("lm_head.")) {
            return 1.0;
        }
        if (key.contains(".wo.")) {
            return Math.pow(c.dFf(), -0.5);
        }
        if (key.contains(".q.")) {
            return Math.pow((double) c.dModel() * c.dKv(), -0.5);
        }
        if (key.contains(".o.")) {
            return Math.pow(c.innerDim(), -0.5);
        }
        return Math.pow(c.dModel(), -0.5);      // wi, wi_0, wi_1, k, v, relative_attention_bias, GBST layers
    }

    /** Every tensor by key (read-only view). */
    public Map<String, Tensor> tensors() {
        return java.util.Collections.unmodifiableMap(tensors);
    }

    @Override
    public Optional<Tensor> tensor(String key) {
        return Optional.ofNullable(tensors.get(key));
    }

    @Override
    public Set<String> keys() {
        return tensors.keySet();
    }

    @Override
    public String describe() {
        return "random T5 weights";
    }
}
