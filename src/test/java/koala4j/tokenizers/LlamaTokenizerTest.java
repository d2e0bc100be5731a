package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * golden/e2e/{llama,llava,kollava_v0}: transformers 4.57.6 slow LlamaTokenizer over a real SentencePiece BPE model
 * (vocab 500, byte fallback); prompt ids and decoded text recorded by the oracle. Metric: exact ids and text.
 */
class LlamaTokenizerTest {

    private static final ObjectMapper JSON = new ObjectMapper();


    @Test
    void llamaPromptsEncodeAndDecodeAsTheSlowTokenizer() throws IOException {
        Path root = resource("golden/e2e/llama");
        LlamaTokenizer tokenizer = LlamaTokenizer.load(root.resolve("model"));
        for (JsonNode run : JSON.readTree(root.resolve("expected.json").toFile()).get("runs")) {
            String prompt = run.get("prompt").asText();
            JsonNode expected = run.get("expected");
            List<String> pieces = new ArrayList<>();
            expected.get("input_pieces").forEach(p -> pieces.add(p.asText()));
            assertEquals(pieces.subList(1, pieces.size()), tokenizer.tokenize(prompt), prompt);
            assertArrayEquals(ints(expected.get("input_ids")), tokenizer.encode(prompt, true), prompt);
            assertEquals(expected.get("new_text").asText(), tokenizer.decode(ints(expected.get("new_ids")), true), prompt);
        }
    }

    @Test
    void llavaPromptsWithExpandedImageTokens() throws IOException {
        Path root = resource("golden/e2e/llava");
        LlamaTokenizer tokenizer = LlamaTokenizer.load(root.resolve("model"));
        for (JsonNode run : JSON.readTree(root.resolve("expected.json").toFile()).get("runs")) {
            JsonNode expected = run.get("expected");
            String prompt = run.get("prompt").asText()
                    .replace("<image>", "<image>".repeat(expected.get("num_image_tokens_in_prompt").intValue()));
            assertArrayEquals(ints(expected.get("input_ids")), tokenizer.encode(prompt, true), prompt);
            assertEquals(expected.get("new_text").asText(), tokenizer.decode(ints(expected.get("new_ids")), true), prompt);
        }
    }

    @Test
    void kollavaV0PromptsWithLegacyBehaviour() throws IOException {
        Path root = resource("golden/e2e/kollava_v0");
        LlamaTokenizer tokenizer = LlamaTokenizer.load(root);
        for (JsonNode run : JSON.readTree(root.resolve("expected.json").toFile()).get("runs")) {
            JsonNode expected = run.get("expected");
            String prompt = run.get("prompt").asText();
            assertArrayEquals(ints(expected.get("input_ids")), tokenizer.encode(prompt, true), prompt);
            assertEquals(expected.get("new_text").asText(), tokenizer.decode(ints(expected.get("new_ids")), true), prompt);
        }
    }
}
