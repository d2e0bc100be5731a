package koala4j.io.json;

import java.nio.file.Path;

/**
 * A JSON file that cannot be read, does not parse, or holds a value of the wrong type or range. The message always
 * starts with the file; for a value it reads {@code "<file>: <path>: found <value>, expected <what>"}, where
 * {@code <path>} is the RFC 6901 JSON pointer of the value (e.g. {@code /vision_config/hidden_size}).
 */
public final class JsonException extends RuntimeException {
    private final Path file;
    private final String path;
    private final String found;
    private final String expected;
    private final String detail;

    /** A value error; {@code found == null} means the key is missing. */
    JsonException(Path file, String path, String found, String expected) {
        this(file, path, found, expected,
                displayPath(path) + ": " + (found == null ? "missing" : "found " + found) + ", expected " + expected,
                null);
    }

    /** A file-level error (unreadable, not UTF-8, not JSON), described in words. */
    static JsonException problem(Path file, String problem, Throwable cause) {
        return new JsonException(file, "", null, null, problem, cause);
    }

    private JsonException(Path file, String path, String found, String expected, String detail, Throwable cause) {
        super(file + ": " + detail, cause);
        this.file = file;
        this.path = path;
        this.found = found;
        this.expected = expected;
        this.detail = detail;
    }

    /** The file the JSON came from (for {@link Json#parse(String, String)}: the source name as a path). */
    public Path file() {
        return file;
    }

    /** JSON pointer of the offending value ({@code ""} for the document itself). */
    public String path() {
        return path;
    }

    /** The value found, as JSON text (long values abbreviated); {@code null} when the key is missing or for a file-level error. */
    public String found() {
        return found;
    }

    /** What was expected ({@code "int"}, {@code "list of int"}, {@code one of "a", "b"}); {@code null} for a file-level error. */
    public String expected() {
        return expected;
    }

    /** The message without the leading {@code "<file>: "}, for callers that wrap this error in their own. */
    public String detail() {
        return detail;
    }

    /** The pointer for a message: keys in hostile files can be megabytes long, so each is cut to 60 characters. */
    static String displayPath(String path) {
        if (path.isEmpty()) return "(document)";
        if (path.length() <= 200) return path;
        StringBuilder shown = new StringBuilder();
        for (String key : path.substring(1).split("/", -1)) {
            shown.append('/').append(Json.abbreviate(key, 60));
        }
        return shown.toString();
    }
}
