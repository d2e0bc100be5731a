package koala4j.tokenizers;

import java.text.Normalizer;
import java.util.Locale;

/**
 * The text clean-up transformers' slow {@code CLIPTokenizer} runs when {@code ftfy} is not installed:
 * {@code " ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text))}
 * (models/clip/tokenization_clip.py, a copy of BERT's {@code BasicTokenizer}). With those flags it
 * drops control characters, turns whitespace into spaces, puts spaces around CJK ideographs, applies NFC,
 * splits on Python's {@code str.split()} whitespace and lower-cases each word with Python's {@code str.lower()}.
 * Punctuation is not split and accents are kept.
 *
 * <p>Character classes follow Python's {@code unicodedata} through {@link Character#getType}; they agree
 * except for code points assigned in a newer Unicode version than the Python that made the goldens.
 */
final class BasicTokenizer {

    private BasicTokenizer() {
    }

    /** The words of {@code text} after clean-up, joined by single spaces; empty when nothing is left. */
    static String clean(String text) {
        StringBuilder cleaned = new StringBuilder(text.length() + 8);
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (cp == 0 || cp == 0xFFFD || isControl(cp)) {
                continue;                                         // _clean_text
            }
            if (isWhitespace(cp)) {
                cleaned.append(' ');
            } else if (isChineseChar(cp)) {
                cleaned.append(' ').appendCodePoint(cp).append(' '); // _tokenize_chinese_chars
            } else {
                cleaned.appendCodePoint(cp);
            }
        }
        String normalized = Normalizer.normalize(cleaned, Normalizer.Form.NFC);
        StringBuilder out = new StringBuilder(normalized.length());
        int n = normalized.length();
        int i = 0;
        while (i < n) {
            while (i < n && isPythonSpace(normalized.codePointAt(i))) {
                i += Character.charCount(normalized.codePointAt(i));
            }
            if (i == n) {
                break;
            }
            int wordStart = i;
            while (i < n && !isPythonSpace(normalized.codePointAt(i))) {
                i += Character.charCount(normalized.codePointAt(i));
            }
            if (!out.isEmpty()) {
                out.append(' ');
            }
            // Python lower-cases word by word; final sigma looks at the word's end, so do the same.
            out.append(normalized.substring(wordStart, i).toLowerCase(Locale.ROOT));
        }
        return out.toString();
    }

    /** transformers' {@code _is_control}: Unicode category C*, except tab, newline and carriage return. */
    static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            return false;
        }
        int type = Character.getType(cp);
        return type == Character.CONTROL || type == Character.FORMAT || type == Character.SURROGATE
                || type == Character.PRIVATE_USE || type == Character.UNASSIGNED;
    }

    /** transformers' {@code _is_whitespace}: space, tab, newline, carriage return, or category Zs. */
    static boolean isWhitespace(int cp) {
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || Character.getType(cp) == Character.SPACE_SEPARATOR;
    }

    /**
     * Python's {@code str.isspace()}, which {@code str.split()} and {@code str.strip()} use: bidi classes WS, B, S
     * or category Zs. Unlike {@link Character#isWhitespace} it includes no-break spaces, U+0085 and U+001C..U+001F.
     */
    static boolean isPythonSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0
                || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029
                || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    }

    /** transformers' {@code _is_chinese_char}: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana). */
    static boolean isChineseChar(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF)
                || (cp >= 0x3400 && cp <= 0x4DBF)
                || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F)
                || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B820 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    /** Python's {@code str.strip()}: removes {@link #isPythonSpace} characters at both ends. */
    static String pythonStrip(String s) {
        return pythonRstrip(pythonLstrip(s));
    }

    /** Python's {@code str.lstrip()}. */
    static String pythonLstrip(String s) {
        int start = 0;
        while (start < s.length() && isPythonSpace(s.codePointAt(start))) {
            start += Character.charCount(s.codePointAt(start));
        }
        return s.substring(start);
    }

    /** Python's {@code str.rstrip()}. */
    static String pythonRstrip(String s) {
        int end = s.length();
        while (end > 0 && isPythonSpace(s.codePointBefore(end))) {
            end -= Character.charCount(s.codePointBefore(end));
        }
        return s.substring(0, end);
    }
}
