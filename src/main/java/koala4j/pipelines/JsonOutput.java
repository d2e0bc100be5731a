package koala4j.pipelines;

import koala4j.tokenizers.TextTokenizer;

/**
 * JSON output over a vocabulary (a JSON {@link SamplingParams.Format}): before each choice every token that cannot
 * continue one JSON object the schema allows ({@link JsonPrefix}) gets -inf, as llama.cpp's grammar sampling does;
 * generation ends when the object closes. Special tokens (eos among them) and tokens without bytes are never allowed. One per
 * generation; not thread-safe.
 *
 * <p>A {@link JsonSchema#union} runs one automaton per alternative: a token is allowed when one of those still alive
 * takes it, and taking it drops the alternatives that cannot. All of them close at the same byte (where the object
 * ends does not depend on the schema).
 */
final class JsonOutput {

    private final byte[][] tokenBytes;
    private final JsonPrefix[] states;
    private final JsonPrefix[] scratch;
    private final boolean[] alive;

    /** {@code tokenBytes}: from {@link #table}; shared, not changed. */
    JsonOutput(byte[][] tokenBytes, JsonSchema schema) {
        this.tokenBytes = tokenBytes;
        JsonSchema[] roots = schema.roots();
        states = new JsonPrefix[roots.length];
        scratch = new JsonPrefix[roots.length];
        alive = new boolean[roots.length];
        for (int i = 0; i < roots.length; i++) {
            states[i] = new JsonPrefix(roots[i]);
            scratch[i] = new JsonPrefix(roots[i]);
            alive[i] = true;
        }
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
            if (bytes != null && takes(bytes)) {
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

    private boolean takes(byte[] bytes) {
        for (int i = 0; i < states.length; i++) {
            if (alive[i] && scratch[i].set(states[i]).accept(bytes)) {
                return true;
            }
        }
        return false;
    }

    /** Takes the chosen token (one {@link #mask} allowed). */
    void advance(int id) {
        boolean any = false;
        for (int i = 0; i < states.length; i++) {
            if (alive[i]) {
                // a failed accept leaves its state undefined, so it is tried on a copy
                alive[i] = scratch[i].set(states[i]).accept(tokenBytes[id]);
                if (alive[i]) {
                    states[i].set(scratch[i]);
                    any = true;
                }
            }
        }
        if (!any) {
            throw new IllegalStateException("JSON output: token " + id + " does not continue the JSON object");
        }
    }

    /** The object has closed: generation ends. */
    boolean complete() {
        for (int i = 0; i < states.length; i++) {
            if (alive[i] && states[i].complete()) {
                return true;
            }
        }
        return false;
    }
}
