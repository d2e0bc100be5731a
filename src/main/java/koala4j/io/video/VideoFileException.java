package koala4j.io.video;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A file that exists but cannot be used as a video: not a GIF and no ffmpeg to decode it, a format ffmpeg cannot
 * read, no video stream, corrupt or truncated data. The message names the file and the reason; {@link #reason()} is
 * the reason alone (for an HTTP 400 body that must not reveal server paths).
 */
public final class VideoFileException extends IOException {

    private final transient Path file;
    private final String reason;

    public VideoFileException(Path file, String reason) {
        this(file, reason, null);
    }

    public VideoFileException(Path file, String reason, Throwable cause) {
        super(file + ": " + reason, cause);
        this.file = file;
        this.reason = reason;
    }

    public Path file() {
        return file;
    }

    public String reason() {
        return reason;
    }
}
