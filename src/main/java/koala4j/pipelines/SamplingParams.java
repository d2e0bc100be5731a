package koala4j.pipelines;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import koala4j.io.json.Json;
import koala4j.models.t5.T5Config;

/**
 * How to pick each new token, with transformers' {@code GenerationConfig} meanings (generation/configuration_utils.py
 * and the logits processors of generation/logits_process.py).
 *
 * @param maxNewTokens      tokens to generate at most (exactly this many with {@code ignoreEos} and no stop string)
 * @param doSample          false: greedy (argmax after the repetition penalty); true: temperature, top-k, top-p, then
 *                          a draw
 * @param temperature       logits / temperature (sampling only); must be > 0
 * @param topK              keep the k highest logits (ties with the k-th kept); 0 = off
 * @param topP              keep the smallest set of highest-probability tokens whose mass exceeds top_p; 1 = off
 * @param repetitionPenalty > 1 discourages tokens already in prompt + output: a positive logit is divided by it, a
 *                          negative one multiplied (CTRL's rule, as transformers does); 1 = off
 * @param stopStrings       stop as soon as the decoded output contains one (the text is cut before it)
 * @param ignoreEos         keep going past end-of-sequence tokens
 * @param eosTokenIds       ids that end the sequence (generation_config.json, else config.json)
 * @param seed              seed of the draw ({@link java.util.SplittableRandom}); the same seed gives the same tokens
 * @param adjustments       OpenAI's frequency / presence penalties and logit bias, applied after the repetition
 *                          penalty; {@link LogitAdjustments#NONE} for transformers' behaviour
 * @param beams             beam search settings; {@link Beams#NONE} (one beam) for greedy decoding or sampling
 * @param constraints       transformers' no_repeat_ngram_size, min_length, min_new_tokens, min_p and max_time;
 *                          {@link Constraints#NONE} for none
 * @param processors        generate()'s less common processors and warpers (sequence bias, bad words, suppressed and
 *                          forced tokens, typical / epsilon / eta sampling, ...); {@link Processors#NONE} for none
 * @param format            {@link Format#TEXT}, or only tokens that continue one JSON object (of a schema), and the end
 *                          when it closes
 * @param lookup            prompt lookup decoding ({@link PromptLookup}; the same tokens in fewer forward passes);
 *                          {@link PromptLookup#NONE} for one pass per token
 */
public record SamplingParams(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                             double repetitionPenalty, List<String> stopStrings, boolean ignoreEos,
                             List<Integer> eosTokenIds, long seed, LogitAdjustments adjustments, Beams beams,
                             Constraints constraints, Processors processors, Format format, PromptLookup lookup) {

    /**
     * What the output must be: any text (schema null), or one JSON object that {@code schema} allows (OpenAI's
     * {@code response_format} json_object and json_schema, Ollama's {@code format}; see {@link JsonPrefix}).
     */
    public record Format(JsonSchema schema) {

        public static final Format TEXT = new Format(null);
        /** Any JSON object. */
        public static final Format JSON = new Format(JsonSchema.ANY_OBJECT);

        public boolean json() {
            return schema != null;
        }
    }

    /**
     * generate()'s less common logits processors and warpers, with the generation_config.json fields of the same
     * names (transformers' generation/logits_process.py):
     *
     * @param sequenceBias        SequenceBiasLogitsProcessor: the bias is added to the last token of each sequence
     *                            whenever the tokens before it end the sequence so far (a one-token sequence: always)
     * @param badWordsIds         NoBadWordsLogitsProcessor: the same with -inf; one-token entries that are eos ids are
     *                            dropped, as there
     * @param suppressTokens      always -inf (SuppressTokensLogitsProcessor)
     * @param beginSuppressTokens -inf for the first new token (one later when a one-token prompt has a forced BOS)
     * @param forcedBosTokenId    the token after a one-token prompt; -1 = off
     * @param forcedEosTokenIds   the last of {@code maxNewTokens} new tokens is one of these (ForcedEOSTokenLogitsProcessor)
     * @param lengthDecay         ExponentialDecayLengthPenalty; null = off
     * @param removeInvalidValues NaN -> 0 and infinities -> the largest finite floats (InfNanRemoveLogitsProcessor)
     * @param renormalizeLogits   log-softmax after all processors (LogitNormalization); changes beam scores only
     * @param typicalP            sampling: TypicalLogitsWarper's mass; 1 = off
     * @param epsilonCutoff       sampling: drop tokens less likely than this (EpsilonLogitsWarper); 0 = off
     * @param etaCutoff           sampling: EtaLogitsWarper's epsilon (cut-off min(eta, sqrt(eta) e^-entropy)); 0 = off
     */
    public record Processors(Map<List<Integer>, Float> sequenceBias, List<List<Integer>> badWordsIds,
                             List<Integer> suppressTokens, List<Integer> beginSuppressTokens, int forcedBosTokenId,
                             List<Integer> forcedEosTokenIds, LengthDecay lengthDecay, boolean removeInvalidValues,
                             boolean renormalizeLogits, double typicalP, double epsilonCutoff, double etaCutoff) {

        public static final Processors NONE = new Processors(Map.of(), List.of(), List.of(), List.of(), -1, List.of(),
                null, false, false, 1, 0, 0);

        /**
         * exponential_decay_length_penalty = (start, factor): once {@code start} new tokens are out, the eos scores
         * grow by |score| * (factor^(tokens past start) - 1) per step.
         */
        public record LengthDecay(int start, double factor) {
        }

        public Processors {
            sequenceBias = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(sequenceBias));
            badWordsIds = List.copyOf(badWordsIds);
            suppressTokens = List.copyOf(suppressTokens);
            beginSuppressTokens = List.copyOf(beginSuppressTokens);
            forcedEosTokenIds = List.copyOf(forcedEosTokenIds);
            for (var e : sequenceBias.entrySet()) {
                checkIds("sequence_bias", e.getKey(), true);
                if (Float.isNaN(e.getValue())) {
                    throw new IllegalArgumentException("sequence_bias of " + e.getKey() + " is NaN: expected a number");
                }
            }
            for (List<Integer> words : badWordsIds) {
                checkIds("bad_words_ids", words, true);
            }
            checkIds("suppress_tokens", suppressTokens, false);
            checkIds("begin_suppress_tokens", beginSuppressTokens, false);
            checkIds("forced_eos_token_id", forcedEosTokenIds, false);
            if (forcedBosTokenId < -1) {
                throw new IllegalArgumentException("forced_bos_token_id " + forcedBosTokenId + ": expected a token id");
            }
            if (!(typicalP > 0 && typicalP <= 1) || !(epsilonCutoff >= 0 && epsilonCutoff < 1)
                    || !(etaCutoff >= 0 && etaCutoff < 1)) {
                throw new IllegalArgumentException(("typical_p %s, epsilon_cutoff %s, eta_cutoff %s: expected "
                        + "0 < typical_p <= 1 and cut-offs from 0 (off) to below 1")
                        .formatted(typicalP, epsilonCutoff, etaCutoff));
            }
            if (lengthDecay != null && (lengthDecay.start() < 0 || !Double.isFinite(lengthDecay.factor()))) {
                throw new IllegalArgumentException("exponential_decay_length_penalty " + lengthDecay
                        + ": expected a start >= 0 and a finite factor");
            }
        }

        private static void checkIds(String field, List<Integer> ids, boolean nonEmpty) {
            if (nonEmpty && ids.isEmpty() || ids.stream().anyMatch(id -> id == null || id < 0)) {
                throw new IllegalArgumentException(field + " " + ids + ": expected " + (nonEmpty ? "a non-empty list of "
                        : "") + "token ids >= 0");
            }
        }

        /** Whether any processor before the warpers is on. */
        boolean anyProcessor() {
            return !sequenceBias.isEmpty() || !badWordsIds.isEmpty() || !suppressTokens.isEmpty()
                    || !beginSuppressTokens.isEmpty() || forcedBosTokenId >= 0 || !forcedEosTokenIds.isEmpty()
                    || lengthDecay != null || removeInvalidValues;
        }

        /** These with typical_p, epsilon_cutoff and eta_cutoff replaced by each non-null argument. */
        public Processors withWarpers(Double typicalP, Double epsilonCutoff, Double etaCutoff) {
            return new Processors(sequenceBias, badWordsIds, suppressTokens, beginSuppressTokens, forcedBosTokenId,
                    forcedEosTokenIds, lengthDecay, removeInvalidValues, renormalizeLogits,
                    typicalP != null ? typicalP : this.typicalP, epsilonCutoff != null ? epsilonCutoff : this.epsilonCutoff,
                    etaCutoff != null ? etaCutoff : this.etaCutoff);
        }
    }

    /**
     * More of generate()'s processors: no n-gram of {@code noRepeatNgramSize} tokens twice in the sequence
     * (NoRepeatNGramLogitsProcessor), no eos before the sequence holds {@code minLength} tokens (prompt included,
     * MinLengthLogitsProcessor) or {@code minNewTokens} new ones, and when sampling, only tokens at least {@code minP}
     * times as likely as the likeliest (MinPLogitsWarper, after top-p). 0 switches each off.
     */
    public record Constraints(int noRepeatNgramSize, int minLength, int minNewTokens, double minP, double maxTime) {

        public static final Constraints NONE = new Constraints(0, 0, 0, 0);

        /** No time limit. */
        public Constraints(int noRepeatNgramSize, int minLength, int minNewTokens, double minP) {
            this(noRepeatNgramSize, minLength, minNewTokens, minP, 0);
        }

        /** These with each non-null argument in place of its field. */
        public Constraints overriddenBy(Integer noRepeatNgramSize, Integer minNewTokens, Double minP) {
            return new Constraints(noRepeatNgramSize != null ? noRepeatNgramSize : this.noRepeatNgramSize, minLength,
                    minNewTokens != null ? minNewTokens : this.minNewTokens, minP != null ? minP : this.minP, maxTime);
        }

        /** These with transformers' max_time: seconds from the start of generation (its prompt included); 0 = none. */
        public Constraints withMaxTime(double seconds) {
            return new Constraints(noRepeatNgramSize, minLength, minNewTokens, minP, seconds);
        }

        public Constraints {
            if (noRepeatNgramSize < 0 || minLength < 0 || minNewTokens < 0 || !(minP >= 0 && minP <= 1)
                    || !(maxTime >= 0 && maxTime < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException(("no_repeat_ngram_size %d, min_length %d, min_new_tokens %d, min_p "
                        + "%s, max_time %s: expected sizes >= 0, 0 <= min_p <= 1 and max_time >= 0 (0 = none) seconds")
                        .formatted(noRepeatNgramSize, minLength, minNewTokens, minP, maxTime));
            }
        }
    }

    /**
     * transformers' beam search settings (num_beams, length_penalty, early_stopping): the best finished hypothesis
     * by sum of log-probabilities / generated length^length_penalty; with {@code doSample}, beam sampling (the
     * continuations drawn from torch's stream for {@code seed}, as {@code torch.manual_seed(seed)} would).
     */
    public record Beams(int numBeams, float lengthPenalty, TextGenerationConfig.EarlyStopping earlyStopping) {

        public static final Beams NONE = new Beams(1, 1f, TextGenerationConfig.EarlyStopping.FALSE);

        public Beams {
            if (numBeams < 1 || !Float.isFinite(lengthPenalty) || earlyStopping == null) {
                throw new IllegalArgumentException("num_beams " + numBeams + ", length_penalty " + lengthPenalty
                        + ", early_stopping " + earlyStopping + ": expected at least 1 beam, a finite length penalty "
                        + "and true, false or never");
            }
        }
    }

    /**
     * The OpenAI API's logit adjustments, as vLLM applies them: {@code frequencyPenalty} times how often a token
     * occurs in the output so far plus {@code presencePenalty} if it occurs at all are subtracted from its logit
     * (the prompt does not count), then {@code logitBias} is added per token id.
     */
    public record LogitAdjustments(double frequencyPenalty, double presencePenalty, Map<Integer, Float> logitBias) {

        public static final LogitAdjustments NONE = new LogitAdjustments(0, 0, Map.of());

        public LogitAdjustments {
            if (!(frequencyPenalty >= -2 && frequencyPenalty <= 2) || !(presencePenalty >= -2 && presencePenalty <= 2)) {
                throw new IllegalArgumentException("frequency penalty " + frequencyPenalty + ", presence penalty "
                        + presencePenalty + ": expected -2 to 2");
            }
            logitBias = Map.copyOf(logitBias);
        }

        boolean none() {
            return frequencyPenalty == 0 && presencePenalty == 0 && logitBias.isEmpty();
        }
    }

    public SamplingParams {
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("max new tokens " + maxNewTokens + ", expected >= 0");
        }
        if (!(temperature > 0) || topK < 0 || !(topP > 0 && topP <= 1) || !(repetitionPenalty > 0)) {
            throw new IllegalArgumentException(("temperature %s, top_k %d, top_p %s, repetition_penalty %s: expected "
                    + "temperature > 0, top_k >= 0, 0 < top_p <= 1, repetition_penalty > 0")
                    .formatted(temperature, topK, topP, repetitionPenalty));
        }
        for (String s : stopStrings) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("an empty stop string would stop before the first token");
            }
        }
        stopStrings = List.copyOf(stopStrings);
        eosTokenIds = List.copyOf(eosTokenIds);
        if (adjustments == null) {
            adjustments = LogitAdjustments.NONE;
        }
        if (beams == null) {
            beams = Beams.NONE;
        }
        if (constraints == null) {
            constraints = Constraints.NONE;
        }
        if (processors == null) {
            processors = Processors.NONE;
        }
        if (format == null) {
            format = Format.TEXT;
        }
        if (lookup == null) {
            lookup = PromptLookup.NONE;
        }
    }

    /** One forward pass per token: the components before prompt lookup was added. */
    public SamplingParams(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                          double repetitionPenalty, List<String> stopStrings, boolean ignoreEos,
                          List<Integer> eosTokenIds, long seed, LogitAdjustments adjustments, Beams beams,
                          Constraints constraints, Processors processors, Format format) {
        this(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings, ignoreEos, eosTokenIds,
                seed, adjustments, beams, constraints, processors, format, PromptLookup.NONE);
    }

    /** Any text: the components before the output format was added. */
    public SamplingParams(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                          double repetitionPenalty, List<String> stopStrings, boolean ignoreEos,
                          List<Integer> eosTokenIds, long seed, LogitAdjustments adjustments, Beams beams,
                          Constraints constraints, Processors processors) {
        this(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings, ignoreEos, eosTokenIds,
                seed, adjustments, beams, constraints, processors, Format.TEXT);
    }

    /** The components before the less common processors were added. */
    public SamplingParams(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                          double repetitionPenalty, List<String> stopStrings, boolean ignoreEos,
                          List<Integer> eosTokenIds, long seed, LogitAdjustments adjustments, Beams beams,
                          Constraints constraints) {
        this(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings, ignoreEos, eosTokenIds,
                seed, adjustments, beams, constraints, Processors.NONE);
    }

    /** transformers' processors and OpenAI adjustments, one beam: the components before beam search was added. */
    public SamplingParams(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                          double repetitionPenalty, List<String> stopStrings, boolean ignoreEos,
                          List<Integer> eosTokenIds, long seed, LogitAdjustments adjustments) {
        this(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings, ignoreEos, eosTokenIds,
                seed, adjustments, Beams.NONE, Constraints.NONE);
    }

    /** transformers' processors only (no OpenAI adjustments), the components before those were added. */
    public SamplingParams(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                          double repetitionPenalty, List<String> stopStrings, boolean ignoreEos,
                          List<Integer> eosTokenIds, long seed) {
        this(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings, ignoreEos, eosTokenIds,
                seed, LogitAdjustments.NONE);
    }

    /** Greedy decoding of up to {@code maxNewTokens}, stopping at {@code eosTokenIds}. */
    public static SamplingParams greedy(int maxNewTokens, List<Integer> eosTokenIds) {
        return new SamplingParams(maxNewTokens, false, 1.0, 50, 1.0, 1.0, List.of(), false, eosTokenIds, 0,
                LogitAdjustments.NONE);
    }

    /**
     * Settings of generation_config.json that change decoding and that this implementation does not have
     * (constrained, diverse, contrastive and guided search, encoder-side processors, watermarks).
     */
    private static final List<String> UNSUPPORTED = List.of("force_words_ids", "constraints", "num_beam_groups",
            "diversity_penalty", "penalty_alpha", "guidance_scale", "encoder_repetition_penalty",
            "encoder_no_repeat_ngram_size", "watermarking_config", "forced_decoder_ids");

    /**
     * The defaults a model folder's generation_config.json sets (do_sample, temperature, top_k, top_p,
     * repetition_penalty, max_new_tokens, eos_token_id, stop_strings, num_beams, length_penalty, early_stopping,
     * no_repeat_ngram_size, min_length, min_new_tokens, min_p, max_time, prompt_lookup_num_tokens,
     * max_matching_ngram_size and the fields of {@link Processors}), each with
     * transformers' own default when absent; {@code fallbackEos} (config.json's eos_token_id) when the file names none.
     *
     * @throws koala4j.io.json.JsonException naming the file and field for a malformed value or a decoding setting
     *                                       this implementation does not have
     */
    public static SamplingParams fromGenerationConfig(Json g, List<Integer> fallbackEos) {
        for (String key : UNSUPPORTED) {
            if (g.has(key) && !g.isNull(key) && !TextGenerationConfig.isNeutral(g, key)) {
                throw g.error(key, g.node().get(key).toString(), "absent or neutral: koala4j's LLaMA generation does "
                        + "greedy, sampling and beam search with the processors listed in the README only");
            }
        }
        List<Integer> eos = T5Config.eosTokenIds(g, "eos_token_id", fallbackEos);
        int maxNew = g.intOpt("max_new_tokens").orElse(20);
        boolean sample = g.boolOr("do_sample", false);
        double temperature = g.doubleOpt("temperature").orElse(1.0);
        if (!sample && !(temperature > 0)) {
            temperature = 1.0;   // transformers ignores (and warns about) the temperature of greedy decoding
        }
        List<String> stops = switch (g.kind("stop_strings")) {
            case MISSING, NULL -> List.of();
            case STRING -> List.of(g.string("stop_strings"));
            default -> g.stringList("stop_strings");
        };
        return new SamplingParams(maxNew, sample, temperature, g.intOpt("top_k").orElse(50),
                g.doubleOpt("top_p").orElse(1.0),
                g.doubleOpt("repetition_penalty").orElse(1.0), stops, false, eos, 0, LogitAdjustments.NONE,
                new Beams(g.intOpt("num_beams").orElse(1), g.doubleOpt("length_penalty").orElse(1.0).floatValue(),
                        TextGenerationConfig.earlyStopping(g)),
                new Constraints(g.intOpt("no_repeat_ngram_size").orElse(0), g.intOpt("min_length").orElse(0),
                        g.intOpt("min_new_tokens").orElse(0), g.doubleOpt("min_p").orElse(0.0),
                        maxTime(g)),
                processors(g)).withLookup(lookup(g));
    }

    /**
     * prompt_lookup_num_tokens (absent or null: off) and max_matching_ngram_size (absent or null: 2), each at least 1
     * when set, as generate() requires.
     */
    private static PromptLookup lookup(Json g) {
        int ngram = PromptLookup.DEFAULT_MAX_NGRAM;
        if (!absent(g, "max_matching_ngram_size")) {
            ngram = g.intValue("max_matching_ngram_size");
            if (ngram < 1) {
                throw g.error("max_matching_ngram_size", Integer.toString(ngram), "an n-gram size of at least 1");
            }
        }
        if (absent(g, "prompt_lookup_num_tokens")) {
            return new PromptLookup(0, ngram);
        }
        int tokens = g.intValue("prompt_lookup_num_tokens");
        if (tokens < 1) {
            throw g.error("prompt_lookup_num_tokens", Integer.toString(tokens),
                    "at least 1 draft token (or null: off)");
        }
        return new PromptLookup(tokens, ngram);
    }

    /** max_time in seconds (MaxTimeCriteria), 0 when absent or null; a positive number otherwise. */
    private static double maxTime(Json g) {
        if (absent(g, "max_time")) {
            return 0;
        }
        double t = g.doubleValue("max_time");
        if (!(t > 0 && t < Double.POSITIVE_INFINITY)) {
            throw g.error("max_time", Double.toString(t), "a positive number of seconds (or null: no limit)");
        }
        return t;
    }

    /** Missing or null: generate()'s "not set". */
    private static boolean absent(Json g, String key) {
        return !g.has(key) || g.isNull(key);
    }

    /**
     * The {@link Processors} fields of a generation_config.json. As generate() does, typical_p >= 1 and cut-offs
     * outside (0, 1) switch their warper off; typical_p <= 0 is an error there and here.
     */
    private static Processors processors(Json g) {
        Map<List<Integer>, Float> bias = new java.util.LinkedHashMap<>();
        if (!absent(g, "sequence_bias")) {
            var list = g.node().get("sequence_bias");
            String expected = "a list of [[token ids], bias] pairs";
            if (!list.isArray()) {
                throw g.error("sequence_bias", list.toString(), expected);
            }
            for (var pair : list) {
                if (!pair.isArray() || pair.size() != 2 || !pair.get(0).isArray() || pair.get(0).isEmpty()
                        || !pair.get(1).isNumber()) {
                    throw g.error("sequence_bias", pair.toString(), expected);
                }
                List<Integer> ids = new ArrayList<>();
                for (var id : pair.get(0)) {
                    if (!id.canConvertToInt() || !id.isIntegralNumber() || id.intValue() < 0) {
                        throw g.error("sequence_bias", pair.toString(), expected + " with ids >= 0");
                    }
                    ids.add(id.intValue());
                }
                bias.put(List.copyOf(ids), pair.get(1).floatValue());
            }
        }
        List<List<Integer>> bad = absent(g, "bad_words_ids") ? List.of() : g.intLists("bad_words_ids");
        Processors.LengthDecay decay = null;
        if (!absent(g, "exponential_decay_length_penalty")) {
            List<Double> pair = g.doubleList("exponential_decay_length_penalty");
            if (pair.size() != 2 || pair.getFirst() != Math.rint(pair.getFirst())) {
                throw g.error("exponential_decay_length_penalty", pair.toString(), "[start index, decay factor]");
            }
            decay = new Processors.LengthDecay(pair.getFirst().intValue(), pair.get(1));
        }
        double typical = g.doubleOpt("typical_p").orElse(1.0);
        if (!(typical > 0)) {
            throw g.error("typical_p", Double.toString(typical), "a mass > 0 (1 or more: off)");
        }
        double epsilon = g.doubleOpt("epsilon_cutoff").orElse(0.0);
        double eta = g.doubleOpt("eta_cutoff").orElse(0.0);
        try {
            return new Processors(bias, bad, absent(g, "suppress_tokens") ? List.of() : g.intList("suppress_tokens"),
                    absent(g, "begin_suppress_tokens") ? List.of() : g.intList("begin_suppress_tokens"),
                    g.intOpt("forced_bos_token_id").orElse(-1), T5Config.eosTokenIds(g, "forced_eos_token_id", List.of()), decay,
                    !absent(g, "remove_invalid_values") && g.boolValue("remove_invalid_values"),
                    !absent(g, "renormalize_logits") && g.boolValue("renormalize_logits"), Math.min(typical, 1.0),
                    epsilon > 0 && epsilon < 1 ? epsilon : 0, eta > 0 && eta < 1 ? eta : 0);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(g.file() + ": " + e.getMessage(), e);
        }
    }

    public SamplingParams withMaxNewTokens(int n) {
        return new SamplingParams(n, doSample, temperature, topK, topP, repetitionPenalty, stopStrings, ignoreEos,
                eosTokenIds, seed, adjustments, beams, constraints, processors, format, lookup);
    }

    /** Sampling on, with these warpers (top_k 0 and top_p 1 switch theirs off). */
    public SamplingParams withSampling(double temperature, int topK, double topP, long seed) {
        return new SamplingParams(maxNewTokens, true, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, constraints, processors, format, lookup);
    }

    public SamplingParams withGreedy() {
        return new SamplingParams(maxNewTokens, false, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, constraints, processors, format, lookup);
    }

    public SamplingParams withRepetitionPenalty(double penalty) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, penalty, stopStrings, ignoreEos,
                eosTokenIds, seed, adjustments, beams, constraints, processors, format, lookup);
    }

    public SamplingParams withStopStrings(List<String> stops) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stops, ignoreEos,
                eosTokenIds, seed, adjustments, beams, constraints, processors, format, lookup);
    }

    public SamplingParams withIgnoreEos(boolean ignore) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignore, eosTokenIds, seed, adjustments, beams, constraints, processors, format, lookup);
    }

    public SamplingParams withEosTokenIds(List<Integer> ids) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, new ArrayList<>(ids), seed, adjustments, beams, constraints, processors, format, lookup);
    }

    public SamplingParams withConstraints(Constraints c) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, c, processors, format, lookup);
    }

    public SamplingParams withBeams(Beams b) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, b, constraints, processors, format, lookup);
    }

    public SamplingParams withProcessors(Processors p) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, constraints, p, format, lookup);
    }

    public SamplingParams withFormat(Format f) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, constraints, processors, f, lookup);
    }

    public SamplingParams withSeed(long s) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, s, adjustments, beams, constraints, processors, format, lookup);
    }

    public SamplingParams withAdjustments(LogitAdjustments a) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, a, beams, constraints, processors, format, lookup);
    }

    public SamplingParams withLookup(PromptLookup l) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, constraints, processors, format, l);
    }
}
