package koala4j.pipelines;

import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import koala4j.tensor.rng.TorchGenerator;

/**
 * transformers' logits processors and token selection (generation/logits_process.py, generation/utils.py) on one
 * row of next-token scores, in float32 as the reference computes them. A row has the vocabulary's length; the
 * processors change it in place.
 */
final class LogitsProcessing {

    private LogitsProcessing() {
    }

    /** torch.log_softmax in float32 (max, then log of the sum of exponentials). */
    static float[] logSoftmax(float[] row) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : row) {
            sum += Math.exp(v - max);
        }
        float logSum = (float) Math.log(sum);
        float[] out = new float[row.length];
        for (int i = 0; i < row.length; i++) {
            out[i] = row[i] - max - logSum;
        }
        return out;
    }

    /** torch.softmax in float32. */
    static float[] softmax(float[] row) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        float[] out = new float[row.length];
        for (int i = 0; i < row.length; i++) {
            out[i] = (float) Math.exp(row[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < row.length; i++) {
            out[i] = (float) (out[i] / sum);
        }
        return out;
    }

    /**
     * {@code NoRepeatNGramLogitsProcessor}: every token that would complete an n-gram already present in
     * {@code sequence[0 .. length)} gets -inf.
     */
    static void noRepeatNgram(long[] sequence, int length, int n, float[] row) {
        if (n <= 0 || length + 1 < n) {
            return;
        }
        int prefixStart = length + 1 - n;                        // the last n-1 tokens
        for (int i = 0; i + n <= length; i++) {
            boolean same = true;
            for (int j = 0; j < n - 1 && same; j++) {
                same = sequence[i + j] == sequence[prefixStart + j];
            }
            if (same) {
                row[Math.toIntExact(sequence[i + n - 1])] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /** {@code TemperatureLogitsWarper}. */
    static void temperature(float[] row, float temperature) {
        for (int i = 0; i < row.length; i++) {
            row[i] = row[i] / temperature;
        }
    }

    /** {@code TopKLogitsWarper}: scores below the k-th largest become -inf (ties with it stay). */
    static void topK(float[] row, int topK, int minTokensToKeep) {
        int k = Math.min(Math.max(topK, minTokensToKeep), row.length);
        float[] sorted = row.clone();
        Arrays.sort(sorted);
        float threshold = sorted[row.length - k];
        for (int i = 0; i < row.length; i++) {
            if (row[i] < threshold) {
                row[i] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /**
     * {@code TopPLogitsWarper}: sort ascending, drop the tokens whose cumulative probability is at most 1 - p (the
     * last {@code minTokensToKeep} always stay).
     */
    static void topP(float[] row, float topP, int minTokensToKeep) {
        Integer[] order = ascending(row);
        float[] probs = softmaxInOrder(row, order);
        float threshold = (float) (1 - (double) topP);
        float cumulative = 0;
        boolean[] remove = new boolean[row.length];
        for (int i = 0; i < row.length; i++) {
            cumulative += probs[i];
            remove[i] = cumulative <= threshold && i < row.length - minTokensToKeep;
        }
        for (int i = 0; i < row.length; i++) {
            if (remove[i]) {
                row[order[i]] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /** The indices of {@code keys} by ascending key (a stable sort: equal keys by index). */
    private static Integer[] ascending(float[] keys) {
        Integer[] order = IntStream.range(0, keys.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble(i -> keys[i]));
        return order;
    }

    /** The softmax of {@code row}'s entries taken in {@code order} (as torch gathers, then softmaxes). */
    private static float[] softmaxInOrder(float[] row, Integer[] order) {
        float[] gathered = new float[row.length];
        for (int i = 0; i < row.length; i++) {
            gathered[i] = row[order[i]];
        }
        return softmax(gathered);
    }

    /**
     * {@code MinPLogitsWarper}: tokens whose probability is below min_p times the largest one become -inf, except
     * the {@code minTokensToKeep} highest scores.
     */
    static void minP(float[] row, float minP, int minTokensToKeep) {
        float[] probs = softmax(row);
        float top = 0;
        for (float q : probs) {
            top = Math.max(top, q);
        }
        float threshold = minP * top;
        Integer[] order = IntStream.range(0, row.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, (a, b) -> Float.compare(row[b], row[a]));
        boolean[] keep = new boolean[row.length];
        for (int r = 0; r < Math.min(minTokensToKeep, row.length); r++) {
            keep[order[r]] = true;
        }
        for (int i = 0; i < row.length; i++) {
            if (probs[i] < threshold && !keep[i]) {
                row[i] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /**
     * {@code MinLengthLogitsProcessor} and {@code MinNewTokensLengthLogitsProcessor}: the eos ids get -inf while the
     * sequence is shorter than {@code minLength} or fewer than {@code minNewTokens} of it are new.
     */
    static void minLength(float[] row, int length, int newTokens, int minLength, int minNewTokens,
                          java.util.List<Integer> eos) {
        if (length < minLength || newTokens < minNewTokens) {
            for (int id : eos) {
                if (id >= 0 && id < row.length) {
                    row[id] = Float.NEGATIVE_INFINITY;
                }
            }
        }
    }

    /**
     * {@code SequenceBiasLogitsProcessor} (and {@code NoBadWordsLogitsProcessor}, whose biases are -inf): a
     * one-token sequence's bias always goes to its token; a longer one's to its last token when the sequence so far,
     * {@code history[0, length)}, ends with the tokens before it. The biases are summed per token first, as there.
     *
     * @throws IllegalArgumentException naming {@code field} for a token id outside the vocabulary
     */
    static void sequenceBias(float[] row, int[] history, int length, Map<List<Integer>, Float> biases, String field) {
        Map<Integer, Float> total = new LinkedHashMap<>();
        for (var e : biases.entrySet()) {
            for (int id : e.getKey()) {
                if (id >= row.length) {
                    throw new IllegalArgumentException(field + " " + e.getKey() + ": token id " + id
                            + " is outside the model's vocabulary of " + row.length);
                }
            }
            if (e.getKey().size() == 1) {
                total.put(e.getKey().getFirst(), e.getValue());
            }
        }
        for (var e : biases.entrySet()) {
            List<Integer> ids = e.getKey();
            int prefix = ids.size() - 1;
            if (prefix == 0 || ids.size() > length) {
                continue;
            }
            boolean matches = true;
            for (int i = 0; i < prefix && matches; i++) {
                matches = history[length - prefix + i] == ids.get(i);
            }
            if (matches) {
                total.merge(ids.getLast(), e.getValue(), Float::sum);
            }
        }
        total.forEach((id, bias) -> row[id] += bias);
    }

    /** Every listed id (those inside the vocabulary, as torch.isin over arange(V)) gets -inf. */
    static void suppress(float[] row, List<Integer> ids) {
        for (int id : ids) {
            if (id < row.length) {
                row[id] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /** {@code ForcedBOSTokenLogitsProcessor} / {@code ForcedEOSTokenLogitsProcessor}: -inf everywhere, 0 at the ids. */
    static void force(float[] row, List<Integer> ids) {
        Arrays.fill(row, Float.NEGATIVE_INFINITY);
        for (int id : ids) {
            if (id >= row.length) {
                throw new IllegalArgumentException("forced token id " + id + " is outside the model's vocabulary of "
                        + row.length);
            }
            row[id] = 0;
        }
    }

    /**
     * {@code ExponentialDecayLengthPenalty}: once the sequence is longer than {@code start} (prompt included), each
     * eos score s becomes s + |s| * (factor^(length - start) - 1), the factor raised in double and the product in
     * float as there.
     */
    static void lengthDecay(float[] row, int length, int start, double factor, List<Integer> eos) {
        if (length <= start) {
            return;
        }
        float grow = (float) (Math.pow(factor, length - start) - 1);
        float[] penalties = new float[eos.size()];
        for (int i = 0; i < eos.size(); i++) {
            penalties[i] = Math.abs(row[eos.get(i)]) * grow;
        }
        for (int i = 0; i < eos.size(); i++) {
            row[eos.get(i)] += penalties[i];
        }
    }

    /** {@code InfNanRemoveLogitsProcessor}: NaN -> 0, +-inf -> +-the largest finite float. */
    static void removeInvalid(float[] row) {
        for (int i = 0; i < row.length; i++) {
            float v = row[i];
            row[i] = Float.isNaN(v) ? 0 : v == Float.POSITIVE_INFINITY ? Float.MAX_VALUE
                    : v == Float.NEGATIVE_INFINITY ? -Float.MAX_VALUE : v;
        }
    }

    /**
     * {@code TypicalLogitsWarper}: tokens sorted by how far their information -log p is from the entropy; the ones
     * after the smallest prefix whose probability reaches {@code mass} become -inf (the first
     * {@code minTokensToKeep} of that order always stay).
     */
    static void typical(float[] row, float mass, int minTokensToKeep) {
        float[] logp = logSoftmax(row);
        double entropy = 0;
        for (float l : logp) {
            float term = l * (float) Math.exp(l);
            if (!Float.isNaN(term)) {                    // nansum: -inf * 0
                entropy += term;
            }
        }
        float ent = (float) -entropy;
        float[] shifted = new float[row.length];
        for (int i = 0; i < row.length; i++) {
            shifted[i] = Math.abs(-logp[i] - ent);
        }
        Integer[] order = ascending(shifted);
        float[] probs = softmaxInOrder(row, order);
        double cumulative = 0;                           // torch's CPU cumsum accumulates in double
        int lastIndex = 0;
        for (float q : probs) {
            cumulative += q;
            if ((float) cumulative < mass) {
                lastIndex++;
            }
        }
        float limit = shifted[order[Math.min(lastIndex, row.length - 1)]];
        for (int r = Math.min(minTokensToKeep, row.length); r < row.length; r++) {
            if (shifted[order[r]] > limit) {
                row[order[r]] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /**
     * {@code EpsilonLogitsWarper}: tokens with probability below {@code epsilon} become -inf unless they score at
     * least the {@code minTokensToKeep}-th highest.
     */
    static void epsilon(float[] row, float epsilon, int minTokensToKeep) {
        cutBelow(row, softmax(row), epsilon, minTokensToKeep);
    }

    /**
     * {@code EtaLogitsWarper}: {@link #epsilon} with the cut-off min(epsilon, sqrt(epsilon) * e^-entropy), the
     * entropy of the distribution as torch.distributions.Categorical computes it (log-probabilities clamped to the
     * lowest float so that impossible tokens add 0), all in float.
     */
    static void eta(float[] row, float epsilon, int minTokensToKeep) {
        float[] probs = softmax(row);
        float[] logp = logSoftmax(row);
        double sum = 0;
        for (int i = 0; i < row.length; i++) {
            sum += Math.max(logp[i], -Float.MAX_VALUE) * probs[i];
        }
        float entropy = (float) -sum;
        float eta = Math.min(epsilon, (float) Math.sqrt(epsilon) * (float) Math.exp(-entropy));
        cutBelow(row, probs, eta, minTokensToKeep);
    }

    private static void cutBelow(float[] row, float[] probs, float cutoff, int minTokensToKeep) {
        float[] sorted = row.clone();
        Arrays.sort(sorted);
        float kth = sorted[row.length - Math.min(minTokensToKeep, row.length)];
        for (int i = 0; i < row.length; i++) {
            if (probs[i] < cutoff && row[i] < kth) {
                row[i] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /** torch.argmax: the first maximum. */
    static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[best]) {
                best = i;
            }
        }
        return best;
    }

    /** torch.topk(scores, k): the k largest, in descending order (equal scores: the lower index first). */
    static int[] topKIndices(float[] scores, int k) {
        return IntStream.range(0, scores.length).boxed()
                .sorted((a, b) -> scores[a] != scores[b] ? Float.compare(scores[b], scores[a]) : Integer.compare(a, b))
                .limit(k).mapToInt(Integer::intValue).toArray();
    }

    /**
     * {@code torch.multinomial(probs, k)} without replacement by the algorithm torch's CPU kernel uses (an
     * exponential race: the k largest p / q with q ~ Exp(1)), drawn from the torch-compatible generator. The
     * algorithm is torch's; the Exp(1) stream is not torch's {@code exponential_} stream, so a seed does not give
     * torch's samples.
     */
    static int[] multinomial(float[] probs, int k, TorchGenerator rng) {
        float[] keys = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            double q = -Math.log(1.0 - rng.nextDouble());          // Exp(1); 1 - u is in (0, 1]
            keys[i] = probs[i] > 0 ? (float) (probs[i] / q) : Float.NEGATIVE_INFINITY;
        }
        return topKIndices(keys, k);
    }
}
