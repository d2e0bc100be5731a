package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;

/**
 * {@link TextTokenizer#tokenBytes}: the bytes each token stands for (what log-probabilities report per token). The
 * same folder read from tokenizer.model and from tokenizer.json gives the same bytes for every id; the bytes of a
 * text's tokens add up to its decoded text (with the leading space that SentencePiece decoding drops); byte tokens
 * give one byte each, special tokens their content.
 */
class TokenBytesTest {

    private static final List<String> TEXTS = List.of("The koala is eating leaves.", "한국어 문장을 만들어 보자",
            "  two  spaces, tabs\tand a newline\n!", "emoji 🐨 and ü", "日本語とカタカナ");

    private static byte[] concat(TextTokenizer tok, int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) {
            out.writeBytes(tok.tokenBytes(id));
        }
        return out.toByteArray();
    }

    @Test
    void sentencePieceAndTokenizerJsonAgreeOnEveryToken() {
        Path folder = resource("golden/e2e/llama/model");
        LlamaTokenizer sp = LlamaTokenizer.load(folder);
        HfTokenizer hf = HfTokenizer.load(folder);
        assertEquals(sp.size(), hf.size());
        for (int id = 0; id < sp.size(); id++) {
            assertArrayEquals(sp.tokenBytes(id), hf.tokenBytes(id), "id " + id + " " + sp.idToToken(id));
        }
        for (TextTokenizer tok : List.of(sp, hf)) {
            for (String text : TEXTS) {
                int[] ids = tok.encode(text, false);
                String joined = new String(concat(tok, ids), StandardCharsets.UTF_8);
                String decoded = tok.decode(ids, false);
                assertEquals(" " + decoded, joined, tok.getClass().getSimpleName() + ": " + text);
            }
        }
        assertEquals("</s>", new String(sp.tokenBytes(sp.eosId().orElseThrow()), StandardCharsets.UTF_8));
        int byteToken = sp.tokenId("<0xE3>").orElseThrow();
        assertArrayEquals(new byte[] {(byte) 0xE3}, sp.tokenBytes(byteToken));
        assertArrayEquals(new byte[] {(byte) 0xE3}, hf.tokenBytes(byteToken));
    }

    @Test
    void byteLevelTokensAreTheirBytes() {
        for (String kind : List.of("llama3", "gpt2")) {
            HfTokenizer tok = HfTokenizer.load(resource("hf_tokenizer/byte_level/" + kind));
            for (String text : TEXTS) {
                int[] ids = tok.encode(text, false);
                assertArrayEquals(tok.decode(ids, false).getBytes(StandardCharsets.UTF_8), concat(tok, ids),
                        kind + ": " + text);
            }
            int[] emoji = tok.encode("🐨", false);
            if (emoji.length > 1) {
                // a multi-token character: each part is a byte sequence that is not UTF-8 on its own
                assertEquals(true, TextTokenizer.tokenText(tok.tokenBytes(emoji[0])).startsWith("bytes:\\x"));
            }
        }
    }

    @Test
    void tokenTextSpellsInvalidUtf8AsOpenAiDoes() {
        assertEquals(" The", TextTokenizer.tokenText(" The".getBytes(StandardCharsets.UTF_8)));
        assertEquals("bytes:\\xe3\\x81", TextTokenizer.tokenText(new byte[] {(byte) 0xE3, (byte) 0x81}));
        assertEquals("", TextTokenizer.tokenText(new byte[0]));
    }
}
