package koala4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.server.TestServers.Client;

/**
 * A bounded load test on loopback: 200 generation requests at once against the tiny KOALA pipeline (64x64, 2
 * steps) with a queue of 32 and one worker. Every request is either accepted and completes (200 with its image)
 * or is refused with 429 and Retry-After; the database holds exactly the accepted generations, all done. Prints
 * throughput and latency percentiles (the README quotes them).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class LoadTest {

    static final int REQUESTS = 200;
    static final int QUEUE = 32;

    @TempDir
    Path data;

    record Outcome(int status, long nanos, String body, String retryAfter) {
    }

    @Test
    void twoHundredConcurrentRequests() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data, "koala");
        b.queueCapacity = QUEUE;
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            assertEquals(200, client.post("/v1/images/generations", TestServers.tinyRequest("koala", "warm-up", 0))
                    .statusCode(), "load the model before the clock starts");
            List<CompletableFuture<Outcome>> pending = new ArrayList<>();
            long start = System.nanoTime();
            for (int i = 0; i < REQUESTS; i++) {
                HttpRequest request = client.request("/v1/images/generations").header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(TestServers.tinyRequest("koala", "load " + i, i))).build();
                long sent = System.nanoTime();
                pending.add(client.http().sendAsync(request, HttpResponse.BodyHandlers.ofString()).thenApply(r ->
                        new Outcome(r.statusCode(), System.nanoTime() - sent, r.body(),
                                r.headers().firstValue("Retry-After").orElse(null))));
            }
            List<Outcome> outcomes = new ArrayList<>();
            for (CompletableFuture<Outcome> f : pending) {
                outcomes.add(f.get(100, TimeUnit.SECONDS));
            }
            double wall = (System.nanoTime() - start) / 1e9;

            List<Long> accepted = new ArrayList<>();
            int rejected = 0;
            for (Outcome o : outcomes) {
                if (o.status() == 200) {
                    assertTrue(TestServers.JSON.readTree(o.body()).at("/data/0/url").asText().contains("/images/"), o.body());
                    accepted.add(o.nanos());
                } else {
                    assertEquals(429, o.status(), o.body());
                    assertTrue(o.retryAfter() != null && Integer.parseInt(o.retryAfter()) >= 1, "Retry-After");
                    rejected++;
                }
            }
            assertEquals(REQUESTS, accepted.size() + rejected);
            assertTrue(accepted.size() >= QUEUE, "at least a full queue was accepted: " + accepted.size());
            Map<String, Integer> stored = server.store().countByStatus();
            assertEquals(accepted.size() + 1, stored.get("done"), "every accepted job (and the warm-up) is stored done");
            assertEquals(accepted.size() + 1, stored.values().stream().mapToInt(Integer::intValue).sum(),
                    "nothing else is stored: " + stored);
            String metrics = client.get("/metrics").body();
            assertTrue(metrics.contains("koala4j_rejected_total " + rejected), metrics);
            assertTrue(metrics.contains("koala4j_images_generated_total{model=\"koala\"} " + (accepted.size() + 1)), metrics);

            Collections.sort(accepted);
            System.out.printf(Locale.ROOT, "load: %d requests, %d accepted, %d refused with 429 in %.2f s; %.1f images/s;"
                            + " accepted latency p50 %.0f ms, p95 %.0f ms, max %.0f ms%n", REQUESTS, accepted.size(), rejected,
                    wall, accepted.size() / wall, pct(accepted, 50), pct(accepted, 95), accepted.getLast() / 1e6);
        }
    }

    private static double pct(List<Long> sorted, int p) {
        int index = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, index)) / 1e6;
    }
}
