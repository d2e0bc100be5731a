package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/**
 * {@link JsonPrefix} against Jackson's parser: every valid object is accepted byte by byte and complete only at its
 * end; every prefix of it is accepted and incomplete; invalid documents are refused at the first byte that cannot
 * continue one, and not after.
 */
class JsonPrefixTest {

    private static final List<String> VALID = List.of("{}", "\n  { }", " {\n\t\"a\": 1\n}", "{\"a\":1}", "{\"a\": -0.5e+10, \"b\": [1, 2.25, "
            + "-3E2, 0], \"c\": {\"d\": [true, false, null, [], {}]}}", "{\"k\\\"\\\\\\/\\b\\f\\n\\r\\tq\": \"\\u00e9\\uD83D"
            + "\\udc28\"}", "{\"한국어\": \"🐨 코알라\", \"x\": \"ü\"}", "{\"nested\": [[[[[[[[\"deep\"]]]]]]]]}",
            "{\"n\": 10, \"m\": 0.0}", "{\"e\": 1e5}");

    private static final List<String> INVALID = List.of("[]", "\"a\"", "1", "{,}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
            "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":True}",
            "{a:1}", "{\"a\":1]", "{\"a\":[1}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}", "{\"a\":\"tab\tin\"}",
            "{} x", "{}{}", "{\"a\":1 2}", "{\"a\" 1}", "{'a':1}", "{\"a\":NaN}", "{\"a\":+1}");

    private static boolean acceptsAll(JsonPrefix p, byte[] bytes) {
        for (byte b : bytes) {
            if (!p.accept(b & 0xFF)) {
                return false;
            }
        }
        return true;
    }

    @Test
    void validObjectsAreAcceptedAndCompleteOnlyAtTheirEnd() throws Exception {
        ObjectMapper jackson = new ObjectMapper();
        for (String doc : VALID) {
            assertTrue(jackson.readTree(doc).isObject(), doc);
            byte[] bytes = doc.getBytes(StandardCharsets.UTF_8);
            int end = doc.stripTrailing().getBytes(StandardCharsets.UTF_8).length;
            JsonPrefix p = new JsonPrefix();
            for (int i = 0; i < end; i++) {
                assertFalse(p.complete(), doc + " complete before byte " + i);
                assertTrue(p.accept(bytes[i] & 0xFF), doc + " refused at byte " + i);
            }
            assertTrue(p.complete(), doc);
            assertFalse(p.copy().accept(' '), "nothing follows the object, not even whitespace");
        }
    }

    @Test
    void invalidDocumentsAreRefused() {
        ObjectMapper jackson = new ObjectMapper();
        for (String doc : INVALID) {
            boolean jacksonObject;
            try {
                var node = jackson.readTree(doc);
                jacksonObject = node.isObject() && doc.strip().endsWith("}") && !doc.contains("}{");
            } catch (Exception e) {
                jacksonObject = false;
            }
            assertFalse(jacksonObject, "the test's own invalid case is valid: " + doc);
            JsonPrefix p = new JsonPrefix();
            assertFalse(acceptsAll(p, doc.getBytes(StandardCharsets.UTF_8)) && p.complete(), doc);
        }
        // the state before a refused byte is untouched by trying it on a copy
        JsonPrefix p = new JsonPrefix();
        assertTrue(acceptsAll(p, "{\"a\": [1".getBytes(StandardCharsets.UTF_8)));
        assertFalse(p.copy().accept('}'));
        assertTrue(acceptsAll(p, "]}".getBytes(StandardCharsets.UTF_8)));
        assertTrue(p.complete());
    }

    @Test
    void utf8IsCheckedAcrossTokensAndLimitsHold() {
        JsonPrefix p = new JsonPrefix();
        assertTrue(acceptsAll(p, "{\"".getBytes(StandardCharsets.UTF_8)));
        byte[] koala = "🐨".getBytes(StandardCharsets.UTF_8);
        for (byte b : koala) {
            assertTrue(p.accept(b & 0xFF));           // one byte per token, as byte-fallback tokens give them
        }
        assertFalse(p.copy().accept(0x80), "a continuation byte without a lead");
        assertFalse(p.copy().accept(0xC0), "an overlong lead");
        JsonPrefix surrogate = p.copy();
        assertTrue(surrogate.accept(0xED));
        assertFalse(surrogate.accept(0xA0), "an encoded surrogate");
        JsonPrefix cut = p.copy();
        assertTrue(cut.accept(0xE3));
        assertFalse(cut.accept('"'), "a character cut short");

        // whitespace as llama.cpp's JSON grammars have it: one space, or a newline and up to 20 spaces or tabs
        JsonPrefix indented = new JsonPrefix();
        assertTrue(acceptsAll(indented, ("{\n" + " ".repeat(JsonPrefix.MAX_INDENT)).getBytes(StandardCharsets.UTF_8)));
        assertFalse(indented.copy().accept(' '), "indentation is limited");
        assertTrue(acceptsAll(indented, "\"a\": [1,\n\t\t2 ]\n}".getBytes(StandardCharsets.UTF_8)) && indented.complete());
        for (String padded : List.of("  {}", "{  \"a\": 1}", "{\"a\": 1\n\n}", "{\"a\":\t1}", "\r\n{}", "{\"a\": 1 \n}")) {
            assertFalse(new JsonPrefix().accept(padded.getBytes(StandardCharsets.UTF_8)), padded);
        }
        JsonPrefix deep = new JsonPrefix();
        assertTrue(acceptsAll(deep, ("{\"a\":" + "[".repeat(JsonPrefix.MAX_DEPTH - 1)).getBytes(StandardCharsets.UTF_8)));
        assertFalse(deep.accept('['), "nesting is limited");
        assertEquals(64, JsonPrefix.MAX_DEPTH);
    }
}
