package koala4j.tokenizers;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The port of transformers' {@code Trie.split} against the cases of transformers' own trie tests
 * (tests/tokenization/test_tokenization_utils.py, TrieTest) and its docstrings. Exact equality.
 */
class AddedTokenTrieTest {

    private static List<String> split(String text, String... words) {
        return new AddedTokenTrie(List.of(words)).split(text);
    }

    @Test
    void noWordsLeavesTheTextWhole() {
        assertEquals(List.of("[CLS] This is a extra_id_100"), split("[CLS] This is a extra_id_100"));
        assertEquals(List.of(), split(""));
    }

    @Test
    void longestMatchWins() {
        assertEquals(List.of("[CLS]", " This is a ", "extra_id_100"),
                split("[CLS] This is a extra_id_100", "[CLS]", "extra_id_1", "extra_id_100"));
    }

    @Test
    void singleCharacterWords() {
        assertEquals(List.of("A", "BC"), split("ABC", "A"));
        assertEquals(List.of("BC", "A"), split("BCA", "A"));
    }

    @Test
    void matchAtTheEnd() {
        assertEquals(List.of("This is something ", "[SPECIAL_TOKEN]"),
                split("This is something [SPECIAL_TOKEN]", "TOKEN]", "[SPECIAL_TOKEN]"));
    }

    @Test
    void subtokensInsideALongerMatch() {
        assertEquals(List.of("This is something ", "[SPECIAL_TOKEN]"),
                split("This is something [SPECIAL_TOKEN]", "A", "P", "[SPECIAL_TOKEN]"));
    }

    @Test
    void suffixTokens() {
        assertEquals(List.of("AB", "C"), split("ABC", "AB", "B", "C"));
    }

    @Test
    void lookaheadSkipsWhatItConsumed() {
        assertEquals(List.of("ABC", "D"), split("ABCD", "ABC", "B", "CD"));
    }

    @Test
    void cutTextIgnoresBackwardsOffsets() {
        assertEquals(List.of("AB", "C"), AddedTokenTrie.cutText("ABC", List.of(0, 0, 2, 1, 2, 3)));
    }

    @Test
    void clipSpecialTokensAndRepeatedExclamationMarks() {
        assertEquals(List.of("<|startoftext|>", "hi", "!", "!", " there", "<|endoftext|>"),
                split("<|startoftext|>hi!! there<|endoftext|>", "<|startoftext|>", "<|endoftext|>", "!"));
    }
}
