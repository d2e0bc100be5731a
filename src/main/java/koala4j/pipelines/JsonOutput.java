package koala4j.pipelines;

import koala4j.tokenizers.TextTokenizer;

/**
 * JSON output over a vocabulary (a JSON {@link SamplingParams.Format}): before each choice every token that cannot
 * continue one JSON object the schema allows ({@link JsonPrefix}) gets -inf, as llama.cpp's grammar sampling does;
 * generation ends when the object closes. Special tokens (eos among them) and tokens without bytes are never allowed. One per
 * generation; not thread-safe.
 */
final class JsonOutput {

    private final byte[][] tokenBytes;
    private final JsonPrefix state;
    private final JsonPrefix scratch;

    /** {@code tokenBytes}: from {@link #table}; shared, not changed. */
    JsonOutput(byte[][] tokenBytes, JsonSchema schema) {
        this.tokenBytes = tokenBytes;
        this.state = new JsonPrefix(schema);
        this.scratch = new JsonPrefix(schema);
    }

    /** Each token's bytes ({@link TextTokenizer#tokenBytes}); null for special tokens and tokens without bytes. */
    static byte[][] table(TextTokenizer tokenizer) {
        byte[][] table = new byte[tokenizer.size()][];
        for (int id = 0; id < table.length; id++) {
            if (!tokenizer.isSpecial(id)) {
                byte[] bytes = tokenizer.tokenBytes(id);
                table[id] = bytes.length == 0 ? null : bytes;
            }
        }
        return table;
    }

    /**
     * -inf for every token that cannot come next (ids past the tokenizer's, as in a padded vocabulary, included).
     *
     * @throws IllegalStateException when no token with a finite score can (a vocabulary without the bytes JSON needs,
     *                               or processors that removed all of them)
     */
    void mask(float[] scores) {
        boolean any = false;
        for (int id = 0; id < scores.length; id++) {
            if (scores[id] == Float.NEGATIVE_INFINITY) {
                continue;
            }
            byte[] bytes = id < tokenBytes.length ? tokenBytes[id] : null;
            if (bytes != null && scratch.set(state).accept(bytes)) {
                any = true;
            } else {
                scores[id] = Float.NEGATIVE_INFINITY;
            }
        }
        if (!any) {
            throw new IllegalStateException("JSON output: no token the other settings allow continues the JSON object "
                    + "at this point");
        }
    }

    /** Takes the chosen token (one {@link #mask} allowed). */
    void advance(int id) {
        if (!state.accept(tokenBytes[id])) {
            throw new IllegalStateException("JSON output: token " + id + " does not continue the JSON object");
        }
    }

    /** The object has closed: generation ends. */
    boolean complete() {
        return state.complete();
    }
}
