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
}
