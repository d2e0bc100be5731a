package koala4j.tokenizers;

import java.nio.file.Path;

/**
 * A tokenizer folder could not be loaded: a file is missing, unreadable or does not hold what the reference
 * tokenizer expects. The message names the file, the value found and the value expected.
 */
public final class TokenizerException extends RuntimeException {

    private final transient Path file;

    TokenizerException(Path file, String message) {
        super(file + ": " + message);
        this.file = file;
    }

    TokenizerException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
        this.file = file;
    }

    /** The file (or folder) at fault. */
    public Path file() {
        return file;
    }
}
