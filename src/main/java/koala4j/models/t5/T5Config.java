package koala4j.models.t5;

import java.util.List;
import java.util.Set;

import koala4j.io.json.Json;
import koala4j.tensor.Activation;

/**
 * transformers {@code T5Config} (models/t5/configuration_t5.py) and ETRI's {@code GBSWT5Config}
 * (gbswt5/configuration_gbst5.py, which adds the GBST fields), read from a checkpoint's config.json with the
 * reference defaults. {@code gbst} is null for a plain T5 / ByT5 / KEByT5 checkpoint.
 *
 * @param tieWordEmbeddings   the head is {@code shared} (no lm_head of its own)
 * @param scaleDecoderOutputs the decoder output is multiplied by d_model^-0.5 before the head: transformers 5 saves
 *                            it as {@code scale_decoder_outputs}; transformers 4 scaled exactly when the embeddings
 *                            were tied
 * @param eosTokenIds       {@code eos_token_id}, an int or a list in the file; empty when null
 * @param decoderStartTokenId {@code decoder_start_token_id}, else {@code bos_token_id}; -1 when neither is set
 */
public record T5Config(int vocabSize, int dModel, int dKv, int dFf, int numLayers, int numDecoderLayers, int numHeads,
                       int relativeAttentionNumBuckets, int relativeAttentionMaxDistance, float layerNormEpsilon,
                       Activation denseAct, boolean gatedAct, boolean tieWordEmbeddings,
                       boolean scaleDecoderOutputs, int padTokenId,
                       List<Integer> eosTokenIds, int decoderStartTokenId, GbstConfig gbst) {

    public T5Config {
        eosTokenIds = List.copyOf(eosTokenIds);
        for (int[] v : new int[][] {{vocabSize, 1}, {dModel, 1}, {dKv, 1}, {dFf, 1}, {numLayers, 1},
                {numDecoderLayers, 1}, {numHeads, 1}, {relativeAttentionNumBuckets, 2}, {relativeAttentionMaxDistance, 1}}) {
            if (v[0] < v[1]) {
                throw new IllegalArgumentException("T5 config value " + v[0] + " is below its minimum " + v[1]);
            }
        }
    }

    /** transformers 4's meaning: the decoder output is rescaled exactly when the embeddings are tied. */
    public T5Config(int vocabSize, int dModel, int dKv, int dFf, int numLayers, int numDecoderLayers, int numHeads,
                    int relativeAttentionNumBuckets, int relativeAttentionMaxDistance, float layerNormEpsilon,
                    Activation denseAct, boolean gatedAct, boolean tieWordEmbeddings, int padTokenId,
                    List<Integer> eosTokenIds, int decoderStartTokenId, GbstConfig gbst) {
        this(vocabSize, dModel, dKv, dFf, numLayers, numDecoderLayers, numHeads, relativeAttentionNumBuckets,
                relativeAttentionMaxDistance, layerNormEpsilon, denseAct, gatedAct, tieWordEmbeddings, tieWordEmbeddings,
                padTokenId, eosTokenIds, decoderStartTokenId, gbst);
    }

    /**
     * Reads config.json. model_type t5 / mt5 builds a {@code T5ForConditionalGeneration}; gbswt5 builds
     * {@code GBSWT5ForConditionalGeneration} (the encoder's embedding is a GBST block). Defaults are T5Config's
     * (GBSWT5Config's for gbswt5, which differ only in vocab_size 384).
     */
    public static T5Config from(Json j) {
        return from(j, Set.of());
    }

    /**
     * {@link #from(Json)} for a checkpoint holding {@code storedKeys}. transformers 5 always writes
     * {@code tie_word_embeddings: true} (with {@code scale_decoder_outputs} holding what the old flag meant) and ties
     * the head to {@code shared} only when the checkpoint stores no different {@code lm_head.weight}; so for such a
     * config a stored lm_head is the head. A transformers 4 config's flag decides alone, as 4.x tied after loading.
     */
    public static T5Config from(Json j, Set<String> storedKeys) {
        String modelType = j.stringOr("model_type", "t5");
        boolean gbst = modelType.equals("gbswt5");
        if (!gbst && !modelType.equals("t5") && !modelType.equals("mt5")) {
            throw j.error("model_type", '"' + modelType + '"', "\"t5\", \"mt5\" or \"gbswt5\" (T5ForConditionalGeneration, "
                    + "GBSWT5ForConditionalGeneration)");
        }
        String ffProj = j.stringOr("feed_forward_proj", "relu");
        String[] actInfo = ffProj.split("-", -1);
        if (actInfo.length > 1 && !actInfo[0].equals("gated") || actInfo.length > 2) {
            throw j.error("feed_forward_proj", '"' + ffProj + '"', "\"gated-{ACT_FN}\" or \"{ACT_FN}\", e.g. \"gated-gelu\" or \"relu\"");
        }
        String actName = ffProj.equals("gated-gelu") ? "gelu_new" : actInfo[actInfo.length - 1];
        boolean gated = actInfo[0].equals("gated");
        // PretrainedConfig sets every remaining config.json key as an attribute after T5Config.__init__, so saved
        // dense_act_fn / is_gated_act win over what feed_forward_proj implies.
        actName = j.stringOr("dense_act_fn", actName);
        gated = j.boolOr("is_gated_act", gated);
        int numLayers = j.intOr("num_layers", 6);
        int numDecoderLayers = j.has("num_decoder_layers") && !j.isNull("num_decoder_layers")
                ? j.intValue("num_decoder_layers") : numLayers;
        int start = j.has("decoder_start_token_id") && !j.isNull("decoder_start_token_id")
                ? j.intValue("decoder_start_token_id")
                : j.has("bos_token_id") && !j.isNull("bos_token_id") ? j.intValue("bos_token_id") : -1;
        T5Config c = new T5Config(j.intOr("vocab_size", gbst ? 384 : 32128), j.intOr("d_model", 512), j.intOr("d_kv", 64),
                j.intOr("d_ff", 2048), numLayers, numDecoderLayers, j.intOr("num_heads", 8),
                j.intOr("relative_attention_num_buckets", 32), j.intOr("relative_attention_max_distance", 128),
                j.floatOr("layer_norm_epsilon", 1e-6f), activation(j, actName), gated,
                tied(j, storedKeys), j.boolOr("scale_decoder_outputs", j.boolOr("tie_word_embeddings", true)),
                j.has("pad_token_id") && !j.isNull("pad_token_id")
                        ? j.intValue("pad_token_id") : 0,
                eosTokenIds(j, "eos_token_id", List.of(1)), start, gbst ? GbstConfig.from(j) : null);
        if (c.gbst != null && c.gbst.downsampleFactor() > c.gbst.maxBlockSize()) {
            throw j.error("downsample_factor", Integer.toString(c.gbst.downsampleFactor()),
                    "at most the largest subword block size " + c.gbst.maxBlockSize() + " (gbst.py asserts this)");
        }
        return c;
    }

    private static boolean tied(Json j, Set<String> storedKeys) {
        boolean tie = j.boolOr("tie_word_embeddings", true);
        return tie && !(j.has("scale_decoder_outputs") && storedKeys.contains("lm_head.weight"));
    }

    /** An int, a list of ints or null (none), as generation and model configs write {@code eos_token_id}. */
    public static List<Integer> eosTokenIds(Json j, String key, List<Integer> dflt) {
        return switch (j.kind(key)) {
            case MISSING -> dflt;
            case NULL -> List.of();
            case LIST -> j.intList(key);
            case NUMBER -> List.of(j.intValue(key));
            default -> throw j.error(key, j.kind(key).toString(), "a token id or a list of ids");
        };
    }

    /** transformers' ACT2FN names that T5 checkpoints use. */
    static Activation activation(Json j, String name) {
        return switch (name) {
            case "relu" -> Activation.RELU;
            case "gelu" -> Activation.GELU;
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast" -> Activation.GELU_TANH;
            case "silu", "swish" -> Activation.SILU;
            case "quick_gelu" -> Activation.QUICK_GELU;
            default -> throw j.error("dense_act_fn", '"' + name + '"',
                    "relu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, silu, swish or quick_gelu");
        };
    }

    public int innerDim() {
        return numHeads * dKv;
    }

    /** ByT5 / KEByT5 shapes (d_model, d_ff, layers, heads) with random-init friendly defaults, for benchmarks. */
    public static T5Config byt5Shape(int dModel, int dFf, int numLayers, int numDecoderLayers, int numHeads) {
        return new T5Config(384, dModel, 64, dFf, numLayers, numDecoderLayers, numHeads, 32, 128, 1e-6f,
                Activation.GELU_TANH, true, false, false, 0, List.of(1), 0, null);
    }
}
