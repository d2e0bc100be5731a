package koala4j.server;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import koala4j.pipelines.JsonSchema;

/**
 * OpenAI tool calling ({@code tools} / {@code tool_choice}, and the legacy {@code functions} / {@code function_call})
 * for models that have no tool format of their own (LLaVA's, Vicuna's and Ko-LLaVA's templates have none), in the
 * generic way llama.cpp's server uses for such models: the tools and their JSON Schemas are described in the prompt,
 * and the answer is constrained to one JSON object, {@code {"tool_calls": [{"name": ..., "arguments": {...}}, ...]}}
 * (one or more calls, each with the arguments its tool's schema allows; {@code {"tool_call": {...}}}, one call, with
 * {@code parallel_tool_calls} false or legacy functions), or (tool_choice auto) {@code {"response": "..."}}; the
 * server turns that object back into {@code tool_calls} or {@code content}. History is written the same way: an
 * assistant message's tool calls as the object the model would have written, tool results as a user turn
 * {@code {"tool_response": {"name", "tool_call_id", "content"}}}. Immutable.
 */
final class ToolCalls {

    enum Mode { NONE, AUTO, REQUIRED, NAMED }

    record Tool(String name, String description, JsonNode parameters) {
    }

    /** One call read back: a new call id, the tool's name, its arguments as a JSON string. */
    record Call(String id, String name, String arguments) {
    }

    /**
     * The model's answer read back: calls, or text content; a truncated object (max_tokens) comes back as content,
     * as written.
     */
    record Output(String content, List<Call> calls) {
        boolean isCall() {
            return !calls.isEmpty();
        }
    }

    static final int MAX_TOOLS = 64;
    private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9_-]{1,64}");
    private static final String ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();

    final List<Tool> tools;
    final Mode mode;
    /** With {@link Mode#NAMED}: the tool that must be called. */
    final String named;
    /** Asked for as {@code functions}: answered with {@code function_call}. */
    final boolean legacy;
    /** Several calls per answer allowed ({@code parallel_tool_calls}, true unless set false; never for functions). */
    final boolean parallel;

    private ToolCalls(List<Tool> tools, Mode mode, String named, boolean legacy, boolean parallel) {
        this.tools = List.copyOf(tools);
        this.mode = mode;
        this.named = named;
        this.legacy = legacy;
        this.parallel = parallel;
    }

    /**
     * The request's tools and how they may be used; null when it has none (absent, null or an empty list).
     *
     * @throws ApiError (400) naming the field: a tool that is not a function, a name that is not 1-64 letters, digits,
     *                  _ or -, two tools of one name, parameters that are not an object schema koala4j supports, a
     *                  tool_choice naming no tool, tool_choice without tools, tools and functions together
     */
    static ToolCalls parse(JsonNode body) {
        boolean hasTools = given(body, "tools");
        boolean hasFunctions = given(body, "functions");
        if (hasTools && hasFunctions) {
            throw ApiError.invalid("functions", "functions: give tools or the legacy functions, not both");
        }
        String listField = hasFunctions ? "functions" : "tools";
        String choiceField = hasFunctions ? "function_call" : "tool_choice";
        if (!hasTools && !hasFunctions) {
            for (String field : List.of("tool_choice", "function_call")) {
                JsonNode c = body.get(field);
                if (c != null && !c.isNull() && !(c.isTextual() && c.asText().equals("none"))) {
                    throw ApiError.invalid(field, field + ": needs " + (field.equals("tool_choice") ? "tools"
                            : "functions") + " to choose from");
                }
            }
            return null;
        }
        JsonNode list = body.get(listField);
        if (!list.isArray()) {
            throw ApiError.invalid(listField, listField + ": expected an array of " + (hasFunctions
                    ? "{\"name\", \"description\", \"parameters\"} objects"
                    : "{\"type\": \"function\", \"function\": {\"name\", \"description\", \"parameters\"}} objects"));
        }
        if (list.size() > MAX_TOOLS) {
            throw ApiError.invalid(listField, listField + ": " + list.size() + " tools, at most " + MAX_TOOLS);
        }
        List<Tool> tools = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < list.size(); i++) {
            String where = listField + "[" + i + "]";
            JsonNode item = list.get(i);
            if (!item.isObject()) {
                throw ApiError.invalid(listField, where + ": expected an object");
            }
            JsonNode function = item;
            if (!hasFunctions) {
                if (!item.path("type").asText("").equals("function")) {
                    throw ApiError.invalid(listField, where + ".type " + shown(item.get("type"))
                            + ": expected \"function\" (the only tool type)");
                }
                function = item.get("function");
                where += ".function";
                if (function == null || !function.isObject()) {
                    throw ApiError.invalid(listField, where + ": expected {\"name\", \"description\", \"parameters\"}");
                }
            }
            Tool tool = tool(function, where, listField);
            if (!names.add(tool.name())) {
                throw ApiError.invalid(listField, where + ".name \"" + tool.name() + "\": a second tool of that name");
            }
            tools.add(tool);
        }
        JsonNode choice = body.get(choiceField);
        Mode mode = Mode.AUTO;
        String named = null;
        if (choice != null && !choice.isNull()) {
            if (choice.isTextual() && Set.of("none", "auto").contains(choice.asText())
                    || choice.isTextual() && choice.asText().equals("required") && !hasFunctions) {
                mode = Mode.valueOf(choice.asText().toUpperCase(java.util.Locale.ROOT));
            } else if (choice.isObject()) {
                JsonNode name = hasFunctions ? choice.get("name") : choice.path("function").get("name");
                if (!hasFunctions && !choice.path("type").asText("").equals("function") || name == null
                        || !name.isTextual() || !names.contains(name.asText())) {
                    throw ApiError.invalid(choiceField, choiceField + " " + shown(choice) + ": expected "
                            + (hasFunctions ? "{\"name\": NAME}" : "{\"type\": \"function\", \"function\": {\"name\": "
                            + "NAME}}") + " naming one of the " + listField + " (" + String.join(", ", names) + ")");
                }
                mode = Mode.NAMED;
                named = name.asText();
            } else {
                throw ApiError.invalid(choiceField, choiceField + " " + shown(choice) + ": expected "
                        + (hasFunctions ? "\"none\", \"auto\" or {\"name\": NAME}"
                        : "\"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": NAME}}"));
            }
        }
        JsonNode parallel = body.get("parallel_tool_calls");
        if (parallel != null && !parallel.isNull() && !parallel.isBoolean()) {
            throw ApiError.invalid("parallel_tool_calls", "parallel_tool_calls " + shown(parallel)
                    + ": expected true or false");
        }
        return new ToolCalls(tools, mode, named, hasFunctions, !hasFunctions && (parallel == null || parallel.isNull()
                || parallel.asBoolean()));
    }

    /** Whether the request sets {@code field} to something other than null or an empty list. */
    static boolean given(JsonNode body, String field) {
        JsonNode v = body.get(field);
        return v != null && !v.isNull() && !(v.isArray() && v.isEmpty());
    }

    private static Tool tool(JsonNode f, String where, String param) {
        JsonNode name = f.get("name");
        if (name == null || !name.isTextual() || !NAME.matcher(name.asText()).matches()) {
            throw ApiError.invalid(param, where + ".name " + shown(name) + ": expected 1 to 64 letters, digits, _ or -");
        }
        JsonNode description = f.get("description");
        if (description != null && !description.isNull() && !description.isTextual()) {
            throw ApiError.invalid(param, where + ".description: expected a string");
        }
        JsonNode parameters = f.get("parameters");
        if (parameters == null || parameters.isNull()) {
            // OpenAI: no parameters means a function that takes none
            parameters = Http.JSON.createObjectNode().put("type", "object").put("additionalProperties", false)
                    .set("properties", Http.JSON.createObjectNode());
        }
        if (!parameters.isObject()) {
            throw ApiError.invalid(param, where + ".parameters: expected a JSON Schema object");
        }
        try {
            JsonSchema.compile(parameters, where + ".parameters");
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(param, e.getMessage());
        }
        return new Tool(name.asText(), description == null || description.isNull() ? "" : description.asText(),
                parameters);
    }

    private static String shown(JsonNode v) {
        if (v == null) {
            return "(missing)";
        }
        String text = v.toString();
        return text.length() > 60 ? text.substring(0, 60) + "..." : text;
    }

    /** Whether the answer is constrained to a call (or a response): tool_choice other than none. */
    boolean active() {
        return mode != Mode.NONE;
    }

    /**
     * What the answer may be: calls of the callable tools (an array of them, or one), and with tool_choice auto a
     * response, whose value is a string, or with a response_format the object it asks for ({@code responseFormat}:
     * that format's schema node, {@code {"type": "object"}} for json_object; null for text). One schema document:
     * each tool's (and the format's) $defs move to the root under a prefix of their own, their $refs with them.
     */
    JsonSchema schema(JsonNode responseFormat) {
        ObjectNode defs = Http.JSON.createObjectNode();
        List<JsonNode> calls = new ArrayList<>();
        for (int i = 0; i < tools.size(); i++) {
            Tool t = tools.get(i);
            if (mode == Mode.NAMED && !t.name().equals(named)) {
                continue;
            }
            calls.add(objectOf("name", Http.JSON.createObjectNode().put("const", t.name()),
                    "arguments", hoisted(t.parameters(), "tool" + i + "_", defs)));
        }
        JsonNode call = calls.size() == 1 ? calls.getFirst() : anyOf(calls);
        ObjectNode answer = parallel
                ? objectOf("tool_calls", Http.JSON.createObjectNode().put("type", "array").put("minItems", 1)
                        .set("items", call))
                : objectOf("tool_call", call);
        ObjectNode doc = answer;
        if (mode == Mode.AUTO) {
            JsonNode value = responseFormat == null ? Http.JSON.createObjectNode().put("type", "string")
                    : hoisted(responseFormat, "response_", defs);
            doc = anyOf(List.of(answer, objectOf("response", value)));
        }
        if (!defs.isEmpty()) {
            doc.set("$defs", defs);
        }
        return JsonSchema.compile(doc, legacy ? "functions" : "tools");
    }

    private static ObjectNode anyOf(List<JsonNode> alternatives) {
        ObjectNode o = Http.JSON.createObjectNode();
        o.putArray("anyOf").addAll(alternatives);
        return o;
    }

    /**
     * A copy of {@code schema} without its $defs / definitions, which go to {@code defs} as {@code prefix + name};
     * every {@code #/$defs/NAME} and {@code #/definitions/NAME} reference in it (and in them) renamed to match.
     */
    private static JsonNode hoisted(JsonNode schema, String prefix, ObjectNode defs) {
        JsonNode copy = renamed(schema, prefix);
        if (copy.isObject()) {
            for (String section : List.of("$defs", "definitions")) {
                JsonNode d = ((ObjectNode) copy).remove(section);
                if (d != null && d.isObject()) {
                    d.properties().forEach(e -> defs.set(prefix + e.getKey(), e.getValue()));
                }
            }
        }
        return copy;
    }

    private static JsonNode renamed(JsonNode n, String prefix) {
        if (n.isArray()) {
            var out = Http.JSON.createArrayNode();
            n.forEach(item -> out.add(renamed(item, prefix)));
            return out;
        }
        if (!n.isObject()) {
            return n;
        }
        ObjectNode out = Http.JSON.createObjectNode();
        n.properties().forEach(e -> {
            JsonNode v = e.getValue();
            if (e.getKey().equals("$ref") && v.isTextual()) {
                String ref = v.asText();
                for (String section : List.of("#/$defs/", "#/definitions/")) {
                    if (ref.startsWith(section)) {
                        ref = "#/$defs/" + prefix + ref.substring(section.length());
                    }
                }
                out.put("$ref", ref);
            } else {
                out.set(e.getKey(), renamed(v, prefix));
            }
        });
        return out;
    }

    /** {"type": "object", "properties": {key: schema, ...}, every key required, no other keys}. */
    private static ObjectNode objectOf(Object... keysAndSchemas) {
        ObjectNode o = Http.JSON.createObjectNode().put("type", "object");
        ObjectNode props = o.putObject("properties");
        var required = o.putArray("required");
        for (int i = 0; i < keysAndSchemas.length; i += 2) {
            props.set((String) keysAndSchemas[i], (JsonNode) keysAndSchemas[i + 1]);
            required.add((String) keysAndSchemas[i]);
        }
        o.put("additionalProperties", false);
        return o;
    }

    /**
     * The messages with the tool instructions added: to the first system message when there is one, else in front of
     * the first user message (a system message would replace a LLaVA template's own system prompt).
     */
    List<ChatModel.Message> prompt(List<ChatModel.Message> messages, boolean withResponseFormat) {
        if (!active()) {
            return messages;
        }
        String instructions = instructions(withResponseFormat);
        List<ChatModel.Message> out = new ArrayList<>(messages);
        int system = -1;
        int user = -1;
        for (int i = 0; i < out.size(); i++) {
            String role = out.get(i).role();
            if (system < 0 && (role.equals("system") || role.equals("developer"))) {
                system = i;
            }
            if (user < 0 && role.equals("user")) {
                user = i;
            }
        }
        int at = system >= 0 ? system : Math.max(user, 0);
        ChatModel.Message m = out.get(at);
        List<ChatModel.Part> parts = new ArrayList<>();
        if (system >= 0) {
            parts.addAll(m.content());
            parts.add(new ChatModel.TextPart("\n\n" + instructions));
        } else {
            parts.add(new ChatModel.TextPart(instructions + "\n\n"));
            parts.addAll(m.content());
        }
        out.set(at, new ChatModel.Message(m.role(), List.copyOf(parts)));
        return out;
    }

    String instructions(boolean withResponseFormat) {
        StringBuilder b = new StringBuilder();
        List<Tool> shown = mode == Mode.NAMED ? tools.stream().filter(t -> t.name().equals(named)).toList() : tools;
        b.append(shown.size() == 1 ? "You can call this tool:\n" : "You can call these tools:\n");
        for (Tool t : shown) {
            b.append("- ").append(t.name());
            if (!t.description().isBlank()) {
                b.append(": ").append(t.description().strip());
            }
            b.append("\n  arguments (JSON Schema): ").append(t.parameters().toString()).append('\n');
        }
        String one = "{\"name\": \"<tool name>\", \"arguments\": {<arguments>}}";
        String call = parallel ? "{\"tool_calls\": [" + one + ", ...]} (one or more calls)"
                : "{\"tool_call\": " + one + "}";
        switch (mode) {
            case AUTO -> b.append("Answer with one JSON object and nothing else: ").append(call)
                    .append(parallel ? " to call tools, or {\"response\": " : " to call a tool, or {\"response\": ")
                    .append(withResponseFormat ? "<your answer as the JSON the response format asks for>"
                            : "\"<your answer>\"")
                    .append("} to answer directly.");
            case REQUIRED -> b.append("Call one of them: answer with one JSON object and nothing else: ").append(call)
                    .append('.');
            case NAMED -> b.append("Call ").append(named).append(": answer with one JSON object and nothing else: ")
                    .append(call.replace("<tool name>", named)).append('.');
            case NONE -> {
            }
        }
        b.append(" Tool results come back as {\"tool_response\": {\"name\": ..., \"content\": ...}}.");
        return b.toString();
    }

    /** The answer read back as calls or content. */
    Output output(String text) {
        JsonNode answer;
        try {
            answer = Http.JSON.readTree(text);
        } catch (JsonProcessingException e) {
            // cut short: a response's text so far, as it was streamed; anything else as written
            ResponseText partial = new ResponseText();
            String decoded = partial.feed(text);
            return new Output(partial.isResponse() ? decoded : text, List.of());
        }
        if (answer == null || !answer.isObject()) {
            return new Output(text, List.of());
        }
        List<Call> calls = new ArrayList<>();
        JsonNode list = answer.has("tool_calls") ? answer.get("tool_calls")
                : answer.has("tool_call") ? Http.JSON.createArrayNode().add(answer.get("tool_call")) : null;
        if (list != null) {
            for (JsonNode c : list) {
                if (c.path("name").isTextual()) {
                    calls.add(new Call(newCallId(), c.get("name").asText(), c.path("arguments").toString()));
                }
            }
            return new Output(calls.isEmpty() ? text : null, calls);
        }
        JsonNode response = answer.get("response");
        if (response != null) {
            return new Output(response.isTextual() ? response.asText() : response.toString(), List.of());
        }
        return new Output(text, List.of());
    }

    /**
     * The text of an answer's {@code "response"} string as the answer is written, so that a streamed reply shows it
     * as it comes (llama.cpp streams its generic format's responses the same way): fed the generated text piece by
     * piece, it returns the newly decoded characters of the string once the object has shown it is a response
     * (escapes decoded, a surrogate pair held until whole); for a call, or a response that is not a string, nothing.
     * Not thread-safe.
     */
    static final class ResponseText {
        private enum State { OPEN, KEY, COLON, VALUE, STRING, DONE }

        private State state = State.OPEN;
        private final StringBuilder key = new StringBuilder();
        private final StringBuilder escape = new StringBuilder();
        private boolean response;
        private char high;

        /** Whether the answer has shown itself to be a response with a string value. */
        boolean isResponse() {
            return response;
        }

        String feed(String text) {
            StringBuilder out = new StringBuilder();
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                switch (state) {
                    case OPEN -> {
                        if (c == '{') {
                            state = State.KEY;
                        } else if (!Character.isWhitespace(c)) {
                            state = State.DONE;
                        }
                    }
                    case KEY -> {
                        if (c == '"' && key.isEmpty()) {
                            key.append('"');
                        } else if (c == '"') {
                            state = key.toString().equals("\"response") ? State.COLON : State.DONE;
                        } else if (!key.isEmpty()) {
                            key.append(c);
                        } else if (!Character.isWhitespace(c)) {
                            state = State.DONE;
                        }
                    }
                    case COLON -> state = c == ':' ? State.VALUE : Character.isWhitespace(c) ? State.COLON : State.DONE;
                    case VALUE -> {
                        if (c == '"') {
                            state = State.STRING;
                            response = true;
                        } else if (!Character.isWhitespace(c)) {
                            state = State.DONE;
                        }
                    }
                    case STRING -> string(c, out);
                    case DONE -> {
                        return out.toString();
                    }
                }
            }
            return out.toString();
        }

        private void string(char c, StringBuilder out) {
            if (escape.isEmpty()) {
                if (c == '\\') {
                    escape.append(c);
                } else if (c == '"') {
                    state = State.DONE;
                } else {
                    emit(c, out);
                }
                return;
            }
            escape.append(c);
            String e = escape.toString();
            if (e.length() == 2 && e.charAt(1) != 'u') {
                escape.setLength(0);
                emit(switch (e.charAt(1)) {
                    case 'n' -> '\n';
                    case 't' -> '\t';
                    case 'r' -> '\r';
                    case 'b' -> '\b';
                    case 'f' -> '\f';
                    default -> e.charAt(1);
                }, out);
            } else if (e.length() == 6) {
                escape.setLength(0);
                emit((char) Integer.parseInt(e.substring(2), 16), out);
            }
        }

        /** A character of the string; a high surrogate waits for its low one. */
        private void emit(char c, StringBuilder out) {
            if (high != 0) {
                out.append(high);
                high = 0;
                if (Character.isLowSurrogate(c)) {
                    out.append(c);
                    return;
                }
            }
            if (Character.isHighSurrogate(c)) {
                high = c;
            } else {
                out.append(c);
            }
        }
    }

    /** OpenAI's spelling: call_ and 24 letters and digits. */
    static String newCallId() {
        StringBuilder b = new StringBuilder("call_");
        for (int i = 0; i < 24; i++) {
            b.append(ID_CHARS.charAt(RANDOM.nextInt(ID_CHARS.length())));
        }
        return b.toString();
    }

    /** The finish reason of an answer: a call ends as {@code tool_calls} ({@code function_call}), else as generated. */
    String finishReason(Output o, String generated) {
        return o.isCall() ? (legacy ? "function_call" : "tool_calls") : generated;
    }

    /**
     * The calls into a message (or a stream delta): {@code tool_calls} (each with its {@code index} in a delta) or the
     * legacy {@code function_call}.
     */
    void putCalls(ObjectNode message, Output o, boolean delta) {
        if (!o.isCall()) {
            return;
        }
        if (legacy) {
            Call c = o.calls().getFirst();
            message.putObject("function_call").put("name", c.name()).put("arguments", c.arguments());
            return;
        }
        var list = message.putArray("tool_calls");
        for (int i = 0; i < o.calls().size(); i++) {
            Call c = o.calls().get(i);
            ObjectNode call = list.addObject();
            if (delta) {
                call.put("index", i);
            }
            call.put("id", c.id()).put("type", "function").putObject("function").put("name", c.name())
                    .put("arguments", c.arguments());
        }
    }

    // ---- history: OpenAI's tool messages as the text the model reads

    /**
     * The text an assistant message's {@code tool_calls} (or legacy {@code function_call}) stand for in the prompt:
     * the object the model writes to call ({@code {"tool_calls": [...]}} for several, or with {@code asList} for one
     * too); records each call's id and name in {@code names} for the tool results that follow.
     */
    static String callsText(JsonNode message, String where, Map<String, String> names, boolean asList) {
        List<ObjectNode> calls = new ArrayList<>();
        JsonNode list = message.get("tool_calls");
        if (list != null && !list.isNull()) {
            if (!list.isArray()) {
                throw ApiError.invalid(where + ".tool_calls", where + ".tool_calls: expected an array");
            }
            for (int i = 0; i < list.size(); i++) {
                String w = where + ".tool_calls[" + i + "]";
                JsonNode c = list.get(i);
                JsonNode f = c.path("function");
                if (!f.path("name").isTextual()) {
                    throw ApiError.invalid(w, w + ".function.name: expected the called tool's name");
                }
                calls.add(call(f, w));
                if (c.path("id").isTextual()) {
                    names.put(c.get("id").asText(), f.get("name").asText());
                }
            }
        }
        JsonNode legacy = message.get("function_call");
        if (legacy != null && !legacy.isNull()) {
            if (!legacy.path("name").isTextual()) {
                throw ApiError.invalid(where + ".function_call", where + ".function_call.name: expected the called "
                        + "function's name");
            }
            calls.add(call(legacy, where + ".function_call"));
        }
        if (calls.isEmpty()) {
            return null;
        }
        ObjectNode text = Http.JSON.createObjectNode();
        if (calls.size() == 1 && !asList) {
            text.set("tool_call", calls.getFirst());
        } else {
            text.putArray("tool_calls").addAll(calls);
        }
        return text.toString();
    }

    /** {"name", "arguments"} with the arguments string read as JSON (kept as a string when it is not JSON). */
    private static ObjectNode call(JsonNode f, String where) {
        ObjectNode call = Http.JSON.createObjectNode().put("name", f.get("name").asText());
        JsonNode args = f.get("arguments");
        if (args != null && args.isTextual()) {
            try {
                call.set("arguments", Http.JSON.readTree(args.asText()));
            } catch (JsonProcessingException e) {
                call.set("arguments", args);
            }
        } else if (args != null && !args.isNull()) {
            throw ApiError.invalid(where, where + ".arguments: expected a string of JSON");
        } else {
            call.putObject("arguments");
        }
        return call;
    }

    /** A tool (or legacy function) result as the user turn the model reads. */
    static String resultText(String name, String callId, String content) {
        ObjectNode r = Http.JSON.createObjectNode();
        ObjectNode inner = r.putObject("tool_response");
        if (name != null) {
            inner.put("name", name);
        }
        if (callId != null) {
            inner.put("tool_call_id", callId);
        }
        inner.put("content", content);
        return r.toString();
    }
}
