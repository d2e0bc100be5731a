package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import org.junit.jupiter.api.Test;

/**
 * {@link JsonPrefix} (any object) against Jackson on 20000 seeded random documents: JSON-like texts built from a
 * small grammar, then mutated (a byte dropped, doubled or replaced). The automaton accepts a whole document and
 * calls it complete exactly when Jackson reads one object from it and nothing after (within the automaton's own
 * nesting limit, which the generator stays under, and for documents whose whitespace outside strings is what the
 * automaton allows: one space, or a newline and up to 20 spaces or tabs, per run; other documents it must refuse).
 */
class JsonPrefixFuzzTest {

    private static final ObjectMapper JACKSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();
    private static final String[] ATOMS = {"0", "-1", "12.5", "1e3", "-0.0E-2", "true", "false", "null", "\"\"",
            "\"a b\"", "\"\\n\\u00e9\"", "\"코알라\"", "\"🐨\""};

    private static void value(StringBuilder out, SplittableRandom r, int depth) {
        int kind = depth > 4 ? 2 : r.nextInt(3);
        if (kind == 0) {
            object(out, r, depth + 1);
        } else if (kind == 1) {
            out.append('[');
            int n = r.nextInt(4);
            for (int i = 0; i < n; i++) {
                if (i > 0) {
                    out.append(r.nextBoolean() ? "," : ", ");
                }
                value(out, r, depth + 1);
            }
            out.append(']');
        } else {
            out.append(ATOMS[r.nextInt(ATOMS.length)]);
        }
    }

    private static void object(StringBuilder out, SplittableRandom r, int depth) {
        out.append('{');
        int n = r.nextInt(4);
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                out.append(',');
            }
            out.append(r.nextBoolean() ? " " : "").append("\"k").append(i).append("\"").append(r.nextBoolean() ? ":" : " : ");
            value(out, r, depth);
        }
        out.append('}');
    }

    /** Jackson's verdict on valid UTF-8 (RFC 8259 requires it; Jackson lets some invalid bytes through): one object. */
    private static boolean jacksonObject(byte[] doc) {
        try {
            StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(doc));
        } catch (java.nio.charset.CharacterCodingException e) {
            return false;
        }
        try (JsonParser p = JACKSON.createParser(doc)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return false;
            }
            p.skipChildren();
            return p.nextToken() == null;
        } catch (Exception e) {
            return false;
        }
    }

    /** Whether every whitespace run outside strings is one space, or a newline and up to 20 spaces or tabs. */
    private static boolean allowedWhitespace(byte[] doc) {
        boolean inString = false;
        int run = 0;                    // 0: none, -1: after a lone space, 1 + n: after a newline and n more
        for (int i = 0; i < doc.length; i++) {
            int b = doc[i] & 0xFF;
            if (inString) {
                if (b == '\\') {
                    i++;
                } else if (b == '"') {
                    inString = false;
                }
                continue;
            }
            if (b == ' ' || b == '\t' || b == '\n' || b == '\r') {
                if (run == 0) {
                    run = b == ' ' ? -1 : b == '\n' ? 1 : 99;
                } else if (run > 0 && (b == ' ' || b == '\t')) {
                    run++;
                } else {
                    return false;
                }
                if (run > 21) {
                    return false;
                }
                continue;
            }
            run = 0;
            inString = b == '"';
        }
        return true;
    }

    @Test
    void agreesWithJackson() {
        SplittableRandom r = new SplittableRandom(2026);
        int valid = 0;
        for (int i = 0; i < 20000; i++) {
            StringBuilder sb = new StringBuilder(r.nextInt(4) == 0 ? (r.nextBoolean() ? " " : "\n  ") : "");
            object(sb, r, 0);
            byte[] doc = sb.toString().getBytes(StandardCharsets.UTF_8);
            if (r.nextInt(3) > 0 && doc.length > 1) {
                int at = r.nextInt(doc.length);
                byte[] mutated;
                switch (r.nextInt(3)) {
                    case 0 -> {
                        mutated = new byte[doc.length - 1];
                        System.arraycopy(doc, 0, mutated, 0, at);
                        System.arraycopy(doc, at + 1, mutated, at, doc.length - at - 1);
                    }
                    case 1 -> {
                        mutated = new byte[doc.length + 1];
                        System.arraycopy(doc, 0, mutated, 0, at + 1);
                        System.arraycopy(doc, at, mutated, at + 1, doc.length - at);
                    }
                    default -> {
                        mutated = doc.clone();
                        String replacements = "{}[],:\"\\ 0-.eEtfn\u00ff";
                        mutated[at] = (byte) replacements.charAt(r.nextInt(replacements.length()));
                    }
                }
                doc = mutated;
            }
            JsonPrefix p = new JsonPrefix();
            boolean mine = p.accept(doc) && p.complete();
            // duplicate keys: Jackson (strict) refuses them, the any-object automaton does not track keys
            boolean duplicate = new String(doc, StandardCharsets.UTF_8).matches("(?s).*\"k(\\d)\"\\s*:.*\"k\\1\"\\s*:.*");
            if (!duplicate && allowedWhitespace(doc)) {
                assertEquals(jacksonObject(doc), mine, new String(doc, StandardCharsets.UTF_8));
            } else if (!allowedWhitespace(doc)) {
                assertEquals(false, mine, "padded: " + new String(doc, StandardCharsets.UTF_8));
            }
            valid += mine ? 1 : 0;
        }
        assertEquals(true, valid > 5000, valid + " valid documents");
    }
}
