package koala4j.server;

import static koala4j.server.TestServers.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;

import koala4j.io.image.Png;
import koala4j.server.TestServers.Client;

/** Blind battles, votes, the leaderboard and the gallery over HTTP with two tiny local models. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ArenaApiTest {

    @TempDir
    Path data;

    @Test
    void aBlindBattleHidesTheModelsUntilTheVote() throws Exception {
        try (KoalaServer server = KoalaServer.start(TestServers.builder(data, "sd15", "koala").build())) {
            Client client = Client.of(server);
            HttpResponse<String> created = client.post("/api/battles",
                    "{\"prompt\":\"a blind koala battle\",\"size\":\"64x64\",\"steps\":40,\"seed\":11}");
            assertEquals(201, created.statusCode(), created.body());
            JsonNode battle = json(created);
            String id = battle.get("id").asText();
            assertFalse(battle.get("left").has("model"), battle.toString());
            assertFalse(battle.get("right").has("model"), battle.toString());
            String left = battle.at("/left/id").asText();
            String right = battle.at("/right/id").asText();

            HttpResponse<String> early = client.post("/api/battles/" + id + "/vote", "{\"winner\":\"left\"}");
            assertEquals(409, early.statusCode(), early.body());
            assertEquals("battle_not_finished", json(early).at("/error/code").asText());

            HttpResponse<String> events = client.get("/v1/jobs/events?ids=" + left + "," + right);
            assertEquals(200, events.statusCode());
            assertFalse(events.body().contains("\"model\""), "no model name in the events before the vote");
            JsonNode leftStatus = json(client.get("/v1/jobs/" + left));
            assertEquals("done", leftStatus.get("status").asText());
            assertFalse(leftStatus.has("model"));
            assertFalse(leftStatus.get("result").has("model"));
            assertEquals(11, leftStatus.at("/result/parameters/seed").asLong(), "both sides get the same seed");
            String url = leftStatus.at("/result/data/0/url").asText();
            var text = Png.readText(client.getBytes(url).body());
            assertFalse(text.containsKey("model") || text.get("parameters").contains("Model:"), text.toString());
            assertEquals(0, json(client.get("/api/gallery?q=blind")).get("items").size(), "hidden until voted");

            HttpResponse<String> voted = client.post("/api/battles/" + id + "/vote", "{\"winner\":\"left\"}");
            assertEquals(200, voted.statusCode(), voted.body());
            JsonNode reveal = json(voted);
            Set<String> names = Set.of(reveal.at("/left/id").asText(), reveal.at("/right/id").asText());
            assertEquals(Set.of("sd15", "koala"), names);
            assertEquals("tiny " + reveal.at("/left/id").asText(), reveal.at("/left/name").asText());
            assertEquals(409, client.post("/api/battles/" + id + "/vote", "{\"winner\":\"right\"}").statusCode());

            JsonNode board = json(client.get("/api/leaderboard"));
            assertEquals(1, board.get("votes").asInt());
            JsonNode top = board.at("/rows/0");
            assertEquals(reveal.at("/left/id").asText(), top.at("/model/id").asText());
            assertEquals(1016.0, top.get("rating").asDouble());
            assertEquals(1, top.get("wins").asInt());
            assertEquals(4, board.get("rows").size(), "every model, voted or not");

            JsonNode gallery = json(client.get("/api/gallery?q=BLIND"));
            assertEquals(2, gallery.get("items").size());
            JsonNode item = gallery.at("/items/0");
            assertEquals("a blind koala battle", item.get("prompt").asText());
            assertEquals(11, item.get("seed").asLong());
            assertEquals(40, item.get("steps").asInt());
            assertEquals("64x64", item.get("size").asText());
            assertTrue(item.get("seconds").asDouble() > 0);
            assertTrue(item.get("battle").asBoolean());
            assertTrue(item.at("/images/0").asText().startsWith("/images/"));
        }
    }

    @Test
    void badVotesAndBattles() throws Exception {
        try (KoalaServer server = KoalaServer.start(TestServers.builder(data, "koala").build())) {
            Client client = Client.of(server);
            HttpResponse<String> one = client.post("/api/battles", "{\"prompt\":\"x\"}");
            assertEquals(409, one.statusCode(), one.body());
            assertEquals("not_enough_models", json(one).at("/error/code").asText());
            assertEquals(404, client.post("/api/battles/" + "1".repeat(32) + "/vote", "{\"winner\":\"left\"}").statusCode());
            assertEquals(400, client.post("/api/battles/..%2Fx/vote", "{\"winner\":\"left\"}").statusCode());
            assertEquals(400, client.post("/api/battles/" + "1".repeat(32) + "/vote", "{\"winner\":\"both\"}").statusCode());
            assertEquals(400, client.get("/api/gallery?limit=0").statusCode());
            assertEquals(400, client.get("/api/gallery?limit=x").statusCode());
            assertEquals(200, client.get("/api/gallery?q=%25").statusCode());
            JsonNode models = json(client.get("/api/models"));
            assertEquals("koala", models.at("/models/0/id").asText());
            assertTrue(models.at("/models/0/available").asBoolean());
            assertTrue(models.at("/models/0/limits/extensions").asBoolean());
            assertNotEquals(0, models.at("/models/0/limits/max_side").asInt());
        }
    }
}
