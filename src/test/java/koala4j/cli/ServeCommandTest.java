package koala4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code koala4j serve}'s option checks: one-line errors before anything starts. (Serving itself: server tests.) */
@Timeout(30)
class ServeCommandTest {

    @TempDir
    Path dir;

    private static String[] run(int expectedCode, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out), new PrintWriter(err));
        assertEquals(expectedCode, code, err.toString());
        return new String[] {out.toString(), err.toString()};
    }

    @Test
    void badOptionsAreOneLineErrors() throws Exception {
        String data = dir.resolve("data").toString();
        String err = run(1, "serve", "--data", data, "--api-key-file", dir.resolve("missing.txt").toString())[1];
        assertTrue(err.startsWith("koala4j: --api-key-file") && err.contains("no such file"), err);
        assertEquals(1, err.strip().lines().count(), err);
        Path shortKey = Files.writeString(dir.resolve("keys.txt"), "# keys\nshort\n");
        assertTrue(run(1, "serve", "--data", data, "--api-key-file", shortKey.toString())[1].contains("at least 16"));
        assertTrue(run(1, "serve", "--data", data, "--memory-budget", "lots")[1].contains("--memory-budget lots"));
        assertTrue(run(1, "serve", "--data", data, "--queue", "0")[1].contains("--queue 0"));
        assertTrue(run(1, "serve", "--data", data, "--chat-cache-slots", "0")[1].contains("--chat-cache-slots 0"));
        assertTrue(run(1, "serve", "--data", data, "--chat-max-loaded", "-1")[1]
                .contains("--chat-max-loaded -1: expected 0 (no limit) or more"));
        assertTrue(run(1, "serve", "--data", data, "--chat-prefill-chunk", "0")[1]
                .contains("--chat-prefill-chunk 0: expected at least 1"));
        assertTrue(run(1, "serve", "--data", data, "--chat-prompt-lookup", "-2")[1]
                .contains("--chat-prompt-lookup -2: expected 0 (off) or more draft tokens"));
        assertTrue(run(1, "serve", "--data", data, "--chat-prompt-lookup-ngram", "2")[1]
                .contains("--chat-prompt-lookup-ngram 2 needs --chat-prompt-lookup"));
        assertTrue(run(1, "serve", "--data", data, "--chat-memory-budget", "lots")[1]
                .contains("--chat-memory-budget lots: expected a size such as 8g, 512m or 1048576"));
        assertTrue(run(1, "serve", "--data", data, "--chat-draft-max", "4")[1]
                .contains("--chat-draft-max needs --chat-draft-model"));
        assertTrue(run(1, "serve", "--data", data, "--chat-draft-model", "x", "--chat-draft-p-min", "-1")[1]
                .contains("--chat-draft-p-min -1.0: expected a probability from 0 to 1"));
        assertTrue(run(1, "serve", "--data", data, "--chat-draft-model", "x", "--chat-prompt-lookup", "2")[1]
                .contains("--chat-draft-model and --chat-prompt-lookup 2: both draft tokens"));
        assertTrue(run(1, "serve", "--data", data, "--chat-kv-cache", "q5")[1]
                .contains("--chat-kv-cache 'q5': expected f32, f16, q8_0 or q4_0"));
        assertTrue(run(1, "serve", "--data", data, "--db", "jdbc:mysql://x/y")[1].contains("jdbc:sqlite:FILE"));
        assertTrue(run(2, "serve", "--port", "eighty")[1].contains("--port"));
        assertTrue(run(0, "help", "serve")[0].contains("--api-key-file"));
    }

    @Test
    void keysAndSizes() throws Exception {
        Path keys = Files.writeString(dir.resolve("keys.txt"), "# team keys\n\nk4j-aaaaaaaaaaaaaaaa\n  k4j-bbbbbbbbbbbbbbbb  \n");
        assertEquals(Set.of("k4j-aaaaaaaaaaaaaaaa", "k4j-bbbbbbbbbbbbbbbb"), ServeCommand.readKeys(keys));
        assertEquals(8L << 30, ServeCommand.bytes("--memory-budget", "8g"));
        assertEquals(512L << 20, ServeCommand.bytes("--memory-budget", "512M"));
        assertEquals(1000, ServeCommand.bytes("--memory-budget", "1000"));
        assertThrows(IllegalArgumentException.class, () -> ServeCommand.bytes("--memory-budget", "-1g"));
        assertEquals("etri-vilab/koala-700m", ServeCommand.folderId(
                Path.of("/cache/hub/models--etri-vilab--koala-700m/snapshots/0123abcd")));
        assertEquals("my-sd15", ServeCommand.folderId(Path.of("/models/my-sd15/")));
    }
}
