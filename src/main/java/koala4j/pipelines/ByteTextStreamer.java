package koala4j.pipelines;

import java.util.Arrays;
import java.util.function.Consumer;

import koala4j.tokenizers.ByteTokenizer;

/**
 * A byte-level model's answer as text pieces while its tokens come: after each token the whole answer so far is
 * decoded as the final text will be (special tokens skipped) and what it adds goes out. A UTF-8 sequence still
 * incomplete decodes to nothing until its last byte comes, so no partial character goes out. transformers'
 * clean_up_tokenization can still change the last few characters when more text follows (" ." becomes "." once
 * the "." comes), so with it the last {@link #HOLD_BACK} characters wait; {@link #finish} sends the rest. The pieces
 * always add up to the final text.
 */
final class ByteTextStreamer {

    /**
     * Characters kept back under clean-up: its longest pattern is four characters and replacements may chain
     * (ByteTextStreamerTest's random answers need 4; 16 leaves room).
     */
    static final int HOLD_BACK = 16;

    private final ByteTokenizer tokenizer;
    private final Consumer<String> out;
    private int[] ids = new int[64];
    private int count;
    private String sent = "";

    ByteTextStreamer(ByteTokenizer tokenizer, Consumer<String> out) {
        this.tokenizer = tokenizer;
        this.out = out;
    }

    void add(long id) {
        if (count == ids.length) {
            ids = Arrays.copyOf(ids, 2 * count);
        }
        ids[count++] = Math.toIntExact(id);
        String text = tokenizer.decode(Arrays.copyOf(ids, count), true);
        send(text, tokenizer.cleansUpTokenizationSpaces() ? text.length() - HOLD_BACK : text.length());
    }

    /** Sends what of the final text has not gone out. */
    void finish(String text) {
        send(text, text.length());
    }

    private void send(String text, int end) {
        if (end > 0 && end < text.length() && Character.isHighSurrogate(text.charAt(end - 1))) {
            end--;                                                  // not half of a surrogate pair
        }
        // the prefix check guards the sum of the pieces: clean-up never reaches back past the held characters
        if (end > sent.length() && text.startsWith(sent)) {
            out.accept(text.substring(sent.length(), end));
            sent = text.substring(0, end);
        }
    }
}
