package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Folder-level behaviour on the golden tokenizer files (golden/e2e/llama, llava, kollava_v0): which implementation a
 * folder gets, legacy folders without added_tokens_decoder, round trips, special-token handling, streaming, and the
 * errors for missing or wrong files. Metric: exact ids and text.
 */
class TokenizersTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void picksTheImplementationFromTheFolder() throws IOException {
        Path llama = resource("golden/e2e/llama/model");
        assertInstanceOf(HfTokenizer.class, Tokenizers.load(llama));
        assertInstanceOf(LlamaTokenizer.class, Tokenizers.load(llama, Tokenizers.Kind.SLOW));
        assertInstanceOf(LlamaTokenizer.class, Tokenizers.load(resource("golden/e2e/kollava_v0")));
        Path clip = Files.createDirectories(tmp.resolve("clip"));
        for (Path f : List.of(resource("golden/clip_tokenizer/vocab.json"), resource("golden/clip_tokenizer/merges.txt"),
                resource("golden/tokenizer_folders/sd15_tokenizer/tokenizer_config.json"))) {
            Files.copy(f, clip.resolve(f.getFileName()));
        }
        assertInstanceOf(ClipTokenizer.class, Tokenizers.load(clip));
        assertThrows(TokenizerException.class, () -> Tokenizers.loadText(clip, Tokenizers.Kind.AUTO));
    }

    @Test
    void legacyFolderWithAddedTokensJsonOnly() throws IOException {
        // The layout LLaVA v0 checkpoints were saved in (transformers < 4.34): no added_tokens_decoder, no "legacy".
        Path src = resource("golden/e2e/kollava_v0");
        Path folder = Files.createDirectories(tmp.resolve("old"));
        for (String f : List.of("tokenizer.model", "added_tokens.json", "special_tokens_map.json")) {
            Files.copy(src.resolve(f), folder.resolve(f));
        }
        Files.writeString(folder.resolve("tokenizer_config.json"),
                "{\"tokenizer_class\": \"LlamaTokenizer\", \"model_max_length\": 2048, \"bos_token\": \"<s>\"}");
        TextTokenizer tokenizer = Tokenizers.loadText(folder, Tokenizers.Kind.AUTO);
        assertTrue(((LlamaTokenizer) tokenizer).legacy());
        JsonNode run = JSON.readTree(src.resolve("expected.json").toFile()).get("runs").get(1);
        assertArrayEquals(ints(run.get("expected").get("input_ids")),
                tokenizer.encode(run.get("prompt").asText(), true));
        assertEquals(500, tokenizer.tokenId("<im_patch>").orElseThrow());
        assertEquals(503, tokenizer.size());
        assertTrue(tokenizer.isSpecial(502));
        assertEquals(List.of("<im_patch>", "<im_start>", "<im_end>"),
                tokenizer.specialTokensMap().get("additional_special_tokens"));
    }

    @Test
    void hangulRoundTripsThroughBothImplementations() {
        Path folder = resource("golden/e2e/llava/model");
        String text = "코알라는 유칼립투스 잎을 먹어요. 이 그림을 설명해 주세요! 🐨 ok";
        for (TextTokenizer t : List.of(Tokenizers.loadText(folder, Tokenizers.Kind.SLOW),
                Tokenizers.loadText(folder, Tokenizers.Kind.FAST))) {
            int[] ids = t.encode(text, true);
            assertEquals(1, ids[0], t.toString());
            assertEquals(text, t.decode(ids, true), t.toString());
            // with the special token kept, both give "<s> " + text: after <s> the first piece keeps its space
            assertEquals("<s> " + text, t.decode(ids, false), t.toString());
        }
    }

    @Test
    void legacyAndNonLegacyDifferAfterAnAddedToken() throws IOException {
        // transformers' own example: legacy=True encodes the text after a special token with a dummy prefix.
        Path src = resource("golden/e2e/llava/model");
        Path folder = Files.createDirectories(tmp.resolve("legacy"));
        Files.copy(src.resolve("tokenizer.model"), folder.resolve("tokenizer.model"));
        String config = Files.readString(src.resolve("tokenizer_config.json"));
        Files.writeString(folder.resolve("tokenizer_config.json"), config.replace("\"legacy\": false", "\"legacy\": true"));
        LlamaTokenizer legacy = LlamaTokenizer.load(folder);
        LlamaTokenizer modern = LlamaTokenizer.load(src);
        assertEquals("<image>", modern.tokenize("<image>\nW").get(0));
        assertEquals("<0x0A>", modern.tokenize("<image>\nW").get(1));
        assertEquals("\u2581", legacy.tokenize("<image>\nW").get(1));
    }

    @Test
    void streamerReleasesStableText() {
        TextTokenizer tokenizer = Tokenizers.loadText(resource("golden/e2e/llama/model"), Tokenizers.Kind.SLOW);
        String text = "The koala is 코알라 🐨\nnext";
        int[] ids = tokenizer.encode(text, false);
        TextStreamer streamer = new TextStreamer(tokenizer, true);
        StringBuilder out = new StringBuilder();
        for (int id : ids) {
            String piece = streamer.put(id);
            assertTrue(!piece.contains("\uFFFD"), "a half character was released: " + piece);
            out.append(piece);
        }
        out.append(streamer.end());
        assertEquals(text, out.toString());
    }

    @Test
    void errorsNameTheFileAndField() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizers.load(empty));
        assertTrue(e.getMessage().contains("neither tokenizer.json nor tokenizer.model"), e.getMessage());
        Files.writeString(empty.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"T5Tokenizer\"}");
        e = assertThrows(TokenizerException.class, () -> Tokenizers.load(empty));
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("T5Tokenizer"), e.getMessage());
        // transformers 5's generic class is tokenizer.json and nothing else
        Files.writeString(empty.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"TokenizersBackend\"}");
        e = assertThrows(TokenizerException.class, () -> Tokenizers.load(empty));
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("TokenizersBackend"), e.getMessage());
        Files.writeString(empty.resolve("tokenizer_config.json"), "{\"legacy\": \"yes\"}");
        Files.copy(resource("golden/e2e/llama/model/tokenizer.model"), empty.resolve("tokenizer.model"));
        e = assertThrows(TokenizerException.class, () -> Tokenizers.load(empty));
        assertTrue(e.getMessage().contains("legacy is \"yes\", expected true or false"), e.getMessage());
        Files.writeString(empty.resolve("tokenizer_config.json"), "{\"sp_model_kwargs\": {\"enable_sampling\": true}}");
        e = assertThrows(TokenizerException.class, () -> Tokenizers.load(empty));
        assertTrue(e.getMessage().contains("sp_model_kwargs"), e.getMessage());
        Files.writeString(empty.resolve("tokenizer_config.json"), "{\"added_tokens_decoder\": {\"x\": {\"content\": \"a\"}}}");
        e = assertThrows(TokenizerException.class, () -> Tokenizers.load(empty));
        assertTrue(e.getMessage().contains("added_tokens_decoder has key \"x\""), e.getMessage());
        Files.writeString(empty.resolve("tokenizer_config.json"), "{\"bos_token\": ");
        e = assertThrows(TokenizerException.class, () -> Tokenizers.load(empty));
        assertTrue(e.getMessage().startsWith(empty.resolve("tokenizer_config.json").toString()), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Tokenizers.loadText(resource("golden/e2e/llama/model"),
                Tokenizers.Kind.SLOW).idToToken(100_000));
    }
}
