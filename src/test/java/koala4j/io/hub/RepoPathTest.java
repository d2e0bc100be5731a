package koala4j.io.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(10)
class RepoPathTest {

    @ParameterizedTest
    @ValueSource(strings = {"config.json", "unet/diffusion_pytorch_model.safetensors", ".gitattributes",
            "a/..b/c..", "tokenizer/spiece.model"})
    void plainRelativePathsPass(String name) {
        assertEquals(name, RepoPath.check(name, "test"));
        Path folder = Path.of("/cache/snap");
        assertEquals(folder.resolve(name), RepoPath.inside(folder, name, "test"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "/abs", "..", "../x", "a/../../x", "a/./b", "a//b", "a/", "a\\b", "C:\\x", "a\u0000b",
            "a\nb"})
    void escapingOrOddPathsAreRefused(String name) {
        assertThrows(HubException.class, () -> RepoPath.check(name, "test"));
    }

    @Test
    void etagsLoseQuotesAndTheWeakPrefixAndMustNotBePaths() {
        assertEquals("abc123", RepoPath.etag("\"abc123\"", "test"));
        assertEquals("abc123", RepoPath.etag("W/\"abc123\"", "test"));
        assertEquals("abc123", RepoPath.etag("abc123", "test"));
        for (String bad : new String[] {"\"../x\"", "\"a/b\"", "\"\"", "\".hidden\"", "\"a b\""}) {
            assertThrows(HubException.class, () -> RepoPath.etag(bad, "test"), bad);
        }
    }

    @Test
    void commitsAreFortyLowercaseHexDigits() {
        String sha = "0123456789abcdef0123456789abcdef01234567";
        assertEquals(sha, RepoPath.commit(sha, "test"));
        assertThrows(HubException.class, () -> RepoPath.commit(sha.toUpperCase(), "test"));
        assertThrows(HubException.class, () -> RepoPath.commit("..", "test"));
        assertThrows(HubException.class, () -> RepoPath.commit(null, "test"));
    }
}
