package koala4j.pipelines;

import java.util.ArrayList;
import java.util.List;

import koala4j.tokenizers.TextTokenizer;

/**
 * JSON output over a vocabulary (a JSON {@link SamplingParams.Format}): before each choice every token that cannot
 * continue one JSON object the schema allows ({@link JsonPrefix}) gets -inf, as llama.cpp's grammar sampling does;
 * generation ends when the object closes. Special tokens (eos among them) and tokens without bytes are never allowed. One per
 * generation; not thread-safe.
 *
 * <p>Where an anyOf's alternatives start alike (two object shapes, tool calls) the text so far may be the start of
 * several of them: every such reading is kept as a state of its own ({@link JsonPrefix#forks}), a token is allowed
 * when one of them takes it, and taking it drops those that cannot (and repeats: readings that have become the same
 * state). At most {@link #MAX_PATHS} are kept; every kept one is a valid reading, so the output stays valid.
 */
final class JsonOutput {

    static final int MAX_PATHS = 256;

    private final byte[][] tokenBytes;
    private List<JsonPrefix> states = new ArrayList<>();
    private final JsonPrefix scratch;

    /** {@code tokenBytes}: from {@link #table}; shared, not changed. */
    JsonOutput(byte[][] tokenBytes, JsonSchema schema) {
        this.tokenBytes = tokenBytes;
        states.add(new JsonPrefix(schema));
        scratch = new JsonPrefix(schema);
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

    /** Whether some reading takes {@code bytes}: first along each state's first alternatives, then every path. */
    private boolean takes(byte[] bytes) {
        boolean forked = false;
        for (JsonPrefix s : states) {
            scratch.set(s);
            scratch.forks = 0;
            if (scratch.accept(bytes)) {
                return true;
            }
            forked |= scratch.forks > 0;
        }
        return forked && !step(states, bytes).isEmpty();
    }

    /** Whether {@code bytes} are one whole object {@code schema} allows, along some reading. */
    static boolean allows(JsonSchema schema, byte[] bytes) {
        for (JsonPrefix s : step(List.of(new JsonPrefix(schema)), bytes)) {
            if (s.complete()) {
                return true;
            }
        }
        return false;
    }

    /** Every reading of {@code from} followed by {@code bytes}, repeats dropped. */
    static List<JsonPrefix> step(List<JsonPrefix> from, byte[] bytes) {
        List<JsonPrefix> current = from;
        for (byte value : bytes) {
            int b = value & 0xFF;
            List<JsonPrefix> next = new ArrayList<>();
            for (JsonPrefix s : current) {
                JsonPrefix first = s.copy();
                first.fork = 0;
                first.forks = 0;
                boolean ok = first.accept(b);
                int alternatives = first.forks;
                if (ok) {
                    add(next, first);
                }
                for (int k = 1; k < alternatives; k++) {
                    JsonPrefix other = s.copy();
                    other.fork = k;
                    other.forks = 0;
                    if (other.accept(b)) {
                        add(next, other);
                    }
                }
            }
            current = next;
            if (current.isEmpty()) {
                break;
            }
        }
        return current;
    }

    private static void add(List<JsonPrefix> states, JsonPrefix s) {
        if (states.size() >= MAX_PATHS) {
            return;
        }
        for (JsonPrefix t : states) {
            if (t.sameAs(s)) {
                return;
            }
        }
        states.add(s);
    }

    /** Takes the chosen token (one {@link #mask} allowed). */
    void advance(int id) {
        List<JsonPrefix> next = step(states, tokenBytes[id]);
        if (next.isEmpty()) {
            throw new IllegalStateException("JSON output: token " + id + " does not continue the JSON object");
        }
        states = next;
    }

    /** The object has closed: generation ends. */
    boolean complete() {
        for (JsonPrefix s : states) {
            if (s.complete()) {
                return true;
            }
        }
        return false;
    }
}
