package koala4j.tokenizers;

/**
 * Text to token ids and back. Implementations are immutable after loading and safe to share between threads.
 */
public interface Tokenizer {

    /**
     * Token ids of {@code text} without any special token added around them, as transformers'
     * {@code tokenizer.encode(text, add_special_tokens=False)} gives them.
     */
    int[] encode(String text);

    /** The text of {@code ids}, special tokens included, as transformers' {@code tokenizer.decode(ids)} gives it. */
    String decode(int[] ids);

    /**
     * Whether the text that {@code id} and the tokens before it decode to may still change when more tokens follow
     * (beyond an incomplete character, which shows as U+FFFD): true for byte tokens that a decoder judges together
     * with the byte tokens after them. Streaming holds such text back. False by default.
     */
    default boolean openEnded(int id) {
        return false;
    }
}
