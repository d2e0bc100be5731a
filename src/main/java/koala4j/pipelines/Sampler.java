package koala4j.pipelines;

import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits as transformers' generate does (generation/utils.py,
 * logits_process.py), in this order: repetition penalty (RepetitionPenaltyLogitsProcessor), no repeated n-gram,
 * minimum length (see {@link SamplingParams.Constraints}); then for greedy the first argmax; for sampling
 * temperature (TemperatureLogitsWarper), top-k (TopKLogitsWarper), top-p (TopPLogitsWarper), min-p, softmax and one
 * draw. The draw uses {@link SplittableRandom} seeded with
 * {@link SamplingParams#seed()} (one {@code nextDouble} per token, inverse CDF in double); it is reproducible in
 * Java but does not replay torch.multinomial's stream.
 *
 * <p>One sampler per generation (it holds the random state); not thread-safe.
 */
public final class Sampler {

    private final SamplingParams params;
    private final SplittableRandom random;

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
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
        if (!params.doSample()) {
            return argmax(scores);
        }
        if (params.temperature() != 1.0) {
            float temperature = (float) params.temperature();
            for (int i = 0; i < scores.length; i++) {
                scores[i] = scores[i] / temperature;
            }
        }
        if (params.topK() > 0) {
            topK(scores, params.topK());
        }
        if (params.topP() < 1.0) {
            topP(scores, params.topP());
        }
        if (params.constraints().minP() > 0) {
            LogitsProcessing.minP(scores, (float) params.constraints().minP(), 1);
        }
        return draw(scores, random.nextDouble());
    }

    /**
     * The processors before the warpers, in order: repetition penalty over history[0, length), {@link #constrain},
     * then the OpenAI adjustments over the generated part (from {@code outputStart}). Greedy decoding, sampling and
     * each beam of a beam search run these.
     */
    static void process(float[] scores, int[] history, int length, int outputStart, SamplingParams params) {
        if (params.repetitionPenalty() != 1.0) {
            penalize(scores, history, length, (float) params.repetitionPenalty());
        }
        constrain(scores, history, length, outputStart, params);
        if (!params.adjustments().none()) {
            adjust(scores, history, outputStart, length, params.adjustments());
        }
    }

    /**
     * NoRepeatNGramLogitsProcessor, then MinLength / MinNewTokensLength (eos ids barred while the sequence, or its
     * new part from {@code outputStart}, is too short; not with ignoreEos, as transformers adds them only with an
     * eos), on history[0, length) as generate()'s input_ids.
     */
    static void constrain(float[] scores, int[] history, int length, int outputStart, SamplingParams params) {
        SamplingParams.Constraints c = params.constraints();
        if (c.noRepeatNgramSize() > 0) {
            long[] sequence = new long[length];
            for (int i = 0; i < length; i++) {
                sequence[i] = history[i];
            }
            LogitsProcessing.noRepeatNgram(sequence, length, c.noRepeatNgramSize(), scores);
        }
        if ((c.minLength() > 0 || c.minNewTokens() > 0) && !params.ignoreEos()) {
            LogitsProcessing.minLength(scores, length, length - outputStart, c.minLength(), c.minNewTokens(),
                    params.eosTokenIds());
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

    /** Sets to -inf every score below the k-th highest (so ties with it stay). */
    static void topK(float[] scores, int k) {
        if (k >= scores.length) {
            return;
        }
        float[] sorted = scores.clone();
        Arrays.sort(sorted);
        float kth = sorted[sorted.length - k];
        for (int i = 0; i < scores.length; i++) {
            if (scores[i] < kth) {
                scores[i] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /**
     * TopPLogitsWarper: sort ascending, cumulative softmax; drop the tokens whose cumulative mass is <= 1 - top_p,
     * always keeping the highest one.
     */
    static void topP(float[] scores, double topP) {
        Integer[] order = new Integer[scores.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        // stable ascending sort, like torch.sort on CPU for equal keys in practice
        Arrays.sort(order, (a, b) -> Float.compare(scores[a], scores[b]));
        // torch: float32 probabilities summed in order, compared with (1 - top_p) as a float32 scalar
        double[] probs = softmax(scores);
        float cumulative = 0;
        float threshold = (float) (1.0 - topP);
        for (int r = 0; r < order.length - 1; r++) {
            cumulative += (float) probs[order[r]];
            if (cumulative <= threshold) {
                scores[order[r]] = Float.NEGATIVE_INFINITY;
            }
        }
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
