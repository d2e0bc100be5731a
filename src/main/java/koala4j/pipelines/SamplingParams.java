package koala4j.pipelines;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import koala4j.io.json.Json;

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
 * @param constraints       transformers' no_repeat_ngram_size, min_length, min_new_tokens and min_p;
 *                          {@link Constraints#NONE} for none
 */
public record SamplingParams(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                             double repetitionPenalty, List<String> stopStrings, boolean ignoreEos,
                             List<Integer> eosTokenIds, long seed, LogitAdjustments adjustments, Beams beams,
                             Constraints constraints) {

    /**
     * More of generate()'s processors: no n-gram of {@code noRepeatNgramSize} tokens twice in the sequence
     * (NoRepeatNGramLogitsProcessor), no eos before the sequence holds {@code minLength} tokens (prompt included,
     * MinLengthLogitsProcessor) or {@code minNewTokens} new ones, and when sampling, only tokens at least {@code minP}
     * times as likely as the likeliest (MinPLogitsWarper, after top-p). 0 switches each off.
     */
    public record Constraints(int noRepeatNgramSize, int minLength, int minNewTokens, double minP) {

        public static final Constraints NONE = new Constraints(0, 0, 0, 0);

        /** These with each non-null argument in place of its field. */
        public Constraints overriddenBy(Integer noRepeatNgramSize, Integer minNewTokens, Double minP) {
            return new Constraints(noRepeatNgramSize != null ? noRepeatNgramSize : this.noRepeatNgramSize, minLength,
                    minNewTokens != null ? minNewTokens : this.minNewTokens, minP != null ? minP : this.minP);
        }

        public Constraints {
            if (noRepeatNgramSize < 0 || minLength < 0 || minNewTokens < 0 || !(minP >= 0 && minP <= 1)) {
                throw new IllegalArgumentException(("no_repeat_ngram_size %d, min_length %d, min_new_tokens %d, min_p "
                        + "%s: expected sizes >= 0 and 0 <= min_p <= 1")
                        .formatted(noRepeatNgramSize, minLength, minNewTokens, minP));
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
     * The defaults a model folder's generation_config.json sets (do_sample, temperature, top_k, top_p,
     * repetition_penalty, max_new_tokens, eos_token_id, num_beams, length_penalty, early_stopping,
     * no_repeat_ngram_size, min_length, min_new_tokens, min_p), each with transformers' own default when absent;
     * {@code fallbackEos} (config.json's eos_token_id) when the file names none.
     */
    public static SamplingParams fromGenerationConfig(Json g, List<Integer> fallbackEos) {
        List<Integer> eos = switch (g.kind("eos_token_id")) {
            case MISSING -> fallbackEos;
            case NULL -> List.of();
            case NUMBER -> List.of(g.intValue("eos_token_id"));
            case LIST -> g.intList("eos_token_id");
            default -> throw g.error("eos_token_id", g.kind("eos_token_id").toString(), "a token id or a list of ids");
        };
        int maxNew = g.intOpt("max_new_tokens").orElse(20);
        boolean sample = g.boolOr("do_sample", false);
        double temperature = g.doubleOpt("temperature").orElse(1.0);
        if (!sample && !(temperature > 0)) {
            temperature = 1.0;   // transformers ignores (and warns about) the temperature of greedy decoding
        }
        return new SamplingParams(maxNew, sample, temperature, g.intOpt("top_k").orElse(50),
                g.doubleOpt("top_p").orElse(1.0),
                g.doubleOpt("repetition_penalty").orElse(1.0), List.of(), false, eos, 0, LogitAdjustments.NONE,
                new Beams(g.intOpt("num_beams").orElse(1), g.doubleOpt("length_penalty").orElse(1.0).floatValue(),
                        TextGenerationConfig.earlyStopping(g)),
                new Constraints(g.intOpt("no_repeat_ngram_size").orElse(0), g.intOpt("min_length").orElse(0),
                        g.intOpt("min_new_tokens").orElse(0), g.doubleOpt("min_p").orElse(0.0)));
    }

    public SamplingParams withMaxNewTokens(int n) {
        return new SamplingParams(n, doSample, temperature, topK, topP, repetitionPenalty, stopStrings, ignoreEos,
                eosTokenIds, seed, adjustments, beams, constraints);
    }

    /** Sampling on, with these warpers (top_k 0 and top_p 1 switch theirs off). */
    public SamplingParams withSampling(double temperature, int topK, double topP, long seed) {
        return new SamplingParams(maxNewTokens, true, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, constraints);
    }

    public SamplingParams withGreedy() {
        return new SamplingParams(maxNewTokens, false, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, constraints);
    }

    public SamplingParams withRepetitionPenalty(double penalty) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, penalty, stopStrings, ignoreEos,
                eosTokenIds, seed, adjustments, beams, constraints);
    }

    public SamplingParams withStopStrings(List<String> stops) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stops, ignoreEos,
                eosTokenIds, seed, adjustments, beams, constraints);
    }

    public SamplingParams withIgnoreEos(boolean ignore) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignore, eosTokenIds, seed, adjustments, beams, constraints);
    }

    public SamplingParams withEosTokenIds(List<Integer> ids) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, new ArrayList<>(ids), seed, adjustments, beams, constraints);
    }

    public SamplingParams withConstraints(Constraints c) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, beams, c);
    }

    public SamplingParams withBeams(Beams b) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, adjustments, b, constraints);
    }

    public SamplingParams withAdjustments(LogitAdjustments a) {
        return new SamplingParams(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopStrings,
                ignoreEos, eosTokenIds, seed, a, beams, constraints);
    }
}
