package koala4j.server;

import static koala4j.server.TestServers.json;
import static koala4j.server.TestServers.tinyRequest;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import com.fasterxml.jackson.databind.JsonNode;

import koala4j.io.image.Png;
import koala4j.server.TestServers.Client;

/**
 * The OpenAI-compatible image API over real HTTP on loopback, against the tiny golden pipelines (offline): the
 * response shape, b64_json and url, OpenAI error bodies for every kind of bad input, /v1/models, /healthz,
 * /metrics, jobs with SSE progress, the image route's id checks, and CORS off by default.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ImagesApiTest {

    @TempDir
    static Path data;
    static KoalaServer server;
    static Client client;

    @BeforeAll
    static void start() throws IOException {
        server = KoalaServer.start(TestServers.builder(data, "sd15", "koala").build());
        client = Client.of(server);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    @Test
    void generatesB64JsonInOpenAiShapeAndTheSameSeedGivesTheSameImage() throws Exception {
        String body = TestServers.JSON.createObjectNode().put("model", "sd15").put("prompt", "a koala reading a book")
                .put("n", 2).put("size", "64x64").put("steps", 2).put("seed", 7).put("response_format", "b64_json")
                .toString();
        HttpResponse<String> r = client.post("/v1/images/generations", body);
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        JsonNode j = json(r);
        assertTrue(j.get("created").isIntegralNumber());
        assertEquals(2, j.get("data").size());
        assertEquals("sd15", j.get("model").asText());
        assertEquals(7, j.at("/parameters/seed").asLong());
        assertEquals(2, j.at("/parameters/steps").asInt());
        assertEquals("64x64", j.at("/parameters/size").asText());
        byte[] png = Base64.getDecoder().decode(j.at("/data/0/b64_json").asText());
        var image = javax.imageio.ImageIO.read(new ByteArrayInputStream(png));
        assertEquals(64, image.getWidth());
        assertEquals(64, image.getHeight());
        Map<String, String> text = Png.readText(png);
        assertEquals("7", text.get("seed"));
        assertEquals("a koala reading a book", text.get("prompt"));
        assertEquals("sd15", text.get("model"));

        // same model, prompt and seed: the same image. Not byte-equal: the CPU engine's first call after loading
        // differs from later ones by ~4e-6 (float reassociation), which can flip a rounding by one level.
        JsonNode again = json(client.post("/v1/images/generations", body));
        var second = javax.imageio.ImageIO.read(new ByteArrayInputStream(
                Base64.getDecoder().decode(again.at("/data/0/b64_json").asText())));
        int maxDiff = 0;
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 64; x++) {
                for (int shift = 0; shift < 24; shift += 8) {
                    maxDiff = Math.max(maxDiff, Math.abs((image.getRGB(x, y) >> shift & 0xFF)
                            - (second.getRGB(x, y) >> shift & 0xFF)));
                }
            }
        }
        assertTrue(maxDiff <= 1, "max pixel difference " + maxDiff);
        assertNotEquals(j.get("id").asText(), again.get("id").asText());
    }

    @Test
    void urlResponsesPointAtStoredImages() throws Exception {
        HttpResponse<String> r = client.post("/v1/images/generations", tinyRequest("koala", "코알라가 책을 읽는다", 3));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode j = json(r);
        String url = j.at("/data/0/url").asText();
        assertTrue(url.startsWith(client.base() + "/images/") && url.endsWith(".png"), url);
        HttpResponse<byte[]> img = client.getBytes(url.substring(client.base().length()));
        assertEquals(200, img.statusCode());
        assertEquals("image/png", img.headers().firstValue("Content-Type").orElse(""));
        assertEquals("코알라가 책을 읽는다", Png.readText(img.body()).get("prompt"));
        var stored = server.store().generation(j.get("id").asText()).orElseThrow();
        assertEquals("done", stored.status());
        assertEquals("코알라가 책을 읽는다", stored.prompt());
        assertEquals(3L, stored.seed());
        assertEquals(1, stored.images().size());
    }

    @Test
    void listsLocalAndRemoteModels() throws Exception {
        JsonNode j = json(client.get("/v1/models"));
        assertEquals("list", j.get("object").asText());
        List<String> ids = new ArrayList<>();
        j.get("data").forEach(m -> ids.add(m.get("id").asText()));
        assertEquals(List.of("sd15", "koala", "dall-e-2", "dall-e-3"), ids);
        JsonNode dalle = j.get("data").get(2);
        assertEquals("model", dalle.get("object").asText());
        assertFalse(dalle.get("available").asBoolean());
        assertEquals("OPENAI_API_KEY is not set", dalle.get("unavailable_reason").asText());
        // OpenAI's retrieve model: the list's entry, 404 for an unknown id (hostile ones included)
        assertEquals(j.get("data").get(0), json(client.get("/v1/models/sd15")));
        assertEquals(dalle, json(client.get("/v1/models/dall-e-2")));
        for (String missing : List.of("nope", "nope/nothing", "..")) {
            HttpResponse<String> r = client.get("/v1/models/" + missing);
            assertEquals(404, r.statusCode(), missing + " -> " + r.body());
            assertEquals("model_not_found", json(r).at("/error/code").asText(), r.body());
        }
        // encoded separators and NULs: Jetty refuses the URI itself (400) or no model has that id (404)
        for (String hostile : List.of("..%2F..%2Fetc%2Fpasswd", "%00", "%2E%2E")) {
            HttpResponse<String> r = client.get("/v1/models/" + hostile);
            assertTrue(r.statusCode() == 404 || r.statusCode() == 400, hostile + " -> " + r.statusCode());
            assertFalse(r.body().contains("root:"), hostile);
        }
    }

    static Stream<Arguments> badRequests() {
        String longPrompt = "a".repeat(2001);
        return Stream.of(
                Arguments.of("{\"model\":\"sd15\"}", 400, "prompt"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"   \"}", 400, "prompt"),
                Arguments.of("{\"model\":\"../../etc/passwd\",\"prompt\":\"x\"}", 400, "model"),
                Arguments.of("{\"model\":\"..\",\"prompt\":\"x\"}", 400, "model"),
                Arguments.of("{\"model\":\"nope/nothing\",\"prompt\":\"x\"}", 404, "model"),
                Arguments.of("{\"model\":\"dall-e-2\",\"prompt\":\"x\"}", 503, "model"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"" + longPrompt + "\"}", 400, "prompt"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\\u0000y\"}", 400, "prompt"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"n\":5}", 400, "n"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"n\":\"2\"}", 400, "n"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"size\":\"63x64\"}", 400, "size"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"size\":\"4096x4096\"}", 400, "size"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"size\":\"big\"}", 400, "size"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"response_format\":\"jpeg\"}", 400, "response_format"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"stream\":true}", 400, "stream"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"steps\":0}", 400, "steps"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"steps\":151}", 400, "steps"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"guidance\":-1}", 400, "guidance"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"seed\":-1}", 400, "seed"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"scheduler\":\"<script>\"}", 400, "scheduler"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":\"x\",\"quality\":\"hd\"}", 400, "quality"),
                Arguments.of("{\"model\":\"sd15\",\"prompt\":", 400, null),
                Arguments.of("[1, 2]", 400, null));
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @MethodSource("badRequests")
    void badRequestsGetOpenAiErrors(String body, int status, String param) throws Exception {
        HttpResponse<String> r = client.post("/v1/images/generations", body);
        assertEquals(status, r.statusCode(), r.body());
        JsonNode error = json(r).get("error");
        assertTrue(error.get("message").asText().length() > 5, r.body());
        assertTrue(error.has("type") && error.has("param") && error.has("code"), r.body());
        if (param == null) {
            assertTrue(error.get("param").isNull(), r.body());
        } else {
            assertEquals(param, error.get("param").asText(), r.body());
        }
    }

    @Test
    void anUnknownSchedulerFailsTheJobWithA400() throws Exception {
        HttpResponse<String> r = client.post("/v1/images/generations", TestServers.JSON.createObjectNode()
                .put("model", "sd15").put("prompt", "x").put("size", "64x64").put("steps", 2).put("scheduler", "warp")
                .toString());
        assertEquals(400, r.statusCode(), r.body());
        assertTrue(r.body().contains("warp"), r.body());
    }

    @Test
    void oversizedBodiesAre413() throws Exception {
        String body = "{\"model\":\"sd15\",\"prompt\":\"" + "x".repeat(70_000) + "\"}";
        HttpResponse<String> r = client.post("/v1/images/generations", body);
        assertEquals(413, r.statusCode(), r.body());
        assertEquals("invalid_request_error", json(r).at("/error/type").asText());
    }

    @Test
    void unknownRoutesAnswerInOpenAiShape() throws Exception {
        HttpResponse<String> r = client.get("/v1/nothing");
        assertEquals(404, r.statusCode());
        assertTrue(json(r).at("/error/message").asText().contains("/v1/nothing"), r.body());
    }

    @Test
    void healthAndMetrics() throws Exception {
        assertEquals(200, client.post("/v1/images/generations", tinyRequest("sd15", "metrics", 1)).statusCode());
        client.post("/v1/images/generations", "{}");
        HttpResponse<String> h = client.get("/healthz");
        assertEquals(200, h.statusCode());
        assertEquals("ok", json(h).get("status").asText());
        HttpResponse<String> m = client.get("/metrics");
        assertEquals(200, m.statusCode());
        assertTrue(m.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
        String text = m.body();
        for (String line : List.of("# TYPE koala4j_queue_depth gauge", "koala4j_queue_depth 0",
                "# TYPE koala4j_job_seconds histogram", "koala4j_job_seconds_bucket{le=\"+Inf\"}",
                "koala4j_images_generated_total{model=\"sd15\"}", "koala4j_errors_total{type=\"invalid_request_error\"}",
                "koala4j_jobs_total{status=\"done\"}", "koala4j_rejected_total 0", "koala4j_model_loads_total")) {
            assertTrue(text.contains(line), line + " in\n" + text);
        }
    }

    @Test
    void jobsReportProgressOverSse() throws Exception {
        HttpResponse<String> submitted = client.post("/v1/jobs", TestServers.JSON.createObjectNode().put("model", "koala")
                .put("prompt", "progress").put("size", "64x64").put("steps", 3).put("seed", 5).toString());
        assertEquals(202, submitted.statusCode(), submitted.body());
        String id = json(submitted).get("id").asText();
        assertEquals("/v1/jobs/" + id, submitted.headers().firstValue("Location").orElse(""));
        HttpResponse<String> events = client.get("/v1/jobs/" + id + "/events");
        assertEquals(200, events.statusCode());
        assertTrue(events.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<String> names = new ArrayList<>();
        JsonNode done = null;
        int lastStep = 0;
        for (String block : events.body().split("\n\n")) {
            String name = null;
            String data = null;
            for (String line : block.split("\n")) {
                if (line.startsWith("event: ")) {
                    name = line.substring(7);
                } else if (line.startsWith("data: ")) {
                    data = line.substring(6);
                }
            }
            if (name == null) {
                continue;
            }
            names.add(name);
            JsonNode d = TestServers.JSON.readTree(data);
            if (name.equals("progress")) {
                assertEquals(3, d.get("total").asInt());
                assertTrue(d.get("step").asInt() >= lastStep);
                lastStep = d.get("step").asInt();
            }
            if (name.equals("done")) {
                done = d;
            }
        }
        assertTrue(names.contains("progress") && names.contains("done") && names.getLast().equals("end"), names.toString());
        assertEquals(3, lastStep);
        assertTrue(done.at("/result/data/0/url").asText().startsWith("/images/"), done.toString());
        JsonNode status = json(client.get("/v1/jobs/" + id));
        assertEquals("done", status.get("status").asText());
        assertEquals(3, status.get("step").asInt());
        assertEquals(404, client.get("/v1/jobs/" + "0".repeat(32)).statusCode());
        assertEquals(400, client.get("/v1/jobs/not-an-id").statusCode());
    }

    @Test
    void imageIdsAreCheckedAndNothingOutsideTheImageFolderIsServed() throws Exception {
        assertTrue(Files.exists(data.resolve("koala4j.db")));
        for (String path : List.of("/images/..%2Fkoala4j.db", "/images/%2E%2E%2Fkoala4j.db", "/images/abc.png",
                "/images/" + "0".repeat(32) + ".png", "/images/" + "A".repeat(32) + ".png", "/images/koala4j.db",
                "/static/..%2F..%2Fkoala4j%2Fserver%2FKoalaServer.class", "/static/index.html")) {
            HttpResponse<String> r = client.get(path);
            assertTrue(r.statusCode() == 404 || r.statusCode() == 400, path + " -> " + r.statusCode());
            assertFalse(r.body().contains("SQLite format"), path);
        }
    }

    @Test
    void corsIsOffByDefault() throws Exception {
        HttpResponse<String> r = client.http().send(client.request("/v1/models").header("Origin", "http://elsewhere.test")
                .GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
        HttpResponse<String> pre = client.http().send(client.request("/v1/images/generations")
                .header("Origin", "http://elsewhere.test").header("Access-Control-Request-Method", "POST")
                .method("OPTIONS", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertTrue(pre.statusCode() >= 400, "preflight " + pre.statusCode());
        assertTrue(pre.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
    }

    @Test
    void theArenaPageIsServedWithAContentSecurityPolicy() throws Exception {
        HttpResponse<String> page = client.get("/");
        assertEquals(200, page.statusCode());
        assertTrue(page.body().contains("/static/arena.js"));
        String csp = page.headers().firstValue("Content-Security-Policy").orElse("");
        assertTrue(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), csp);
        assertEquals(200, client.get("/static/arena.js").statusCode());
        assertEquals(200, client.get("/static/arena.css").statusCode());
        assertNull(json(client.get("/api/models")).at("/models/0/reason").textValue());
    }

    /** A client that goes away: the 102 Processing probe fails and the job is cancelled and stored as such. */
    @Test
    void aClientThatDisconnectsCancelsItsJob() throws Exception {
        String body = TestServers.JSON.createObjectNode().put("model", "sd15").put("prompt", "long").put("size", "64x64")
                .put("steps", 150).toString();
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        String jobId;
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(bytes);
            out.flush();
            InputStream in = s.getInputStream();
            String interim = new String(in.readNBytes(12), StandardCharsets.US_ASCII);
            assertEquals("HTTP/1.1 102", interim, "the server probes the client with 102 Processing");
            jobId = runningJob();
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        String status = "queued";
        while (System.nanoTime() < deadline && status.equals("queued")) {
            Thread.sleep(100);
            status = server.store().generation(jobId).orElseThrow().status();
        }
        assertEquals("cancelled", status);
        assertTrue(server.store().generation(jobId).orElseThrow().error().contains("client disconnected"));
    }

    private static String runningJob() throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            String id = lastQueued();
            if (!id.isEmpty()) {
                return id;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no running job");
    }

    private static String lastQueued() {
        try (var c = java.sql.DriverManager.getConnection("jdbc:sqlite:" + data.resolve("koala4j.db"));
             var s = c.createStatement();
             var r = s.executeQuery("SELECT id FROM generations WHERE status = 'queued' ORDER BY created_ms DESC LIMIT 1")) {
            return r.next() ? r.getString(1) : "";
        } catch (java.sql.SQLException e) {
            throw new IllegalStateException(e);
        }
    }
}
