package koala4j.models.llama;

import java.util.List;
import java.util.Optional;

import koala4j.io.json.Json;
import koala4j.tensor.Activation;

/**
 * transformers {@code LlamaConfig} (models/llama/configuration_llama.py), read from a config.json (or the
 * {@code text_config} of a LLaVA config, or the top level of an original LLaVA config) with the reference defaults;
 * also {@code MistralConfig} (models/mistral), the same architecture with a sliding attention window.
 *
 * @param headDim        {@code head_dim}, else hidden_size / num_attention_heads
 * @param ropeTheta      {@code rope_parameters.rope_theta} (transformers 5 configs), else {@code rope_theta}
 * @param ropeScaling    from {@code rope_parameters} (transformers 5) or {@code rope_scaling} (transformers 4); null
 *                       when the rope type is "default" or neither is given
 * @param eosTokenIds    {@code eos_token_id} as a list (a config may give one id, a list or null)
 * @param slidingWindow  Mistral's {@code sliding_window}: a position attends to itself and the window - 1 before it;
 *                       null for LLaMA (and a Mistral without one)
 */
public record LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
                          int numAttentionHeads, int numKeyValueHeads, int headDim, Activation hiddenAct,
                          float rmsNormEps, double ropeTheta, RopeScaling ropeScaling, int maxPositionEmbeddings,
                          boolean tieWordEmbeddings, boolean attentionBias, boolean mlpBias, Integer bosTokenId,
                          List<Integer> eosTokenIds, Integer slidingWindow) {

    /** The {@code rope_scaling} variants transformers' LLaMA supports and this port implements. */
    public enum RopeType { DEFAULT, LINEAR, DYNAMIC, LLAMA3, YARN, LONGROPE }

    /**
     * {@code rope_scaling} (modeling_rope_utils.py) with the fields its rope type reads, resolved as the reference
     * resolves them when the model is built (defaults, the factor and original length taken from elsewhere in the
     * config, the attention factor inferred).
     *
     * @param factor                         LINEAR, DYNAMIC, LLAMA3, YARN: the factor; LONGROPE: the one its attention
     *                                       factor was inferred from (NaN when the config gave that instead)
     * @param originalMaxPositionEmbeddings  LLAMA3 and YARN: the pretraining context the wavelengths are measured
     *                                       against; LONGROPE: longer sequences switch to the long factors; the others:
     *                                       max_position_embeddings
     * @param attentionFactor                YARN and LONGROPE: multiplies cos and sin; 1 for the others
     * @param betaFast                       YARN: rotations that bound the extrapolated (unscaled) dimensions
     * @param betaSlow                       YARN: rotations that bound the interpolated (divided by factor) dimensions
     * @param truncate                       YARN: the correction range rounded outwards to whole dimensions
     * @param shortFactor                    LONGROPE: per-frequency divisors up to the original length (head_dim / 2)
     * @param longFactor                     LONGROPE: the same beyond it
     */
    public record RopeScaling(RopeType type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositionEmbeddings, double attentionFactor, double betaFast,
                              double betaSlow, boolean truncate, List<Double> shortFactor, List<Double> longFactor) {

        public RopeScaling {
            shortFactor = List.copyOf(shortFactor);
            longFactor = List.copyOf(longFactor);
        }

        /** A scaling of the types before YaRN and LongRoPE (their fields at their defaults). */
        public RopeScaling(RopeType type, double factor, double lowFreqFactor, double highFreqFactor,
                           int originalMaxPositionEmbeddings) {
            this(type, factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings, 1.0, 32, 1, true,
                    List.of(), List.of());
        }
    }

    public LlamaConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    /** Weights of one decoder layer's Linear modules: q, k, v, o, gate, up and down. */
    public long linearParametersPerLayer() {
        long q = (long) hiddenSize * numAttentionHeads * headDim;
        long kv = 2L * hiddenSize * numKeyValueHeads * headDim;
        return 2 * q + kv + 3L * hiddenSize * intermediateSize;
    }

    /** Weights of every Linear module: the decoder layers' and lm_head (what Q8_0 / Q4_0 quantise). */
    public long linearParameters() {
        return numHiddenLayers * linearParametersPerLayer() + (long) vocabSize * hiddenSize;
    }

    /** A LLaMA config (no sliding window), the components before Mistral's were added. */
    public LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers, int numAttentionHeads,
                       int numKeyValueHeads, int headDim, Activation hiddenAct, float rmsNormEps, double ropeTheta,
                       RopeScaling ropeScaling, int maxPositionEmbeddings, boolean tieWordEmbeddings,
                       boolean attentionBias, boolean mlpBias, Integer bosTokenId, List<Integer> eosTokenIds) {
        this(vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads, headDim,
                hiddenAct, rmsNormEps, ropeTheta, ropeScaling, maxPositionEmbeddings, tieWordEmbeddings, attentionBias,
                mlpBias, bosTokenId, eosTokenIds, null);
    }

    public static LlamaConfig from(Json j) {
        // MistralConfig is LlamaConfig plus sliding_window (callers decide which model types they accept); the
        // original LLaVA repository's LlavaMistralConfig ("llava_mistral") is a MistralConfig
        Integer window = null;
        String type = j.stringOr("model_type", "llama");
        if ((type.equals("mistral") || type.equals("llava_mistral")) && j.kind("sliding_window") == Json.Kind.NUMBER) {
            window = j.intValue("sliding_window");
            if (window < 1) {
                throw j.error("sliding_window", Integer.toString(window), "a positive number of positions or null");
            }
        }
        int hidden = j.intOr("hidden_size", 4096);
        int heads = j.intOr("num_attention_heads", 32);
        int kvHeads = j.intOpt("num_key_value_heads").orElse(heads);
        if (heads < 1 || hidden % heads != 0 && !j.intOpt("head_dim").isPresent()) {
            throw j.error("num_attention_heads", Integer.toString(heads),
                    "a divisor of hidden_size " + hidden + " (or an explicit head_dim)");
        }
        if (kvHeads < 1 || heads % kvHeads != 0) {
            throw j.error("num_key_value_heads", Integer.toString(kvHeads),
                    "a divisor of num_attention_heads " + heads);
        }
        int headDim = j.intOpt("head_dim").orElse(hidden / heads);
        for (Json holder : List.of(j, ropeSection(j).orElse(j))) {
            // LlamaRotaryEmbedding would make frequencies for part of the head and then fail to apply them
            if (holder.doubleOpt("partial_rotary_factor").orElse(1.0) != 1.0) {
                throw holder.error("partial_rotary_factor", Double.toString(holder.doubleValue("partial_rotary_factor")),
                        "1.0 (a LLaMA rotates the whole head)");
            }
        }
        if (headDim % 2 != 0) {
            throw j.error("head_dim", Integer.toString(headDim), "an even number (RoPE rotates pairs)");
        }
        String act = j.stringOr("hidden_act", "silu");
        Activation activation = switch (act) {
            case "silu", "swish" -> Activation.SILU;
            case "gelu" -> Activation.GELU;
            case "gelu_new", "gelu_pytorch_tanh" -> Activation.GELU_TANH;
            case "relu" -> Activation.RELU;
            default -> throw j.error("hidden_act", "\"" + act + "\"", "silu, gelu, gelu_new, gelu_pytorch_tanh or relu");
        };
        int maxPositions = j.intOr("max_position_embeddings", 2048);
        return new LlamaConfig(j.intOr("vocab_size", 32000), hidden, j.intOr("intermediate_size", 11008),
                j.intOr("num_hidden_layers", 32), heads, kvHeads, headDim, activation,
                j.floatOr("rms_norm_eps", 1e-6f), ropeTheta(j), ropeScaling(j, maxPositions, headDim),
                maxPositions, j.boolOr("tie_word_embeddings", false), j.boolOr("attention_bias", false),
                j.boolOr("mlp_bias", false), j.kind("bos_token_id") == Json.Kind.NUMBER ? j.intValue("bos_token_id") : null,
                ids(j, "eos_token_id", List.of(2)), window);
    }

    /** An id, a list of ids or null (empty list); {@code dflt} when the key is missing. */
    static List<Integer> ids(Json j, String key, List<Integer> dflt) {
        return switch (j.kind(key)) {
            case MISSING -> dflt;
            case NULL -> List.of();
            case NUMBER -> List.of(j.intValue(key));
            case LIST -> j.intList(key);
            default -> throw j.error(key, j.kind(key).toString().toLowerCase(java.util.Locale.ROOT),
                    "a token id, a list of ids or null");
        };
    }

    /**
     * transformers 5 writes {@code rope_parameters} ({@code rope_type}, {@code rope_theta} and the scaling fields in
     * one object) instead of {@code rope_theta} + {@code rope_scaling}; its standardize_rope_params takes that object
     * first and fills a missing {@code rope_theta} from the top level.
     */
    private static Optional<Json> ropeSection(Json j) {
        return j.objectOr("rope_parameters").or(() -> j.objectOr("rope_scaling"));
    }

    private static double ropeTheta(Json j) {
        return j.objectOr("rope_parameters").flatMap(p -> p.doubleOpt("rope_theta"))
                .orElseGet(() -> j.doubleOr("rope_theta", 10000.0));
    }

    private static RopeScaling ropeScaling(Json j, int maxPositions, int headDim) {
        var scaling = ropeSection(j);
        if (scaling.isEmpty()) {
            return null;
        }
        Json s = scaling.get();
        String name = s.stringOpt("rope_type").or(() -> s.stringOpt("type")).orElse("default");
        RopeType type = switch (name) {
            case "default" -> RopeType.DEFAULT;
            case "linear" -> RopeType.LINEAR;
            case "dynamic" -> RopeType.DYNAMIC;
            case "llama3" -> RopeType.LLAMA3;
            case "yarn" -> RopeType.YARN;
            case "longrope" -> RopeType.LONGROPE;
            default -> throw s.error(s.has("rope_type") ? "rope_type" : "type", "\"" + name + "\"",
                    "default, linear, dynamic, llama3, yarn or longrope (the rope types this LLaMA port implements)");
        };
        // transformers 5 (rope_parameters) and 4.57 (rope_scaling) resolve YaRN's and LongRoPE's lengths and factors
        // differently; each format is read as the version that writes it
        boolean v5 = j.objectOr("rope_parameters").isPresent();
        switch (type) {
            case DEFAULT -> {
                return null;
            }
            case YARN -> {
                return yarn(j, s, maxPositions, v5);
            }
            case LONGROPE -> {
                return longRope(j, s, maxPositions, headDim, v5);
            }
            default -> {
            }
        }
        double factor = s.doubleValue("factor");
        if (type == RopeType.LLAMA3) {
            // transformers 5 defaults a missing original_max_position_embeddings to max_position_embeddings
            return new RopeScaling(type, factor, s.doubleValue("low_freq_factor"), s.doubleValue("high_freq_factor"),
                    s.intOr("original_max_position_embeddings", maxPositions));
        }
        if (factor < 1.0 && type != RopeType.LINEAR) {
            throw s.error("factor", Double.toString(factor), "a number >= 1");
        }
        return new RopeScaling(type, factor, 0, 0, maxPositions);
    }

    /** A number that Python reads as true: present, not null, not 0. */
    private static Optional<Double> truthy(Json j, String key) {
        return j.doubleOpt(key).filter(v -> v != 0);
    }

    /**
     * The pretraining context length of a transformers 5 config: standardize_rope_params prefers a top-level
     * {@code original_max_position_embeddings} (Phi-3 keeps it there), then the rope fields', then
     * max_position_embeddings.
     */
    private static int v5OriginalLength(Json j, Json s, int maxPositions) {
        return j.intOpt("original_max_position_embeddings")
                .orElseGet(() -> s.intOpt("original_max_position_embeddings").orElse(maxPositions));
    }

    /** modeling_rope_utils._compute_yarn_parameters' inputs. */
    private static RopeScaling yarn(Json j, Json s, int maxPositions, boolean v5) {
        int original;
        double factor;
        if (v5) {
            original = v5OriginalLength(j, s, maxPositions);
            factor = s.doubleOpt("factor").orElse((double) maxPositions / original);
        } else {
            original = truthy(s, "original_max_position_embeddings").map(Double::intValue).orElse(maxPositions);
            factor = s.doubleValue("factor");
        }
        if (!(factor > 0) || original < 1) {
            throw s.error("factor", Double.toString(factor) + " with original_max_position_embeddings " + original,
                    "a positive factor and original length");
        }
        double attention = s.doubleOpt("attention_factor").orElseGet(() -> {
            var mscale = truthy(s, "mscale");
            var mscaleAllDim = truthy(s, "mscale_all_dim");
            if (mscale.isPresent() && mscaleAllDim.isPresent()) {
                return yarnMscale(factor, mscale.get()) / yarnMscale(factor, mscaleAllDim.get());
            }
            return yarnMscale(factor, 1);
        });
        return new RopeScaling(RopeType.YARN, factor, 0, 0, original, positiveFinite(s, "attention_factor", attention),
                positiveFinite(s, "beta_fast", truthy(s, "beta_fast").orElse(32.0)),
                positiveFinite(s, "beta_slow", truthy(s, "beta_slow").orElse(1.0)), s.boolOr("truncate", true),
                List.of(), List.of());
    }

    /** {@code value} (the resolved {@code key} of {@code s}), or an error naming it when not positive and finite. */
    private static double positiveFinite(Json s, String key, double value) {
        if (!(value > 0 && value < Double.POSITIVE_INFINITY)) {
            throw s.error(key, Double.toString(value), "a positive finite number");
        }
        return value;
    }

    private static double yarnMscale(double scale, double mscale) {
        return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
    }

    private static List<Double> frequencyFactors(Json s, String key, int headDim) {
        List<Double> factors = s.doubleList(key);
        if (factors.size() != headDim / 2) {
            throw s.error(key, factors.size() + " numbers",
                    headDim / 2 + ", one per rotary frequency (head_dim " + headDim + " / 2)");
        }
        for (double f : factors) {
            if (!(f > 0 && f < Double.POSITIVE_INFINITY)) {
                throw s.error(key, "an entry " + f, "positive finite divisors of the frequencies");
            }
        }
        return factors;
    }

    /** modeling_rope_utils._compute_longrope_parameters' inputs. */
    private static RopeScaling longRope(Json j, Json s, int maxPositions, int headDim, boolean v5) {
        List<Double> shortFactor = frequencyFactors(s, "short_factor", headDim);
        List<Double> longFactor = frequencyFactors(s, "long_factor", headDim);
        int original;
        Double factor;
        if (v5) {
            original = v5OriginalLength(j, s, maxPositions);
            factor = s.doubleOpt("factor").orElse((double) maxPositions / original);
        } else {
            // 4.57 reads the original length only at the top level and then derives the factor from it
            var topLevel = truthy(j, "original_max_position_embeddings");
            original = topLevel.map(Double::intValue).orElse(maxPositions);
            factor = topLevel.isPresent() ? Double.valueOf((double) maxPositions / original)
                    : s.doubleOpt("factor").orElse(null);
        }
        if (original < 1) {
            throw j.error("original_max_position_embeddings", Integer.toString(original), "a positive length");
        }
        Optional<Double> given = s.doubleOpt("attention_factor");
        if (given.isEmpty() && factor == null) {
            throw s.error("factor", "nothing", "a factor (or an attention_factor, or a top-level "
                    + "original_max_position_embeddings) for the LongRoPE attention factor");
        }
        double attention = positiveFinite(s, "attention_factor", given.orElseGet(() -> factor <= 1.0 ? 1.0
                : Math.sqrt(1 + Math.log(factor) / Math.log(original))));
        return new RopeScaling(RopeType.LONGROPE, factor == null ? Double.NaN : factor, 0, 0, original, attention, 32,
                1, true, shortFactor, longFactor);
    }
}
