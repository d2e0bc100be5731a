package koala4j.server;

/**
 * An error answered in OpenAI's shape: {@code {"error": {"message", "type", "param", "code"}}} with an HTTP status.
 * {@code type} follows OpenAI's names (invalid_request_error, authentication_error, rate_limit_error, ...).
 */
public final class ApiError extends RuntimeException {

    private final int status;
    private final String type;
    private final String param;
    private final String code;
    private final Integer retryAfterSeconds;

    public ApiError(int status, String type, String param, String code, String message, Integer retryAfterSeconds) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    public static ApiError invalid(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, "invalid_value", message, null);
    }

    public static ApiError notFound(String code, String message) {
        return new ApiError(404, "invalid_request_error", null, code, message, null);
    }

    public static ApiError modelNotFound(String model, String message) {
        return new ApiError(404, "invalid_request_error", "model", "model_not_found", message, null);
    }

    public static ApiError unauthorized(String message) {
        return new ApiError(401, "authentication_error", null, "invalid_api_key", message, null);
    }

    public static ApiError tooLarge(String message) {
        return new ApiError(413, "invalid_request_error", null, "request_too_large", message, null);
    }

    public static ApiError busy(String message, int retryAfterSeconds) {
        return new ApiError(429, "rate_limit_error", null, "queue_full", message, retryAfterSeconds);
    }

    public static ApiError conflict(String code, String message) {
        return new ApiError(409, "invalid_request_error", null, code, message, null);
    }

    public static ApiError unavailable(String param, String message) {
        return new ApiError(503, "server_error", param, "model_unavailable", message, null);
    }

    public static ApiError timeout(String message) {
        return new ApiError(504, "timeout_error", null, "timeout", message, null);
    }

    public static ApiError upstream(int status, String message) {
        return new ApiError(status, status == 429 ? "rate_limit_error" : "upstream_error", null, "upstream_error",
                message, null);
    }

    public static ApiError internal(String message) {
        return new ApiError(500, "server_error", null, "internal_error", message, null);
    }

    public int status() {
        return status;
    }

    public String type() {
        return type;
    }

    public String param() {
        return param;
    }

    public String code() {
        return code;
    }

    public Integer retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
