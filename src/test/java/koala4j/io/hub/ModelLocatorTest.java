package koala4j.io.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(20)
class ModelLocatorTest {

    @TempDir
    Path tmp;

    private static HubClient client(FakeHub hub, Path cache, boolean offline) {
        return new HubClient(new HubClient.Options(hub.endpoint(), Optional.empty(), offline, new HubCache(cache),
                Duration.ofSeconds(5)), HubClient.Progress.NONE);
    }

    @Test
    void anExistingFolderIsUsedAsIsWithoutAskingTheHub() throws IOException {
        try (FakeHub hub = FakeHub.withTinyPipeline()) {
            // a folder spelled like a repo id still wins, as in diffusers' from_pretrained
            Path local = Files.createDirectories(tmp.resolve(FakeHub.REPO));
            assertEquals(local, ModelLocator.resolve(local.toString(), client(hub, tmp.resolve("cache"), false),
                    List.of("*.json")));
            assertEquals(List.of(), hub.requests);
        }
    }

    @Test
    void aRepoIdIsResolvedThroughTheClient() throws IOException {
        try (FakeHub hub = FakeHub.withTinyPipeline()) {
            Path folder = ModelLocator.resolve(FakeHub.REPO, client(hub, tmp.resolve("cache"), false),
                    List.of("model_index.json"));
            assertEquals(tmp.resolve("cache/models--koala-test--tiny-pipe/snapshots").resolve(FakeHub.COMMIT), folder);
            assertTrue(Files.isRegularFile(folder.resolve("model_index.json")));
        }
    }

    @Test
    void anythingElseIsAnErrorNamingTheArgumentAndTheCache() throws IOException {
        try (FakeHub hub = FakeHub.withTinyPipeline()) {
            HubClient client = client(hub, tmp.resolve("cache"), false);
            HubException e = assertThrows(HubException.class,
                    () -> ModelLocator.resolve("no/such/folder", client, List.of()));
            assertTrue(e.getMessage().contains("'no/such/folder'"), e.getMessage());
            assertTrue(e.getMessage().contains(tmp.resolve("cache").toString()), e.getMessage());

            Path file = Files.writeString(tmp.resolve("model.safetensors"), "x");
            HubException f = assertThrows(HubException.class, () -> ModelLocator.resolve(file.toString(), client,
                    List.of()));
            assertTrue(f.getMessage().contains("is a file"), f.getMessage());

            assertThrows(HubException.class, () -> ModelLocator.resolve(" ", client, List.of()));
            assertEquals(List.of(), hub.requests);
        }
    }

    @Test
    void offlineAndUncachedNamesTheRepoFolderLookedIn() throws IOException {
        try (FakeHub hub = FakeHub.withTinyPipeline()) {
            HubException e = assertThrows(HubException.class, () -> ModelLocator.resolve(FakeHub.REPO,
                    client(hub, tmp.resolve("cache"), true), List.of()));
            assertTrue(e.getMessage().contains(tmp.resolve("cache/models--koala-test--tiny-pipe").toString()),
                    e.getMessage());
            assertTrue(e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());
        }
    }
}
