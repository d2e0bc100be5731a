package koala4j.server;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import koala4j.testing.TinyPipelines;

/** Servers on loopback with the tiny golden pipelines, and a real HTTP client to talk to them. */
final class TestServers {

    static final ObjectMapper JSON = new ObjectMapper();
    private static Path tiny;

    private TestServers() {
    }

    /** The tiny pipelines, assembled once per JVM. */
    static synchronized Path tinyFolder(String name) throws IOException {
        if (tiny == null) {
            tiny = Files.createTempDirectory("koala4j-tiny");
        }
        return TinyPipelines.assemble(name, tiny);
    }

    /** A builder on an ephemeral loopback port with the given tiny models (ids: sd15, koala, sdxl). */
    static ServerConfig.Builder builder(Path dataDir, String... models) throws IOException {
        ServerConfig.Builder b = ServerConfig.builder();
        b.port = 0;
        b.dataDir = dataDir;
        b.device = "cpu";
        for (String m : models) {
            b.models.add(new ServerConfig.LocalModel(m, "tiny " + m, tinyFolder(m), null));
        }
        return b;
    }

    /** A tiny request: 64x64, 2 steps. */
    static String tinyRequest(String model, String prompt, long seed) {
        return JSON.createObjectNode().put("model", model).put("prompt", prompt).put("size", "64x64").put("steps", 2)
                .put("seed", seed).toString();
    }

    /** A small client over one server. */
    record Client(HttpClient http, String base, String key) {

        static Client of(KoalaServer server) {
            return of(server, null);
        }

        static Client of(KoalaServer server, String key) {
            return new Client(HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build(),
                    "http://127.0.0.1:" + server.port(), key);
        }

        HttpRequest.Builder request(String path) {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60));
            if (key != null) {
                b.header("Authorization", "Bearer " + key);
            }
            return b;
        }

        HttpResponse<String> get(String path) throws IOException, InterruptedException {
            return http.send(request(path).GET().build(), HttpResponse.BodyHandlers.ofString());
        }

        HttpResponse<byte[]> getBytes(String path) throws IOException, InterruptedException {
            return http.send(request(path).GET().build(), HttpResponse.BodyHandlers.ofByteArray());
        }

        HttpResponse<String> post(String path, String body) throws IOException, InterruptedException {
            return http.send(request(path).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        }

        HttpResponse<String> delete(String path) throws IOException, InterruptedException {
            return http.send(request(path).DELETE().build(), HttpResponse.BodyHandlers.ofString());
        }
    }

    static JsonNode json(HttpResponse<String> r) throws IOException {
        return JSON.readTree(r.body());
    }
}
