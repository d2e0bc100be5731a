package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * sentencepiece/sp_vectors.json: the real sentencepiece 0.2.2 (Python) on three models — the golden LLaMA BPE model
 * (byte fallback, identity, no extra-whitespace removal), a unigram model with the nmt_nfkc charsmap and user-defined
 * symbols, and a BPE model without byte fallback that removes extra whitespace — each as shipped and with
 * add_dummy_prefix off (what LlamaTokenizer legacy=False loads). Made by sentencepiece/make_sp_vectors.py.
 * Metric: exact pieces, ids and decoded text.
 */
class SentencePieceProcessorTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    static Path modelFile(String name) {
        return name.equals("llama") ? resource("golden/e2e/llama/model/tokenizer.model")
                : resource("sentencepiece/" + name + ".model");
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "unigram_nfkc", "bpe_ws"})
    void encodeAndDecodeAsSentencePiece(String name) throws IOException {
        JsonNode rows = JSON.readTree(resource("sentencepiece/sp_vectors.json").toFile()).get("cases").get(name);
        SentencePieceModel model = SentencePieceModel.read(modelFile(name));
        SentencePieceProcessor plain = new SentencePieceProcessor(model);
        SentencePieceProcessor noPrefix = new SentencePieceProcessor(model.withoutDummyPrefix());
        int checked = 0;
        for (JsonNode row : rows) {
            SentencePieceProcessor sp = row.get("variant").asText().equals("model") ? plain : noPrefix;
            if (row.has("text")) {
                String text = row.get("text").asText();
                List<String> pieces = strings(row.get("pieces"));
                assertEquals(pieces, sp.encode(text), name + " encode " + JSON.writeValueAsString(text));
                int[] ids = pieces.stream().mapToInt(sp::pieceToId).toArray();
                int[] expectedIds = new int[row.get("ids").size()];
                Arrays.setAll(expectedIds, i -> row.get("ids").get(i).intValue());
                assertEquals(Arrays.toString(expectedIds), Arrays.toString(ids), name + " ids " + text);
                assertEquals(row.get("decoded").asText(), sp.decode(pieces), name + " decode " + pieces);
            } else {
                List<String> pieces = strings(row.get("decode_pieces"));
                assertEquals(row.get("decoded").asText(), sp.decode(pieces), name + " decode " + pieces);
            }
            checked++;
        }
        assertTrue(checked > 300, "rows checked: " + checked);
    }

    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    @Test
    void truncatedModelNamesTheFileAndOffset() throws IOException {
        byte[] bytes = Files.readAllBytes(modelFile("llama"));
        for (int cut : new int[] {1, 17, 1000, bytes.length / 2, bytes.length - 3}) {
            Path file = tmp.resolve("cut" + cut + ".model");
            Files.write(file, Arrays.copyOf(bytes, cut));
            TokenizerException e = assertThrows(TokenizerException.class, () -> SentencePieceModel.read(file));
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("not a valid"), e.getMessage());
        }
        Path empty = tmp.resolve("empty.model");
        Files.write(empty, new byte[0]);
        assertTrue(assertThrows(TokenizerException.class, () -> SentencePieceModel.read(empty)).getMessage()
                .contains("holds no pieces"));
    }

    @Test
    void unknownPieceTypeIsRefused() throws IOException {
        byte[] bytes = Files.readAllBytes(modelFile("llama"));
        // The first piece is {1: "<unk>", 2: 0f, 3: UNKNOWN(2)}: its type varint is the byte after the 0x18 tag.
        int at = indexOf(bytes, new byte[] {0x18, 0x02});
        bytes[at + 1] = 9;
        Path file = tmp.resolve("badtype.model");
        Files.write(file, bytes);
        TokenizerException e = assertThrows(TokenizerException.class, () -> SentencePieceModel.read(file));
        assertTrue(e.getMessage().contains("pieces[0] has type 9"), e.getMessage());
    }

    @Test
    void modelsWithoutUnknownOrWithMissingBytePiecesAreRefused() {
        var unk = new SentencePieceModel.Piece("<unk>", 0, SentencePieceModel.PieceType.UNKNOWN);
        var a = new SentencePieceModel.Piece("a", -1, SentencePieceModel.PieceType.NORMAL);
        var norm = new SentencePieceModel.Normalization("identity", new byte[0], true, false, true);
        Path file = Path.of("x.model");
        var noUnk = new SentencePieceModel(file, List.of(a), SentencePieceModel.ModelType.BPE, false, false, " ", norm, null);
        assertTrue(assertThrows(TokenizerException.class, () -> new SentencePieceProcessor(noUnk)).getMessage()
                .contains("no UNKNOWN piece"));
        var noBytes = new SentencePieceModel(file, List.of(unk, a), SentencePieceModel.ModelType.BPE, true, false, " ", norm, null);
        assertTrue(assertThrows(TokenizerException.class, () -> new SentencePieceProcessor(noBytes)).getMessage()
                .contains("<0x00>"));
        var word = new SentencePieceModel(file, List.of(unk, a), SentencePieceModel.ModelType.WORD, false, false, " ", norm, null);
        assertTrue(assertThrows(TokenizerException.class, () -> new SentencePieceProcessor(word)).getMessage()
                .contains("model_type is WORD"));
        var dup = new SentencePieceModel(file, List.of(unk, a, a), SentencePieceModel.ModelType.BPE, false, false, " ", norm, null);
        assertTrue(assertThrows(TokenizerException.class, () -> new SentencePieceProcessor(dup)).getMessage()
                .contains("already defined"));
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("pattern not found");
    }
}
