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
    public enum RopeType { DEFAULT, LINEAR, DYNAMIC, LLAMA3 }

    /**
     * {@code rope_scaling} (modeling_rope_utils.py). For LLAMA3 the three extra fields are used; for the others
     * only {@code factor}.
     */
    public record RopeScaling(RopeType type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositionEmbeddings) {
    }

    public LlamaConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
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
        // MistralConfig is LlamaConfig plus sliding_window (callers decide which model types they accept)
        Integer window = null;
        if (j.stringOr("model_type", "llama").equals("mistral") && j.kind("sliding_window") == Json.Kind.NUMBER) {
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
                j.floatOr("rms_norm_eps", 1e-6f), ropeTheta(j), ropeScaling(j, maxPositions),
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

    private static RopeScaling ropeScaling(Json j, int maxPositions) {
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
            default -> throw s.error(s.has("rope_type") ? "rope_type" : "type", "\"" + name + "\"",
                    "default, linear, dynamic or llama3 (the rope types this LLaMA port implements)");
        };
        if (type == RopeType.DEFAULT) {
            return null;
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
}
