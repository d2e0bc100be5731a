package koala4j.server;

import static koala4j.server.TestServers.json;
import static koala4j.server.TestServers.tinyRequest;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.server.TestServers.Client;

/** Back-pressure (429 with Retry-After), per-request timeouts, cancellation, API keys, CORS when enabled, LRU models. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class QueueAndSecurityTest {

    @TempDir
    Path data;

    private static String longJob(String model) {
        return TestServers.JSON.createObjectNode().put("model", model).put("prompt", "long").put("size", "64x64")
                .put("steps", 150).toString();
    }

    @Test
    void aFullQueueAnswers429WithRetryAfterAndDeleteCancels() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data, "sd15");
        b.queueCapacity = 1;
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            HttpResponse<String> first = client.post("/v1/jobs", longJob("sd15"));
            assertEquals(202, first.statusCode(), first.body());
            String id = json(first).get("id").asText();
            HttpResponse<String> second = client.post("/v1/images/generations", tinyRequest("sd15", "second", 1));
            assertEquals(429, second.statusCode(), second.body());
            assertEquals("rate_limit_error", json(second).at("/error/type").asText());
            int retry = Integer.parseInt(second.headers().firstValue("Retry-After").orElseThrow());
            assertTrue(retry >= 1, "Retry-After " + retry);
            assertEquals(200, client.delete("/v1/jobs/" + id).statusCode());
            String status = waitForEnd(client, id);
            assertEquals("cancelled", status);
            assertEquals("cancelled", server.store().generation(id).orElseThrow().status());
            assertEquals(200, client.post("/v1/images/generations", tinyRequest("sd15", "third", 1)).statusCode(),
                    "after the cancelled job the queue has room again");
            assertEquals(2, server.store().countByStatus().values().stream().mapToInt(Integer::intValue).sum(),
                    "the rejected request was never stored");
            assertTrue(client.get("/metrics").body().contains("koala4j_rejected_total 1"));
        }
    }

    private static String waitForEnd(Client client, String id) throws Exception {
        for (int i = 0; i < 200; i++) {
            String status = json(client.get("/v1/jobs/" + id)).get("status").asText();
            if (!status.equals("queued") && !status.equals("running")) {
                return status;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("job " + id + " did not end");
    }

    @Test
    void aRequestOverItsTimeLimitIs504AndStoredAsTimeout() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data, "sd15");
        b.requestTimeout = Duration.ofSeconds(1);
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            HttpResponse<String> r = client.post("/v1/images/generations", longJob("sd15"));
            assertEquals(504, r.statusCode(), r.body());
            assertEquals("timeout_error", json(r).at("/error/type").asText());
            String id = r.headers().firstValue("X-Koala4j-Job").orElseThrow();
            assertEquals("timeout", server.store().generation(id).orElseThrow().status());
        }
    }

    @Test
    void apiKeysGuardTheApiButNotThePageHealthOrMetrics() throws Exception {
        String key = "k4j-test-key-0123456789";
        ServerConfig.Builder b = TestServers.builder(data, "koala");
        b.apiKeys = Set.of(key);
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client anonymous = Client.of(server);
            HttpResponse<String> none = anonymous.post("/v1/images/generations", tinyRequest("koala", "x", 1));
            assertEquals(401, none.statusCode());
            assertEquals("authentication_error", json(none).at("/error/type").asText());
            assertEquals("Bearer", none.headers().firstValue("WWW-Authenticate").orElse(""));
            assertEquals(401, Client.of(server, "wrong-key-0123456789").get("/v1/models").statusCode());
            assertEquals(401, anonymous.get("/api/models").statusCode());
            for (String open : List.of("/", "/healthz", "/metrics", "/api/config")) {
                assertEquals(200, anonymous.get(open).statusCode(), open);
            }
            assertTrue(json(anonymous.get("/api/config")).get("auth_required").asBoolean());
            Client authorised = Client.of(server, key);
            assertEquals(200, authorised.post("/v1/images/generations", tinyRequest("koala", "x", 1)).statusCode());
        }
    }

    @Test
    void corsWhenEnabledAllowsOnlyTheConfiguredOrigin() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        b.corsOrigins.add("http://arena.test");
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            HttpResponse<String> allowed = client.http().send(client.request("/v1/models")
                    .header("Origin", "http://arena.test").GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals("http://arena.test", allowed.headers().firstValue("Access-Control-Allow-Origin").orElse(""));
            HttpResponse<String> pre = client.http().send(client.request("/v1/images/generations")
                    .header("Origin", "http://arena.test").header("Access-Control-Request-Method", "POST")
                    .method("OPTIONS", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(204, pre.statusCode());
            assertTrue(pre.headers().firstValue("Access-Control-Allow-Headers").orElse("").contains("Authorization"));
            HttpResponse<String> other = client.http().send(client.request("/v1/models")
                    .header("Origin", "http://other.test").GET().build(), HttpResponse.BodyHandlers.ofString());
            assertTrue(other.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
        }
    }

    /** A budget that holds one tiny model: using the other evicts the least recently used. */
    @Test
    void modelsLoadLazilyAndAreEvictedLeastRecentlyUsed() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data, "sd15", "sdxl");
        long sd15 = ModelPool.weightBytes(TestServers.tinyFolder("sd15"));
        long sdxl = ModelPool.weightBytes(TestServers.tinyFolder("sdxl"));
        b.memoryBudgetBytes = Math.max(sd15, sdxl) + 1;
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            assertEquals(List.of(), server.pool().residentIds(), "nothing loads before it is used");
            assertEquals(200, client.post("/v1/images/generations", tinyRequest("sd15", "a", 1)).statusCode());
            assertEquals(200, client.post("/v1/images/generations", tinyRequest("sd15", "b", 1)).statusCode());
            assertEquals(List.of("sd15"), server.pool().residentIds());
            assertEquals(200, client.post("/v1/images/generations", tinyRequest("sdxl", "c", 1)).statusCode());
            assertEquals(List.of("sdxl"), server.pool().residentIds());
            assertEquals(200, client.post("/v1/images/generations", tinyRequest("sd15", "d", 1)).statusCode());
            String metrics = client.get("/metrics").body();
            assertTrue(metrics.contains("koala4j_model_loads_total 3"), metrics);
            assertTrue(metrics.contains("koala4j_model_evictions_total 2"), metrics);
            assertTrue(metrics.contains("koala4j_models_loaded 1"), metrics);
        }
    }
}
