package koala4j.server;

import static koala4j.server.TestServers.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import koala4j.io.image.Image;
import koala4j.io.image.Png;
import koala4j.server.TestServers.Client;

/**
 * The OpenAI image provider (dall-e-2, dall-e-3) against a local stand-in that speaks the same protocol: the request
 * it receives (path, Bearer key, JSON fields), its answer relayed in OpenAI's shape (revised_prompt included), the
 * models' real limits enforced before any call, and the provider's own errors passed on.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OpenAiProviderTest {

    static final String KEY = "sk-test-0123456789abcdef";

    @TempDir
    Path data;
    HttpServer standIn;
    final List<JsonNode> received = new CopyOnWriteArrayList<>();
    final List<String> authorizations = new CopyOnWriteArrayList<>();

    @BeforeEach
    void startStandIn() throws IOException {
        standIn = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        standIn.createContext("/v1/images/generations", this::handle);
        standIn.start();
    }

    @AfterEach
    void stopStandIn() {
        standIn.stop(0);
    }

    private void handle(HttpExchange ex) throws IOException {
        authorizations.add(ex.getRequestHeaders().getFirst("Authorization"));
        JsonNode req = TestServers.JSON.readTree(ex.getRequestBody());
        received.add(req);
        ObjectNode out = TestServers.JSON.createObjectNode();
        int status = 200;
        if (!("Bearer " + KEY).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
            status = 401;
            out.putObject("error").put("message", "Incorrect API key provided").put("type", "invalid_request_error");
        } else if (req.get("prompt").asText().contains("forbidden")) {
            status = 400;
            out.putObject("error").put("message", "Your request was rejected as a result of our safety system.")
                    .put("type", "invalid_request_error").put("code", "content_policy_violation");
        } else {
            String[] size = req.get("size").asText().split("x");
            byte[] png = Png.encode(Image.blank(Integer.parseInt(size[0]) / 64, Integer.parseInt(size[1]) / 64, 3), null);
            out.put("created", 1700000000);
            var list = out.putArray("data");
            for (int i = 0; i < req.get("n").asInt(); i++) {
                ObjectNode item = list.addObject().put("b64_json", Base64.getEncoder().encodeToString(png));
                if (req.get("model").asText().equals("dall-e-3")) {
                    item.put("revised_prompt", "A detailed picture of " + req.get("prompt").asText());
                }
            }
        }
        byte[] bytes = out.toString().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        ex.getResponseBody().write(bytes);
        ex.close();
    }

    private KoalaServer start(String key) throws IOException {
        ServerConfig.Builder b = TestServers.builder(data);
        b.openAiKey = key;
        b.openAiBaseUrl = URI.create("http://127.0.0.1:" + standIn.getAddress().getPort() + "/v1");
        return KoalaServer.start(b.build());
    }

    @Test
    void dallE3GoesThroughTheProviderProtocol() throws Exception {
        try (KoalaServer server = start(KEY)) {
            Client client = Client.of(server);
            HttpResponse<String> r = client.post("/v1/images/generations", "{\"model\":\"dall-e-3\",\"prompt\":\"a koala\","
                    + "\"size\":\"1792x1024\",\"quality\":\"hd\",\"style\":\"natural\",\"response_format\":\"b64_json\"}");
            assertEquals(200, r.statusCode(), r.body());
            JsonNode j = json(r);
            assertEquals("A detailed picture of a koala", j.at("/data/0/revised_prompt").asText());
            byte[] png = Base64.getDecoder().decode(j.at("/data/0/b64_json").asText());
            assertEquals(28, javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(png)).getWidth());
            assertEquals("1792x1024", j.at("/parameters/size").asText());
            assertTrue(j.at("/parameters/seed").isNull(), "a remote model has no seed");
            JsonNode sent = received.getFirst();
            assertEquals("dall-e-3", sent.get("model").asText());
            assertEquals("a koala", sent.get("prompt").asText());
            assertEquals(1, sent.get("n").asInt());
            assertEquals("1792x1024", sent.get("size").asText());
            assertEquals("hd", sent.get("quality").asText());
            assertEquals("natural", sent.get("style").asText());
            assertEquals("b64_json", sent.get("response_format").asText());
            assertEquals("Bearer " + KEY, authorizations.getFirst());
            var stored = server.store().generation(j.get("id").asText()).orElseThrow();
            assertEquals("done", stored.status());
            assertEquals("A detailed picture of a koala", stored.images().getFirst().revisedPrompt());
        }
    }

    @Test
    void dallE2TakesSeveralImagesAndUrls() throws Exception {
        try (KoalaServer server = start(KEY)) {
            Client client = Client.of(server);
            HttpResponse<String> r = client.post("/v1/images/generations",
                    "{\"model\":\"dall-e-2\",\"prompt\":\"두 마리 코알라\",\"n\":3,\"size\":\"256x256\"}");
            assertEquals(200, r.statusCode(), r.body());
            JsonNode j = json(r);
            assertEquals(3, j.get("data").size());
            String url = j.at("/data/2/url").asText();
            assertEquals(200, client.getBytes(url.substring(client.base().length())).statusCode());
        }
    }

    @Test
    void theModelsRealLimitsAreEnforcedBeforeAnyCall() throws Exception {
        try (KoalaServer server = start(KEY)) {
            Client client = Client.of(server);
            String[][] cases = {
                    {"{\"model\":\"dall-e-3\",\"prompt\":\"x\",\"n\":2}", "n"},
                    {"{\"model\":\"dall-e-3\",\"prompt\":\"x\",\"size\":\"512x512\"}", "size"},
                    {"{\"model\":\"dall-e-2\",\"prompt\":\"x\",\"size\":\"1792x1024\"}", "size"},
                    {"{\"model\":\"dall-e-2\",\"prompt\":\"" + "x".repeat(1001) + "\"}", "prompt"},
                    {"{\"model\":\"dall-e-2\",\"prompt\":\"x\",\"quality\":\"hd\"}", "quality"},
                    {"{\"model\":\"dall-e-3\",\"prompt\":\"x\",\"style\":\"cartoon\"}", "style"},
                    {"{\"model\":\"dall-e-3\",\"prompt\":\"x\",\"seed\":1}", "seed"},
                    {"{\"model\":\"dall-e-2\",\"prompt\":\"x\",\"steps\":10}", "steps"}};
            for (String[] c : cases) {
                HttpResponse<String> r = client.post("/v1/images/generations", c[0]);
                assertEquals(400, r.statusCode(), c[0] + " -> " + r.body());
                assertEquals(c[1], json(r).at("/error/param").asText(), r.body());
            }
            assertTrue(received.isEmpty(), "nothing reached the provider");
            assertEquals(400, client.post("/v1/images/generations",
                    "{\"model\":\"dall-e-3\",\"prompt\":\"" + "x".repeat(2001) + "\"}").statusCode(),
                    "the server's own prompt limit (2000) is lower than dall-e-3's 4000");
        }
    }

    @Test
    void theProvidersErrorsArePassedOn() throws Exception {
        try (KoalaServer server = start(KEY)) {
            HttpResponse<String> r = Client.of(server).post("/v1/images/generations",
                    "{\"model\":\"dall-e-2\",\"prompt\":\"something forbidden\"}");
            assertEquals(400, r.statusCode(), r.body());
            assertTrue(json(r).at("/error/message").asText().contains("safety system"), r.body());
            assertEquals(1, server.store().countByStatus().get("failed"));
        }
        try (KoalaServer server = start("sk-wrong-key-0123456789")) {
            HttpResponse<String> r = Client.of(server).post("/v1/images/generations",
                    "{\"model\":\"dall-e-2\",\"prompt\":\"x\"}");
            assertEquals(502, r.statusCode(), r.body());
            assertTrue(json(r).at("/error/message").asText().contains("Incorrect API key"), r.body());
        }
    }

    @Test
    void withoutAKeyTheModelsAreListedAsUnavailable() throws Exception {
        try (KoalaServer server = start(null)) {
            Client client = Client.of(server);
            JsonNode models = json(client.get("/api/models")).get("models");
            for (JsonNode m : models) {
                assertFalse(m.get("available").asBoolean(), m.toString());
                assertEquals("OPENAI_API_KEY is not set", m.get("reason").asText());
            }
            assertEquals(List.of("256x256", "512x512", "1024x1024"),
                    TestServers.JSON.convertValue(models.get(0).at("/limits/sizes"), List.class));
            HttpResponse<String> r = client.post("/v1/images/generations", "{\"model\":\"dall-e-3\",\"prompt\":\"x\"}");
            assertEquals(503, r.statusCode());
            assertTrue(json(r).at("/error/message").asText().contains("OPENAI_API_KEY is not set"));
            assertTrue(received.isEmpty());
        }
    }
}
