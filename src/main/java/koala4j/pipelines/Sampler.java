package koala4j.pipelines;

import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits as transformers' generate does (generation/utils.py,
 * logits_process.py): the processors of {@link #process} in generate()'s order; then for greedy the first argmax; for
 * sampling the warpers of {@link #warp} (temperature, top-k, top-p, min-p, typical, epsilon, eta), softmax and one
 * draw. The draw uses {@link SplittableRandom} seeded with {@link SamplingParams#seed()} (one {@code nextDouble} per
 * token, inverse CDF in double); it is reproducible in Java but does not replay torch.multinomial's stream.
 *
 * <p>One sampler per generation (it holds the random state); not thread-safe.
 */
public final class Sampler {

    private final SamplingParams params;
    private final SplittableRandom random;
    private final JsonOutput json;

    public Sampler(SamplingParams params) {
        this(params, null);
    }

    /** {@code json}: JSON output mode's mask after the processors (null: any text). */
    Sampler(SamplingParams params, JsonOutput json) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
        this.json = json;
    }

    /** {@link #next(float[], int[], int, int)} with the whole history counted as prompt. */
    public int next(float[] logits, int[] history, int historyLength) {
        return next(logits, history, historyLength, historyLength);
    }

    /**
     * The next token given the logits of the last position and every token so far: {@code history[0, historyLength)},
     * of which those from {@code outputStart} on were generated.
     */
    public int next(float[] logits, int[] history, int historyLength, int outputStart) {
        float[] scores = logits.clone();
        process(scores, history, historyLength, outputStart, params);
        if (json != null) {
            json.mask(scores);
        }
        if (!params.doSample()) {
            return argmax(scores);
        }
        warp(scores, params, 1);
        return draw(scores, random.nextDouble());
    }

    /**
     * The processors before the warpers, in generate()'s order (generation/utils.py, _get_logits_processor): sequence
     * bias, repetition penalty over history[0, length), no repeated n-gram, bad words, minimum lengths, forced BOS /
     * EOS, invalid values removed, the length decay of the eos scores, suppressed tokens; then the OpenAI adjustments
     * over the generated part (from {@code outputStart}). Greedy decoding, sampling and each beam of a beam search run
     * these.
     */
    static void process(float[] scores, int[] history, int length, int outputStart, SamplingParams params) {
        SamplingParams.Processors x = params.processors();
        if (!x.sequenceBias().isEmpty()) {
            LogitsProcessing.sequenceBias(scores, history, length, x.sequenceBias(), "sequence_bias");
        }
        if (params.repetitionPenalty() != 1.0) {
            penalize(scores, history, length, (float) params.repetitionPenalty());
        }
        SamplingParams.Constraints c = params.constraints();
        if (c.noRepeatNgramSize() > 0) {
            long[] sequence = new long[length];
            for (int i = 0; i < length; i++) {
                sequence[i] = history[i];
            }
            LogitsProcessing.noRepeatNgram(sequence, length, c.noRepeatNgramSize(), scores);
        }
        if (!x.badWordsIds().isEmpty()) {
            LogitsProcessing.sequenceBias(scores, history, length, badWords(x.badWordsIds(), params.eosTokenIds()),
                    "bad_words_ids");
        }
        // transformers adds the eos-dependent processors only with an eos, which ignoreEos takes away
        List<Integer> eos = params.ignoreEos() ? List.of() : params.eosTokenIds();
        if ((c.minLength() > 0 || c.minNewTokens() > 0) && !eos.isEmpty()) {
            LogitsProcessing.minLength(scores, length, length - outputStart, c.minLength(), c.minNewTokens(), eos);
        }
        if (x.anyProcessor()) {
            if (x.forcedBosTokenId() >= 0 && length == 1) {
                LogitsProcessing.force(scores, List.of(x.forcedBosTokenId()));
            }
            if (!x.forcedEosTokenIds().isEmpty() && length == outputStart + params.maxNewTokens() - 1) {
                LogitsProcessing.force(scores, x.forcedEosTokenIds());
            }
            if (x.removeInvalidValues()) {
                LogitsProcessing.removeInvalid(scores);
            }
            if (x.lengthDecay() != null && !eos.isEmpty()) {
                LogitsProcessing.lengthDecay(scores, length, x.lengthDecay().start() + outputStart,
                        x.lengthDecay().factor(), eos);
            }
            LogitsProcessing.suppress(scores, x.suppressTokens());
            int begin = outputStart > 1 || x.forcedBosTokenId() < 0 ? outputStart : outputStart + 1;
            if (length == begin) {
                LogitsProcessing.suppress(scores, x.beginSuppressTokens());
            }
        }
        if (!params.adjustments().none()) {
            adjust(scores, history, outputStart, length, params.adjustments());
        }
    }

    /** NoBadWordsLogitsProcessor's biases: -inf for each sequence, without the one-token ones that are eos ids. */
    private static Map<List<Integer>, Float> badWords(List<List<Integer>> words, List<Integer> eos) {
        Map<List<Integer>, Float> bias = new LinkedHashMap<>();
        for (List<Integer> w : words) {
            if (!(w.size() == 1 && eos.contains(w.getFirst()))) {
                bias.put(w, Float.NEGATIVE_INFINITY);
            }
        }
        return bias;
    }

    /**
     * The sampling warpers in generate()'s order: temperature, top-k, top-p, min-p, typical, epsilon and eta, each
     * keeping at least {@code minTokensToKeep} tokens.
     */
    static void warp(float[] scores, SamplingParams params, int minTokensToKeep) {
        if (params.temperature() != 1.0) {
            LogitsProcessing.temperature(scores, (float) params.temperature());
        }
        if (params.topK() != 0) {
            LogitsProcessing.topK(scores, params.topK(), minTokensToKeep);
        }
        if (params.topP() < 1.0) {
            LogitsProcessing.topP(scores, (float) params.topP(), minTokensToKeep);
        }
        if (params.constraints().minP() > 0) {
            LogitsProcessing.minP(scores, (float) params.constraints().minP(), minTokensToKeep);
        }
        SamplingParams.Processors x = params.processors();
        if (x.typicalP() < 1.0) {
            LogitsProcessing.typical(scores, (float) x.typicalP(), minTokensToKeep);
        }
        if (x.epsilonCutoff() > 0) {
            LogitsProcessing.epsilon(scores, (float) x.epsilonCutoff(), minTokensToKeep);
        }
        if (x.etaCutoff() > 0) {
            LogitsProcessing.eta(scores, (float) x.etaCutoff(), minTokensToKeep);
        }
    }

    /** score < 0 ? score * penalty : score / penalty, once per distinct token of the history (gather, then scatter). */
    static void penalize(float[] scores, int[] history, int length, float penalty) {
        BitSet seen = new BitSet(scores.length);
        for (int i = 0; i < length; i++) {
            int id = history[i];
            if (id >= 0 && id < scores.length && !seen.get(id)) {
                seen.set(id);
                float s = scores[id];
                scores[id] = s < 0 ? s * penalty : s / penalty;
            }
        }
    }

    /** Frequency and presence penalties over history[from, to), then the logit bias (ids out of range ignored). */
    static void adjust(float[] scores, int[] history, int from, int to, SamplingParams.LogitAdjustments a) {
        if (a.frequencyPenalty() != 0 || a.presencePenalty() != 0) {
            Map<Integer, Integer> counts = new HashMap<>();
            for (int i = Math.max(from, 0); i < to; i++) {
                counts.merge(history[i], 1, Integer::sum);
            }
            counts.forEach((id, count) -> {
                if (id >= 0 && id < scores.length) {
                    scores[id] -= (float) (a.frequencyPenalty() * count + a.presencePenalty());
                }
            });
        }
        a.logitBias().forEach((id, bias) -> {
            if (id >= 0 && id < scores.length) {
                scores[id] += bias;
            }
        });
    }

    /** torch.argmax: the first index of the maximum (NaN counts as the maximum, as in torch). */
    static int argmax(float[] scores) {
        int best = 0;
        for (int i = 1; i < scores.length; i++) {
            if (scores[i] > scores[best] || Float.isNaN(scores[i]) && !Float.isNaN(scores[best])) {
                best = i;
            }
        }
        return best;
    }

    static double[] softmax(float[] scores) {
        double max = Double.NEGATIVE_INFINITY;
        for (float s : scores) {
            max = Math.max(max, s);
        }
        double[] p = new double[scores.length];
        double sum = 0;
        for (int i = 0; i < scores.length; i++) {
            p[i] = scores[i] == Float.NEGATIVE_INFINITY ? 0 : Math.exp(scores[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** Inverse CDF of softmax(scores) at u in [0, 1). */
    static int draw(float[] scores, double u) {
        double[] p = softmax(scores);
        double cumulative = 0;
        int last = -1;
        for (int i = 0; i < p.length; i++) {
            if (p[i] > 0) {
                cumulative += p[i];
                last = i;
                if (u < cumulative) {
                    return i;
                }
            }
        }
        return last;   // u within rounding of 1
    }
}
