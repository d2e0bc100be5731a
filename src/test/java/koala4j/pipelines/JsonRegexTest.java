package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/**
 * {@link JsonRegex} against {@link java.util.regex} (whose syntax agrees with ECMA-262 on this subset): for every
 * pattern, random strings over its alphabet match exactly when Java's {@code find} (unanchored) or {@code matches}
 * (anchored) says so; a prefix the automaton drops has no matching extension among the strings tried; patterns and
 * formats inside schemas; constructs outside the subset are errors naming them.
 */
class JsonRegexTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Whether the whole of {@code text} matches, character by character. */
    private static boolean matches(JsonRegex r, String text) {
        long[] states = r.start();
        long[] scratch = new long[states.length];
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (!r.step(states, cp, scratch)) {
                return false;
            }
        }
        return r.matches(states);
    }

    /** Whether the automaton still runs after {@code text} (some extension may match). */
    private static boolean alive(JsonRegex r, String text) {
        long[] states = r.start();
        long[] scratch = new long[states.length];
        for (int i = 0; i < text.length(); i++) {
            if (!r.step(states, text.charAt(i), scratch)) {
                return false;
            }
        }
        return true;
    }

    @Test
    void agreesWithJavaRegex() {
        String[][] patterns = {
                {"^[a-c]+$", "abcd"}, {"^a{2,3}b?$", "ab"}, {"b+", "abc"}, {"^(ab|c)*d$", "abcd"},
                {"^(?:x|yz){2}$", "xyz"}, {"^\\d{3}-\\d{2}$", "0123-"}, {"^[^a]b*$", "abc"}, {"^\\w+@\\w+\\.\\w{2,3}$",
                "ab@.c"}, {"^a.c$", "abc\n"}, {"^[\\-a]\\.?$", "-a.b"}, {"c$", "abc"}, {"^ab", "abc"},
                {"^(a|b)?c+?$", "abc"}, {"^\\s\\S$", " a\t"}, {"^[\\d.]{1,3}$", "1.a"}, {"^\\x41\\u0062$", "Abc"},
                {"^(a*)*b$", "ab"}, {"^[가-힣]{2}$", "가나a"}};
        SplittableRandom r = new SplittableRandom(5);
        int matched = 0;
        for (String[] p : patterns) {
            JsonRegex ours = JsonRegex.compile(p[0]);
            Pattern java = Pattern.compile(p[0]);
            boolean anchored = p[0].startsWith("^") && p[0].endsWith("$");
            for (int t = 0; t < 3000; t++) {
                StringBuilder b = new StringBuilder();
                int length = r.nextInt(8);
                for (int k = 0; k < length; k++) {
                    b.append(p[1].charAt(r.nextInt(p[1].length())));
                }
                String s = b.toString();
                var m = java.matcher(s);
                boolean expected = anchored ? m.matches() : m.find();
                assertEquals(expected, matches(ours, s), p[0] + " on \"" + s + "\"");
                if (expected) {
                    matched++;
                }
                if (!alive(ours, s)) {
                    // a dropped prefix: no extension of up to 4 more characters matches either
                    for (int u = 0; u < 50; u++) {
                        StringBuilder e = new StringBuilder(s);
                        for (int k = r.nextInt(5); k > 0; k--) {
                            e.append(p[1].charAt(r.nextInt(p[1].length())));
                        }
                        var em = java.matcher(e);
                        assertFalse(anchored ? em.matches() : em.find(), p[0] + " dropped \"" + s + "\" but \"" + e
                                + "\" matches");
                    }
                }
            }
        }
        assertTrue(matched > 5000, matched + " matches");
    }

    @Test
    void patternsAndFormatsInSchemas() throws Exception {
        JsonSchema s = JsonSchema.compile(JSON.readTree("""
                {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}-\\\\d+$"},
                  "day": {"type": "string", "format": "date"}, "at": {"format": "date-time"},
                  "id": {"type": "string", "format": "uuid"}, "ip": {"format": "ipv4"}, "mail": {"format": "email"},
                  "t": {"format": "time"}, "any": {"pattern": "ko"}}, "additionalProperties": false}"""), "schema");
        for (String ok : List.of("{\"code\": \"KR-82\"}", "{\"code\": \"K\\u0052-1\"}", "{\"day\": \"2024-02-29\"}",
                "{\"at\": \"2026-11-26T23:59:60.5+09:00\"}", "{\"id\": \"123e4567-e89b-12d3-a456-426614174000\"}",
                "{\"ip\": \"192.168.0.255\"}", "{\"mail\": \"koala@etri.re.kr\"}", "{\"t\": \"12:00:00Z\"}",
                "{\"any\": \"a koala\"}")) {
            assertTrue(JsonOutput.allows(s, ok.getBytes(StandardCharsets.UTF_8)), ok);
        }
        for (String no : List.of("{\"code\": \"kr-82\"}", "{\"code\": \"KR-\"}", "{\"day\": \"2024-13-01\"}",
                "{\"day\": \"2024-1-01\"}", "{\"at\": \"2026-11-26 23:59:60\"}", "{\"id\": \"123e4567\"}",
                "{\"ip\": \"256.1.1.1\"}", "{\"mail\": \"koala@\"}", "{\"t\": \"24:00:00Z\"}", "{\"any\": \"panda\"}")) {
            assertFalse(JsonOutput.allows(s, no.getBytes(StandardCharsets.UTF_8)), no);
        }
        // a character that cannot lead to a match is refused where it is written
        JsonPrefix p = new JsonPrefix(s);
        assertTrue(p.accept("{\"code\": \"K".getBytes(StandardCharsets.UTF_8)));
        assertFalse(p.copy().accept('r'));
        assertFalse(p.copy().accept('"'));
        assertTrue(p.accept("R-".getBytes(StandardCharsets.UTF_8)) && !p.copy().accept('"') && p.accept('7')
                && p.accept('"'));
    }

    @Test
    void constructsOutsideTheSubsetAreNamed() {
        for (String[] c : new String[][] {{"(a)\\1", "\\1"}, {"a(?=b)", "lookaround"}, {"\\bword", "word boundary"},
                {"a{3,2}", "maximum below its minimum"}, {"^a|b$", "one alternative"}, {"a$b", "'$' before the end"},
                {"(ab", "unclosed '('"}, {"[ab", "unclosed '['"}, {"*a", "nothing before it"}, {"a**", "after a "
                + "quantifier"}, {"\\p{L}", "\\p"}, {"a{1000}b{1000}", "more than 1024"},
                {"(".repeat(100_000) + "a" + ")".repeat(100_000), "nested deeper than 64"}}) {
            var e = assertThrows(IllegalArgumentException.class, () -> JsonRegex.compile(c[0]), c[0]);
            String shown = c[0].length() > 60 ? c[0].substring(0, 60) + "..." : c[0];
            assertTrue(e.getMessage().contains(c[1]) && e.getMessage().contains(shown) && e.getMessage().length() < 300,
                    shown + " -> " + e.getMessage());
        }
        // many large patterns in one schema: a budget of states for the whole document
        StringBuilder many = new StringBuilder("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\", "
                + "\"prefixItems\": [");
        for (int k = 0; k < 40; k++) {
            many.append(k == 0 ? "" : ", ").append("{\"pattern\": \"^a{500}$\"}");
        }
        many.append("]}}}");
        var budget = assertThrows(IllegalArgumentException.class, () -> JsonSchema.compile(JSON.readTree(
                many.toString()), "schema"));
        assertTrue(budget.getMessage().contains("more than 16384 automaton states in all"), budget.getMessage());
        var e = assertThrows(IllegalArgumentException.class, () -> JsonSchema.compile(JSON.readTree(
                "{\"type\": \"object\", \"properties\": {\"u\": {\"format\": \"uri\"}}}"), "schema"));
        assertTrue(e.getMessage().contains("/properties/u/format") && e.getMessage().contains("\"uri\" is not supported"),
                e.getMessage());
    }
}
