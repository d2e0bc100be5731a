package koala4j.pipelines;

import java.util.Collection;
import java.util.Locale;

/**
 * Prompt lookup decoding (transformers' {@code prompt_lookup_num_tokens} / {@code max_matching_ngram_size}, llama.cpp's
 * lookup decoding): the tokens that followed an earlier occurrence of the sequence's last n-gram are drafted as its
 * continuation, and one forward pass over the last token and the drafts checks them all; drafts are kept up to the
 * first one the model would not have chosen, plus the model's own token after them. The answer is the one decoding
 * token by token gives (the same tokens and, sampling, the same draws); only the number of forward passes changes.
 *
 * @param numTokens drafts per pass at most (transformers' prompt_lookup_num_tokens); 0 = off
 * @param maxNgram  the longest n-gram matched (max_matching_ngram_size; transformers' default 2): the longest first,
 *                  then shorter ones down to a single token
 */
public record PromptLookup(int numTokens, int maxNgram) {

    /** max_matching_ngram_size when a configuration does not set it (transformers' default). */
    public static final int DEFAULT_MAX_NGRAM = 2;

    public static final PromptLookup NONE = new PromptLookup(0, DEFAULT_MAX_NGRAM);

    public PromptLookup {
        if (numTokens < 0 || maxNgram < 1) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "prompt lookup of %d tokens with n-grams up "
                    + "to %d: expected 0 (off) or more tokens and n-grams of at least 1 token", numTokens, maxNgram));
        }
    }

    /**
     * The setting of two command-line options, {@code tokensOption} (drafts per pass, 0 = off) and
     * {@code ngramOption} (the longest n-gram, default 2); null when neither is given (a model folder's own setting
     * then stands). An error names the option and the value.
     */
    public static PromptLookup fromOptions(String tokensOption, Integer tokens, String ngramOption, Integer ngram) {
        if (tokens == null) {
            if (ngram != null) {
                throw new IllegalArgumentException(ngramOption + " " + ngram + " needs " + tokensOption
                        + " (drafts per pass)");
            }
            return null;
        }
        if (tokens < 0) {
            throw new IllegalArgumentException(tokensOption + " " + tokens + ": expected 0 (off) or more draft tokens");
        }
        if (ngram != null && ngram < 1) {
            throw new IllegalArgumentException(ngramOption + " " + ngram + ": expected an n-gram of at least 1 token");
        }
        return new PromptLookup(tokens, ngram != null ? ngram : DEFAULT_MAX_NGRAM);
    }

    public boolean enabled() {
        return numTokens > 0;
    }

    /**
     * The drafts after {@code sequence[0, length)}, at most {@code limit} of them (none: an empty array), as
     * transformers' PromptLookupCandidateGenerator picks them: for n from min(maxNgram, length - 1) down to 1, the
     * earliest occurrence of the last n tokens that some token follows gives up to {@code numTokens} of the tokens
     * after it (not past the sequence's end); the drafts end before the first of {@code eos}.
     */
    public int[] draft(int[] sequence, int length, int limit, Collection<Integer> eos) {
        int most = Math.min(numTokens, limit);
        if (most <= 0 || length < 2) {
            return new int[0];
        }
        for (int n = Math.min(maxNgram, length - 1); n >= 1; n--) {
            int tail = length - n;
            // an occurrence at i is followed by a token when i + n < length, that is i < tail
            for (int i = 0; i < tail; i++) {
                if (matches(sequence, i, tail, n)) {
                    int start = i + n;
                    int end = Math.min(start + most, length);
                    int cut = start;
                    while (cut < end && !eos.contains(sequence[cut])) {
                        cut++;
                    }
                    return java.util.Arrays.copyOfRange(sequence, start, cut);
                }
            }
        }
        return new int[0];
    }

    private static boolean matches(int[] sequence, int at, int tail, int n) {
        for (int j = 0; j < n; j++) {
            if (sequence[at + j] != sequence[tail + j]) {
                return false;
            }
        }
        return true;
    }
}
