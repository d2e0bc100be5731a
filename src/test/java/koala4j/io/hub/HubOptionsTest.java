package koala4j.io.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@link HubClient.Options#fromEnvironment} reads the variables as huggingface_hub's constants.py does. */
@Timeout(10)
class HubOptionsTest {

    @TempDir
    Path tmp;

    @Test
    void defaultsWhenNothingIsSet() {
        HubClient.Options o = HubClient.Options.fromEnvironment(Map.of("HF_HOME", tmp.toString()));
        assertEquals(URI.create("https://huggingface.co"), o.endpoint());
        assertEquals(Optional.empty(), o.token());
        assertFalse(o.offline());
        assertEquals(tmp.resolve("hub"), o.cache().root());
        assertEquals(Duration.ofSeconds(10), o.timeout());
    }

    @Test
    void endpointCacheAndTimeoutComeFromTheirVariables() {
        HubClient.Options o = HubClient.Options.fromEnvironment(Map.of("HF_ENDPOINT", "https://hf-mirror.example/",
                "HF_HUB_CACHE", tmp.resolve("c").toString(), "HF_HOME", tmp.toString(),
                "HF_HUB_DOWNLOAD_TIMEOUT", "2.5"));
        assertEquals(URI.create("https://hf-mirror.example"), o.endpoint());
        assertEquals(tmp.resolve("c"), o.cache().root());
        assertEquals(Duration.ofMillis(2500), o.timeout());
    }

    @Test
    void tokenFromHfTokenElseTheTokenFileInHfHome() throws IOException {
        Files.writeString(tmp.resolve("token"), "hf_from_file\n");
        assertEquals(Optional.of("hf_from_file"),
                HubClient.Options.fromEnvironment(Map.of("HF_HOME", tmp.toString())).token());
        assertEquals(Optional.of("hf_from_env"), HubClient.Options.fromEnvironment(
                Map.of("HF_HOME", tmp.toString(), "HF_TOKEN", "hf_from_env")).token());
        Path elsewhere = tmp.resolve("elsewhere");
        Files.writeString(elsewhere, "hf_from_token_path");
        assertEquals(Optional.of("hf_from_token_path"), HubClient.Options.fromEnvironment(
                Map.of("HF_HOME", tmp.toString(), "HF_TOKEN_PATH", elsewhere.toString())).token());
        Files.writeString(tmp.resolve("token"), "  \n");
        assertEquals(Optional.empty(), HubClient.Options.fromEnvironment(Map.of("HF_HOME", tmp.toString())).token());
    }

    @Test
    void offlineAcceptsThePythonTruthyValues() {
        for (String yes : new String[] {"1", "true", "TRUE", "yes", "on"}) {
            assertTrue(HubClient.Options.fromEnvironment(Map.of("HF_HOME", tmp.toString(), "HF_HUB_OFFLINE", yes))
                    .offline(), yes);
        }
        for (String no : new String[] {"0", "false", "no", ""}) {
            assertFalse(HubClient.Options.fromEnvironment(Map.of("HF_HOME", tmp.toString(), "HF_HUB_OFFLINE", no))
                    .offline(), no);
        }
        assertTrue(HubClient.Options.fromEnvironment(Map.of("HF_HOME", tmp.toString(), "TRANSFORMERS_OFFLINE", "1"))
                .offline());
    }

    @Test
    void badValuesAreNamed() {
        IllegalArgumentException timeout = assertThrows(IllegalArgumentException.class, () -> HubClient.Options
                .fromEnvironment(Map.of("HF_HOME", tmp.toString(), "HF_HUB_DOWNLOAD_TIMEOUT", "ten")));
        assertTrue(timeout.getMessage().contains("HF_HUB_DOWNLOAD_TIMEOUT='ten'"), timeout.getMessage());
        IllegalArgumentException endpoint = assertThrows(IllegalArgumentException.class, () -> HubClient.Options
                .fromEnvironment(Map.of("HF_HOME", tmp.toString(), "HF_ENDPOINT", "ftp://x")));
        assertTrue(endpoint.getMessage().contains("ftp://x"), endpoint.getMessage());
    }
}
