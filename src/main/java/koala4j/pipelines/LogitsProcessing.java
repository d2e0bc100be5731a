package koala4j.pipelines;

import java.util.Arrays;
import java.util.Comparator;
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
        Integer[] order = IntStream.range(0, row.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble(i -> row[i]));
        float[] sortedLogits = new float[row.length];
        for (int i = 0; i < row.length; i++) {
            sortedLogits[i] = row[order[i]];
        }
        float[] probs = softmax(sortedLogits);
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
