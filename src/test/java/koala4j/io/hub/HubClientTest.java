package koala4j.io.hub;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** HubClient against {@link FakeHub}, a loopback stand-in for huggingface.co and its CDN. */
@Timeout(20)
class HubClientTest {

    private static final String REPO = FakeHub.REPO;
    private static final String COMMIT = FakeHub.COMMIT;
    private static final List<String> UNET_AND_VAE = List.of("model_index.json", "unet/*", "vae/*.json");

    @TempDir
    Path tmp;
    private FakeHub hub;
    private Path cacheRoot;

    @BeforeEach
    void start() throws IOException {
        hub = FakeHub.withTinyPipeline();
        cacheRoot = tmp.resolve("hub");
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    private HubClient client(Optional<String> token, boolean offline) {
        return new HubClient(new HubClient.Options(hub.endpoint(), token, offline, new HubCache(cacheRoot),
                Duration.ofSeconds(5)), HubClient.Progress.NONE);
    }

    private HubClient client() {
        return client(Optional.empty(), false);
    }

    private Path repoFolder() {
        return cacheRoot.resolve("models--koala-test--tiny-pipe");
    }

    private void assertSameContent(String path, Path file) throws IOException {
        assertArrayEquals(hub.files.get(path), Files.readAllBytes(file), path);
    }

    @Test
    void snapshotFetchesOnlyTheFilesMatchingItsPatterns() throws IOException {
        Path folder = client().snapshot(REPO, null, UNET_AND_VAE);

        assertEquals(repoFolder().resolve("snapshots").resolve(COMMIT), folder);
        List<String> expected = List.of("model_index.json", "unet/config.json",
                "unet/diffusion_pytorch_model.safetensors", "vae/config.json");
        for (String path : expected) {
            assertSameContent(path, folder.resolve(path));
        }
        assertFalse(Files.exists(folder.resolve("vae/diffusion_pytorch_model.safetensors")));
        assertFalse(Files.exists(folder.resolve("text_encoder")));
        assertFalse(Files.exists(folder.resolve("README.md")));
        // 1 listing + 1 resolve per wanted file + 1 CDN fetch for the one LFS file among them
        assertEquals(1, hub.requests.stream().filter(r -> r.path().startsWith("/api/models/")).count());
        assertEquals(expected.stream().map(p -> "/" + REPO + "/resolve/" + COMMIT + "/" + p).sorted().toList(),
                hub.resolveRequests().stream().map(FakeHub.Request::path).sorted().toList());
        assertEquals(1, hub.requestsTo("cdn").size());
        assertEquals(6, hub.requests.size());
    }

    @Test
    void snapshotFilesAreRelativeSymlinksIntoBlobsAndRefsMainNamesTheCommit() throws IOException {
        Path folder = client().snapshot(REPO, "main", UNET_AND_VAE);

        assertEquals(COMMIT, Files.readString(repoFolder().resolve("refs/main")));
        Path weights = folder.resolve("unet/diffusion_pytorch_model.safetensors");
        assertTrue(Files.isSymbolicLink(weights));
        // LFS blob named by X-Linked-Etag (its sha256), not by the pointer's ETag nor the CDN's
        String lfsEtag = hub.etag("unet/diffusion_pytorch_model.safetensors");
        assertEquals(Path.of("../../../blobs/" + lfsEtag), Files.readSymbolicLink(weights));
        Path index = folder.resolve("model_index.json");
        assertEquals(Path.of("../../blobs/" + hub.etag("model_index.json")), Files.readSymbolicLink(index));
        assertSameContent("unet/diffusion_pytorch_model.safetensors", repoFolder().resolve("blobs").resolve(lfsEtag));
        try (Stream<Path> blobs = Files.list(repoFolder().resolve("blobs"))) {
            List<String> names = blobs.map(p -> p.getFileName().toString()).toList();
            assertEquals(4, names.size(), names.toString());
            assertTrue(names.stream().noneMatch(n -> n.endsWith(".incomplete")), names.toString());
        }
    }

    @Test
    void secondCallIsServedFromTheCacheWithoutAnyRequest() throws IOException {
        Path first = client().snapshot(REPO, "main", UNET_AND_VAE);
        hub.requests.clear();

        HubClient fresh = client();           // nothing remembered in memory: the cache alone must answer
        assertEquals(first, fresh.snapshot(REPO, "main", UNET_AND_VAE));
        assertEquals(first, fresh.snapshot(REPO, "main", List.of("unet/*.json")));
        assertEquals(first.resolve("unet/config.json"), fresh.file(REPO, "main", "unet/config.json"));
        assertEquals(first, fresh.snapshot(REPO, COMMIT, List.of("vae/config.json")));
        assertEquals(List.of(), hub.requests);

        // a wider pattern set needs one file more, and only that file is fetched (no second listing: it is cached)
        fresh.snapshot(REPO, "main", List.of("unet/*", "vae/*"));
        assertEquals(List.of("/" + REPO + "/resolve/" + COMMIT + "/vae/diffusion_pytorch_model.safetensors"),
                hub.resolveRequests().stream().map(FakeHub.Request::path).toList());
        assertEquals(0, hub.requests.stream().filter(r -> r.path().startsWith("/api/")).count());
    }

    @ParameterizedTest
    @ValueSource(strings = {"unet/config.json", "unet/diffusion_pytorch_model.safetensors"})
    void responseCutShortIsResumedWithRangeInTheSameCall(String path) throws IOException {
        hub.cutOnce.add(path);
        Path file = client().file(REPO, "main", path);

        assertSameContent(path, file);
        String server = hub.lfs.contains(path) ? "cdn" : "hub";
        List<FakeHub.Request> fetches = hub.requestsTo(server).stream()
                .filter(r -> !r.path().startsWith("/api/")).toList();
        assertEquals(2, fetches.size(), fetches.toString());
        assertNull(fetches.get(0).range());
        // the resume starts where the saved bytes end: normally all of the half the server wrote (it waits before
        // dropping the connection), never more; the content check above proves the offset matched what was kept
        int half = hub.files.get(path).length / 2;
        Matcher range = Pattern.compile("bytes=(\\d+)-").matcher(String.valueOf(fetches.get(1).range()));
        assertTrue(range.matches(), fetches.get(1).range());
        long start = Long.parseLong(range.group(1));
        assertTrue(start > 0 && start <= half, fetches.get(1).range() + " for a cut after " + half + " bytes");
    }

    @Test
    void aServerThatAlwaysCutsShortFailsAfterBoundedRetriesKeepingTheBytes() throws IOException {
        String path = "unet/diffusion_pytorch_model.safetensors";
        hub.cutAlways.add(path);
        HubException e = assertThrows(HubException.class, () -> client().file(REPO, "main", path));
        assertTrue(e.getMessage().contains("failed " + BlobFetcher.ATTEMPTS + " times"), e.getMessage());
        assertTrue(e.getMessage().contains("resumes"), e.getMessage());
        assertEquals(BlobFetcher.ATTEMPTS, hub.requestsTo("cdn").size());
        // each try got half of what it asked for: 20000, then 10000 more, then 5000 more, ...
        // (at most that: a client may lose bytes in flight when a connection drops; see FakeHub's cut)
        Path part = repoFolder().resolve("blobs").resolve(hub.etag(path) + ".incomplete");
        long most = 40_000 - 40_000 / (1 << BlobFetcher.ATTEMPTS);
        long kept = Files.size(part);
        assertTrue(kept > 0 && kept <= most, kept + " bytes kept, at most " + most);

        hub.cutAlways.clear();                       // the next run resumes from there
        assertSameContent(path, client().file(REPO, "main", path));
        assertEquals("bytes=" + kept + "-", hub.requestsTo("cdn").getLast().range());
    }

    @Test
    void partialFileFromAnEarlierRunIsResumedNotRefetched() throws IOException {
        String lfsPath = "vae/diffusion_pytorch_model.safetensors";
        String smallPath = "vae/config.json";
        for (String path : List.of(lfsPath, smallPath)) {
            Path part = repoFolder().resolve("blobs").resolve(hub.etag(path) + ".incomplete");
            Files.createDirectories(part.getParent());
            byte[] content = hub.files.get(path);
            Files.write(part, java.util.Arrays.copyOf(content, content.length / 3));
        }
        HubClient client = client();
        assertSameContent(lfsPath, client.file(REPO, "main", lfsPath));
        assertSameContent(smallPath, client.file(REPO, "main", smallPath));

        // LFS: the hub's 302 names the blob, so the one CDN request already carries the Range
        List<FakeHub.Request> cdn = hub.requestsTo("cdn");
        assertEquals(1, cdn.size());
        assertEquals("bytes=" + hub.files.get(lfsPath).length / 3 + "-", cdn.getFirst().range());
        // small file: served directly, so the blob is known only from the first answer; the second asks for the rest
        List<FakeHub.Request> small = hub.resolveRequests().stream().filter(r -> r.path().endsWith(smallPath)).toList();
        assertEquals(2, small.size());
        assertNull(small.get(0).range());
        assertEquals("bytes=" + hub.files.get(smallPath).length / 3 + "-", small.get(1).range());
    }

    @Test
    void serverIgnoringRangeRestartsTheFileFromByteZero() throws IOException {
        hub.ignoreRange = true;
        String path = "text_encoder/model.safetensors";
        Path part = repoFolder().resolve("blobs").resolve(hub.etag(path) + ".incomplete");
        Files.createDirectories(part.getParent());
        Files.write(part, new byte[7000]);     // wrong bytes: appending the full body to them would corrupt the blob

        assertSameContent(path, client().file(REPO, "main", path));
        assertEquals("bytes=7000-", hub.requestsTo("cdn").getFirst().range());
        assertFalse(Files.exists(part));
    }

    @Test
    void stalledBodyIsAbandonedAfterTheTimeoutAndResumed() throws IOException {
        String path = "unet/diffusion_pytorch_model.safetensors";
        hub.stallOnce.add(path);
        hub.stallMillis = 5000;
        HubClient client = new HubClient(new HubClient.Options(hub.endpoint(), Optional.empty(), false,
                new HubCache(cacheRoot), Duration.ofMillis(400)), HubClient.Progress.NONE);

        long t0 = System.nanoTime();
        assertSameContent(path, client.file(REPO, "main", path));
        assertTrue(System.nanoTime() - t0 < 4_000_000_000L, "should not wait for the stalled server");
        assertEquals("bytes=" + hub.files.get(path).length / 2 + "-", hub.requestsTo("cdn").get(1).range());
    }

    @Test
    void tokenGoesToTheHubButNotToTheCdn() {
        hub.requiredToken = "hf_secret";
        client(Optional.of("hf_secret"), false).snapshot(REPO, "main", List.of("unet/*"));

        assertFalse(hub.requestsTo("hub").isEmpty());
        for (FakeHub.Request r : hub.requestsTo("hub")) {
            assertEquals("Bearer hf_secret", r.authorization(), r.path());
        }
        assertEquals(1, hub.requestsTo("cdn").size());
        assertNull(hub.requestsTo("cdn").getFirst().authorization());
    }

    @Test
    void missingTokenGivesA401MessageAboutHfTokenAndGatedRepos() {
        hub.requiredToken = "hf_secret";
        HubException e = assertThrows(HubException.class, () -> client().snapshot(REPO, "main", List.of("*.json")));
        assertTrue(e.getMessage().contains("401"), e.getMessage());
        assertTrue(e.getMessage().contains("HF_TOKEN"), e.getMessage());
        assertTrue(e.getMessage().contains("gated"), e.getMessage());
        assertTrue(e.getMessage().contains(REPO), e.getMessage());
    }

    @Test
    void refusedTokenGivesA403MessageAboutAcceptingTheTerms() {
        hub.requiredToken = "hf_secret";
        HubException e = assertThrows(HubException.class,
                () -> client(Optional.of("hf_other"), false).file(REPO, "main", "model_index.json"));
        assertTrue(e.getMessage().contains("403"), e.getMessage());
        assertTrue(e.getMessage().contains("gated"), e.getMessage());
        assertTrue(e.getMessage().contains("HF_TOKEN"), e.getMessage());
        assertTrue(e.getMessage().contains("restricted"), e.getMessage());   // the hub's own X-Error-Message
    }

    @Test
    void notFoundMessagesNameTheRepoTheFileAndTheRevision() {
        HubException repo = assertThrows(HubException.class,
                () -> client().snapshot("koala-test/no-such-model", "main", List.of()));
        assertTrue(repo.getMessage().contains("koala-test/no-such-model"), repo.getMessage());
        assertTrue(repo.getMessage().contains("not found"), repo.getMessage());

        HubException file = assertThrows(HubException.class, () -> client().file(REPO, "main", "unet/missing.bin"));
        assertTrue(file.getMessage().contains("unet/missing.bin"), file.getMessage());
        assertTrue(file.getMessage().contains("no such file"), file.getMessage());

        HubException rev = assertThrows(HubException.class, () -> client().snapshot(REPO, "v9", List.of()));
        assertTrue(rev.getMessage().contains("v9") && rev.getMessage().contains("no such revision"), rev.getMessage());
    }

    @Test
    void offlineModeServesACachedSnapshotWithoutTheNetwork() {
        Path online = client().snapshot(REPO, "main", UNET_AND_VAE);
        hub.requests.clear();
        hub.close();                                            // any request would now fail

        HubClient offline = client(Optional.empty(), true);
        assertEquals(online, offline.snapshot(REPO, "main", UNET_AND_VAE));
        assertEquals(online.resolve("unet/config.json"), offline.file(REPO, "main", "unet/config.json"));
        assertEquals(List.of(), hub.requests);

        // the saved file list shows what this snapshot lacks; offline, that is an error naming the files
        HubException e = assertThrows(HubException.class, () -> offline.snapshot(REPO, "main", List.of("text_encoder/*")));
        assertTrue(e.getMessage().contains("text_encoder/model.safetensors"), e.getMessage());
        assertTrue(e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());
    }

    @Test
    void offlineModeWithoutACachedSnapshotNamesHfHubOfflineAndTheFolder() {
        HubClient offline = client(Optional.empty(), true);
        HubException e = assertThrows(HubException.class, () -> offline.snapshot(REPO, "main", UNET_AND_VAE));
        assertTrue(e.getMessage().contains("not in the cache"), e.getMessage());
        assertTrue(e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());
        assertTrue(e.getMessage().contains(repoFolder().toString()), e.getMessage());
        HubException f = assertThrows(HubException.class, () -> offline.file(REPO, "main", "model_index.json"));
        assertTrue(f.getMessage().contains("HF_HUB_OFFLINE"), f.getMessage());
        assertEquals(List.of(), hub.requests);
    }

    @Test
    void offlineModeAcceptsASnapshotWrittenByPythonWithoutOurFileList() throws IOException {
        Path folder = repoFolder().resolve("snapshots").resolve(COMMIT);
        Files.createDirectories(folder);
        Files.writeString(folder.resolve("model_index.json"), "{}");
        Files.createDirectories(repoFolder().resolve("refs"));
        Files.writeString(repoFolder().resolve("refs/main"), COMMIT);
        assertEquals(folder, client(Optional.empty(), true).snapshot(REPO, "main", UNET_AND_VAE));
    }

    @ParameterizedTest
    @ValueSource(strings = {"../../../escaped.txt", "/etc/hostile", "unet\\..\\..\\escaped.txt", "unet/../../x",
            "unet//config.json", "./config.json", ""})
    void hostileFileNamesInTheListingAreRefused(String hostile) throws IOException {
        List<String> names = new ArrayList<>(hub.files.keySet());
        names.add(hostile);
        hub.listingOverride = names;

        HubException e = assertThrows(HubException.class, () -> client().snapshot(REPO, "main", List.of("*")));
        assertTrue(e.getMessage().contains("'" + hostile + "'"), e.getMessage());
        assertEquals(List.of(), hub.resolveRequests());       // refused before a single file was fetched
        try (Stream<Path> all = Files.walk(tmp)) {
            assertTrue(all.noneMatch(p -> p.getFileName().toString().contains("escaped")));
        }
    }

    @Test
    void etagThatIsAPathIsRefused() {
        hub.etagOverride = "\"../../refs/main\"";
        HubException e = assertThrows(HubException.class, () -> client().file(REPO, "main", "model_index.json"));
        assertTrue(e.getMessage().contains("../../refs/main"), e.getMessage());
    }

    @Test
    void unreachableEndpointIsNamedInTheError() throws IOException {
        int closedPort;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closedPort = s.getLocalPort();
        }
        URI endpoint = URI.create("http://127.0.0.1:" + closedPort);
        HubClient client = new HubClient(new HubClient.Options(endpoint, Optional.empty(), false,
                new HubCache(cacheRoot), Duration.ofSeconds(2)), HubClient.Progress.NONE);
        HubException e = assertThrows(HubException.class, () -> client.snapshot(REPO, "main", List.of()));
        assertTrue(e.getMessage().contains(endpoint.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());
    }

    @Test
    void fileFetchesOneFileAndWritesTheRef() throws IOException {
        Path file = client().file(REPO, "main", "text_encoder/config.json");

        assertEquals(repoFolder().resolve("snapshots").resolve(COMMIT).resolve("text_encoder/config.json"), file);
        assertSameContent("text_encoder/config.json", file);
        assertEquals(COMMIT, Files.readString(repoFolder().resolve("refs/main")));
        assertEquals(1, hub.requests.size());
    }

    @Test
    void snapshotAtACommitHashWritesNoRef() {
        Path folder = client().snapshot(REPO, COMMIT, List.of("model_index.json"));
        assertTrue(Files.isRegularFile(folder.resolve("model_index.json")));
        assertFalse(Files.exists(repoFolder().resolve("refs")));
    }

    @Test
    void withoutSymlinksSnapshotFilesAreLinkedOrCopied() throws IOException {
        HubClient client = new HubClient(new HubClient.Options(hub.endpoint(), Optional.empty(), false,
                new HubCache(cacheRoot), Duration.ofSeconds(5)), HubClient.Progress.NONE, false);
        Path folder = client.snapshot(REPO, "main", List.of("unet/*"));
        Path weights = folder.resolve("unet/diffusion_pytorch_model.safetensors");
        assertFalse(Files.isSymbolicLink(weights));
        assertSameContent("unet/diffusion_pytorch_model.safetensors", weights);
        assertTrue(Files.isRegularFile(repoFolder().resolve("blobs")
                .resolve(hub.etag("unet/diffusion_pytorch_model.safetensors"))));
    }

    @Test
    void danglingSnapshotLinkIsRefetched() throws IOException {
        Path folder = client().snapshot(REPO, "main", List.of("unet/config.json"));
        Files.delete(repoFolder().resolve("blobs").resolve(hub.etag("unet/config.json")));   // a cache cleaner ran
        hub.requests.clear();

        assertSameContent("unet/config.json", client().snapshot(REPO, "main", List.of("unet/config.json"))
                .resolve("unet/config.json"));
        // the commit's file list is cached, so only the one file is asked for
        assertEquals(List.of("/" + REPO + "/resolve/" + COMMIT + "/unet/config.json"),
                hub.requests.stream().map(FakeHub.Request::path).toList());
        assertEquals(folder, repoFolder().resolve("snapshots").resolve(COMMIT));
    }

    @Test
    void progressSeesEveryByteOfEachDownload() {
        List<String> events = new ArrayList<>();
        long[] bytes = {0};
        HubClient.Progress recorder = new HubClient.Progress() {
            @Override
            public void start(String file, long totalBytes) {
                events.add("start " + file + " " + totalBytes);
            }

            @Override
            public void advance(long n) {
                bytes[0] += n;
            }

            @Override
            public void done(String file) {
                events.add("done " + file);
            }
        };
        new HubClient(new HubClient.Options(hub.endpoint(), Optional.empty(), false, new HubCache(cacheRoot),
                Duration.ofSeconds(5)), recorder).snapshot(REPO, "main", List.of("unet/*"));
        assertEquals(List.of("start unet/config.json " + hub.files.get("unet/config.json").length,
                "done unet/config.json",
                "start unet/diffusion_pytorch_model.safetensors 40000",
                "done unet/diffusion_pytorch_model.safetensors"), events);
        assertEquals(40_000 + hub.files.get("unet/config.json").length, bytes[0]);
    }

    @Test
    void repoIdsAndRevisionsAreValidated() {
        HubClient client = client();
        for (String bad : List.of("no-slash", "../etc/passwd", "a/b/c", "org/..", "org/na me")) {
            HubException e = assertThrows(HubException.class, () -> client.snapshot(bad, "main", List.of()), bad);
            assertTrue(e.getMessage().contains(bad), e.getMessage());
        }
        for (String bad : List.of("../main", "a\\b", "refs/../x", "")) {
            assertThrows(HubException.class, () -> client.snapshot(REPO, bad, List.of()), bad);
        }
        assertThrows(HubException.class, () -> client.file(REPO, "main", "../config.json"));
        assertEquals(List.of(), hub.requests);
    }
}
