package koala4j.io.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(10)
class HubCacheTest {

    private static final String SHA = "89abcdef0123456789abcdef0123456789abcdef";

    @TempDir
    Path root;

    @Test
    void snapshotFollowsRefsIncludingNestedOnes() throws IOException {
        HubCache cache = new HubCache(root);
        Path repo = cache.repoFolder("org/name");
        assertEquals(root.resolve("models--org--name"), repo);
        Files.createDirectories(repo.resolve("snapshots").resolve(SHA));
        Files.createDirectories(repo.resolve("refs/refs/pr"));
        Files.writeString(repo.resolve("refs/main"), SHA);
        Files.writeString(repo.resolve("refs/refs/pr/1"), SHA + "\n");

        assertEquals(Optional.of(repo.resolve("snapshots").resolve(SHA)), cache.snapshot("org/name", null));
        assertEquals(Optional.of(repo.resolve("snapshots").resolve(SHA)), cache.snapshot("org/name", "refs/pr/1"));
        assertEquals(Optional.of(repo.resolve("snapshots").resolve(SHA)), cache.snapshot("org/name", SHA));
        assertEquals(Optional.empty(), cache.snapshot("org/name", "v2"));
    }

    @Test
    void aRefThatNamesADotFolderIsIgnored() throws IOException {
        HubCache cache = new HubCache(root);
        Path repo = cache.repoFolder("org/name");
        Files.createDirectories(repo.resolve("refs"));
        Files.createDirectories(repo.resolve("snapshots"));
        Files.writeString(repo.resolve("refs/main"), "..");
        // without the check, snapshots/.. would resolve to the repo folder itself
        assertEquals(Optional.empty(), cache.snapshot("org/name", "main"));
    }

    @Test
    void revisionsThatCouldEscapeRefsAreRefused() {
        for (String bad : new String[] {"../main", "a\\b", "refs/../../x", "", "a//b", "."}) {
            assertThrows(IllegalArgumentException.class, () -> HubCache.checkRevision(bad), bad);
        }
        assertEquals("main", HubCache.checkRevision(null));
    }
}
