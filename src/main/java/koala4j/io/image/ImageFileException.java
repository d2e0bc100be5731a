package koala4j.io.image;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A file that exists but cannot be used as an image: not an image, truncated, corrupt, an unsupported format, or a
 * PNG whose text chunks are malformed. The message names the file and the reason; {@link #reason()} is the reason
 * alone (for an HTTP 400 body that must not reveal server paths).
 */
public final class ImageFileException extends IOException {

    private final transient Path file;
    private final String reason;

    public ImageFileException(Path file, String reason) {
        this(file, reason, null);
    }

    public ImageFileException(Path file, String reason, Throwable cause) {
        super(file + ": " + reason, cause);
        this.file = file;
        this.reason = reason;
    }

    /** The file; a placeholder such as {@code <bytes>} when the data came from memory. */
    public Path file() {
        return file;
    }

    public String reason() {
        return reason;
    }
}
