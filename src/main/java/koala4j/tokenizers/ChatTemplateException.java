package koala4j.tokenizers;

/**
 * A chat template does not parse, raised an exception ({@code raise_exception(...)}) or failed while rendering. The
 * message starts with the template's source (a file, or "tokenizer_config.json chat_template") and the line.
 */
public final class ChatTemplateException extends RuntimeException {

    private final String source;
    private final int line;

    ChatTemplateException(String source, int line, String message) {
        super(source + (line > 0 ? ":" + line : "") + ": " + message);
        this.source = source;
        this.line = line;
    }

    /** Where the template came from. */
    public String source() {
        return source;
    }

    /** The 1-based line of the template at fault; 0 when unknown. */
    public int line() {
        return line;
    }
}
