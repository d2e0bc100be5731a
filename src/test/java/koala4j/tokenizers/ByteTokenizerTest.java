package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import koala4j.io.json.Json;

/**
 * ByteTokenizer against transformers 4.57.6's slow ByT5Tokenizer: golden/t5_byt5_tiny/byt5_tokenization.json
 * (default ByT5Tokenizer; ASCII, emoji, Korean, empty) and golden/e2e/t5 (a folder saved by save_pretrained: inputs
 * with Korean and {@code <extra_id_0>}, and decoded generations with and without special tokens). Ids and text exact.
 */
class ByteTokenizerTest {

    private static int[] ints(List<Integer> xs) {
        return xs.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void defaultTokenizerMatchesTheReference() {
        ByteTokenizer tok = ByteTokenizer.byt5();
        Json cases = Json.parse(readString(resource("golden/t5_byt5_tiny/byt5_tokenization.json")).replaceFirst("^\\[",
                "{\"cases\": [") + "}", "byt5_tokenization.json");
        for (Json c : cases.objects("cases")) {
            assertArrayEquals(ints(c.intList("ids")), tok.encodeWithEos(c.string("text")), c.string("text"));
        }
        assertEquals(0, tok.padId());
        assertEquals(1, tok.eosId());
        assertEquals(2, tok.unkId());
        assertArrayEquals(new int[] {259, 383}, tok.encode("<extra_id_0><extra_id_124>"));
        assertEquals(384, tok.size());
    }

    @Test
    void savedFolderEncodesAndDecodesAsTheReference() {
        ByteTokenizer tok = ByteTokenizer.load(resource("golden/e2e/t5/model"));
        Json expected = Json.read(resource("golden/e2e/t5/expected.json"));
        for (Json run : expected.objects("runs")) {
            Json out = run.object("expected");
            if (out.has("input_ids")) {
                assertArrayEquals(ints(out.intList("input_ids")), tok.encodeWithEos(run.string("input_text")),
                        run.string("input_text"));
            }
            int[] generated = ints(out.intList("output_ids"));
            assertEquals(out.string("text_skip_special"), tok.decode(generated, true), "skip_special_tokens=True");
            if (out.has("text_raw")) {
                assertEquals(out.string("text_raw"), tok.decode(generated, false), "skip_special_tokens=False");
            }
        }
    }

    @Test
    void specialTokensStripSpacesAndSentinelsStaySeparate() {
        ByteTokenizer tok = ByteTokenizer.byt5();
        // pad/eos/unk are AddedTokens with lstrip and rstrip: "a </s> b" loses both spaces
        assertArrayEquals(new int[] {100, 1, 101}, tok.encode("a </s> b"));
        // sentinels do not strip
        assertArrayEquals(new int[] {100, 35, 259, 35, 101}, tok.encode("a <extra_id_0> b"));
        assertEquals("a <extra_id_0> b", tok.decode(new int[] {100, 259, 101}));
        assertEquals("ab", tok.decode(new int[] {100, 259, 101}, true));
        assertEquals("a</s>", tok.decode(new int[] {100, 1}));
    }

    @Test
    void invalidUtf8IsDroppedNotFatal() {
        ByteTokenizer tok = ByteTokenizer.byt5();
        // a lone continuation byte, a truncated 3-byte Hangul sequence, then a valid 'A'
        assertEquals("A", tok.decode(new int[] {0x80 + 3, 0xED + 3, 0x95 + 3, 'A' + 3}));
        assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {400}));
    }

    @Test
    void legacyFolderWithAddedTokensJson(@TempDir Path dir) throws IOException {
        // transformers < 4.34 layout: special_tokens_map.json + added_tokens.json, no added_tokens_decoder
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"extra_ids\": 0, \"tokenizer_class\": \"ByT5Tokenizer\"}");
        Files.writeString(dir.resolve("special_tokens_map.json"), "{\"eos_token\": \"</s>\", \"unk_token\": \"<unk>\", "
                + "\"pad_token\": \"<pad>\", \"additional_special_tokens\": [\"<extra_id_0>\", \"<extra_id_1>\"]}");
        Files.writeString(dir.resolve("added_tokens.json"), "{\"<extra_id_0>\": 259, \"<extra_id_1>\": 260}");
        ByteTokenizer tok = ByteTokenizer.load(dir);
        assertArrayEquals(new int[] {260, 1}, tok.encodeWithEos("<extra_id_1>"));
        assertEquals("x", tok.decode(new int[] {0, 259, 'x' + 3, 1}, true));
        assertEquals(261, tok.size());
    }

    @Test
    void otherTokenizerClassesAreRefused(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"T5Tokenizer\"}");
        TokenizerException e = assertThrows(TokenizerException.class, () -> ByteTokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer_class"), e.getMessage());
    }

    private static String readString(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
