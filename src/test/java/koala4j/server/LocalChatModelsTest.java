package koala4j.server;

import static koala4j.server.TestServers.json;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.cli.Main;
import koala4j.pipelines.DraftModel;
import koala4j.pipelines.PromptLookup;
import koala4j.pipelines.VisionChat;
import koala4j.server.TestServers.Client;
import koala4j.tensor.DType;
import koala4j.testing.Close;
import koala4j.testing.JsonArrays;
import koala4j.testing.TinyChatModels;

/**
 * The chat models koala4j serves, through a real HTTP client on loopback: the tiny golden LLaVA folder (an image as
 * a data: URL; the answer, streamed or not, equals {@code koala4j chat}'s for the same question and settings, and
 * the usage counts are its prompt and output ids) and the tiny golden T5 folder (golden/e2e/t5: the last user
 * message is the input; greedy text of transformers 4.57.6, exact).
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class LocalChatModelsTest {

    @TempDir
    Path data;

    @TempDir
    static Path work;

    private static final String QUESTION = "What shapes are in this image?";

    private KoalaServer start() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        CpuOps ops = new CpuOps();
        b.chatModels.add(LocalChatModels.open("tiny-llava", "tiny llava", TinyChatModels.llava(work),
                VisionChat.Options.defaults(), ops));
        b.chatModels.add(LocalChatModels.open("tiny-t5", "tiny t5", TinyChatModels.t5(), VisionChat.Options.defaults(), ops));
        b.chatModels.add(LocalChatModels.open("tiny-llama", "tiny llama", TinyChatModels.llama(),
                VisionChat.Options.defaults(), ops));
        return KoalaServer.start(b.build());
    }

    private static String request(String model, boolean stream, int maxTokens, String text, boolean withImage)
            throws Exception {
        ObjectNode body = TestServers.JSON.createObjectNode();
        body.put("model", model);
        body.put("stream", stream);
        body.put("max_tokens", maxTokens);
        ArrayNode content = body.putArray("messages").addObject().put("role", "user").putArray("content");
        content.addObject().put("type", "text").put("text", text);
        if (withImage) {
            String png = Base64.getEncoder().encodeToString(Files.readAllBytes(TinyChatModels.image("llava")));
            content.addObject().put("type", "image_url").putObject("image_url").put("url", "data:image/png;base64," + png);
        }
        return body.toString();
    }

    /** {@code koala4j chat --json} with the same question, image and length. */
    private static JsonNode cli(int maxTokens, String... options) throws Exception {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        List<String> args = new ArrayList<>(List.of("chat", "--model", TinyChatModels.llava(work).toString(), "--image",
                TinyChatModels.image("llava").toString(), "--prompt", QUESTION, "--max-new-tokens",
                Integer.toString(maxTokens), "--json"));
        args.addAll(List.of(options));
        int code = Main.run(args.toArray(String[]::new), new PrintWriter(out), new PrintWriter(err),
                Map.of("HF_HUB_OFFLINE", "1", "HF_HOME", work.resolve("hf").toString()));
        assertEquals(0, code, err.toString());
        return TestServers.JSON.readTree(out.toString());
    }

    @Test
    void llavaAnswersAsTheCliDoesWithAndWithoutStreaming() throws Exception {
        JsonNode cli = cli(10);
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            List<String> ids = new ArrayList<>();
            for (JsonNode m : json(client.get("/v1/models")).get("data")) {
                if (m.get("task").asText().equals("chat")) {
                    ids.add(m.get("id").asText());
                }
            }
            assertEquals(List.of("tiny-llava", "tiny-t5", "tiny-llama"), ids);

            HttpResponse<String> r = client.post("/v1/chat/completions", request("tiny-llava", false, 10, QUESTION, true));
            assertEquals(200, r.statusCode(), r.body());
            JsonNode j = json(r);
            assertEquals(cli.get("text").asText(), j.at("/choices/0/message/content").asText());
            assertEquals(cli.get("prompt_ids").size(), j.at("/usage/prompt_tokens").asInt());
            assertEquals(cli.get("output_ids").size(), j.at("/usage/completion_tokens").asInt());
            assertEquals(10, j.at("/usage/completion_tokens").asInt());
            assertEquals("length", j.at("/choices/0/finish_reason").asText());
            assertEquals(0, j.at("/usage/prompt_tokens_details/cached_tokens").asInt());

            HttpResponse<String> s = client.post("/v1/chat/completions", request("tiny-llava", true, 10, QUESTION, true));
            assertEquals(200, s.statusCode(), s.body());
            StringBuilder text = new StringBuilder();
            String finish = null;
            List<String> events = new ArrayList<>();
            for (String line : s.body().split("\n")) {
                if (line.startsWith("data: ")) {
                    events.add(line.substring(6));
                }
            }
            assertEquals("[DONE]", events.getLast());
            for (String e : events.subList(0, events.size() - 1)) {
                JsonNode chunk = TestServers.JSON.readTree(e);
                text.append(chunk.at("/choices/0/delta").path("content").asText(""));
                if (!chunk.at("/choices/0/finish_reason").isNull()) {
                    finish = chunk.at("/choices/0/finish_reason").asText();
                }
            }
            assertTrue(events.size() > 3, "several content chunks: " + events);
            assertEquals(cli.get("text").asText(), text.toString());
            assertEquals("length", finish);

            // the same conversation again: all but the last prompt position come from the previous request
            JsonNode again = json(client.post("/v1/chat/completions", request("tiny-llava", false, 10, QUESTION, true)));
            assertEquals(cli.get("text").asText(), again.at("/choices/0/message/content").asText());
            assertEquals(cli.get("prompt_ids").size() - 1, again.at("/usage/prompt_tokens_details/cached_tokens").asInt());

            // an image the server cannot decode is the client's error, without server paths
            String bad = request("tiny-llava", false, 4, QUESTION, false).replace("\"content\":[",
                    "\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,"
                            + Base64.getEncoder().encodeToString("not a png".getBytes()) + "\"}},");
            HttpResponse<String> b = client.post("/v1/chat/completions", bad);
            assertEquals(400, b.statusCode(), b.body());
            assertTrue(json(b).at("/error/message").asText().contains("messages[0] image 0"), b.body());
            assertTrue(!b.body().contains(System.getProperty("java.io.tmpdir")), b.body());
        }
    }

    @Test
    void openAiSamplingFieldsAndRefusals() throws Exception {
        String cliText = cli(10).get("text").asText();
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            // stop: the answer ends before the first occurrence of a stop string, finish_reason "stop"
            int at = Math.max(1, cliText.length() / 2);
            String stop = cliText.substring(at, at + 1);
            ObjectNode body = (ObjectNode) TestServers.JSON.readTree(request("tiny-llava", false, 10, QUESTION, true));
            body.putArray("stop").add(stop).add("never in the text 123");
            JsonNode stopped = json(client.post("/v1/chat/completions", body.toString()));
            assertEquals(cliText.substring(0, cliText.indexOf(stop)).strip(),
                    stopped.at("/choices/0/message/content").asText().strip(), stopped.toString());
            assertEquals("stop", stopped.at("/choices/0/finish_reason").asText());

            // logit_bias +100 on one token: greedy picks it every step
            ObjectNode biased = (ObjectNode) TestServers.JSON.readTree(request("tiny-llava", false, 3, QUESTION, true));
            biased.putObject("logit_bias").put("300", 100);
            JsonNode forced = json(client.post("/v1/chat/completions", biased.toString()));
            String expected = koala4j.tokenizers.Tokenizers.loadText(TinyChatModels.llava(work),
                    koala4j.tokenizers.Tokenizers.Kind.AUTO).decode(new int[] {300, 300, 300}, true);
            assertEquals(expected.strip(), forced.at("/choices/0/message/content").asText().strip(), forced.toString());

            // vLLM's / llama.cpp's extensions: top_k 1 and min_p 1 keep only the likeliest token (greedy, however hot);
            // repetition_penalty as the CLI's
            for (String[] extension : new String[][] {{"top_k", "1"}, {"min_p", "1.0"}}) {
                ObjectNode hot = (ObjectNode) TestServers.JSON.readTree(request("tiny-llava", false, 10, QUESTION, true));
                hot.put("temperature", 1.5).put("seed", 3).set(extension[0], TestServers.JSON.readTree(extension[1]));
                assertEquals(cliText, json(client.post("/v1/chat/completions", hot.toString()))
                        .at("/choices/0/message/content").asText(), extension[0]);
            }
            ObjectNode penalised = (ObjectNode) TestServers.JSON.readTree(request("tiny-llava", false, 10, QUESTION,
                    true));
            penalised.put("repetition_penalty", 1.8);
            assertEquals(cli(10, "--repetition-penalty", "1.8").get("text").asText(),
                    json(client.post("/v1/chat/completions", penalised.toString())).at("/choices/0/message/content")
                            .asText());

            // stream_options.include_usage: a last chunk with no choices and the usage
            ObjectNode streamed = (ObjectNode) TestServers.JSON.readTree(request("tiny-llava", true, 4, QUESTION, true));
            streamed.putObject("stream_options").put("include_usage", true);
            List<String> events = new ArrayList<>();
            for (String line : client.post("/v1/chat/completions", streamed.toString()).body().split("\n")) {
                if (line.startsWith("data: ")) {
                    events.add(line.substring(6));
                }
            }
            JsonNode usageChunk = TestServers.JSON.readTree(events.get(events.size() - 2));
            assertEquals(0, usageChunk.get("choices").size(), usageChunk.toString());
            assertEquals(4, usageChunk.at("/usage/completion_tokens").asInt(), usageChunk.toString());

            // what the server cannot honour is a 400 naming the field
            String[][] refused = {{"n", "0"}, {"n", "17"}, {"n", "\"2\""}, {"logprobs", "5"}, {"top_logprobs", "3"},
                    {"tools", "[{\"type\": \"function\"}]"},
                    {"response_format", "{\"type\": \"json_schema\", \"json_schema\": {}}"},
                    {"response_format", "\"json\""}, {"stop", "[\"a\",\"b\",\"c\",\"d\",\"e\"]"},
                    {"stop", "\"\""}, {"logit_bias", "{\"x\": 1}"}, {"logit_bias", "{\"5\": 101}"},
                    {"frequency_penalty", "3"}, {"presence_penalty", "\"high\""}, {"top_k", "-2"}, {"top_k", "\"x\""},
                    {"min_p", "2"}, {"repetition_penalty", "0"}, {"min_tokens", "-1"}};
            for (String[] field : refused) {
                ObjectNode bad = (ObjectNode) TestServers.JSON.readTree(request("tiny-llava", false, 2, QUESTION, false));
                bad.set(field[0], TestServers.JSON.readTree(field[1]));
                HttpResponse<String> r = client.post("/v1/chat/completions", bad.toString());
                assertEquals(400, r.statusCode(), field[0] + " " + r.body());
                assertEquals(field[0], json(r).at("/error/param").asText(), r.body());
            }
            // the text-to-text model takes none of stop, penalties and bias
            for (String field : List.of("stop", "top_k")) {
                ObjectNode t5 = (ObjectNode) TestServers.JSON.readTree(request("tiny-t5", false, 2, "hello", false));
                t5.set(field, TestServers.JSON.readTree(field.equals("stop") ? "\"x\"" : "5"));
                HttpResponse<String> r = client.post("/v1/chat/completions", t5.toString());
                assertEquals(400, r.statusCode(), r.body());
                assertTrue(json(r).at("/error/message").asText().contains("text-to-text")
                        && json(r).at("/error/message").asText().contains(field), r.body());
            }
        }
    }

    /** The text of each choice index in a stream of chunks, and which indices got a finish reason. */
    private static Map<Integer, String> streamedChoices(String sse, List<Integer> finished) throws Exception {
        Map<Integer, String> text = new java.util.TreeMap<>();
        for (String line : sse.split("\n")) {
            if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
                continue;
            }
            for (JsonNode c : TestServers.JSON.readTree(line.substring(6)).get("choices")) {
                int index = c.get("index").asInt();
                String piece = c.has("delta") ? c.get("delta").path("content").asText("") : c.get("text").asText();
                text.merge(index, piece, String::concat);
                if (!c.get("finish_reason").isNull()) {
                    finished.add(index);
                }
            }
        }
        return text;
    }

    /**
     * OpenAI's n: choice i is what one request with seed + i gives (sampled choices differ, each reproducible);
     * greedy choices are equal; streamed choices carry their index; usage counts the prompt once.
     */
    @Test
    void severalChoicesPerRequest() throws Exception {
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            ObjectNode body = (ObjectNode) TestServers.JSON.readTree(request("tiny-llava", false, 6, QUESTION, true));
            body.put("temperature", 1.5).put("seed", 5).put("n", 3);
            JsonNode three = json(client.post("/v1/chat/completions", body.toString()));
            assertEquals(3, three.get("choices").size(), three.toString());
            int completion = 0;
            for (int i = 0; i < 3; i++) {
                ObjectNode one = body.deepCopy().put("n", 1).put("seed", 5 + i);
                JsonNode single = json(client.post("/v1/chat/completions", one.toString()));
                assertEquals(i, three.at("/choices/" + i + "/index").asInt());
                assertEquals(single.at("/choices/0/message/content").asText(),
                        three.at("/choices/" + i + "/message/content").asText(), "choice " + i);
                assertEquals(single.at("/usage/prompt_tokens").asInt(), three.at("/usage/prompt_tokens").asInt());
                completion += single.at("/usage/completion_tokens").asInt();
            }
            assertEquals(completion, three.at("/usage/completion_tokens").asInt());
            assertTrue(!three.at("/choices/0/message/content").asText()
                    .equals(three.at("/choices/1/message/content").asText())
                    || !three.at("/choices/1/message/content").asText()
                    .equals(three.at("/choices/2/message/content").asText()), "sampled choices differ: " + three);

            ObjectNode greedy = (ObjectNode) TestServers.JSON.readTree(request("tiny-llava", false, 6, QUESTION, true));
            greedy.put("n", 2);
            JsonNode two = json(client.post("/v1/chat/completions", greedy.toString()));
            assertEquals(two.at("/choices/0/message/content").asText(), two.at("/choices/1/message/content").asText());

            body.put("stream", true);
            List<Integer> finished = new ArrayList<>();
            Map<Integer, String> streamed = streamedChoices(client.post("/v1/chat/completions", body.toString()).body(),
                    finished);
            assertEquals(List.of(0, 1, 2), List.copyOf(streamed.keySet()));
            for (int i = 0; i < 3; i++) {
                assertEquals(three.at("/choices/" + i + "/message/content").asText(), streamed.get(i), "streamed " + i);
            }
            // the choices decode together: each finishes when it does
            assertEquals(List.of(0, 1, 2), finished.stream().sorted().toList(), "one finish chunk per choice");

            String prompt = "USER: What is a koala? ASSISTANT:";
            ObjectNode completions = TestServers.JSON.createObjectNode().put("model", "tiny-llava").put("prompt", prompt)
                    .put("max_tokens", 4).put("n", 2).put("echo", true).put("temperature", 1.5);
            JsonNode texts = json(client.post("/v1/completions", completions.toString()));
            assertEquals(2, texts.get("choices").size(), texts.toString());
            for (JsonNode c : texts.get("choices")) {
                assertTrue(c.get("text").asText().startsWith(prompt), texts.toString());
            }
            completions.put("stream", true);
            List<Integer> done = new ArrayList<>();
            Map<Integer, String> echoed = streamedChoices(
                    client.post("/v1/completions", completions.toString()).body(), done);
            assertEquals(texts.at("/choices/0/text").asText(), echoed.get(0));
            assertEquals(texts.at("/choices/1/text").asText(), echoed.get(1));
            assertEquals(List.of(0, 1), done.stream().sorted().toList());
        }
    }

    /**
     * OpenAI's n on a model whose generation_config.json searches with beams: the choices are the best hypotheses of
     * one search, best first, as transformers' num_return_sequences (golden/beam_search/returns.json), not n equal
     * answers; more choices than beams is a 400 naming n.
     */
    @Test
    void choicesOfABeamSearchModelAreItsBestHypotheses() throws Exception {
        Path folder = TinyChatModels.withConfig(TinyChatModels.llama(), work.resolve("llama-beams"), c -> { },
                TinyChatModels.LLAMA_FILES.stream().filter(f -> !f.equals("generation_config.json")).toList());
        Files.writeString(folder.resolve("generation_config.json"), """
                {"bos_token_id": 1, "eos_token_id": 2, "num_beams": 3}""");
        JsonNode run = TestServers.JSON.readTree(Close.resource("golden/beam_search/returns.json").toFile())
                .get("runs").get(0);
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatModels.add(LocalChatModels.open("tiny-beams", "tiny beams", folder, VisionChat.Options.defaults(),
                new CpuOps()));
        try (KoalaServer server = KoalaServer.start(b.build()); var llama = TinyChatModels.loadLlama()) {
            Client client = Client.of(server);
            ObjectNode body = TestServers.JSON.createObjectNode().put("model", "tiny-beams")
                    .put("prompt", run.get("prompt").asText()).put("max_tokens", 10).put("n", 3);
            JsonNode three = json(client.post("/v1/completions", body.toString()));
            for (int i = 0; i < 3; i++) {
                assertEquals(llama.tokenizer().decode(JsonArrays.ints(run.get("sequences").get(i)), true),
                        three.at("/choices/" + i + "/text").asText(), "choice " + i + ": " + three);
            }
            List<Integer> finished = new ArrayList<>();
            Map<Integer, String> streamed = streamedChoices(client.post("/v1/completions",
                    body.deepCopy().put("stream", true).toString()).body(), finished);
            for (int i = 0; i < 3; i++) {
                assertEquals(three.at("/choices/" + i + "/text").asText(), streamed.get(i), "streamed " + i);
            }
            assertEquals(List.of(0, 1, 2), finished.stream().sorted().toList());
            HttpResponse<String> tooMany = client.post("/v1/completions", body.put("n", 4).toString());
            assertEquals(400, tooMany.statusCode());
            assertEquals("n", json(tooMany).at("/error/param").asText(), tooMany.body());
            assertTrue(tooMany.body().contains("n 4 with the model's num_beams 3"), tooMany.body());
            HttpResponse<String> tooManyStreamed = client.post("/v1/completions", body.put("stream", true).toString());
            // streamed, the model's refusal comes as the stream's error event, as other errors found by the model do
            assertTrue(tooManyStreamed.body().startsWith("data: {\"error\"") && tooManyStreamed.body()
                    .contains("\"param\":\"n\""), tooManyStreamed.body());
        }
    }

    /** The same for a T5 model searching with beams (golden/t5_returns, transformers 5.18). */
    @Test
    void choicesOfABeamSearchT5AreItsBestHypotheses() throws Exception {
        Path folder = work.resolve("t5-beams");
        Files.createDirectories(folder);
        for (String f : List.of("added_tokens.json", "config.json", "model.safetensors", "special_tokens_map.json",
                "tokenizer_config.json")) {
            Files.createSymbolicLink(folder.resolve(f), TinyChatModels.t5().resolve(f).toAbsolutePath());
        }
        Files.writeString(folder.resolve("generation_config.json"), """
                {"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0, "num_beams": 3}""");
        JsonNode run = TestServers.JSON.readTree(Close.resource("golden/t5_returns/returns.json").toFile())
                .get("runs").get(0);
        assertEquals(3, run.at("/settings/num_beams").asInt());
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatModels.add(LocalChatModels.open("t5-beams", "t5 beams", folder, VisionChat.Options.defaults(),
                new CpuOps()));
        try (KoalaServer server = KoalaServer.start(b.build());
             var t5 = koala4j.pipelines.TextToText.load(TinyChatModels.t5(), new CpuOps())) {
            Client client = Client.of(server);
            ObjectNode body = TestServers.JSON.createObjectNode().put("model", "t5-beams")
                    .put("prompt", run.at("/inputs/0").asText()).put("max_tokens", 12).put("n", 3);
            JsonNode three = json(client.post("/v1/completions", body.toString()));
            int completion = 0;
            for (int i = 0; i < 3; i++) {
                int[] ids = JsonArrays.ints(run.get("sequences").get(i));
                assertEquals(t5.tokenizer().decode(ids, true), three.at("/choices/" + i + "/text").asText(),
                        "choice " + i + ": " + three);
                int n = 1;                              // new tokens up to the first eos (1), the rest is fill
                while (n < ids.length - 1 && ids[n] != 1) {
                    n++;
                }
                completion += n;
            }
            assertEquals(completion, three.at("/usage/completion_tokens").asInt(), three.toString());
            HttpResponse<String> tooMany = client.post("/v1/completions", body.put("n", 4).toString());
            assertEquals(400, tooMany.statusCode());
            assertTrue(tooMany.body().contains("n 4 with the model's num_beams 3"), tooMany.body());
        }
    }

    /** The chunks' log-probability entries of choice 0, in order ({@code field}: chat's content, or tokens). */
    private static List<JsonNode> streamedLogprobs(String sse, String pointer) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (String line : sse.split("\n")) {
            if (line.startsWith("data: ") && !line.equals("data: [DONE]")) {
                JsonNode lp = TestServers.JSON.readTree(line.substring(6)).at("/choices/0/logprobs");
                if (!lp.isMissingNode() && !lp.isNull()) {
                    lp.at(pointer).forEach(out::add);
                }
            }
        }
        return out;
    }

    /**
     * logprobs on both text APIs against golden/logprobs (transformers 4.57.6 on the e2e tiny LLaMA: log_softmax of
     * the raw logits), within 1e-4 + 1e-4 |ref|: legacy completions with echo score the prompt too (its first token
     * null), streamed and not; chat's content entries carry the token's bytes and top_logprobs.
     */
    /**
     * Prompt and answer stay inside the model's context (the tiny LLaMA's max_position_embeddings is 512), as the
     * OpenAI API and llama.cpp's server keep them: a longer prompt is a 400 with code context_length_exceeded, and
     * an answer that would run past the last position stops there with finish_reason "length".
     */
    @Test
    void promptsAndAnswersStayInsideTheContext() throws Exception {
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            ObjectNode probe = TestServers.JSON.createObjectNode().put("model", "tiny-llama")
                    .put("prompt", "the koala sleeps ".repeat(20)).put("max_tokens", 1);
            int per20 = json(client.post("/v1/completions", probe.toString())).at("/usage/prompt_tokens").asInt() - 1;
            int repeats = 20 * (505 - 1) / per20;
            ObjectNode near = probe.deepCopy().put("prompt", "the koala sleeps ".repeat(repeats)).put("max_tokens", 50);
            near.putObject("logit_bias").put("2", -100);                 // no eos: only the context can stop it
            JsonNode j = json(client.post("/v1/completions", near.toString()));
            int prompt = j.at("/usage/prompt_tokens").asInt();
            assertTrue(prompt > 462 && prompt < 512, j.toString());
            assertEquals(512 - prompt, j.at("/usage/completion_tokens").asInt(), j.toString());
            assertEquals("length", j.at("/choices/0/finish_reason").asText());

            ObjectNode over = probe.deepCopy().put("prompt", "the koala sleeps ".repeat(2 * repeats));
            HttpResponse<String> r = client.post("/v1/completions", over.toString());
            assertEquals(400, r.statusCode(), r.body());
            JsonNode error = TestServers.JSON.readTree(r.body()).get("error");
            assertEquals("context_length_exceeded", error.get("code").asText(), r.body());
            assertEquals("prompt", error.get("param").asText(), r.body());
            assertTrue(error.get("message").asText().contains("maximum context length is 512 tokens"), r.body());

            ObjectNode chat = TestServers.JSON.createObjectNode().put("model", "tiny-llama").put("max_tokens", 4);
            chat.putArray("messages").addObject().put("role", "user").put("content",
                    "the koala sleeps ".repeat(2 * repeats));
            r = client.post("/v1/chat/completions", chat.toString());
            assertEquals(400, r.statusCode(), r.body());
            assertEquals("messages", TestServers.JSON.readTree(r.body()).at("/error/param").asText(), r.body());
            r = client.post("/v1/chat/completions", chat.deepCopy().put("stream", true).toString());
            assertTrue(r.body().contains("context_length_exceeded"), r.statusCode() + " " + r.body());
        }
    }

    @Test
    void logprobsAsOpenAiWritesThem() throws Exception {
        JsonNode golden = TestServers.JSON.readTree(koala4j.testing.Close.resource("golden/logprobs/expected.json")
                .toFile()).get("cases").get(0);
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            ObjectNode body = TestServers.JSON.createObjectNode().put("model", "tiny-llama")
                    .put("prompt", golden.get("prompt").asText()).put("max_tokens", 8).put("temperature", 0)
                    .put("echo", true).put("logprobs", 3);
            body.putObject("logit_bias").put("2", -100);     // no eos: exactly 8 tokens, as the golden run
            JsonNode j = json(client.post("/v1/completions", body.toString()));
            JsonNode lp = j.at("/choices/0/logprobs");
            int promptLength = golden.get("input_ids").size();
            assertEquals(promptLength + 8, lp.get("tokens").size(), lp.toString());
            assertTrue(lp.at("/token_logprobs/0").isNull() && lp.at("/top_logprobs/0").isNull(), lp.toString());
            assertEquals("<s>", lp.at("/tokens/0").asText());
            List<JsonNode> expected = new ArrayList<>();
            golden.get("prompt_logprobs").forEach(expected::add);
            golden.get("logprobs").forEach(expected::add);
            for (int i = 1; i < promptLength + 8; i++) {
                float ref = (float) expected.get(i - 1).get("logprob").asDouble();
                assertEquals(ref, lp.at("/token_logprobs/" + i).floatValue(), 1e-4f + 1e-4f * Math.abs(ref), "token " + i);
                JsonNode top = lp.at("/top_logprobs/" + i);
                assertTrue(top.size() >= 1 && top.size() <= 3, top.toString());
                float best = (float) expected.get(i - 1).at("/top_logprobs/0").asDouble();
                float max = Float.NEGATIVE_INFINITY;
                for (JsonNode v : top) {
                    max = Math.max(max, v.floatValue());
                }
                assertEquals(best, max, 1e-4f + 1e-4f * Math.abs(best), "top of token " + i);
            }
            StringBuilder tokens = new StringBuilder();
            for (int i = 0; i < lp.get("tokens").size(); i++) {
                assertEquals(tokens.codePointCount(0, tokens.length()), lp.at("/text_offset/" + i).asInt());
                tokens.append(lp.at("/tokens/" + i).asText());
                if (i == promptLength - 1) {
                    assertEquals("<s> " + golden.get("prompt").asText(), tokens.toString(), "the prompt's tokens");
                }
            }

            // streamed: the same entries, spread over the chunks
            body.put("stream", true);
            List<JsonNode> streamed = streamedLogprobs(client.post("/v1/completions", body.toString()).body(), "/tokens");
            List<String> names = new ArrayList<>();
            lp.get("tokens").forEach(t -> names.add(t.asText()));
            assertEquals(names, streamed.stream().map(JsonNode::asText).toList());

            // max_tokens 0 with echo: the prompt scored, nothing generated
            body.put("stream", false).put("max_tokens", 0);
            JsonNode scored = json(client.post("/v1/completions", body.toString()));
            assertEquals(golden.get("prompt").asText(), scored.at("/choices/0/text").asText());
            assertEquals(promptLength, scored.at("/choices/0/logprobs/tokens").size());
            assertEquals(0, scored.at("/usage/completion_tokens").asInt());

            // chat: content entries with bytes and top_logprobs, the same streamed
            ObjectNode chat = (ObjectNode) TestServers.JSON.readTree(request("tiny-llama", false, 6, "Hello", false));
            chat.put("logprobs", true).put("top_logprobs", 2).put("temperature", 0);
            JsonNode c = json(client.post("/v1/chat/completions", chat.toString()));
            JsonNode content = c.at("/choices/0/logprobs/content");
            assertEquals(c.at("/usage/completion_tokens").asInt(), content.size(), c.toString());
            for (JsonNode e : content) {
                assertEquals(2, e.get("top_logprobs").size(), e.toString());
                assertTrue(e.get("logprob").floatValue() <= e.at("/top_logprobs/0/logprob").floatValue() + 1e-6, e.toString());
                byte[] bytes = new byte[e.get("bytes").size()];
                for (int i = 0; i < bytes.length; i++) {
                    bytes[i] = (byte) e.get("bytes").get(i).asInt();
                }
                // the text is the bytes when they are UTF-8 on their own, else their bytes:\xNN spelling
                assertEquals(VisionChat.tokenText(bytes), e.get("token").asText());
            }
            chat.put("stream", true);
            List<JsonNode> chunks = streamedLogprobs(client.post("/v1/chat/completions", chat.toString()).body(),
                    "/content");
            assertEquals(content.size(), chunks.size());
            for (int i = 0; i < chunks.size(); i++) {
                assertEquals(content.get(i).get("token"), chunks.get(i).get("token"));
                // the second request resumes from the prompt cache, whose split of the prompt may round differently
                assertEquals(content.get(i).get("logprob").floatValue(), chunks.get(i).get("logprob").floatValue(), 1e-5f);
            }

            // the text-to-text model has none
            ObjectNode t5 = (ObjectNode) TestServers.JSON.readTree(request("tiny-t5", false, 2, "hello", false));
            t5.put("logprobs", true);
            HttpResponse<String> r = client.post("/v1/chat/completions", t5.toString());
            assertEquals(400, r.statusCode(), r.body());
            assertEquals("logprobs", json(r).at("/error/param").asText(), r.body());
        }
    }

    /** response_format json_object: sampled answers are JSON objects, streamed and not; T5 refuses it. */
    @Test
    void jsonObjectResponseFormat() throws Exception {
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            ObjectNode chat = (ObjectNode) TestServers.JSON.readTree(request("tiny-llama", false, 120, "JSON please",
                    false));
            chat.putObject("response_format").put("type", "json_object");
            chat.put("temperature", 1.0).put("n", 3).put("seed", 4);
            JsonNode c = json(client.post("/v1/chat/completions", chat.toString()));
            int closed = 0;
            for (JsonNode choice : c.get("choices")) {
                String content = choice.at("/message/content").asText();
                assertTrue(content.strip().startsWith("{"), content);
                // the random tiny model may still be inside a string at max_tokens; otherwise the object is whole
                if (choice.get("finish_reason").asText().equals("stop")) {
                    assertTrue(TestServers.JSON.readTree(content).isObject(), content);
                    closed++;
                }
            }
            assertTrue(closed > 0, c.toString());
            chat.put("stream", true);
            Map<Integer, String> streamed = streamedChoices(client.post("/v1/chat/completions", chat.toString()).body(),
                    new ArrayList<>());
            for (int i = 0; i < 3; i++) {
                assertEquals(c.at("/choices/" + i + "/message/content").asText(), streamed.get(i));
            }
            ObjectNode completion = TestServers.JSON.createObjectNode().put("model", "tiny-llama").put("prompt", "{")
                    .put("max_tokens", 120).put("temperature", 0);
            completion.putObject("response_format").put("type", "json_object");
            JsonNode done = json(client.post("/v1/completions", completion.toString()));
            String text = done.at("/choices/0/text").asText();
            assertEquals("stop", done.at("/choices/0/finish_reason").asText(), text);
            assertTrue(TestServers.JSON.readTree(text).isObject(), text);

            // json_schema: finished answers are instances of the schema; unsupported keywords are named
            ObjectNode structured = (ObjectNode) TestServers.JSON.readTree(request("tiny-llama", false, 100, "A koala",
                    false));
            structured.put("temperature", 1.0).put("n", 4).put("seed", 1);
            structured.putObject("response_format").put("type", "json_schema").putObject("json_schema")
                    .put("name", "animal").put("strict", true).set("schema", TestServers.JSON.readTree("""
                            {"type": "object", "properties": {"kind": {"enum": ["koala", "panda"]},
                             "legs": {"type": "integer", "minimum": 2, "maximum": 8}, "wild": {"type": "boolean"}},
                             "required": ["kind", "legs", "wild"], "additionalProperties": false}"""));
            JsonNode animals = json(client.post("/v1/chat/completions", structured.toString()));
            int instances = 0;
            for (JsonNode choice : animals.get("choices")) {
                if (choice.get("finish_reason").asText().equals("stop")) {
                    JsonNode a = TestServers.JSON.readTree(choice.at("/message/content").asText());
                    assertTrue(a.size() == 3 && a.get("legs").isInt() && a.get("legs").asInt() >= 2
                            && a.get("legs").asInt() <= 8 && a.get("wild").isBoolean()
                            && List.of("koala", "panda").contains(a.get("kind").asText()), a.toString());
                    instances++;
                }
            }
            assertTrue(instances > 0, animals.toString());
            ((ObjectNode) structured.at("/response_format/json_schema/schema/properties/legs")).putObject("dependentRequired");
            HttpResponse<String> unsupported = client.post("/v1/chat/completions", structured.toString());
            assertEquals(400, unsupported.statusCode(), unsupported.body());
            assertEquals("response_format", json(unsupported).at("/error/param").asText());
            assertTrue(json(unsupported).at("/error/message").asText().contains("/properties/legs: keyword "
                    + "\"dependentRequired\" is not supported"), unsupported.body());

            ObjectNode t5 = (ObjectNode) TestServers.JSON.readTree(request("tiny-t5", false, 2, "hello", false));
            t5.putObject("response_format").put("type", "json_object");
            HttpResponse<String> r = client.post("/v1/chat/completions", t5.toString());
            assertEquals(400, r.statusCode(), r.body());
            assertEquals("response_format", json(r).at("/error/param").asText(), r.body());
        }
    }

    /**
     * serve --chat-parallel 4: concurrent chat requests on one model run at once and their decoding steps are batched;
     * each answer equals the one the request gets alone.
     */
    @Test
    void parallelChatsDecodeTogether() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatParallel = 4;
        VisionChatModel llama = (VisionChatModel) LocalChatModels.open("tiny-llama", "tiny llama",
                TinyChatModels.llama(), VisionChat.Options.defaults(), new CpuOps());
        b.chatModels.add(llama);
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            String[] questions = {"Koalas eat", "The capital of Korea is", "Write a poem about", "Daejeon is"};
            List<String> bodies = new ArrayList<>();
            for (String q : questions) {
                // 160 tokens each (min_tokens: no eos before), so that the four replies overlap
                ObjectNode body = (ObjectNode) TestServers.JSON.readTree(request("tiny-llama", false, 160, q, false));
                bodies.add(body.put("temperature", 0).put("min_tokens", 160).toString());
            }
            List<String> alone = new ArrayList<>();
            for (String body : bodies) {
                alone.add(json(client.post("/v1/chat/completions", body)).at("/choices/0/message/content").asText());
            }
            var pool = java.util.concurrent.Executors.newFixedThreadPool(questions.length);
            try {
                // whether steps meet depends on timing: rounds until they have, each round's answers checked
                boolean shared = false;
                for (int round = 0; round < 10 && !shared; round++) {
                    var before = llama.decodeStats();
                    var start = new java.util.concurrent.CountDownLatch(1);
                    List<java.util.concurrent.Future<String>> answers = new ArrayList<>();
                    for (String body : bodies) {
                        answers.add(pool.submit(() -> {
                            start.await();
                            return json(client.post("/v1/chat/completions", body)).at("/choices/0/message/content")
                                    .asText();
                        }));
                    }
                    start.countDown();
                    for (int i = 0; i < questions.length; i++) {
                        assertEquals(alone.get(i), answers.get(i).get(), questions[i]);
                    }
                    var after = llama.decodeStats();
                    shared = after.batches() - before.batches() < after.steps() - before.steps();
                }
                assertTrue(shared, "no steps shared in 10 rounds: " + llama.decodeStats());
                // /metrics shows the loaded model's steps and the fewer batches they ran in
                String metrics = client.get("/metrics").body();
                var stats = llama.decodeStats();
                assertTrue(metrics.contains("koala4j_chat_decode_steps_total{model=\"tiny-llama\"} " + stats.steps())
                        && metrics.contains("koala4j_chat_decode_batches_total{model=\"tiny-llama\"} "
                        + stats.batches()), metrics);
            } finally {
                pool.shutdownNow();
            }
        }
    }

    /**
     * A model served with prompt lookup ({@code serve --chat-prompt-lookup}) or a draft model
     * ({@code --chat-draft-model}) answers as one without: alone,
     * streamed, and while other replies share its decoding steps.
     */
    @Test
    void promptLookupAnswersAsWithoutIt() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatParallel = 3;
        CpuOps ops = new CpuOps();
        b.chatModels.add(LocalChatModels.open("plain", "tiny llama", TinyChatModels.llama(),
                VisionChat.Options.defaults(), ops));
        var lookup = new VisionChat.Options(null, null, null, 8, null, 1, DType.F32, 512, new PromptLookup(5, 2));
        b.chatModels.add(LocalChatModels.open("lookup", "tiny llama", TinyChatModels.llama(), lookup, ops));
        // serve --chat-draft-model: the tiny LLaMA drafting for itself
        var withDraft = new VisionChat.Options(null, null, null, 8, null, 1, DType.F32, 512, null,
                new DraftModel.Source(TinyChatModels.llama(), null, new DraftModel.Settings(4, 0)));
        b.chatModels.add(LocalChatModels.open("drafted", "tiny llama", TinyChatModels.llama(), withDraft, ops));
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            String[] questions = {"Koalas eat", "The capital of Korea is", "Daejeon is"};
            List<String> alone = new ArrayList<>();
            for (String q : questions) {
                alone.add(json(client.post("/v1/chat/completions", greedy("plain", q, false)))
                        .at("/choices/0/message/content").asText());
                assertEquals(alone.getLast(), json(client.post("/v1/chat/completions", greedy("drafted", q, false)))
                        .at("/choices/0/message/content").asText(), "drafted: " + q);
                assertEquals(alone.getLast(), json(client.post("/v1/chat/completions", greedy("lookup", q, false)))
                        .at("/choices/0/message/content").asText(), q);
                StringBuilder streamed = new StringBuilder();
                for (String line : client.post("/v1/chat/completions", greedy("lookup", q, true)).body().split("\n")) {
                    if (line.startsWith("data: {")) {
                        streamed.append(TestServers.JSON.readTree(line.substring(6)).at("/choices/0/delta")
                                .path("content").asText(""));
                    }
                }
                assertEquals(alone.getLast(), streamed.toString(), q);
            }
            var pool = java.util.concurrent.Executors.newFixedThreadPool(questions.length);
            try {
                List<java.util.concurrent.Future<String>> answers = new ArrayList<>();
                for (String q : questions) {
                    answers.add(pool.submit(() -> json(client.post("/v1/chat/completions", greedy("lookup", q, false)))
                            .at("/choices/0/message/content").asText()));
                }
                for (int i = 0; i < questions.length; i++) {
                    assertEquals(alone.get(i), answers.get(i).get(), questions[i]);
                }
            } finally {
                pool.shutdownNow();
            }
            // /metrics counts the drafts (vLLM's spec_decode_num_draft_tokens / num_accepted_tokens)
            String metrics = client.get("/metrics").body();
            var drafted = java.util.regex.Pattern.compile("koala4j_chat_draft_tokens_total\\{model=\"lookup\"} (\\d+)")
                    .matcher(metrics);
            var kept = java.util.regex.Pattern.compile(
                    "koala4j_chat_draft_tokens_accepted_total\\{model=\"lookup\"} (\\d+)").matcher(metrics);
            assertTrue(drafted.find() && kept.find(), metrics);
            assertTrue(Long.parseLong(kept.group(1)) > 0 && Long.parseLong(drafted.group(1)) >= Long.parseLong(
                    kept.group(1)), metrics);
            assertTrue(metrics.contains("koala4j_chat_draft_tokens_total{model=\"plain\"} 0"), metrics);
            var byDraftModel = java.util.regex.Pattern.compile(
                    "koala4j_chat_draft_tokens_accepted_total\\{model=\"drafted\"} (\\d+)").matcher(metrics);
            assertTrue(byDraftModel.find() && Long.parseLong(byDraftModel.group(1)) > 0, metrics);
        }
    }

    /** 60 greedy tokens (no eos before them), so that the tiny model repeats itself and drafts are kept. */
    private static String greedy(String model, String question, boolean stream) throws Exception {
        ObjectNode body = (ObjectNode) TestServers.JSON.readTree(request(model, stream, 60, question, false));
        return body.put("temperature", 0).put("min_tokens", 60).toString();
    }

    @Test
    void legacyCompletionsRunThePromptAsGiven() throws Exception {
        String prompt = "USER: What is a koala? ASSISTANT:";
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(new String[] {"chat", "--model", TinyChatModels.llava(work).toString(), "--raw", "--prompt",
                prompt, "--max-new-tokens", "6", "--json"}, new PrintWriter(out), new PrintWriter(err),
                Map.of("HF_HUB_OFFLINE", "1", "HF_HOME", work.resolve("hf").toString()));
        assertEquals(0, code, err.toString());
        JsonNode cli = TestServers.JSON.readTree(out.toString());
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            ObjectNode body = TestServers.JSON.createObjectNode().put("model", "tiny-llava").put("prompt", prompt)
                    .put("max_tokens", 6);
            JsonNode j = json(client.post("/v1/completions", body.toString()));
            assertEquals("text_completion", j.get("object").asText(), j.toString());
            assertTrue(j.get("id").asText().startsWith("cmpl-"), j.toString());
            assertEquals(cli.get("text").asText(), j.at("/choices/0/text").asText());
            assertEquals(cli.get("prompt_ids").size(), j.at("/usage/prompt_tokens").asInt());
            assertEquals(cli.get("output_ids").size(), j.at("/usage/completion_tokens").asInt());
            assertTrue(j.at("/choices/0/logprobs").isNull());

            // echo: the prompt in front; stream: the same text in text_completion chunks
            body.put("echo", true).put("stream", true);
            StringBuilder streamed = new StringBuilder();
            String finish = null;
            for (String line : client.post("/v1/completions", body.toString()).body().split("\n")) {
                if (line.startsWith("data: ") && !line.equals("data: [DONE]")) {
                    JsonNode chunk = TestServers.JSON.readTree(line.substring(6));
                    assertEquals("text_completion", chunk.get("object").asText(), chunk.toString());
                    streamed.append(chunk.at("/choices/0/text").asText());
                    if (!chunk.at("/choices/0/finish_reason").isNull()) {
                        finish = chunk.at("/choices/0/finish_reason").asText();
                    }
                }
            }
            assertEquals(prompt + cli.get("text").asText(), streamed.toString());
            assertTrue(finish != null, "a last chunk with the finish reason");

            // OpenAI's default max_tokens for completions is 16
            JsonNode dflt = json(client.post("/v1/completions", TestServers.JSON.createObjectNode()
                    .put("model", "tiny-llava").put("prompt", prompt).toString()));
            assertTrue(dflt.at("/usage/completion_tokens").asInt() <= 16, dflt.toString());

            // the text-to-text model takes the prompt as its input
            JsonNode t5 = json(client.post("/v1/completions", TestServers.JSON.createObjectNode()
                    .put("model", "tiny-t5").put("prompt", "Good morning, koala!").put("max_tokens", 16).toString()));
            JsonNode t5chat = json(client.post("/v1/chat/completions", request("tiny-t5", false, 16,
                    "Good morning, koala!", false)));
            assertEquals(t5chat.at("/choices/0/message/content").asText(), t5.at("/choices/0/text").asText());

            String[][] refused = {{"suffix", "\"!\""}, {"best_of", "2"}, {"n", "0"}, {"prompt", "[\"a\", \"b\"]"},
                    {"prompt", "[1, 2, 3]"}, {"logprobs", "21"}, {"logprobs", "true"}, {"echo", "\"yes\""},
                    {"max_tokens", "-1"}};
            for (String[] field : refused) {
                ObjectNode bad = TestServers.JSON.createObjectNode().put("model", "tiny-llava").put("prompt", "hi");
                bad.set(field[0], TestServers.JSON.readTree(field[1]));
                HttpResponse<String> r = client.post("/v1/completions", bad.toString());
                assertEquals(400, r.statusCode(), field[0] + " " + r.body());
                assertEquals(field[0], json(r).at("/error/param").asText(), r.body());
            }
        }
    }

    @Test
    void t5AnswersTheLastUserMessage() throws Exception {
        JsonNode expected = TestServers.JSON.readTree(TinyChatModels.t5().resolveSibling("expected.json").toFile())
                .get("runs").get(0);
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            HttpResponse<String> r = client.post("/v1/chat/completions",
                    request("tiny-t5", false, 16, expected.get("input_text").asText(), false));
            assertEquals(200, r.statusCode(), r.body());
            JsonNode j = json(r);
            assertEquals(expected.at("/expected/text_skip_special").asText(), j.at("/choices/0/message/content").asText());
            assertEquals(expected.at("/expected/input_ids").size(), j.at("/usage/prompt_tokens").asInt());
            assertEquals(16, j.at("/usage/completion_tokens").asInt());
            assertEquals("length", j.at("/choices/0/finish_reason").asText());

            // streamed as the bytes decode: several chunks that add up to the answer
            HttpResponse<String> s = client.post("/v1/chat/completions",
                    request("tiny-t5", true, 16, expected.get("input_text").asText(), false));
            List<Integer> finished = new ArrayList<>();
            assertEquals(Map.of(0, expected.at("/expected/text_skip_special").asText()),
                    streamedChoices(s.body(), finished), s.body());
            assertEquals(List.of(0), finished);
            assertTrue(s.body().split("\"content\":\"[^\"]", -1).length > 3, "more than two text chunks: " + s.body());
            assertTrue(s.body().strip().endsWith("data: [DONE]"), s.body());

            HttpResponse<String> image = client.post("/v1/chat/completions", request("tiny-t5", false, 4, "hi", true));
            assertEquals(400, image.statusCode(), image.body());
            assertTrue(json(image).at("/error/message").asText().contains("text-to-text"), image.body());
        }
    }

    /**
     * {@code POST /v1/embeddings}: with a T5 model {@code t5 --embed}'s vector at length 1 (as OpenAI's embeddings
     * are), floats or base64, one per input in order, usage in tokens; with a LLaMA model transformers' mean-pooled
     * last hidden state at length 1; malformed requests are 400s naming the field.
     */
    @Test
    void embeddingsAsOpenAiSendsThem() throws Exception {
        String[] inputs = {"안녕하세요, 코알라!", "a koala"};
        List<float[]> cli = new ArrayList<>();
        List<Integer> tokens = new ArrayList<>();
        for (String input : inputs) {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            int code = Main.run(new String[] {"t5", "--model", TinyChatModels.t5().toString(), "--input", input,
                    "--embed", "--json"}, new PrintWriter(out), new PrintWriter(err), Map.of());
            assertEquals(0, code, err.toString());
            JsonNode j = TestServers.JSON.readTree(out.toString());
            float[] v = new float[j.get("embedding").size()];
            double norm = 0;
            for (int i = 0; i < v.length; i++) {
                v[i] = j.get("embedding").get(i).floatValue();
                norm += (double) v[i] * v[i];
            }
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (v[i] / Math.sqrt(norm));
            }
            cli.add(v);
            tokens.add(j.get("input_ids").size());
        }
        try (KoalaServer server = start()) {
            Client client = Client.of(server);
            ObjectNode body = TestServers.JSON.createObjectNode().put("model", "tiny-t5");
            body.putArray("input").add(inputs[0]).add(inputs[1]);
            HttpResponse<String> r = client.post("/v1/embeddings", body.toString());
            assertEquals(200, r.statusCode(), r.body());
            JsonNode j = json(r);
            assertEquals("list", j.get("object").asText());
            assertEquals("tiny-t5", j.get("model").asText());
            assertEquals(tokens.get(0) + tokens.get(1), j.at("/usage/prompt_tokens").asInt());
            assertEquals(tokens.get(0) + tokens.get(1), j.at("/usage/total_tokens").asInt());
            for (int i = 0; i < inputs.length; i++) {
                JsonNode item = j.get("data").get(i);
                assertEquals("embedding", item.get("object").asText());
                assertEquals(i, item.get("index").asInt());
                float[] got = new float[item.get("embedding").size()];
                for (int k = 0; k < got.length; k++) {
                    got[k] = item.get("embedding").get(k).floatValue();
                }
                assertArrayEquals(cli.get(i), got, 1e-6f, "input " + i);
            }
            // one string, base64: the same float32 values, little-endian
            HttpResponse<String> b = client.post("/v1/embeddings", TestServers.JSON.createObjectNode()
                    .put("model", "tiny-t5").put("input", inputs[1]).put("encoding_format", "base64").toString());
            assertEquals(200, b.statusCode(), b.body());
            byte[] raw = Base64.getDecoder().decode(json(b).at("/data/0/embedding").asText());
            float[] decoded = new float[raw.length / 4];
            java.nio.ByteBuffer.wrap(raw).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(decoded);
            assertArrayEquals(cli.get(1), decoded, 1e-6f);

            String[][] refusals = {
                    {"{\"model\":\"tiny-t5\"}", "input: required"},
                    {"{\"model\":\"tiny-t5\",\"input\":\"\"}", "input: expected a non-empty string"},
                    {"{\"model\":\"tiny-t5\",\"input\":[]}", "input: expected 1 to 64 strings, got 0"},
                    {"{\"model\":\"tiny-t5\",\"input\":[1,2,3]}", "input[0] 1: expected a string (token arrays"},
                    {"{\"model\":\"tiny-t5\",\"input\":[[1,2]]}", "input[0] [1,2]: expected a string"},
                    {"{\"model\":\"tiny-t5\",\"input\":\"hi\",\"encoding_format\":\"int8\"}",
                            "encoding_format \"int8\": expected \"float\" or \"base64\""},
                    {"{\"model\":\"tiny-t5\",\"input\":\"hi\",\"dimensions\":8}", "dimensions: not supported"},
            };
            for (String[] c : refusals) {
                HttpResponse<String> bad = client.post("/v1/embeddings", c[0]);
                assertEquals(400, bad.statusCode(), c[0] + " -> " + bad.body());
                assertTrue(json(bad).at("/error/message").asText().contains(c[1]), bad.body());
            }
            ObjectNode many = TestServers.JSON.createObjectNode().put("model", "tiny-t5");
            var list = many.putArray("input");
            for (int i = 0; i < 65; i++) {
                list.add("x");
            }
            HttpResponse<String> tooMany = client.post("/v1/embeddings", many.toString());
            assertEquals(400, tooMany.statusCode(), tooMany.body());
            assertTrue(json(tooMany).at("/error/message").asText().contains("got 65"), tooMany.body());
            HttpResponse<String> unknown = client.post("/v1/embeddings", "{\"model\":\"nope\",\"input\":\"hi\"}");
            assertEquals(404, unknown.statusCode(), unknown.body());

            // a LLaMA model: transformers' hidden_states[-1] averaged over the prompt's positions, at length 1
            // (golden/embeddings/llama.json, made by make_llama_embeddings.py; llama.cpp's --pooling mean)
            JsonNode golden = TestServers.JSON.readTree(koala4j.testing.Close.resource("golden/embeddings/llama.json")
                    .toFile()).get("runs");
            ObjectNode llama = TestServers.JSON.createObjectNode().put("model", "tiny-llama");
            var prompts = llama.putArray("input");
            int goldenTokens = 0;
            for (JsonNode run : golden) {
                prompts.add(run.get("prompt").asText());
                goldenTokens += run.get("input_ids").size();
            }
            JsonNode got = json(client.post("/v1/embeddings", llama.toString()));
            assertEquals(goldenTokens, got.at("/usage/prompt_tokens").asInt(), got.toString());
            for (int i = 0; i < golden.size(); i++) {
                JsonNode want = golden.get(i).get("embedding");
                JsonNode have = got.get("data").get(i).get("embedding");
                assertEquals(want.size(), have.size());
                for (int k = 0; k < want.size(); k++) {
                    assertEquals(want.get(k).asDouble(), have.get(k).asDouble(), 1e-5, "prompt " + i + " value " + k);
                }
            }
            // a LLaVA model embeds text through its language model
            assertEquals(200, client.post("/v1/embeddings", "{\"model\":\"tiny-llava\",\"input\":\"hi\"}")
                    .statusCode());
            // an input longer than the context (the tiny LLaMA's 512 positions) is the client's error
            HttpResponse<String> tooLong = client.post("/v1/embeddings", TestServers.JSON.createObjectNode()
                    .put("model", "tiny-llama").put("input", "koala ".repeat(300)).toString());
            assertEquals(400, tooLong.statusCode(), tooLong.body());
            assertTrue(json(tooLong).at("/error/message").asText().contains("max_position_embeddings) is 512")
                    && json(tooLong).at("/error/param").asText().equals("input"), tooLong.body());
        }
    }

    /**
     * {@code serve --chat-max-loaded 1}, or a {@code --chat-memory-budget} that holds either model but not both: each
     * model's request unloads the other, which answers again when asked.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"count", "bytes"})
    void oneLoadedChatModelAtATime(String limitBy) throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        CpuOps ops = new CpuOps();
        long larger = Math.max(Files.size(TinyChatModels.llama().resolve("model.safetensors")),
                Files.size(TinyChatModels.t5().resolve("model.safetensors")));
        ChatModelLimit one = limitBy.equals("count") ? ChatModelLimit.of(1) : ChatModelLimit.of(0, larger + 1);
        VisionChatModel llama = (VisionChatModel) LocalChatModels.open("tiny-llama", "tiny llama",
                TinyChatModels.llama(), VisionChat.Options.defaults(), ops, one);
        TextToTextChatModel t5 = (TextToTextChatModel) LocalChatModels.open("tiny-t5", "tiny t5", TinyChatModels.t5(),
                VisionChat.Options.defaults(), ops, one);
        b.chatModels.add(llama);
        b.chatModels.add(t5);
        t5.load();                                                     // serve --chat-preload
        assertTrue(t5.loaded() && !llama.loaded());
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            String first = json(client.post("/v1/chat/completions", request("tiny-llama", false, 8, "Koalas eat",
                    false))).at("/choices/0/message/content").asText();
            assertTrue(llama.loaded() && !t5.loaded());
            HttpResponse<String> r = client.post("/v1/chat/completions", request("tiny-t5", false, 4, "hi", false));
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(t5.loaded() && !llama.loaded(), "the llama model unloaded for the T5 one");
            String again = json(client.post("/v1/chat/completions", request("tiny-llama", false, 8, "Koalas eat",
                    false))).at("/choices/0/message/content").asText();
            assertEquals(first, again);
            assertTrue(llama.loaded() && !t5.loaded());
        }
    }

    /**
     * A request no longer wanted (client gone, deadline passed) stops before the prompt is computed, also where no
     * text would be streamed for a long time: nothing reaches the stream.
     */
    @Test
    void aCancelledRequestStopsBeforeItsPrompt() throws Exception {
        CpuOps ops = new CpuOps();
        List<String> deltas = new ArrayList<>();
        ChatModel.Stream gone = new ChatModel.Stream() {
            @Override
            public void delta(String text) {
                deltas.add(text);
            }

            @Override
            public koala4j.pipelines.Cancel cancel() {
                return () -> true;
            }
        };
        var user = List.of(new ChatModel.Message("user", List.<ChatModel.Part>of(new ChatModel.TextPart("Koalas eat"))));
        var params = new ChatModel.Params(8, 0.0, null, null);
        ChatModel.Stream wanted = deltas::add;
        for (ChatModel model : List.of(
                LocalChatModels.open("tiny-llama", "tiny llama", TinyChatModels.llama(), VisionChat.Options.defaults(),
                        ops),
                LocalChatModels.open("tiny-t5", "tiny t5", TinyChatModels.t5(), VisionChat.Options.defaults(), ops))) {
            assertThrows(java.util.concurrent.CancellationException.class, () -> model.complete(user, params, gone),
                    model.id());
            // the llama model decodes choices together: one gone stream stops them all; T5 answers one by one
            List<ChatModel.Stream> streams = model instanceof VisionChatModel ? List.of(wanted, gone) : List.of(gone, gone);
            assertThrows(java.util.concurrent.CancellationException.class,
                    () -> model.completeChoices(user, params, streams), model.id() + ", two choices");
        }
        assertEquals(List.of(), deltas);
    }

    @Test
    void aModelThatCannotLoadIs503WithoutServerPaths() throws Exception {
        Path broken = work.resolve("broken-llava");
        koala4j.testing.TinyPipelines.copyTree(TinyChatModels.llava(work), broken);
        Files.delete(broken.resolve("preprocessor_config.json"));
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatModels.add(LocalChatModels.open("broken-llava", "broken", broken, VisionChat.Options.defaults(),
                new CpuOps()));
        try (KoalaServer server = KoalaServer.start(b.build())) {
            HttpResponse<String> r = Client.of(server).post("/v1/chat/completions",
                    request("broken-llava", false, 4, QUESTION, true));
            assertEquals(503, r.statusCode(), r.body());
            assertTrue(json(r).at("/error/message").asText().contains("could not be loaded"), r.body());
            assertTrue(!r.body().contains(broken.toString()), r.body());
        }
        // loaded ahead (serve --chat-preload): the same error, with the reason attached for the command line
        ChatModel model = LocalChatModels.open("broken-llava", "broken", broken, VisionChat.Options.defaults(),
                new CpuOps());
        ApiError e = assertThrows(ApiError.class, model::load);
        assertTrue(e.getCause() != null && e.getCause().getMessage().contains("preprocessor_config.json"),
                String.valueOf(e.getCause()));
    }

    @Test
    void theKindComesFromConfigJson() throws Exception {
        assertEquals(LocalChatModels.Kind.VISION_CHAT, LocalChatModels.kindOf(TinyChatModels.kollava()));
        assertEquals(LocalChatModels.Kind.VISION_CHAT, LocalChatModels.kindOf(TinyChatModels.llama()));
        assertEquals(LocalChatModels.Kind.TEXT_TO_TEXT, LocalChatModels.kindOf(TinyChatModels.t5()));
        Path bert = Files.createDirectories(work.resolve("bert"));
        Files.writeString(bert.resolve("config.json"), "{\"model_type\": \"bert\"}");
        var e = assertThrows(koala4j.io.json.JsonException.class, () -> LocalChatModels.kindOf(bert));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("bert")
                && e.getMessage().contains("gbswt5"), e.getMessage());
    }

    /**
     * What {@code --chat-memory-budget} counts: the weight files, with a quantised LLaMA's Linear weights (decoder
     * layers and lm_head of the tiny F32 model: 2 x (2 x 64 x 64 + 2 x 64 x 32 + 3 x 64 x 168) + 500 x 64 = 137,216
     * weights) at their Q8_0 / Q4_0 size instead of 4 bytes each; a T5 folder by its files.
     */
    @Test
    void theMemoryBudgetCountsWeightFiles() throws Exception {
        long llamaFiles = Files.size(TinyChatModels.llama().resolve("model.safetensors"));
        assertEquals(llamaFiles, LocalChatModels.estimatedBytes(TinyChatModels.llama(),
                koala4j.tensor.quant.Quantization.NONE));
        long linear = 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 168) + 500 * 64;
        assertEquals(llamaFiles - 4 * linear + koala4j.tensor.quant.Q8.bytesFor(linear),
                LocalChatModels.estimatedBytes(TinyChatModels.llama(), koala4j.tensor.quant.Quantization.Q8_0));
        assertEquals(llamaFiles - 4 * linear + koala4j.tensor.quant.Q4.bytesFor(linear),
                LocalChatModels.estimatedBytes(TinyChatModels.llama(), koala4j.tensor.quant.Quantization.Q4_0));
        assertEquals(Files.size(TinyChatModels.t5().resolve("model.safetensors")),
                LocalChatModels.estimatedBytes(TinyChatModels.t5(), koala4j.tensor.quant.Quantization.Q8_0));
    }
}
