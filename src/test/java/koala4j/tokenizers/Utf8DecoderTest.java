package koala4j.tokenizers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Utf8Decoder against CPython 3.11's {@code bytes.decode("utf-8", "replace")}: expected code points were printed
 * by CPython for these byte strings. Exact equality.
 */
class Utf8DecoderTest {

    @ParameterizedTest
    @CsvSource({
            "e697, fffd",
            "e69761, fffd 0061",
            "ff, fffd",
            "eda080, fffd fffd fffd",
            "f09f90, fffd",
            "c0af, fffd fffd",
            "f4908080, fffd fffd fffd fffd",
            "e08080, fffd fffd fffd",
            "f0808080, fffd fffd fffd fffd",
            "e6979c, 65dc",
            "f09f90b1, 1f431",
            "61c3a9, 0061 00e9",
    })
    void replaceMatchesCpython(String hex, String codePoints) {
        byte[] bytes = java.util.HexFormat.of().parseHex(hex);
        StringBuilder expected = new StringBuilder();
        for (String cp : codePoints.split(" ")) {
            expected.appendCodePoint(Integer.parseInt(cp, 16));
        }
        assertEquals(expected.toString(), Utf8Decoder.decode(bytes, bytes.length, Utf8Decoder.Errors.REPLACE));
    }

    @ParameterizedTest
    @CsvSource({"eda08061, a", "61ff62, ab"})
    void ignoreDropsIllFormedBytes(String hex, String expected) {
        byte[] bytes = java.util.HexFormat.of().parseHex(hex);
        assertEquals(expected, Utf8Decoder.decode(bytes, bytes.length, Utf8Decoder.Errors.IGNORE));
        assertThrows(IllegalArgumentException.class, () -> Utf8Decoder.decode(bytes, bytes.length, Utf8Decoder.Errors.STRICT));
    }
}
