package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * hf_tokenizer/hf_vectors.json: the real tokenizers 0.22.2 (Python) on variants of the golden LLaVA tokenizer.json
 * (hf_tokenizer/make_hf_vectors.py): as shipped, the legacy Prepend+Replace normalizer with "a b" merges, the old
 * Metaspace form with split and a Metaspace decoder, and added tokens with lstrip/rstrip/single_word/normalized.
 * Plus the golden e2e prompts through tokenizer.json. Metric: exact ids and text.
 */
class HfTokenizerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"shipped", "legacy", "metaspace_split", "flags"})
    void encodeAndDecodeAsTheTokenizersLibrary(String name) throws IOException {
        HfTokenizer tokenizer = HfTokenizer.load(resource("hf_tokenizer/" + name));
        JsonNode rows = JSON.readTree(resource("hf_tokenizer/hf_vectors.json").toFile()).get("cases").get(name);
        for (JsonNode row : rows) {
            int[] ids;
            if (row.has("text")) {
                String text = row.get("text").asText();
                ids = ints(row.get("ids"));
                assertArrayEquals(ids, tokenizer.encode(text, false), name + " encode " + JSON.writeValueAsString(text));
            } else {
                ids = ints(row.get("decode_ids"));
            }
            assertEquals(row.get("decoded").asText(), tokenizer.decode(ids, false), name + " decode " + row);
            assertEquals(row.get("decoded_skip").asText(), tokenizer.decode(ids, true), name + " decode skip " + row);
        }
    }

    @Test
    void goldenPromptsThroughTokenizerJson() throws IOException {
        Path llama = resource("golden/e2e/llama");
        HfTokenizer tokenizer = HfTokenizer.load(llama.resolve("model"));
        JsonNode fastTexts = JSON.readTree(resource("hf_tokenizer/hf_vectors.json").toFile()).get("llama_new_text_fast");
        int runIndex = 0;
        for (JsonNode row : JSON.readTree(llama.resolve("expected.json").toFile()).get("runs")) {
            JsonNode expected = row.get("expected");
            String prompt = row.get("prompt").asText();
            assertArrayEquals(ints(expected.get("input_ids")), tokenizer.encode(prompt, true), prompt);
            // Known slow/fast divergence: an invalid UTF-8 byte run decodes to U+FFFD per byte of the whole run in
            // tokenizers' ByteFallback, per invalid byte in SentencePiece. Valid runs agree with the slow text.
            String fast = tokenizer.decode(ints(expected.get("new_ids")), true);
            assertEquals(fastTexts.get(runIndex++).asText(), fast, prompt);
            if (!expected.get("new_text").asText().contains("\uFFFD")) {
                assertEquals(expected.get("new_text").asText(), fast, prompt);
            }
        }
        Path llava = resource("golden/e2e/llava");
        HfTokenizer fast = HfTokenizer.load(llava.resolve("model"));
        for (JsonNode run : JSON.readTree(llava.resolve("expected.json").toFile()).get("runs")) {
            JsonNode expected = run.get("expected");
            String prompt = run.get("prompt").asText()
                    .replace("<image>", "<image>".repeat(expected.get("num_image_tokens_in_prompt").intValue()));
            assertArrayEquals(ints(expected.get("input_ids")), fast.encode(prompt, true), prompt);
        }
        assertEquals(500, fast.tokenId("<image>").orElseThrow());
        assertEquals(501, fast.padId().orElseThrow());
        assertEquals(1, fast.bosId().orElseThrow());
    }

    @Test
    void unsupportedComponentsAreNamedWithTheirPath() throws IOException {
        String json = Files.readString(resource("hf_tokenizer/shipped/tokenizer.json"));
        Path folder = Files.createDirectories(tmp.resolve("bad"));
        Files.writeString(folder.resolve("tokenizer.json"),
                json.replace("\"type\":\"Fuse\"", "\"type\":\"WordPiece\",\"prefix\":\"##\""));
        TokenizerException e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(folder));
        assertTrue(e.getMessage().contains("decoder.decoders[2].type is \"WordPiece\""), e.getMessage());

        Files.writeString(folder.resolve("tokenizer.json"), json.replace("\"type\":\"BPE\"", "\"type\":\"Unigram\""));
        e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(folder));
        assertTrue(e.getMessage().contains("model.type is \"Unigram\""), e.getMessage());

        Files.writeString(folder.resolve("tokenizer.json"), json.replace("[\"\u2581\",\"t\"]", "[\"\u2581\",\"qqq\"]"));
        e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(folder));
        assertTrue(e.getMessage().contains("model.merges[0]"), e.getMessage());

        Files.writeString(folder.resolve("tokenizer.json"), json.substring(0, json.length() / 2));
        e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(folder));
        assertTrue(e.getMessage().startsWith(folder.resolve("tokenizer.json").toString()), e.getMessage());
    }
}
