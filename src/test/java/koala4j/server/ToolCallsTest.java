package koala4j.server;

import static koala4j.server.TestServers.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.pipelines.VisionChat;
import koala4j.server.TestServers.Client;
import koala4j.testing.TinyChatModels;

/**
 * OpenAI tool calling on the e2e tiny LLaMA (random weights: the calls are the constraint's doing) through a real
 * HTTP client: finished answers are calls of a listed tool with arguments its schema allows, or (auto) content;
 * named choices call that tool; streamed answers carry the same call; legacy functions answer with function_call;
 * tool messages in the history become the text the model reads; every malformed field is a 400 naming it.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ToolCallsTest {

    @TempDir
    static Path data;

    private static KoalaServer server;
    private static Client client;

    private static final String TOOLS = """
            [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"enum": ["Seoul", "Daejeon"]},
                 "days": {"type": "integer"}}, "required": ["city", "days"], "additionalProperties": false}}},
             {"type": "function", "function": {"name": "lights_on", "parameters": {"type": "object",
               "properties": {"on": {"type": "boolean"}}, "required": ["on"], "additionalProperties": false}}}]""";

    @BeforeAll
    static void start() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        CpuOps ops = new CpuOps();
        // the tools' schemas make prompts of more than the tiny model's 512 positions
        b.chatModels.add(LocalChatModels.open("tiny-llama", "tiny llama", TinyChatModels.llamaWithContext(data, 4096),
                VisionChat.Options.defaults(), ops));
        b.chatModels.add(LocalChatModels.open("tiny-t5", "tiny t5", TinyChatModels.t5(), VisionChat.Options.defaults(),
                ops));
        server = KoalaServer.start(b.build());
        client = Client.of(server);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    /**
     * One call per answer unless the test sets parallel_tool_calls: the random tiny model rarely closes a list of
     * calls (it picks a comma and another call about as often as the closing bracket).
     */
    private static ObjectNode body(String choice, int n, int seed) throws Exception {
        ObjectNode body = TestServers.JSON.createObjectNode().put("model", "tiny-llama").put("max_tokens", 160)
                .put("temperature", 1.0).put("seed", seed).put("n", n).put("parallel_tool_calls", false);
        body.putArray("messages").addObject().put("role", "user").put("content", "Is it raining in Seoul?");
        body.set("tools", TestServers.JSON.readTree(TOOLS));
        if (choice != null) {
            body.set("tool_choice", TestServers.JSON.readTree(choice));
        }
        return body;
    }

    /** A finished call: of a listed tool, arguments a JSON string its schema allows. */
    private static void checkCall(String name, String arguments, String where) throws Exception {
        JsonNode args = TestServers.JSON.readTree(arguments);
        switch (name) {
            case "get_weather" -> assertTrue(args.size() == 2 && List.of("Seoul", "Daejeon")
                    .contains(args.path("city").asText()) && args.get("days").isIntegralNumber(), where);
            case "lights_on" -> assertTrue(args.size() == 1 && args.get("on").isBoolean(), where);
            default -> throw new AssertionError("a call of no listed tool: " + where);
        }
    }

    @Test
    void requiredAndNamedChoicesCallListedTools() throws Exception {
        JsonNode r = json(client.post("/v1/chat/completions", body("\"required\"", 10, 3).toString()));
        int calls = 0;
        for (JsonNode choice : r.get("choices")) {
            JsonNode message = choice.get("message");
            if (!choice.get("finish_reason").asText().equals("tool_calls")) {
                assertEquals("length", choice.get("finish_reason").asText(), choice.toString());
                assertFalse(message.has("tool_calls"), choice.toString());
                continue;
            }
            assertTrue(message.get("content").isNull(), choice.toString());
            assertEquals(1, message.get("tool_calls").size(), choice.toString());
            for (JsonNode call : message.get("tool_calls")) {
                assertTrue(call.get("id").asText().matches("call_[A-Za-z0-9]{24}"), call.toString());
                assertEquals("function", call.get("type").asText());
                checkCall(call.at("/function/name").asText(), call.at("/function/arguments").asText(), call.toString());
                calls++;
            }
        }
        assertTrue(calls > 0, r.toString());

        // parallel_tool_calls (OpenAI's default): a list of one or more calls
        int lists = 0;
        JsonNode parallel = null;
        for (int seed : new int[] {3, 19}) {
            parallel = json(client.post("/v1/chat/completions", body("\"required\"", 12, seed)
                    .put("parallel_tool_calls", true).put("max_tokens", 400).toString()));
            for (JsonNode choice : parallel.get("choices")) {
                if (choice.get("finish_reason").asText().equals("tool_calls")) {
                    for (JsonNode call : choice.at("/message/tool_calls")) {
                        checkCall(call.at("/function/name").asText(), call.at("/function/arguments").asText(),
                                choice.toString());
                    }
                    lists++;
                }
            }
        }
        assertTrue(lists > 0, parallel.toString());

        JsonNode named = json(client.post("/v1/chat/completions", body(
                "{\"type\": \"function\", \"function\": {\"name\": \"lights_on\"}}", 8, 7).toString()));
        int lights = 0;
        for (JsonNode choice : named.get("choices")) {
            if (choice.get("finish_reason").asText().equals("tool_calls")) {
                for (JsonNode call : choice.at("/message/tool_calls")) {
                    assertEquals("lights_on", call.at("/function/name").asText(), choice.toString());
                    checkCall("lights_on", call.at("/function/arguments").asText(), choice.toString());
                }
                lights++;
            }
        }
        assertTrue(lights > 0, named.toString());
    }

    @Test
    void autoAnswersWithACallOrWithContent() throws Exception {
        JsonNode r = json(client.post("/v1/chat/completions", body(null, 12, 11).toString()));
        Map<String, Integer> kinds = new TreeMap<>();
        for (JsonNode choice : r.get("choices")) {
            String finish = choice.get("finish_reason").asText();
            JsonNode message = choice.get("message");
            if (finish.equals("tool_calls")) {
                for (JsonNode call : message.get("tool_calls")) {
                    checkCall(call.at("/function/name").asText(), call.at("/function/arguments").asText(),
                            choice.toString());
                }
            } else if (finish.equals("stop")) {
                assertTrue(message.get("content").isTextual() && !message.has("tool_calls"), choice.toString());
            }
            kinds.merge(finish, 1, Integer::sum);
        }
        assertTrue(kinds.containsKey("tool_calls") || kinds.containsKey("stop"), r.toString());

        // tool_choice none: a plain answer, no constraint
        JsonNode none = json(client.post("/v1/chat/completions", body("\"none\"", 1, 1).put("max_tokens", 5)
                .toString()));
        assertEquals("length", none.at("/choices/0/finish_reason").asText(), none.toString());
        assertFalse(none.at("/choices/0/message").has("tool_calls"));
    }

    /** Streamed: the role chunk, one chunk with the whole calls (indexed), the finish chunk; same as unstreamed. */
    @Test
    void streamedCallsEqualUnstreamedOnes() throws Exception {
        ObjectNode body = body("\"required\"", 3, 5);
        JsonNode plain = json(client.post("/v1/chat/completions", body.toString()));
        body.put("stream", true);
        String sse = client.post("/v1/chat/completions", body.toString()).body();
        Map<Integer, List<JsonNode>> calls = new TreeMap<>();
        Map<Integer, String> finish = new TreeMap<>();
        for (String line : sse.split("\n")) {
            if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
                continue;
            }
            for (JsonNode c : TestServers.JSON.readTree(line.substring(6)).get("choices")) {
                int index = c.get("index").asInt();
                if (c.at("/delta").has("tool_calls")) {
                    List<JsonNode> functions = new ArrayList<>();
                    for (JsonNode call : c.at("/delta/tool_calls")) {
                        assertEquals(functions.size(), call.get("index").asInt());
                        assertTrue(call.get("id").asText().startsWith("call_"));
                        functions.add(call.get("function"));
                    }
                    assertNull(calls.put(index, functions), "one call chunk per choice");
                }
                if (!c.get("finish_reason").isNull()) {
                    finish.put(index, c.get("finish_reason").asText());
                }
            }
        }
        assertEquals(3, finish.size(), sse);
        for (int i = 0; i < 3; i++) {
            JsonNode choice = plain.at("/choices/" + i);
            assertEquals(choice.get("finish_reason").asText(), finish.get(i), sse);
            if (finish.get(i).equals("tool_calls")) {
                List<JsonNode> functions = new ArrayList<>();
                choice.at("/message/tool_calls").forEach(call -> functions.add(call.get("function")));
                assertEquals(functions, calls.get(i), sse);
            }
        }
    }

    /** With auto, a response's text streams as it is written; the chunks add up to the unstreamed content. */
    @Test
    void streamedResponsesArriveAsTheyAreWritten() throws Exception {
        ObjectNode body = body(null, 12, 11);
        JsonNode plain = json(client.post("/v1/chat/completions", body.toString()));
        body.put("stream", true);
        String sse = client.post("/v1/chat/completions", body.toString()).body();
        Map<Integer, StringBuilder> content = new TreeMap<>();
        Map<Integer, Integer> pieces = new TreeMap<>();
        for (String line : sse.split("\n")) {
            if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
                continue;
            }
            for (JsonNode c : TestServers.JSON.readTree(line.substring(6)).get("choices")) {
                String piece = c.at("/delta/content").asText("");
                if (!piece.isEmpty()) {
                    content.computeIfAbsent(c.get("index").asInt(), k -> new StringBuilder()).append(piece);
                    pieces.merge(c.get("index").asInt(), 1, Integer::sum);
                }
            }
        }
        int streamedResponses = 0;
        for (int i = 0; i < 12; i++) {
            JsonNode choice = plain.at("/choices/" + i);
            if (!choice.at("/message/tool_calls").isMissingNode()) {
                assertFalse(content.containsKey(i), "a call streams no content: " + content.get(i));
                continue;
            }
            assertEquals(choice.at("/message/content").asText(), content.getOrDefault(i, new StringBuilder())
                    .toString(), "choice " + i);
            if (pieces.getOrDefault(i, 0) > 1) {
                streamedResponses++;
            }
        }
        assertTrue(streamedResponses > 0, "some response arrived in several pieces: " + pieces);
        // the reader itself: escapes, a surrogate pair split between pieces, calls and object values show nothing
        ToolCalls.ResponseText r = new ToolCalls.ResponseText();
        StringBuilder shown = new StringBuilder();
        for (String piece : List.of(" {\n \"resp", "onse\" : \"a\\", "n\\u00e9\\uD83D", "\\uDC28 \\\"q\\\"\"}")) {
            shown.append(r.feed(piece));
        }
        assertEquals("a\né🐨 \"q\"", shown.toString());
        assertTrue(r.isResponse());
        ToolCalls.ResponseText call = new ToolCalls.ResponseText();
        assertEquals("", call.feed("{\"tool_call\": {\"name\": \"a\", \"arguments\": {\"response\": \"x\"}}}"));
        assertEquals("", new ToolCalls.ResponseText().feed("{\"response\": {\"kind\": \"x\"}}"));
    }

    @Test
    void legacyFunctionsAnswerWithFunctionCall() throws Exception {
        ObjectNode body = TestServers.JSON.createObjectNode().put("model", "tiny-llama").put("max_tokens", 200)
                .put("temperature", 1.0).put("seed", 2).put("n", 10);
        body.putArray("messages").addObject().put("role", "user").put("content", "Lights?");
        body.putArray("functions").add(TestServers.JSON.readTree(TOOLS).at("/1/function"));
        body.putObject("function_call").put("name", "lights_on");
        JsonNode r = json(client.post("/v1/chat/completions", body.toString()));
        int calls = 0;
        for (JsonNode choice : r.get("choices")) {
            if (choice.get("finish_reason").asText().equals("function_call")) {
                JsonNode call = choice.at("/message/function_call");
                assertEquals("lights_on", call.get("name").asText(), choice.toString());
                checkCall("lights_on", call.get("arguments").asText(), choice.toString());
                calls++;
            }
        }
        assertTrue(calls > 0, r.toString());
    }

    /** An assistant turn's tool_calls and the tool results are text the model reads; results in a row are one turn. */
    @Test
    void historyWithCallsAndResults() throws Exception {
        JsonNode request = TestServers.JSON.readTree("""
                {"messages": [
                  {"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Weather?"},
                  {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                     "arguments": "{\\"city\\": \\"Seoul\\", \\"days\\": 1}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "lights_on", "arguments": "{\\"on\\":true}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                  {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "done"}]},
                  {"role": "assistant", "content": "It rains.", "function_call": {"name": "lights_on", "arguments": "{}"}},
                  {"role": "function", "name": "lights_on", "content": "ok"}]}""");
        List<ChatModel.Message> m = OpenAiRoutes.messages(request, ServerConfig.ImageUrls.NONE);
        assertEquals(List.of("system", "user", "assistant", "user", "assistant", "user"),
                m.stream().map(ChatModel.Message::role).toList());
        assertEquals("{\"tool_calls\":[{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Seoul\",\"days\":1}},"
                + "{\"name\":\"lights_on\",\"arguments\":{\"on\":true}}]}", text(m.get(2)));
        assertEquals("{\"tool_response\":{\"name\":\"get_weather\",\"tool_call_id\":\"call_1\",\"content\":\"rain\"}}\n"
                + "{\"tool_response\":{\"name\":\"lights_on\",\"tool_call_id\":\"call_2\",\"content\":\"done\"}}",
                text(m.get(3)));
        assertEquals("It rains.\n{\"tool_calls\":[{\"name\":\"lights_on\",\"arguments\":{}}]}", text(m.get(4)));
        assertEquals("It rains.\n{\"tool_call\":{\"name\":\"lights_on\",\"arguments\":{}}}",
                text(OpenAiRoutes.messages(request, ServerConfig.ImageUrls.NONE, false).get(4)));
        assertEquals("{\"tool_response\":{\"name\":\"lights_on\",\"content\":\"ok\"}}", text(m.get(5)));

        // the instructions join the system message when there is one, else lead the first user message
        ToolCalls tools = ToolCalls.parse(body("\"auto\"", 1, 0).put("parallel_tool_calls", true));
        List<ChatModel.Message> prompted = tools.prompt(m, false);
        assertTrue(text(prompted.get(0)).startsWith("Be brief.\n\nYou can call these tools:\n- get_weather: Weather "
                + "in a city\n  arguments (JSON Schema): {\"type\":\"object\""), text(prompted.get(0)));
        assertTrue(text(prompted.get(0)).contains("{\"tool_calls\": [{\"name\": \"<tool name>\", \"arguments\": "
                + "{<arguments>}}, ...]} (one or more calls) to call tools, or {\"response\": \"<your answer>\"} to answer "
                + "directly."), text(prompted.get(0)));
        List<ChatModel.Message> noSystem = tools.prompt(m.subList(1, m.size()), false);
        assertTrue(text(noSystem.get(0)).startsWith("You can call these tools:") && text(noSystem.get(0))
                .endsWith("\n\nWeather?"), text(noSystem.get(0)));

        // such a history runs
        ObjectNode body = body("\"auto\"", 1, 0);
        body.set("messages", request.get("messages"));
        HttpResponse<String> r = client.post("/v1/chat/completions", body.toString());
        assertEquals(200, r.statusCode(), r.body());
    }

    /** Tools whose parameters have $defs of the same name: each call's arguments follow its own tool's. */
    @Test
    void eachToolKeepsItsOwnDefs() throws Exception {
        ObjectNode body = body("\"required\"", 12, 4);
        body.set("tools", TestServers.JSON.readTree("""
                [{"type": "function", "function": {"name": "a", "parameters": {"type": "object",
                   "properties": {"x": {"$ref": "#/$defs/Item"}}, "required": ["x"], "additionalProperties": false,
                   "$defs": {"Item": {"type": "boolean"}}}}},
                 {"type": "function", "function": {"name": "b", "parameters": {"type": "object",
                   "properties": {"x": {"$ref": "#/definitions/Item"}}, "required": ["x"], "additionalProperties": false,
                   "definitions": {"Item": {"enum": ["koala", "panda"]}}}}}]"""));
        JsonNode r = json(client.post("/v1/chat/completions", body.toString()));
        int calls = 0;
        for (JsonNode choice : r.get("choices")) {
            for (JsonNode call : choice.at("/message/tool_calls")) {
                JsonNode x = TestServers.JSON.readTree(call.at("/function/arguments").asText()).get("x");
                assertTrue(call.at("/function/name").asText().equals("a") ? x.isBoolean()
                        : List.of("koala", "panda").contains(x.asText()), choice.toString());
                calls++;
            }
        }
        assertTrue(calls > 0, r.toString());
    }

    private static String text(ChatModel.Message m) {
        StringBuilder b = new StringBuilder();
        for (ChatModel.Part p : m.content()) {
            b.append(((ChatModel.TextPart) p).text());
        }
        return b.toString();
    }

    /** Each malformed field: 400 with that field as param and a message that names what was expected. */
    @Test
    void malformedToolFieldsAreNamed() throws Exception {
        List<String[]> cases = new ArrayList<>();
        cases.add(new String[] {"tools", "{\"type\": \"function\"}", null, "tools", "expected an array"});
        cases.add(new String[] {"tools", "[{\"type\": \"retrieval\"}]", null, "tools", "tools[0].type \"retrieval\""});
        cases.add(new String[] {"tools", "[{\"type\": \"function\", \"function\": {\"name\": \"two words\"}}]", null,
                "tools", "tools[0].function.name \"two words\": expected 1 to 64 letters"});
        cases.add(new String[] {"tools", "[{\"type\": \"function\", \"function\": {\"name\": \"a\"}},"
                + " {\"type\": \"function\", \"function\": {\"name\": \"a\"}}]", null, "tools", "a second tool"});
        cases.add(new String[] {"tools", "[{\"type\": \"function\", \"function\": {\"name\": \"a\", \"parameters\": []}}]",
                null, "tools", "tools[0].function.parameters: expected a JSON Schema object"});
        cases.add(new String[] {"tools", "[{\"type\": \"function\", \"function\": {\"name\": \"a\", \"parameters\": "
                + "{\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\", \"dependentRequired\": {}}}}}}]", null,
                "tools", "tools[0].function.parameters at /properties/x: keyword \"dependentRequired\" is not supported"});
        cases.add(new String[] {"tools", "[{\"type\": \"function\", \"function\": {\"name\": \"a\", \"parameters\": "
                + "{\"type\": \"string\"}}}]", null, "tools", "the root must be an object schema"});
        cases.add(new String[] {"tool_choice", "{\"type\": \"function\", \"function\": {\"name\": \"nope\"}}", TOOLS,
                "tool_choice", "naming one of the tools"});
        cases.add(new String[] {"tool_choice", "\"always\"", TOOLS, "tool_choice", "expected \"none\", \"auto\""});
        cases.add(new String[] {"tool_choice", "\"required\"", null, "tool_choice", "needs tools"});
        cases.add(new String[] {"parallel_tool_calls", "\"yes\"", TOOLS, "parallel_tool_calls", "expected true or false"});
        cases.add(new String[] {"functions", "[{\"name\": \"a\"}]", TOOLS, "functions", "not both"});
        cases.add(new String[] {"logprobs", "true", TOOLS, "logprobs", "not with tools"});
        for (String[] c : cases) {
            ObjectNode body = TestServers.JSON.createObjectNode().put("model", "tiny-llama").put("max_tokens", 4);
            body.putArray("messages").addObject().put("role", "user").put("content", "hi");
            if (c[2] != null) {
                body.set("tools", TestServers.JSON.readTree(c[2]));
            }
            body.set(c[0], TestServers.JSON.readTree(c[1]));
            HttpResponse<String> r = client.post("/v1/chat/completions", body.toString());
            assertEquals(400, r.statusCode(), c[0] + " " + c[1] + ": " + r.body());
            assertEquals(c[3], json(r).at("/error/param").asText(), r.body());
            assertTrue(json(r).at("/error/message").asText().contains(c[4]), r.body());
        }
        // messages
        String[][] messages = {
                {"[{\"role\": \"tool\", \"content\": \"x\"}]", "messages[0].tool_call_id", "expected the id"},
                {"[{\"role\": \"function\", \"content\": \"x\"}]", "messages[0].name", "expected the name"},
                {"[{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"function\": {}}]}]",
                        "messages[0].tool_calls[0]", "function.name: expected"},
                {"[{\"role\": \"assistant\", \"content\": null}]", "messages[0].content", "or null with tool_calls"},
                {"[{\"role\": \"robot\", \"content\": \"x\"}]", "messages[0].role", "tool or function"}};
        for (String[] c : messages) {
            ObjectNode body = TestServers.JSON.createObjectNode().put("model", "tiny-llama").put("max_tokens", 4);
            body.set("messages", TestServers.JSON.readTree(c[0]));
            HttpResponse<String> r = client.post("/v1/chat/completions", body.toString());
            assertEquals(400, r.statusCode(), c[0] + ": " + r.body());
            assertEquals(c[1], json(r).at("/error/param").asText(), r.body());
            assertTrue(json(r).at("/error/message").asText().contains(c[2]), r.body());
        }
        // a model without JSON output, and the legacy completions endpoint
        ObjectNode t5 = body("\"auto\"", 1, 0).put("model", "tiny-t5");
        HttpResponse<String> r = client.post("/v1/chat/completions", t5.toString());
        assertEquals(400, r.statusCode(), r.body());
        assertEquals("tools", json(r).at("/error/param").asText(), r.body());
        ObjectNode completion = TestServers.JSON.createObjectNode().put("model", "tiny-llama").put("prompt", "hi");
        completion.set("tools", TestServers.JSON.readTree(TOOLS));
        r = client.post("/v1/completions", completion.toString());
        assertEquals(400, r.statusCode(), r.body());
        assertTrue(json(r).at("/error/message").asText().contains("/v1/chat/completions"), r.body());
    }
}
