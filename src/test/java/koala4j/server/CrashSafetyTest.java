package koala4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;

import koala4j.server.TestServers.Client;
import koala4j.server.store.Store;

/**
 * {@code koala4j serve} in its own process, killed with SIGKILL in the middle of a load of generations, battles and
 * votes: afterwards every generation a client was answered 200 for is stored done with readable PNG files, every
 * acknowledged vote is stored, no done generation lacks a file, and a restarted server marks the unfinished ones
 * interrupted and serves the images.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CrashSafetyTest {

    private static final Pattern LISTENING = Pattern.compile("koala4j serving on (http://[^/]+)/");

    @TempDir
    Path data;

    private Process serve(Path log) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "koala4j.cli.Main",
                "serve", "--port", "0", "--data", data.toString(), "--device", "cpu", "--queue", "16",
                "--model", TestServers.tinyFolder("koala").toString(), "--model", TestServers.tinyFolder("sd15").toString()));
        return new ProcessBuilder(cmd).redirectError(log.toFile()).start();
    }

    private static String baseUrl(Process p) throws IOException, InterruptedException {
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = out.readLine()) != null) {
            Matcher m = LISTENING.matcher(line);
            if (m.find()) {
                return m.group(1);
            }
        }
        throw new AssertionError("koala4j serve exited with " + p.waitFor() + " before listening");
    }

    @Test
    void killedMidLoadLosesNoAcknowledgedVoteOrImage() throws Exception {
        Process first = serve(data.resolve("first.log"));
        Set<String> ackedGenerations = ConcurrentHashMap.newKeySet();
        Set<String> ackedVotes = ConcurrentHashMap.newKeySet();
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> load = new ArrayList<>();
        try {
            Client client = new Client(java.net.http.HttpClient.newHttpClient(), baseUrl(first), null);
            for (int t = 0; t < 3; t++) {
                int worker = t;
                load.add(Thread.ofVirtual().start(() -> {
                    for (int i = 0; !stop.get(); i++) {
                        try {
                            HttpResponse<String> r = client.post("/v1/images/generations",
                                    TestServers.tinyRequest(worker % 2 == 0 ? "koala" : "sd15", "crash " + worker + " " + i, i));
                            if (r.statusCode() == 200) {
                                ackedGenerations.add(TestServers.JSON.readTree(r.body()).get("id").asText());
                            }
                        } catch (IOException | InterruptedException e) {
                            return;
                        }
                    }
                }));
            }
            for (int t = 0; t < 2; t++) {
                load.add(Thread.ofVirtual().start(() -> {
                    while (!stop.get()) {
                        try {
                            HttpResponse<String> created = client.post("/api/battles",
                                    "{\"prompt\":\"crash battle\",\"size\":\"64x64\",\"steps\":2}");
                            if (created.statusCode() != 201) {
                                continue;
                            }
                            JsonNode battle = TestServers.JSON.readTree(created.body());
                            client.get("/v1/jobs/events?ids=" + battle.at("/left/id").asText() + ","
                                    + battle.at("/right/id").asText());
                            String id = battle.get("id").asText();
                            if (client.post("/api/battles/" + id + "/vote", "{\"winner\":\"tie\"}").statusCode() == 200) {
                                ackedVotes.add(id);
                            }
                        } catch (IOException | InterruptedException e) {
                            return;
                        }
                    }
                }));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while ((ackedGenerations.size() < 10 || ackedVotes.size() < 3) && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
        } finally {
            first.destroyForcibly();                       // SIGKILL: no shutdown hook, no flush, mid-request
            assertTrue(first.waitFor(30, TimeUnit.SECONDS));
            stop.set(true);
            for (Thread t : load) {
                t.join(10_000);
            }
        }
        assertTrue(ackedGenerations.size() >= 10 && ackedVotes.size() >= 3,
                "load reached " + ackedGenerations.size() + " generations and " + ackedVotes.size() + " votes");

        Path images = data.resolve("images");
        try (Store store = Store.open("jdbc:sqlite:" + data.resolve("koala4j.db"))) {
            for (String id : ackedGenerations) {
                Store.Generation g = store.generation(id).orElseThrow(() -> new AssertionError("lost generation " + id));
                assertEquals("done", g.status(), id);
            }
            for (String id : ackedVotes) {
                assertNotNull(store.battle(id).orElseThrow().winner(), "lost vote " + id);
            }
            int done = 0;
            for (Store.Generation g : store.gallery(null, 200, null)) {
                done++;
                for (Store.StoredImage img : g.images()) {
                    Path file = images.resolve(img.id() + ".png");
                    assertTrue(Files.isRegularFile(file), "done generation " + g.id() + " lacks " + file);
                    assertEquals(64, ImageIO.read(file.toFile()).getWidth(), file.toString());
                }
            }
            assertTrue(done >= ackedGenerations.size());
        }

        Process second = serve(data.resolve("second.log"));
        try {
            Client client = new Client(java.net.http.HttpClient.newHttpClient(), baseUrl(second), null);
            JsonNode board = TestServers.JSON.readTree(client.get("/api/leaderboard").body());
            assertTrue(board.get("votes").asInt() >= ackedVotes.size(), board.toString());
            String some = ackedGenerations.iterator().next();
            try (Store store = Store.open("jdbc:sqlite:" + data.resolve("koala4j.db"))) {
                assertEquals(0, store.countByStatus().get("queued"), "unfinished generations became interrupted");
                String image = store.generation(some).orElseThrow().images().getFirst().id();
                assertEquals(200, client.getBytes("/images/" + image + ".png").statusCode());
            }
        } finally {
            second.destroy();
            second.waitFor(30, TimeUnit.SECONDS);
        }
    }
}
