package koala4j.tokenizers;

import java.util.ArrayList;
import java.util.List;

/**
 * Incremental decoding for printing tokens as they are generated, as transformers' {@code TextStreamer}
 * (generation/streamers.py): the ids so far are decoded as a whole and only text that can no longer change is released
 * — up to the last space, everything after a newline, or everything when the text ends in a CJK ideograph. A
 * half-finished UTF-8 character (a byte-fallback token awaiting its continuation bytes) thus stays back until complete.
 * Not thread-safe: one per generation.
 */
public final class TextStreamer {

    private final TextTokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private final List<Integer> cache = new ArrayList<>();
    private int printed;

    public TextStreamer(TextTokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /** Adds one generated id; returns the text that became final (often empty). */
    public String put(int id) {
        cache.add(id);
        String text = tokenizer.decode(cache.stream().mapToInt(Integer::intValue).toArray(), skipSpecialTokens);
        String out;
        if (text.endsWith("\n")) {
            out = text.substring(Math.min(printed, text.length()));
            cache.clear();
            printed = 0;
        } else if (!text.isEmpty() && BasicTokenizer.isChineseChar(text.codePointBefore(text.length()))) {
            out = text.substring(Math.min(printed, text.length()));
            printed += out.length();
        } else {
            int end = text.lastIndexOf(' ') + 1;
            out = end > printed ? text.substring(printed, end) : "";
            printed += out.length();
        }
        return out;
    }

    /** The rest of the text at the end of generation. */
    public String end() {
        if (cache.isEmpty()) {
            return "";
        }
        String text = tokenizer.decode(cache.stream().mapToInt(Integer::intValue).toArray(), skipSpecialTokens);
        String out = text.substring(Math.min(printed, text.length()));
        cache.clear();
        printed = 0;
        return out;
    }
}
