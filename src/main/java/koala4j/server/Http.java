package koala4j.server;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.eclipse.jetty.ee10.servlet.ServletContextResponse;
import org.eclipse.jetty.http.HttpFields;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.javalin.http.Context;

/** Request bodies with a size limit, OpenAI error bodies, waiting on a job while watching the client, SSE. */
final class Http {

    static final ObjectMapper JSON = new ObjectMapper();

    private Http() {
    }

    static ObjectNode errorBody(ApiError e) {
        ObjectNode body = JSON.createObjectNode();
        ObjectNode error = body.putObject("error");
        error.put("message", e.getMessage());
        error.put("type", e.type());
        if (e.param() == null) {
            error.putNull("param");
        } else {
            error.put("param", e.param());
        }
        if (e.code() == null) {
            error.putNull("code");
        } else {
            error.put("code", e.code());
        }
        return body;
    }

    static void json(Context ctx, int status, JsonNode body) {
        ctx.status(status);
        ctx.contentType("application/json");
        ctx.result(write(body));
    }

    static String write(JsonNode node) {
        try {
            return JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The request body as a JSON object, refusing more than {@code limit} bytes (413) and anything but an object. */
    static ObjectNode readJson(Context ctx, long limit) {
        long declared = ctx.req().getContentLengthLong();
        if (declared > limit) {
            throw ApiError.tooLarge("request body of " + declared + " bytes: the limit is " + limit + " bytes");
        }
        byte[] bytes;
        try (InputStream in = ctx.req().getInputStream()) {
            bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, limit + 1));
        } catch (IOException e) {
            throw ApiError.invalid(null, "could not read the request body: " + e.getMessage());
        }
        if (bytes.length > limit) {
            throw ApiError.tooLarge("request body over the limit of " + limit + " bytes");
        }
        JsonNode node;
        try {
            node = JSON.readTree(bytes);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw ApiError.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw ApiError.invalid(null, "the request body is not valid JSON: " + e.getMessage());
        }
        if (node == null || !node.isObject()) {
            throw ApiError.invalid(null, "the request body must be a JSON object");
        }
        return (ObjectNode) node;
    }

    /**
     * Waits for a job while checking that the client is still there: HTTP/1.1 shows a closed connection only to a
     * write, so every second an interim {@code 102 Processing} response goes out (clients skip 1xx responses,
     * RFC 9110 section 15.2); when it cannot be written, the client has gone and the job is cancelled.
     */
    static <T> T await(Context ctx, Job<T> job) {
        boolean interim = "HTTP/1.1".equals(ctx.req().getProtocol());
        while (true) {
            try {
                return job.result.get(1, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                if (interim && !clientStillThere(ctx)) {
                    job.cancel("client disconnected");
                }
            } catch (ExecutionException e) {
                if (e.getCause() instanceof ApiError api) {
                    throw api;
                }
                throw ApiError.internal(e.getCause().toString());
            } catch (InterruptedException e) {
                job.cancel("server interrupted");
                Thread.currentThread().interrupt();
                throw ApiError.internal("interrupted");
            }
        }
    }

    private static boolean clientStillThere(Context ctx) {
        try {
            ServletContextResponse.getServletContextResponse(ctx.res()).writeInterim(102, HttpFields.EMPTY)
                    .get(5, TimeUnit.SECONDS);
            return true;
        } catch (Exception e) {
            return false;
        }
    }

    /** A server-sent event stream on the response; writes throw {@link IOException} once the client has gone. */
    static final class Sse {
        private final OutputStream out;

        Sse(Context ctx) throws IOException {
            ctx.status(200);
            ctx.res().setContentType("text/event-stream; charset=utf-8");
            ctx.res().setHeader("Cache-Control", "no-cache");
            ctx.res().setHeader("X-Accel-Buffering", "no");
            out = ctx.res().getOutputStream();
            out.flush();
        }

        synchronized void event(String name, JsonNode data) throws IOException {
            String text = (name == null ? "" : "event: " + name + "\n") + "data: " + write(data) + "\n\n";
            out.write(text.getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        synchronized void data(String raw) throws IOException {
            out.write(("data: " + raw + "\n\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        /** A comment line: keeps proxies from closing an idle stream and finds a client that went away. */
        synchronized void heartbeat() throws IOException {
            out.write(":\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
        }
    }
}
