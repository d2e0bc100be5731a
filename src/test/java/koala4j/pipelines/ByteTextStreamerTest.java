package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import koala4j.tokenizers.ByteTokenizer;

/**
 * Streamed pieces of byte-level answers add up to the decoded answer, never split a character and, under
 * clean_up_tokenization_spaces, never send what the clean-up changes later.
 */
class ByteTextStreamerTest {

    private static ByteTokenizer tokenizer(Path dir, boolean cleanUp) throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"extra_ids\": 2, \"tokenizer_class\": "
                + "\"ByT5Tokenizer\", \"clean_up_tokenization_spaces\": " + cleanUp + "}");
        return ByteTokenizer.load(dir);
    }

    private static List<String> stream(ByteTokenizer tok, int[] ids) {
        List<String> pieces = new ArrayList<>();
        ByteTextStreamer streamer = new ByteTextStreamer(tok, pieces::add);
        for (int id : ids) {
            streamer.add(id);
        }
        streamer.finish(tok.decode(ids, true));
        return pieces;
    }

    private static int[] bytes(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[b.length];
        for (int i = 0; i < b.length; i++) {
            ids[i] = (b[i] & 0xFF) + ByteTokenizer.OFFSET;
        }
        return ids;
    }

    @Test
    void koreanAndEmojiGoOutWholeCharacterByCharacter(@TempDir Path dir) throws IOException {
        ByteTokenizer tok = tokenizer(dir, false);
        List<String> pieces = stream(tok, bytes("코알라 🐨!"));
        assertEquals(List.of("코", "알", "라", " ", "🐨", "!"), pieces);
    }

    @Test
    void cleanUpHoldsTheLastCharactersBack(@TempDir Path dir) throws IOException {
        ByteTokenizer tok = tokenizer(dir, true);
        String answer = "Koalas eat leaves , do n't they ? Yes .";
        List<String> pieces = stream(tok, bytes(answer));
        assertEquals("Koalas eat leaves, don't they? Yes.", String.join("", pieces));
        // a character per byte while the answer runs, the held characters at the end
        assertTrue(pieces.subList(0, pieces.size() - 1).stream().allMatch(p -> p.length() == 1), pieces.toString());
        assertEquals(ByteTextStreamer.HOLD_BACK, pieces.getLast().length(), pieces.toString());
    }

    /** Random bytes (incomplete and invalid UTF-8 among them), added tokens, eos and pad, with and without clean-up. */
    @Test
    void randomAnswersAddUp(@TempDir Path dir) throws IOException {
        SplittableRandom rnd = new SplittableRandom(7);
        String alphabet = " .?!,'nt'msvre가🐨x";
        for (boolean cleanUp : new boolean[] {false, true}) {
            Path folder = Files.createDirectories(dir.resolve(Boolean.toString(cleanUp)));
            ByteTokenizer tok = tokenizer(folder, cleanUp);
            for (int trial = 0; trial < 2000; trial++) {
                List<Integer> ids = new ArrayList<>();
                int length = rnd.nextInt(40);
                while (ids.size() < length) {
                    int kind = rnd.nextInt(20);
                    if (kind == 0) {
                        ids.add(rnd.nextInt(3 + 256));                               // pad, eos, unk or any byte
                    } else if (kind == 1) {
                        ids.add(259 + rnd.nextInt(2));                               // <extra_id_N>
                    } else {
                        int at = alphabet.offsetByCodePoints(0, rnd.nextInt(alphabet.codePointCount(0,
                                alphabet.length())));
                        for (int id : bytes(alphabet.substring(at, alphabet.offsetByCodePoints(at, 1)))) {
                            ids.add(id);
                        }
                    }
                }
                int[] all = ids.stream().mapToInt(Integer::intValue).toArray();
                List<String> pieces = stream(tok, all);
                assertEquals(tok.decode(all, true), String.join("", pieces), "clean-up " + cleanUp + ": " + ids);
                for (String piece : pieces) {
                    assertFalse(piece.isEmpty());
                    assertFalse(Character.isLowSurrogate(piece.charAt(0)), "a piece starts inside a pair: " + ids);
                    assertTrue(!Character.isHighSurrogate(piece.charAt(piece.length() - 1)),
                            "a piece ends inside a pair: " + ids);
                }
            }
        }
    }
}
