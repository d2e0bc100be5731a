package koala4j.server;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import koala4j.pipelines.Cancel;
import koala4j.pipelines.JsonSchema;

/**
 * The OpenAI-compatible routes: {@code POST /v1/images/generations}, {@code GET /v1/models},
 * {@code POST /v1/chat/completions} and the legacy {@code POST /v1/completions} (both with SSE streaming), and
 * koala4j's job routes: {@code POST /v1/jobs} (the
 * same body as a generation, answered 202 at once), {@code GET|DELETE /v1/jobs/{id}}, and progress events over SSE
 * at {@code /v1/jobs/{id}/events} (or several jobs on one stream at {@code /v1/jobs/events?ids=a,b}).
 */
final class OpenAiRoutes {

    private static final Pattern DATA_URL = Pattern.compile("data:(image/(?:png|jpeg|webp|gif));base64,([A-Za-z0-9+/=\\s]+)");
    private static final int MAX_STREAM_JOBS = 9;

    private final KoalaServer server;

    OpenAiRoutes(KoalaServer server) {
        this.server = server;
    }

    void register(RoutesConfig r) {
        r.post("/v1/images/generations", this::generate);
        r.get("/v1/models", this::models);
        r.get("/v1/models/<model>", this::model);
        r.post("/v1/chat/completions", this::chat);
        r.post("/v1/completions", this::completions);
        r.post("/v1/embeddings", this::embeddings);
        r.post("/v1/jobs", this::submitJob);
        r.get("/v1/jobs/events", this::events);
        r.get("/v1/jobs/{id}", this::jobStatus);
        r.delete("/v1/jobs/{id}", this::cancelJob);
        r.get("/v1/jobs/{id}/events", this::events);
    }

    static String baseUrl(Context ctx) {
        return ctx.scheme() + "://" + ctx.host();
    }

    private void generate(Context ctx) {
        ObjectNode body = Http.readJson(ctx, server.config().limits().maxBodyBytes());
        ImageRequests.ImageRequest request = server.parseImageRequest(body, true);
        Job<Generations.Result> job = server.generations().submit(request.model(), request.spec(), request.user(), null);
        ctx.header("X-Koala4j-Job", job.id);
        Generations.Result result = Http.await(ctx, job);
        Http.json(ctx, 200, server.generations().summary(result, baseUrl(ctx), request.responseFormat()));
    }

    private void models(Context ctx) {
        ObjectNode body = Http.JSON.createObjectNode();
        body.put("object", "list");
        ArrayNode data = body.putArray("data");
        server.imageModels().values().forEach(m -> data.add(item(m)));
        server.chatModels().values().forEach(m -> data.add(item(m)));
        Http.json(ctx, 200, body);
    }

    /** OpenAI's retrieve model, {@code GET /v1/models/{model}}: the list's entry (ids may hold slashes). */
    private void model(Context ctx) {
        String id = ctx.pathParam("model");
        ImageModel image = server.imageModels().get(id);
        ChatModel chat = server.chatModels().get(id);
        if (image == null && chat == null) {
            throw ApiError.modelNotFound(id, "the model " + ImageRequests.quote(id) + " does not exist (GET /v1/models "
                    + "lists them)");
        }
        Http.json(ctx, 200, image != null ? item(image) : item(chat));
    }

    private static ObjectNode item(ImageModel m) {
        ObjectNode item = Http.JSON.createObjectNode();
        item.put("id", m.id());
        item.put("object", "model");
        item.put("created", 0);
        item.put("owned_by", m.provider().equals("local") ? "koala4j" : m.provider());
        item.put("task", "text-to-image");
        item.put("display_name", m.displayName());
        item.put("available", m.unavailableReason() == null);
        if (m.unavailableReason() != null) {
            item.put("unavailable_reason", m.unavailableReason());
        }
        return item;
    }

    private static ObjectNode item(ChatModel m) {
        ObjectNode item = Http.JSON.createObjectNode();
        item.put("id", m.id());
        item.put("object", "model");
        item.put("created", 0);
        item.put("owned_by", "koala4j");
        item.put("task", "chat");
        item.put("display_name", m.displayName());
        item.put("available", true);
        return item;
    }

    // ---- jobs

    private void submitJob(Context ctx) {
        ObjectNode body = Http.readJson(ctx, server.config().limits().maxBodyBytes());
        ImageRequests.ImageRequest request = server.parseImageRequest(body, true);
        Job<Generations.Result> job = server.generations().submit(request.model(), request.spec(), request.user(), null);
        ctx.header("Location", "/v1/jobs/" + job.id);
        Http.json(ctx, 202, status(job));
    }

    private Job<?> job(String id) {
        if (id == null || !Generations.ID.matcher(id).matches()) {
            throw ApiError.invalid("id", "job id " + ImageRequests.quote(id) + ": expected 32 hex digits");
        }
        return server.queue().find(id).orElseThrow(() -> ApiError.notFound("job_not_found", "no job " + id
                + " (jobs are kept in memory for a while after they end; finished generations are in /api/gallery)"));
    }

    static ObjectNode status(Job<?> job) {
        ObjectNode s = Http.JSON.createObjectNode();
        s.put("id", job.id);
        s.put("object", "job");
        s.put("kind", job.kind);
        if (job.visibleModel() != null) {
            s.put("model", job.visibleModel());
        }
        s.put("status", job.state().label());
        s.put("created", job.createdMs / 1000);
        s.put("step", job.step());
        s.put("total", job.total());
        JsonNode summary = job.summary();
        if (summary != null) {
            s.set("result", summary);
        }
        if (job.error() != null) {
            s.set("error", Http.errorBody(job.error()).get("error"));
        }
        return s;
    }

    private void jobStatus(Context ctx) {
        Http.json(ctx, 200, status(job(ctx.pathParam("id"))));
    }

    private void cancelJob(Context ctx) {
        Job<?> job = job(ctx.pathParam("id"));
        job.cancel("cancelled by DELETE /v1/jobs/" + job.id);
        Http.json(ctx, 200, status(job));
    }

    /**
     * Progress events of one or several jobs: {@code progress} (step of total), {@code stage}, then {@code done}
     * (the result, image URLs relative to this server) or {@code error} per job, and {@code end} when all ended.
     * A job whose every event stream has gone away before it ended is cancelled: the client watching it has left.
     */
    private void events(Context ctx) throws IOException {
        Set<String> ids = new LinkedHashSet<>();
        String one = ctx.pathParamMap().get("id");
        if (one != null) {
            ids.add(one);
        } else {
            String list = ctx.queryParam("ids");
            if (list == null || list.isBlank()) {
                throw ApiError.invalid("ids", "ids: expected comma-separated job ids");
            }
            ids.addAll(List.of(list.split(",")));
            if (ids.size() > MAX_STREAM_JOBS) {
                throw ApiError.invalid("ids", "ids: at most " + MAX_STREAM_JOBS + " jobs per stream, got " + ids.size());
            }
        }
        List<Job<?>> jobs = new ArrayList<>();
        for (String id : ids) {
            jobs.add(job(id.strip()));
        }
        BlockingQueue<Job.Event> events = new LinkedBlockingQueue<>();
        Http.Sse sse = new Http.Sse(ctx);
        List<Runnable> unsubscribe = new ArrayList<>();
        Set<String> open = new LinkedHashSet<>();
        for (Job<?> j : jobs) {
            open.add(j.id);
        }
        try {
            for (Job<?> j : jobs) {
                unsubscribe.add(j.subscribe(events::add));
            }
            while (!open.isEmpty()) {
                Job.Event e = events.poll(1, TimeUnit.SECONDS);
                if (e == null) {
                    sse.heartbeat();
                    continue;
                }
                String id = e.data().get("job").asText();
                if (!open.contains(id)) {
                    continue;
                }
                sse.event(e.name(), e.data());
                if (e.name().equals("done") || e.name().equals("error")) {
                    open.remove(id);
                }
            }
            sse.event("end", Http.JSON.createObjectNode().put("jobs", jobs.size()));
        } catch (IOException | InterruptedException gone) {
            unsubscribe.forEach(Runnable::run);
            unsubscribe.clear();
            for (Job<?> j : jobs) {
                if (!j.state().finished() && !j.hasListeners()) {
                    j.cancel("client disconnected from the event stream");
                }
            }
        } finally {
            unsubscribe.forEach(Runnable::run);
        }
    }

    // ---- chat

    private void chat(Context ctx) throws IOException {
        ObjectNode body = Http.readJson(ctx, server.config().limits().maxChatBodyBytes());
        ChatModel model = chatModel(body);
        ToolCalls given = ToolCalls.parse(body);
        ToolCalls tools = given != null && given.active() ? given : null;
        List<ChatModel.Message> parsed = messages(body, server.config().imageUrls(), given == null || given.parallel);
        Integer logprobs = chatLogprobs(body);
        JsonNode format = null;
        if (tools != null) {
            String field = tools.legacy ? "functions" : "tools";
            if (!model.constrainsJson()) {
                throw ApiError.invalid(field, field + ": the model '" + model.id() + "' cannot constrain its answer "
                        + "to JSON, which tool calls need");
            }
            if (logprobs != null) {
                throw ApiError.invalid("logprobs", "logprobs: not with " + field + " (the answer is read back as a "
                        + "call or as content)");
            }
            format = responseFormatSchema(body);
            parsed = tools.prompt(parsed, format != null);
        }
        List<ChatModel.Message> messages = parsed;
        ChatModel.Params params = params(body, null, 1, logprobs, false, tools, format);
        respond(ctx, body, model, TextApi.CHAT, "", params, tools,
                (p, streams) -> model.completeChoices(messages, p, streams));
    }

    /**
     * OpenAI's legacy {@code POST /v1/completions}: the prompt as given, no chat template (BOS added as the tokenizer
     * does), {@code max_tokens} 16 unless given, {@code echo} puts the prompt in front of the answer.
     */
    private void completions(Context ctx) throws IOException {
        ObjectNode body = Http.readJson(ctx, server.config().limits().maxChatBodyBytes());
        ChatModel model = chatModel(body);
        JsonNode p = body.get("prompt");
        if (p != null && p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            p = p.get(0);
        }
        if (p == null || !p.isTextual()) {
            throw ApiError.invalid("prompt", "prompt: expected a string (or an array of one string; token arrays and "
                    + "several prompts per request are not supported)");
        }
        String prompt = p.asText();
        refuseTools(body);
        if (body.hasNonNull("best_of") && !(body.get("best_of").canConvertToInt() && body.get("best_of").asInt() == 1)) {
            throw ApiError.invalid("best_of", "best_of " + body.get("best_of") + ": only 1 is supported");
        }
        if (body.hasNonNull("suffix") && !body.get("suffix").asText().isEmpty()) {
            throw ApiError.invalid("suffix", "suffix: insertion (text after the completion) is not supported");
        }
        boolean echoed = echo(body);
        Integer logprobs = body.hasNonNull("logprobs") ? alternatives(body, "logprobs", MAX_LOGPROBS) : null;
        ChatModel.Params params = params(body, 16, 0, logprobs, echoed && logprobs != null, null, null);
        String echo = echoed ? prompt : "";
        respond(ctx, body, model, TextApi.COMPLETION, echo, params, null,
                (textParams, streams) -> model.completeTextChoices(prompt, textParams, streams));
    }

    /** Inputs one {@code POST /v1/embeddings} may hold (OpenAI allows 2048; these models embed on the CPU). */
    static final int MAX_EMBEDDING_INPUTS = 64;

    /**
     * OpenAI's {@code POST /v1/embeddings}: {@code input} a string or an array of strings (token arrays are refused),
     * {@code encoding_format} float (default) or base64 (the float32 values, little-endian, in base64, as OpenAI
     * sends them); one queued job embeds every input in order.
     */
    private void embeddings(Context ctx) throws IOException {
        ObjectNode body = Http.readJson(ctx, server.config().limits().maxChatBodyBytes());
        ChatModel model = chatModel(body);
        List<String> inputs = embeddingInputs(body.get("input"));
        JsonNode f = body.get("encoding_format");
        String format = f == null || f.isNull() ? "float" : f.isTextual() ? f.asText() : null;
        if (!"float".equals(format) && !"base64".equals(format)) {
            throw ApiError.invalid("encoding_format", "encoding_format " + abbreviated(body.get("encoding_format"))
                    + ": expected \"float\" or \"base64\"");
        }
        if (body.hasNonNull("dimensions")) {
            throw ApiError.invalid("dimensions", "dimensions: not supported (the vectors keep the model's width)");
        }
        String id = Generations.newId();
        Job<List<ChatModel.Embedding>> job = server.queue().submit(id, "embeddings", model.id(), false, false,
                j -> {
                    List<ChatModel.Embedding> out = new ArrayList<>(inputs.size());
                    for (String input : inputs) {
                        out.add(model.embed(input, j.cancel));
                    }
                    return out;
                }, r -> Http.JSON.createObjectNode().put("inputs", r.size()));
        List<ChatModel.Embedding> results = Http.await(ctx, job);
        ObjectNode out = Http.JSON.createObjectNode();
        out.put("object", "list");
        var data = out.putArray("data");
        int tokens = 0;
        for (int i = 0; i < results.size(); i++) {
            ObjectNode item = data.addObject().put("object", "embedding").put("index", i);
            float[] v = results.get(i).vector();
            if (format.equals("base64")) {
                java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(v.length * Float.BYTES)
                        .order(java.nio.ByteOrder.LITTLE_ENDIAN);
                bytes.asFloatBuffer().put(v);
                item.put("embedding", java.util.Base64.getEncoder().encodeToString(bytes.array()));
            } else {
                var values = item.putArray("embedding");
                for (float x : v) {
                    values.add(x);
                }
            }
            tokens += results.get(i).tokens();
        }
        out.put("model", model.id());
        out.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        Http.json(ctx, 200, out);
    }

    /** {@code input}: one non-empty string, or 1 to {@link #MAX_EMBEDDING_INPUTS} of them. */
    private static List<String> embeddingInputs(JsonNode input) {
        List<JsonNode> items = new ArrayList<>();
        if (input != null && input.isArray()) {
            input.forEach(items::add);
            if (items.isEmpty() || items.size() > MAX_EMBEDDING_INPUTS) {
                throw ApiError.invalid("input", "input: expected 1 to " + MAX_EMBEDDING_INPUTS + " strings, got "
                        + items.size());
            }
        } else if (input != null) {
            items.add(input);
        }
        if (items.isEmpty()) {
            throw ApiError.invalid("input", "input: required (a string or an array of strings)");
        }
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            JsonNode item = items.get(i);
            String where = input.isArray() ? "input[" + i + "]" : "input";
            if (!item.isTextual()) {
                throw ApiError.invalid("input", where + " " + abbreviated(item) + ": expected a string (token arrays"
                        + " are not supported)");
            }
            if (item.asText().isEmpty()) {
                throw ApiError.invalid("input", where + ": expected a non-empty string");
            }
            texts.add(item.asText());
        }
        return texts;
    }

    private ChatModel chatModel(JsonNode body) {
        String modelId = body.hasNonNull("model") ? ImageRequests.checkModelId(ImageRequests.string(body, "model", 200)) : null;
        if (modelId == null) {
            throw ApiError.invalid("model", "model: required");
        }
        Map<String, ChatModel> chats = server.chatModels();
        ChatModel model = chats.get(modelId);
        if (model == null) {
            throw ApiError.modelNotFound(modelId, chats.isEmpty()
                    ? "the model '" + modelId + "' does not exist: no chat models are loaded (serve a vision-chat or"
                    + " text-to-text model with --chat-model)"
                    : "the model '" + modelId + "' does not exist; chat models: " + String.join(", ", chats.keySet()));
        }
        return model;
    }

    /** Alternatives per token OpenAI's {@code top_logprobs} allows (legacy completions' {@code logprobs}: 5; vLLM 20). */
    static final int MAX_LOGPROBS = 20;

    /** Chat's {@code logprobs} (true / false) and {@code top_logprobs} (0-20, only with logprobs true). */
    private static Integer chatLogprobs(JsonNode body) {
        boolean on = false;
        if (body.hasNonNull("logprobs")) {
            if (!body.get("logprobs").isBoolean()) {
                throw ApiError.invalid("logprobs", "logprobs " + abbreviated(body.get("logprobs"))
                        + ": expected true or false (top_logprobs sets how many alternatives)");
            }
            on = body.get("logprobs").asBoolean();
        }
        if (body.hasNonNull("top_logprobs")) {
            int top = ImageRequests.integer(body, "top_logprobs", 0, MAX_LOGPROBS);
            if (!on) {
                throw ApiError.invalid("top_logprobs", "top_logprobs: needs logprobs set to true");
            }
            return top;
        }
        return on ? 0 : null;
    }

    /** Legacy completions' {@code logprobs}: a count of alternatives, 0 to {@code max}. */
    private static int alternatives(JsonNode body, String field, int max) {
        if (!body.get(field).isIntegralNumber()) {
            throw ApiError.invalid(field, field + " " + abbreviated(body.get(field)) + ": expected a number of "
                    + "alternatives per token from 0 to " + max);
        }
        return ImageRequests.integer(body, field, 0, max);
    }

    private static boolean echo(JsonNode body) {
        JsonNode v = body.get("echo");
        if (v != null && !v.isNull() && !v.isBoolean()) {
            throw ApiError.invalid("echo", "echo " + abbreviated(v) + ": expected true or false");
        }
        return v != null && v.asBoolean(false);
    }

    /**
     * {@code response_format}: {@code {"type": "text"}} (the default, null), {@code {"type": "json_object"}} (any JSON
     * object) or {@code {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}} (an object the schema
     * allows: see {@link JsonSchema} for the keywords); anything else is a 400 naming the field.
     */
    private static JsonSchema responseFormat(JsonNode body) {
        JsonNode format = body.get("response_format");
        if (format == null || format.isNull()) {
            return null;
        }
        String type = format.path("type").asText("");
        return switch (type) {
            case "text" -> null;
            case "json_object" -> JsonSchema.anyObject();
            case "json_schema" -> {
                JsonNode schema = format.path("json_schema").path("schema");
                if (!schema.isObject()) {
                    throw ApiError.invalid("response_format", "response_format.json_schema.schema: expected a JSON "
                            + "Schema object");
                }
                try {
                    yield JsonSchema.compile(schema, "response_format.json_schema.schema");
                } catch (IllegalArgumentException e) {
                    throw ApiError.invalid("response_format", e.getMessage());
                }
            }
            default -> throw ApiError.invalid("response_format", "response_format " + abbreviated(format)
                    + ": expected a type of text, json_object or json_schema");
        };
    }

    /**
     * The schema node of a json_schema response_format, {@code {"type": "object"}} for json_object; null for text or
     * none (checked by {@link #responseFormat}).
     */
    private static JsonNode responseFormatSchema(JsonNode body) {
        if (responseFormat(body) == null) {
            return null;
        }
        JsonNode format = body.get("response_format");
        return format.path("type").asText().equals("json_schema") ? format.path("json_schema").path("schema")
                : Http.JSON.createObjectNode().put("type", "object");
    }

    /**
     * The sampling fields both text APIs take, and their response_format, or with {@code tools} (tool_choice other
     * than none) the answers those allow, a response shaped by {@code toolsFormat} ({@link #responseFormatSchema}); {@code defaultMaxTokens} when the request sets none (null: the model's);
     * at least {@code minMaxTokens} (legacy completions take 0: only the echoed prompt is scored). {@code logprobs}
     * and {@code promptLogprobs} as each API spells them, read by the caller.
     */
    private static ChatModel.Params params(JsonNode body, Integer defaultMaxTokens, int minMaxTokens, Integer logprobs,
                                           boolean promptLogprobs, ToolCalls tools, JsonNode toolsFormat) {
        Integer maxTokens = defaultMaxTokens;
        for (String field : List.of("max_tokens", "max_completion_tokens")) {
            if (body.hasNonNull(field)) {
                maxTokens = ImageRequests.integer(body, field, minMaxTokens, 1 << 20);
            }
        }
        Double repetition = number(body, "repetition_penalty", 0, 100);
        if (repetition != null && repetition == 0) {
            throw ApiError.invalid("repetition_penalty", "repetition_penalty 0: expected a number above 0 (1 = off)");
        }
        return new ChatModel.Params(maxTokens,
                number(body, "temperature", 0, 2), number(body, "top_p", 0, 1),
                body.hasNonNull("seed") && body.get("seed").canConvertToLong() ? body.get("seed").asLong() : null,
                stops(body), number(body, "frequency_penalty", -2, 2), number(body, "presence_penalty", -2, 2),
                logitBias(body), topK(body), number(body, "min_p", 0, 1), repetition,
                body.hasNonNull("min_tokens") ? ImageRequests.integer(body, "min_tokens", 0, 1 << 20) : null,
                logprobs, promptLogprobs, tools != null ? tools.schema(toolsFormat) : responseFormat(body));
    }

    /** {@code top_k}: a count, or -1 / 0 for off (vLLM's and llama.cpp's spellings). */
    private static Integer topK(JsonNode body) {
        if (!body.hasNonNull("top_k")) {
            return null;
        }
        return Math.max(0, ImageRequests.integer(body, "top_k", -1, 1 << 20));
    }

    /** The two OpenAI text APIs: object names and where a choice's text goes. */
    private enum TextApi {
        CHAT("chatcmpl-", "chat.completion", "chat.completion.chunk"),
        COMPLETION("cmpl-", "text_completion", "text_completion");

        final String idPrefix;
        final String object;
        final String chunkObject;

        TextApi(String idPrefix, String object, String chunkObject) {
            this.idPrefix = idPrefix;
            this.object = object;
            this.chunkObject = chunkObject;
        }
    }

    @FunctionalInterface
    private interface TextRun {
        /** One answer per stream ({@link ChatModel#completeChoices}). */
        List<ChatModel.Result> run(ChatModel.Params params, List<ChatModel.Stream> streams) throws Exception;
    }

    /**
     * Text of one choice as it is produced, or (text null) that choice's end with its finish reason; with the
     * log-probabilities of the tokens since the last delta (empty without logprobs).
     */
    private record Delta(int choice, String text, String finish, List<ChatModel.TokenLogprob> logprobs,
                         ToolCalls.Output output) {
        Delta(int choice, String text, String finish, List<ChatModel.TokenLogprob> logprobs) {
            this(choice, text, finish, logprobs, null);
        }
    }

    /**
     * One choice's log-probabilities: all of them for the whole answer, and those not yet sent with a delta. The
     * echoed prompt (legacy completions) goes out as the choice's first delta, with the prompt's log-probabilities
     * when they were asked for.
     */
    private static final class ChoiceLog implements ChatModel.Stream {
        final int choice;
        final String echo;
        final boolean waitForPrompt;
        final BlockingQueue<Delta> deltas;
        final Job<?> job;
        final ToolCalls tools;
        /** With tools: a response's text as it is written, and how much of it went out. */
        private final ToolCalls.ResponseText response = new ToolCalls.ResponseText();
        private final StringBuilder streamed = new StringBuilder();
        final List<ChatModel.TokenLogprob> all = new ArrayList<>();
        private List<ChatModel.TokenLogprob> pending = new ArrayList<>();
        private boolean echoSent;

        /**
         * With {@code tools} the answer is read back as a call or content at the end; only a response's string goes
         * out as it is written.
         */
        ChoiceLog(int choice, String echo, boolean waitForPrompt, BlockingQueue<Delta> deltas, Job<?> job,
                  ToolCalls tools) {
            this.choice = choice;
            this.echo = echo;
            this.waitForPrompt = waitForPrompt;
            this.deltas = deltas;
            this.job = job;
            this.tools = tools;
            if (!waitForPrompt && !echo.isEmpty()) {
                sendEcho(List.of());
            }
        }

        private void sendEcho(List<ChatModel.TokenLogprob> prompt) {
            echoSent = true;
            all.addAll(prompt);
            deltas.add(new Delta(choice, echo, null, prompt));
        }

        @Override
        public void delta(String text) {
            job.cancel.check();
            if (tools == null) {
                deltas.add(new Delta(choice, text, null, drain()));
                return;
            }
            String shown = response.feed(text);
            if (!shown.isEmpty()) {
                streamed.append(shown);
                deltas.add(new Delta(choice, shown, null, drain()));
            }
        }

        @Override
        public void logprobs(ChatModel.TokenLogprob token) {
            all.add(token);
            pending.add(token);
        }

        @Override
        public void promptLogprobs(List<ChatModel.TokenLogprob> prompt) {
            if (!echoSent) {
                sendEcho(prompt);
            }
        }

        @Override
        public void end(ChatModel.Result result) {
            if (tools == null) {
                deltas.add(new Delta(choice, null, result.finishReason(), drain()));
                return;
            }
            ToolCalls.Output output = tools.output(result.text());
            String reason = tools.finishReason(output, result.finishReason());
            if (!output.isCall() && output.content() != null && output.content().startsWith(streamed.toString())) {
                // what of the content has not gone out yet
                output = new ToolCalls.Output(output.content().substring(streamed.length()), List.of());
            }
            deltas.add(new Delta(choice, null, reason, drain(), output));
        }

        @Override
        public Cancel cancel() {
            return job.cancel;
        }

        private List<ChatModel.TokenLogprob> drain() {
            List<ChatModel.TokenLogprob> out = pending;
            pending = new ArrayList<>();
            return out;
        }
    }

    /** OpenAI's {@code n}: choices per request, each a separate generation. */
    static final int MAX_CHOICES = 16;

    /**
     * Runs one text job on the queue and answers it as one JSON object or as SSE chunks ending in [DONE]. With
     * {@code n} > 1 the job generates the choices as the model does them ({@link ChatModel#completeChoices}: a local
     * LLaMA / LLaVA model computes the prompt once and decodes the choices together), choice i with seed + i (the
     * request's seed, else 0), so that sampled choices differ and each is reproducible; greedy choices are equal, as
     * OpenAI's are at temperature 0. Streamed choices interleave, each chunk naming its index.
     */
    private void respond(Context ctx, JsonNode body, ChatModel model, TextApi api, String echo,
                         ChatModel.Params params, ToolCalls tools, TextRun work) throws IOException {
        int n = body.hasNonNull("n") ? ImageRequests.integer(body, "n", 1, MAX_CHOICES) : 1;
        boolean stream = body.path("stream").asBoolean(false);
        boolean streamUsage = stream && body.path("stream_options").path("include_usage").asBoolean(false);
        String id = Generations.newId();
        BlockingQueue<Delta> deltas = new LinkedBlockingQueue<>();
        List<ChoiceLog> logs = new java.util.concurrent.CopyOnWriteArrayList<>();
        Job<List<ChatModel.Result>> job = server.queue().submit(id, "chat", model.id(), false, false,
                new JobQueue.Work<>() {
                    @Override
                    public List<ChatModel.Result> run(Job<List<ChatModel.Result>> j) throws Exception {
                        List<ChatModel.Stream> streams = new ArrayList<>();
                        for (int i = 0; i < n; i++) {
                            ChoiceLog log = new ChoiceLog(i, echo, params.promptLogprobs(), deltas, j, tools);
                            logs.add(log);
                            streams.add(log);
                        }
                        return work.run(params, streams);
                    }
                }, r -> Http.JSON.createObjectNode().put("text", r.getFirst().text())
                        .put("finish_reason", r.getFirst().finishReason()).put("choices", r.size()));
        long created = System.currentTimeMillis() / 1000;
        String completionId = api.idPrefix + id;
        boolean logprobs = params.logprobs() != null;
        if (!stream) {
            List<ChatModel.Result> results = Http.await(ctx, job);
            ObjectNode out = Http.JSON.createObjectNode();
            out.put("id", completionId);
            out.put("object", api.object);
            out.put("created", created);
            out.put("model", model.id());
            var choices = out.putArray("choices");
            for (int i = 0; i < results.size(); i++) {
                ChatModel.Result result = results.get(i);
                ObjectNode choice = choices.addObject();
                choice.put("index", i);
                String finish = result.finishReason();
                if (tools != null) {
                    ToolCalls.Output output = tools.output(result.text());
                    ObjectNode message = choice.putObject("message").put("role", "assistant");
                    message.put("content", output.content());
                    tools.putCalls(message, output, false);
                    finish = tools.finishReason(output, finish);
                } else if (api == TextApi.CHAT) {
                    choice.putObject("message").put("role", "assistant").put("content", result.text());
                } else {
                    choice.put("text", echo + result.text());
                }
                choice.set("logprobs", logprobs ? logprobsJson(api, logs.get(i).all, new int[1]) : null);
                choice.put("finish_reason", finish);
            }
            out.set("usage", usage(results));
            Http.json(ctx, 200, out);
            return;
        }
        Http.Sse sse = new Http.Sse(ctx);
        int[][] offsets = new int[n][1];
        try {
            if (api == TextApi.CHAT) {
                for (int i = 0; i < n; i++) {
                    sse.data(Http.write(chunk(api, completionId, created, model.id(), i, "", null, true, null)));
                }
            }
            while (true) {
                Delta d = deltas.poll(1, TimeUnit.SECONDS);
                if (d != null) {
                    if (d.output() != null && (d.output().isCall() || d.output().content() != null
                            && !d.output().content().isEmpty())) {
                        // a tool-calling answer: its calls, or the content not streamed yet, then the finish chunk
                        ObjectNode c = chunk(api, completionId, created, model.id(), d.choice(), d.output().content(),
                                null, false, null);
                        tools.putCalls((ObjectNode) c.at("/choices/0/delta"), d.output(), true);
                        sse.data(Http.write(c));
                    }
                    ObjectNode lp = logprobs && !d.logprobs().isEmpty()
                            ? logprobsJson(api, d.logprobs(), offsets[d.choice()]) : null;
                    sse.data(Http.write(chunk(api, completionId, created, model.id(), d.choice(), d.text(), d.finish(),
                            false, lp)));
                } else if (job.result.isDone() && deltas.isEmpty()) {
                    break;
                } else {
                    sse.heartbeat();
                }
            }
            if (job.result.isCompletedExceptionally()) {
                ApiError error = job.error() != null ? job.error() : ApiError.internal("chat job " + id + " failed");
                sse.data(Http.write(Http.errorBody(error)));
            } else if (streamUsage) {
                // stream_options.include_usage: one more chunk with no choices and the request's usage
                ObjectNode last = header(api, completionId, created, model.id());
                last.putArray("choices");
                last.set("usage", usage(job.result.join()));
                sse.data(Http.write(last));
            }
            sse.data("[DONE]");
        } catch (IOException | InterruptedException gone) {
            job.cancel("client disconnected");
        }
    }

    /**
     * Log-probabilities as each API writes them: chat's {@code {"content": [{token, logprob, bytes, top_logprobs}]}},
     * legacy completions' {@code {tokens, token_logprobs, top_logprobs (token -> logprob), text_offset}}, whose
     * offsets run on from {@code offset[0]} (the running total of the token texts' lengths in code points, as vLLM
     * counts them; updated).
     */
    private static ObjectNode logprobsJson(TextApi api, List<ChatModel.TokenLogprob> tokens, int[] offset) {
        ObjectNode out = Http.JSON.createObjectNode();
        if (api == TextApi.CHAT) {
            var content = out.putArray("content");
            for (ChatModel.TokenLogprob t : tokens) {
                ObjectNode entry = content.addObject();
                entry.put("token", t.token());
                entry.put("logprob", t.logprob());
                bytes(entry.putArray("bytes"), t.bytes());
                var top = entry.putArray("top_logprobs");
                for (ChatModel.TopLogprob alt : t.top()) {
                    ObjectNode a = top.addObject().put("token", alt.token()).put("logprob", alt.logprob());
                    bytes(a.putArray("bytes"), alt.bytes());
                }
            }
            out.putNull("refusal");
            return out;
        }
        var names = out.putArray("tokens");
        var values = out.putArray("token_logprobs");
        var tops = out.putArray("top_logprobs");
        var offsets = out.putArray("text_offset");
        for (ChatModel.TokenLogprob t : tokens) {
            names.add(t.token());
            if (t.logprob() == null) {
                values.addNull();
                tops.addNull();
            } else {
                values.add(t.logprob());
                ObjectNode top = tops.addObject();
                for (ChatModel.TopLogprob alt : t.top()) {
                    if (!top.has(alt.token())) {
                        top.put(alt.token(), alt.logprob());
                    }
                }
            }
            offsets.add(offset[0]);
            offset[0] += t.token().codePointCount(0, t.token().length());
        }
        return out;
    }

    private static void bytes(com.fasterxml.jackson.databind.node.ArrayNode out, byte[] bytes) {
        for (byte b : bytes) {
            out.add(b & 0xFF);
        }
    }

    /** The prompt counted once (as OpenAI does for n choices), the completions of every choice. */
    private static ObjectNode usage(List<ChatModel.Result> results) {
        ChatModel.Result first = results.getFirst();
        int completion = results.stream().mapToInt(ChatModel.Result::completionTokens).sum();
        ObjectNode usage = Http.JSON.createObjectNode().put("prompt_tokens", first.promptTokens())
                .put("completion_tokens", completion)
                .put("total_tokens", first.promptTokens() + completion);
        usage.putObject("prompt_tokens_details").put("cached_tokens", first.cachedPromptTokens());
        return usage;
    }

    /** Legacy completions have no tool calling: tools there are a 400 naming the field, not silently dropped. */
    private static void refuseTools(JsonNode body) {
        for (String field : List.of("tools", "functions")) {
            if (ToolCalls.given(body, field)) {
                throw ApiError.invalid(field, field + ": tool calling is a /v1/chat/completions feature");
            }
        }
    }

    /** {@code stop}: a string or an array of up to 4 non-empty strings. */
    private static List<String> stops(JsonNode body) {
        JsonNode v = body.get("stop");
        if (v == null || v.isNull()) {
            return List.of();
        }
        List<JsonNode> items = new ArrayList<>();
        if (v.isArray()) {
            v.forEach(items::add);
        } else {
            items.add(v);
        }
        if (items.size() > 4) {
            throw ApiError.invalid("stop", "stop: " + items.size() + " strings, expected at most 4");
        }
        List<String> out = new ArrayList<>();
        for (JsonNode item : items) {
            if (!item.isTextual() || item.asText().isEmpty() || item.asText().length() > 256) {
                throw ApiError.invalid("stop", "stop " + abbreviated(item) + ": expected a string of 1 to 256 "
                        + "characters, or an array of up to 4 of them");
            }
            out.add(item.asText());
        }
        return out;
    }

    /** {@code logit_bias}: token ids (as JSON object keys) to a bias from -100 to 100; at most 300 entries. */
    private static Map<Integer, Float> logitBias(JsonNode body) {
        JsonNode v = body.get("logit_bias");
        if (v == null || v.isNull()) {
            return Map.of();
        }
        if (!v.isObject() || v.size() > 300) {
            throw ApiError.invalid("logit_bias", "logit_bias: expected an object of at most 300 token ids to biases");
        }
        Map<Integer, Float> out = new HashMap<>();
        for (var e : v.properties()) {
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException notInt) {
                id = -1;
            }
            if (id < 0) {
                throw ApiError.invalid("logit_bias", "logit_bias key " + abbreviated(Http.JSON.getNodeFactory()
                        .textNode(e.getKey())) + ": expected a token id");
            }
            if (!e.getValue().isNumber() || !(Math.abs(e.getValue().asDouble()) <= 100)) {
                throw ApiError.invalid("logit_bias", "logit_bias[" + id + "] " + abbreviated(e.getValue())
                        + ": expected a number from -100 to 100");
            }
            out.put(id, (float) e.getValue().asDouble());
        }
        return out;
    }

    private static String abbreviated(JsonNode node) {
        String text = node.toString();
        return text.length() > 40 ? text.substring(0, 40) + "..." : text;
    }

    private static ObjectNode header(TextApi api, String id, long created, String model) {
        ObjectNode c = Http.JSON.createObjectNode();
        c.put("id", id);
        c.put("object", api.chunkObject);
        c.put("created", created);
        c.put("model", model);
        return c;
    }

    /**
     * One streamed choice: chat puts {@code text} in {@code delta.content} ({@code role} too on the first chunk; an
     * empty delta with the finish reason last), completions in {@code text}.
     */
    private static ObjectNode chunk(TextApi api, String id, long created, String model, int index, String text,
                                    String finish, boolean first, ObjectNode logprobs) {
        ObjectNode c = header(api, id, created, model);
        ObjectNode choice = c.putArray("choices").addObject();
        choice.put("index", index);
        if (api == TextApi.CHAT) {
            ObjectNode delta = choice.putObject("delta");
            if (first) {
                delta.put("role", "assistant");
            }
            if (text != null) {
                delta.put("content", text);
            }
        } else {
            choice.put("text", text == null ? "" : text);
        }
        choice.set("logprobs", logprobs);
        if (finish == null) {
            choice.putNull("finish_reason");
        } else {
            choice.put("finish_reason", finish);
        }
        return c;
    }

    private static Double number(JsonNode body, String field, double min, double max) {
        if (!body.hasNonNull(field)) {
            return null;
        }
        JsonNode v = body.get(field);
        if (!v.isNumber() || !(v.asDouble() >= min && v.asDouble() <= max)) {
            throw ApiError.invalid(field, field + " " + v + ": expected a number from " + min + " to " + max);
        }
        return v.asDouble();
    }

    /**
     * OpenAI messages: content as a string or as parts (text, image_url with a data: URL). Tool calling's messages
     * become text as {@link ToolCalls} writes them: an assistant message's tool_calls (or function_call) the object
     * the model writes to call, tool (and legacy function) results a user turn, consecutive results one turn.
     */
    static List<ChatModel.Message> messages(JsonNode body, ServerConfig.ImageUrls imageUrls) {
        return messages(body, imageUrls, true);
    }

    /** With {@code callLists}, an assistant turn's calls are written as a list even when there is one. */
    static List<ChatModel.Message> messages(JsonNode body, ServerConfig.ImageUrls imageUrls, boolean callLists) {
        JsonNode list = body.get("messages");
        if (list == null || !list.isArray() || list.isEmpty()) {
            throw ApiError.invalid("messages", "messages: expected a non-empty array");
        }
        List<ChatModel.Message> out = new ArrayList<>();
        Map<String, String> callNames = new HashMap<>();
        boolean lastWasResult = false;
        for (int i = 0; i < list.size(); i++) {
            JsonNode m = list.get(i);
            String where = "messages[" + i + "]";
            String role = m.path("role").asText("");
            if (!Set.of("system", "developer", "user", "assistant", "tool", "function").contains(role)) {
                throw ApiError.invalid(where + ".role", where + ".role " + ImageRequests.quote(role)
                        + ": expected system, developer, user, assistant, tool or function");
            }
            String calls = role.equals("assistant") ? ToolCalls.callsText(m, where, callNames, callLists) : null;
            JsonNode content = m.get("content");
            List<ChatModel.Part> parts = new ArrayList<>();
            if (content != null && content.isTextual()) {
                parts.add(new ChatModel.TextPart(content.asText()));
            } else if (content != null && content.isArray()) {
                for (int k = 0; k < content.size(); k++) {
                    JsonNode p = content.get(k);
                    String pw = where + ".content[" + k + "]";
                    switch (p.path("type").asText("")) {
                        case "text" -> parts.add(new ChatModel.TextPart(p.path("text").asText("")));
                        case "image_url" -> parts.add(image(p.path("image_url").path("url").asText(""), pw,
                                imageUrls));
                        default -> throw ApiError.invalid(pw + ".type", pw + ".type " + ImageRequests.quote(p.path("type")
                                .asText(null)) + ": expected text or image_url");
                    }
                }
            } else if (calls == null || content != null && !content.isNull()) {
                throw ApiError.invalid(where + ".content", where + ".content: expected a string or an array of parts"
                        + (role.equals("assistant") ? " (or null with tool_calls)" : ""));
            }
            if (calls != null) {
                parts.add(new ChatModel.TextPart((parts.isEmpty() ? "" : "\n") + calls));
            }
            if (role.equals("tool") || role.equals("function")) {
                String result = toolResult(m, where, role, parts, callNames);
                if (lastWasResult) {
                    ChatModel.Message previous = out.removeLast();
                    List<ChatModel.Part> joined = new ArrayList<>(previous.content());
                    joined.add(new ChatModel.TextPart("\n" + result));
                    out.add(new ChatModel.Message("user", List.copyOf(joined)));
                } else {
                    out.add(new ChatModel.Message("user", List.of(new ChatModel.TextPart(result))));
                }
                lastWasResult = true;
                continue;
            }
            lastWasResult = false;
            out.add(new ChatModel.Message(role, List.copyOf(parts)));
        }
        return out;
    }

    /** A tool message's text parts (images refused) as {@link ToolCalls#resultText}. */
    private static String toolResult(JsonNode m, String where, String role, List<ChatModel.Part> parts,
                                     Map<String, String> callNames) {
        StringBuilder text = new StringBuilder();
        for (ChatModel.Part p : parts) {
            if (!(p instanceof ChatModel.TextPart t)) {
                throw ApiError.invalid(where + ".content", where + ": a " + role + " message with an image; only user "
                        + "messages carry images");
            }
            text.append(t.text());
        }
        if (role.equals("function")) {
            if (!m.path("name").isTextual()) {
                throw ApiError.invalid(where + ".name", where + ".name: expected the name of the function that gave "
                        + "this result");
            }
            return ToolCalls.resultText(m.get("name").asText(), null, text.toString());
        }
        JsonNode id = m.get("tool_call_id");
        if (id == null || !id.isTextual()) {
            throw ApiError.invalid(where + ".tool_call_id", where + ".tool_call_id: expected the id of the tool call "
                    + "this message answers");
        }
        return ToolCalls.resultText(callNames.get(id.asText()), id.asText(), text.toString());
    }

    private static ChatModel.ImagePart image(String url, String where, ServerConfig.ImageUrls imageUrls) {
        var m = DATA_URL.matcher(url);
        if (!m.matches()) {
            String lower = url.toLowerCase(java.util.Locale.ROOT);
            if (imageUrls != ServerConfig.ImageUrls.NONE && (lower.startsWith("http://") || lower.startsWith("https://"))) {
                return RemoteImages.fetch(url, imageUrls, where + ".image_url.url");
            }
            throw ApiError.invalid(where + ".image_url.url", where + ".image_url.url: expected a data:image/(png|jpeg|webp|gif)"
                    + ";base64,... URL" + (imageUrls == ServerConfig.ImageUrls.NONE
                    ? " (this server does not fetch http(s) URLs; start it with --image-urls public to allow that)"
                    : " or an http(s) URL") + ", got " + ImageRequests.quote(url));
        }
        try {
            return new ChatModel.ImagePart(m.group(1), Base64.getMimeDecoder().decode(m.group(2)));
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(where + ".image_url.url", where + ".image_url.url: invalid base64: " + e.getMessage());
        }
    }
}
