package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Byte-level BPE tokenizer.json files (hf_tokenizer/byte_level, made by its make_byte_level.py with tokenizers 0.22.2):
 * LLaMA 3's pipeline (Split with its regex, then ByteLevel without prefix space or regex; ignore_merges; a
 * Sequence[ByteLevel, TemplateProcessing] post-processor adding &lt;|begin_of_text|&gt;) and GPT-2's (ByteLevel with
 * prefix space and regex). Ids, tokens and decodings exact for 20 texts (Korean, emoji, digits, contractions in
 * upper case, whitespace runs, CR LF, full-width letters, special tokens in the text), decodings of byte tokens that
 * cut UTF-8 characters, and the Split pre-tokenizer's pieces for all five behaviors, inverted or not.
 */
class ByteLevelTokenizerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private static JsonNode vectors() throws IOException {
        return JSON.readTree(resource("hf_tokenizer/byte_level/vectors.json").toFile());
    }


    @ParameterizedTest
    @ValueSource(strings = {"llama3", "gpt2"})
    void idsTokensAndDecodingsMatchTokenizers(String name) throws IOException {
        Tokenizer loaded = Tokenizers.load(resource("hf_tokenizer/byte_level/" + name));
        HfTokenizer tokenizer = assertInstanceOf(HfTokenizer.class, loaded);
        for (JsonNode row : vectors().at("/" + name + "/rows")) {
            String text = row.get("text").asText();
            assertArrayEquals(ints(row.get("ids")), tokenizer.encode(text, false), name + " ids of " + text);
            assertArrayEquals(ints(row.get("ids_special")), tokenizer.encode(text, true), name + " special ids of " + text);
            List<String> tokens = new ArrayList<>();
            row.get("tokens").forEach(t -> tokens.add(t.asText()));
            assertEquals(tokens, tokenizer.tokenize(text), name + " tokens of " + text);
            assertEquals(row.get("decoded").asText(), tokenizer.decode(ints(row.get("ids_special")), false), text);
            assertEquals(row.get("decoded_skip").asText(), tokenizer.decode(ints(row.get("ids_special")), true), text);
        }
        for (JsonNode cut : vectors().at("/" + name + "/cuts")) {
            assertEquals(cut.get("decoded").asText(), tokenizer.decode(ints(cut.get("ids")), false), cut.toString());
        }
    }

    @Test
    void splitBehavesAsTokenizersSplit() throws IOException {
        int checked = 0;
        for (JsonNode row : vectors().get("split")) {
            String pattern = row.get("pattern").asText();
            Pattern compiled = row.get("regex").asBoolean()
                    ? Pattern.compile(pattern, Pattern.UNICODE_CHARACTER_CLASS) : Pattern.compile(Pattern.quote(pattern));
            HfComponents.SplitBehavior behavior = HfComponents.SplitBehavior.valueOf(
                    row.get("behavior").asText().toUpperCase(java.util.Locale.ROOT));
            List<String> expected = new ArrayList<>();
            row.get("pieces").forEach(p -> expected.add(p.asText()));
            assertEquals(expected, new HfComponents.Split(compiled, behavior, row.get("invert").asBoolean())
                    .preTokenize(row.get("text").asText(), true), row.toString());
            checked++;
        }
        assertEquals(180, checked);
    }

    @Test
    void unsupportedPartsAreNamed() throws IOException {
        Path folder = Files.createDirectories(tmp.resolve("bad"));
        String json = Files.readString(resource("hf_tokenizer/byte_level/llama3/tokenizer.json"));
        Files.writeString(folder.resolve("tokenizer.json"), json.replace("\"type\": \"Split\"", "\"type\": \"Digits\""));
        TokenizerException e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(folder));
        assertTrue(e.getMessage().contains("pre_tokenizer.pretokenizers[0]") && e.getMessage().contains("Digits"),
                e.getMessage());
        Files.writeString(folder.resolve("tokenizer.json"), json.replace("\"behavior\": \"Isolated\"",
                "\"behavior\": \"Sideways\""));
        e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(folder));
        assertTrue(e.getMessage().contains("behavior") && e.getMessage().contains("Sideways"), e.getMessage());
        Files.writeString(folder.resolve("tokenizer.json"), json.replaceFirst("\"Regex\": \"[^\"]*\"",
                "\"Regex\": \"(unclosed\""));
        e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(folder));
        assertTrue(e.getMessage().contains("pattern.Regex"), e.getMessage());
    }
}
