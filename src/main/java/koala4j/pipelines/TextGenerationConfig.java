package koala4j.pipelines;

import java.util.List;
import java.util.Locale;

import koala4j.io.json.Json;
import koala4j.models.t5.T5Config;

/**
 * The decoding settings of one text-to-text request, resolved as transformers' {@code GenerationConfig}
 * (generation/configuration_utils.py) is: the model folder's generation_config.json (else config.json, as
 * {@code GenerationConfig.from_model_config} does), the library defaults for what neither sets, then the caller's
 * overrides. {@code maxLength} counts the decoder start token, as the reference's {@code max_length} does for
 * encoder-decoders.
 *
 * @param eosTokenIds        empty when generation never stops at a token
 * @param padTokenId         what finished rows are filled with; -1 when there is neither pad nor eos
 * @param numReturnSequences sequences per input (generate()'s num_return_sequences): the best hypotheses of one beam
 *                           search, or as many samples; one for greedy decoding
 */
public record TextGenerationConfig(int decoderStartTokenId, List<Integer> eosTokenIds, int padTokenId, int maxLength,
                                   int numBeams, boolean doSample, float temperature, int topK, float topP,
                                   float lengthPenalty, EarlyStopping earlyStopping, int noRepeatNgramSize, long seed,
                                   int numReturnSequences) {

    /** {@code early_stopping}: true, false or "never". */
    public enum EarlyStopping { TRUE, FALSE, NEVER }

    /**
     * Per-request overrides; null fields keep the folder's value. {@code maxNewTokens} takes precedence over the
     * folder's max_length, as in the reference.
     */
    public record Overrides(Integer maxNewTokens, Integer numBeams, Boolean doSample, Float temperature, Integer topK,
                            Float topP, Float lengthPenalty, EarlyStopping earlyStopping, Integer noRepeatNgramSize,
                            Long seed, Integer numReturnSequences) {

        public static final Overrides NONE = new Overrides(null, null, null, null, null, null, null, null, null, null);

        /** The folder's num_return_sequences. */
        public Overrides(Integer maxNewTokens, Integer numBeams, Boolean doSample, Float temperature, Integer topK,
                         Float topP, Float lengthPenalty, EarlyStopping earlyStopping, Integer noRepeatNgramSize,
                         Long seed) {
            this(maxNewTokens, numBeams, doSample, temperature, topK, topP, lengthPenalty, earlyStopping,
                    noRepeatNgramSize, seed, null);
        }
    }

    /** Settings of generation_config.json that change decoding and that this implementation does not have. */
    private static final List<String> UNSUPPORTED = List.of("repetition_penalty", "min_length", "min_new_tokens",
            "bad_words_ids", "force_words_ids", "forced_bos_token_id", "forced_eos_token_id", "suppress_tokens",
            "begin_suppress_tokens", "encoder_no_repeat_ngram_size", "encoder_repetition_penalty", "num_beam_groups",
            "diversity_penalty", "typical_p", "epsilon_cutoff", "eta_cutoff", "min_p", "exponential_decay_length_penalty",
            "sequence_bias", "constraints", "guidance_scale", "penalty_alpha", "max_time");

    public TextGenerationConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        if (maxLength < 2) {
            throw new IllegalArgumentException("max_length " + maxLength + ": expected at least 2 (the start token and one new token)");
        }
        if (numBeams < 1) {
            throw new IllegalArgumentException("num_beams " + numBeams + ": expected at least 1");
        }
        if (doSample && !(temperature > 0)) {
            throw new IllegalArgumentException("temperature " + temperature + ": expected a positive value when sampling");
        }
        if (topK < 0 || !(topP > 0 && topP <= 1) || noRepeatNgramSize < 0) {
            throw new IllegalArgumentException("top_k %d, top_p %s, no_repeat_ngram_size %d: expected top_k >= 0, 0 < top_p <= 1, "
                    .formatted(topK, topP, noRepeatNgramSize) + "no_repeat_ngram_size >= 0");
        }
        if (decoderStartTokenId < 0) {
            throw new IllegalArgumentException("no decoder_start_token_id (nor bos_token_id) in the generation or model config");
        }
        if (numReturnSequences < 1 || numReturnSequences > 1 && !doSample && numBeams == 1
                || numBeams > 1 && numReturnSequences > numBeams) {
            throw new IllegalArgumentException(("num_return_sequences %d with num_beams %d%s: expected 1 with greedy "
                    + "decoding, at most num_beams with beam search, any number of samples").formatted(
                    numReturnSequences, numBeams, doSample ? " and sampling" : ""));
        }
    }

    /**
     * Resolves the settings. {@code generationConfig} is the folder's generation_config.json or null; the model
     * config supplies the token ids it does not set.
     *
     * @throws IllegalArgumentException naming the file and field for a decoding setting this implementation lacks
     */
    public static TextGenerationConfig resolve(Json generationConfig, T5Config model, Json modelConfig, Overrides o) {
        Json g = generationConfig != null ? generationConfig : modelConfig;
        for (String key : UNSUPPORTED) {
            if (g.has(key) && !g.isNull(key) && !isNeutral(g, key)) {
                throw g.error(key, g.node().get(key).toString(), "absent or neutral: koala4j's T5 generation does greedy, "
                        + "beam search, sampling (temperature, top_k, top_p), no_repeat_ngram_size and length_penalty only");
            }
        }
        // Token ids come from generation_config.json alone when it exists (a missing one is None there); without it,
        // from_model_config copies them from the model config, defaults included.
        int start;
        List<Integer> eos;
        int pad;
        if (generationConfig != null) {
            start = optionalInt(g, "decoder_start_token_id", optionalInt(g, "bos_token_id", -1));
            eos = T5Config.eosTokenIds(g, "eos_token_id", List.of());
            pad = optionalInt(g, "pad_token_id", -1);
        } else {
            start = model.decoderStartTokenId();
            eos = model.eosTokenIds();
            pad = model.padTokenId();
        }
        if (pad < 0 && !eos.isEmpty()) {
            pad = eos.getFirst();                    // _prepare_special_tokens: pad falls back to the first eos
        }
        int maxLength = g.intOr("max_length", 20);
        Integer maxNew = o.maxNewTokens() != null ? o.maxNewTokens()
                : g.has("max_new_tokens") && !g.isNull("max_new_tokens") ? g.intValue("max_new_tokens") : null;
        if (maxNew != null) {
            if (maxNew < 1) {
                throw new IllegalArgumentException("max_new_tokens " + maxNew + ": expected at least 1");
            }
            maxLength = maxNew + 1;                  // + the decoder start token
        }
        EarlyStopping early = o.earlyStopping() != null ? o.earlyStopping() : earlyStopping(g);
        int returns = o.numReturnSequences() != null ? o.numReturnSequences()
                : optionalInt(g, "num_return_sequences", 1);
        if (o.numReturnSequences() == null && returns < 1) {
            throw g.error("num_return_sequences", Integer.toString(returns), "at least 1");
        }
        return new TextGenerationConfig(start, eos, pad, maxLength,
                o.numBeams() != null ? o.numBeams() : g.intOr("num_beams", 1),
                o.doSample() != null ? o.doSample() : g.boolOr("do_sample", false),
                o.temperature() != null ? o.temperature() : g.floatOr("temperature", 1f),
                o.topK() != null ? o.topK() : g.has("top_k") && g.isNull("top_k") ? 0 : g.intOr("top_k", 50),
                o.topP() != null ? o.topP() : g.has("top_p") && g.isNull("top_p") ? 1f : g.floatOr("top_p", 1f),
                o.lengthPenalty() != null ? o.lengthPenalty() : g.floatOr("length_penalty", 1f), early,
                o.noRepeatNgramSize() != null ? o.noRepeatNgramSize() : g.intOr("no_repeat_ngram_size", 0),
                o.seed() != null ? o.seed() : 0L, returns);
    }

    private static int optionalInt(Json g, String key, int dflt) {
        return g.has(key) && !g.isNull(key) ? g.intValue(key) : dflt;
    }

    static boolean isNeutral(Json g, String key) {
        return switch (key) {
            case "repetition_penalty", "encoder_repetition_penalty", "num_beam_groups", "typical_p", "guidance_scale" ->
                    g.doubleValue(key) == 1.0;
            case "min_length", "min_new_tokens", "diversity_penalty", "epsilon_cutoff", "eta_cutoff", "penalty_alpha",
                 "encoder_no_repeat_ngram_size" -> g.doubleValue(key) == 0.0;
            default -> false;
        };
    }

    static EarlyStopping earlyStopping(Json g) {
        return switch (g.kind("early_stopping")) {
            case MISSING, NULL -> EarlyStopping.FALSE;
            case BOOLEAN -> g.boolValue("early_stopping") ? EarlyStopping.TRUE : EarlyStopping.FALSE;
            default -> parseEarlyStopping(g.string("early_stopping"));
        };
    }

    /** "true", "false" or "never" (the CLI's spelling of the reference's values). */
    public static EarlyStopping parseEarlyStopping(String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "true" -> EarlyStopping.TRUE;
            case "false" -> EarlyStopping.FALSE;
            case "never" -> EarlyStopping.NEVER;
            default -> throw new IllegalArgumentException("early_stopping \"" + value + "\": expected true, false or never");
        };
    }

    public boolean isEos(long token) {
        for (int e : eosTokenIds) {
            if (e == token) {
                return true;
            }
        }
        return false;
    }
}
