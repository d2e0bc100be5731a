package koala4j.tokenizers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * CLIP's ftfy-less clean-up, {@code " ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(t))},
 * on inputs the golden prompts do not cover. Expected strings follow the reference code step by step
 * (_clean_text, _tokenize_chinese_chars, NFC, str.split, str.lower). Exact equality.
 */
class BasicTokenizerTest {

    @Test
    void controlAndFormatCharactersAreDroppedWhitespaceBecomesSpace() {
        assertEquals("ab cd", BasicTokenizer.clean("a\u0000b\u200B\u0007 \u00A0\u3000c\uFFFDd"));
        assertEquals("x y z", BasicTokenizer.clean(" x\r\ny\tz "));
        assertEquals("", BasicTokenizer.clean(" \t\n "));
    }

    @Test
    void lineAndParagraphSeparatorsSplitWordsAsInPython() {
        // Category Zl/Zp: kept by _clean_text (not Zs, not C*), then str.split() splits on them.
        assertEquals("a b c", BasicTokenizer.clean("a\u2028b\u2029c"));
    }

    @Test
    void cjkIdeographsAreSpacedButKanaAndHangulAreNot() {
        assertEquals("東 京 タワー 한국어", BasicTokenizer.clean("東京タワー 한국어"));
    }

    @Test
    void textIsNfcComposedAndLowerCasedKeepingAccentsAndPunctuation() {
        assertEquals("café, ok!", BasicTokenizer.clean("Cafe\u0301, OK!"));
        // Python's str.lower(): final sigma at a word's end, and İ becomes i + combining dot.
        assertEquals("οδος και", BasicTokenizer.clean("ΟΔΟΣ ΚΑΙ"));
        assertEquals("i\u0307stanbul", BasicTokenizer.clean("İSTANBUL"));
    }

    @Test
    void pythonWhitespaceIsWiderThanJavas() {
        assertTrue(BasicTokenizer.isPythonSpace(0xA0));
        assertTrue(BasicTokenizer.isPythonSpace(0x1C));
        assertTrue(BasicTokenizer.isPythonSpace(0x85));
        assertFalse(BasicTokenizer.isPythonSpace(0x200B));
        assertEquals("a", BasicTokenizer.pythonStrip("\u00A0 a\u2029"));
    }
}
