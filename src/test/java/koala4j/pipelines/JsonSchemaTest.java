package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/**
 * {@link JsonSchema} and {@link JsonPrefix} with a schema: instances that the schema allows are accepted byte by byte
 * and complete at their end; instances it forbids are refused before their end (a wrong type, a missing required key,
 * an extra key where additionalProperties is false, a key twice, a value outside an enum, a fraction for an integer,
 * too long or short strings and arrays); every prefix that is accepted can still be completed; unsupported keywords
 * are errors naming their place.
 */
class JsonSchemaTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonSchema schema(String json) throws Exception {
        return JsonSchema.compile(JSON.readTree(json), "schema");
    }

    /** Whether the whole document is accepted and complete. */
    private static boolean allows(JsonSchema s, String doc) {
        JsonPrefix p = new JsonPrefix(s);
        return p.accept(doc.getBytes(StandardCharsets.UTF_8)) && p.complete();
    }

    private static final String PERSON = """
            {"type": "object", "title": "Person", "properties": {
               "name": {"type": "string", "minLength": 1, "maxLength": 8, "description": "a name"},
               "age": {"type": "integer"},
               "height": {"type": "number"},
               "kind": {"enum": ["koala", "panda", 3, true, null]},
               "tags": {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2},
               "nick": {"anyOf": [{"type": "string"}, {"type": "null"}]},
               "version": {"const": 2}},
             "required": ["name", "age", "kind"], "additionalProperties": false}""";

    @Test
    void instancesTheSchemaAllowsAndForbids() throws Exception {
        JsonSchema s = schema(PERSON);
        Map<String, Boolean> cases = new java.util.LinkedHashMap<>();
        cases.put("{\"name\": \"Kim\", \"age\": 7, \"kind\": \"koala\"}", true);
        cases.put("{\"kind\": 3, \"age\": -12, \"name\": \"한국어\", \"tags\": [true, false], \"height\": 1.5e3}", true);
        cases.put("{\"name\":\"a\",\"age\":0,\"kind\":null,\"nick\":null,\"version\":2}", true);
        cases.put("{\"name\":\"a\",\"age\":0,\"kind\":true,\"nick\":\"x\\\"y\"}", true);
        cases.put("{\"name\": \"Kim\", \"age\": 7}", false);                           // kind is required
        cases.put("{\"name\": \"Kim\", \"age\": 7.5, \"kind\": 3}", false);              // integer
        cases.put("{\"name\": \"Kim\", \"age\": 7, \"kind\": \"bear\"}", false);         // enum
        cases.put("{\"name\": \"Kim\", \"age\": 7, \"kind\": 33}", false);
        cases.put("{\"name\": \"Kim\", \"age\": 7, \"kind\": 3, \"x\": 1}", false);      // no extra keys
        cases.put("{\"name\": \"Kim\", \"name\": \"Lee\", \"age\": 7, \"kind\": 3}", false);
        cases.put("{\"name\": \"\", \"age\": 7, \"kind\": 3}", false);                   // minLength
        cases.put("{\"name\": \"123456789\", \"age\": 7, \"kind\": 3}", false);          // maxLength
        cases.put("{\"name\": \"K\", \"age\": 7, \"kind\": 3, \"tags\": []}", false);    // minItems
        cases.put("{\"name\": \"K\", \"age\": 7, \"kind\": 3, \"tags\": [true, true, true]}", false);
        cases.put("{\"name\": \"K\", \"age\": 7, \"kind\": 3, \"tags\": [1]}", false);   // items
        cases.put("{\"name\": \"K\", \"age\": \"7\", \"kind\": 3}", false);
        cases.put("{\"name\": \"K\", \"age\": 7, \"kind\": 3, \"version\": 3}", false);  // const
        cases.put("{\"name\": \"K\", \"age\": 7, \"kind\": 3, \"nick\": 5}", false);     // anyOf
        cases.forEach((doc, ok) -> assertEquals(ok, allows(s, doc), doc));
        // the instances it allows are what Jackson reads
        for (var e : cases.entrySet()) {
            if (e.getValue()) {
                assertTrue(JSON.readTree(e.getKey()).isObject());
            }
        }
    }

    @Test
    void noAcceptedPrefixIsADeadEnd() throws Exception {
        JsonSchema s = schema("""
                {"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "array", "maxItems": 1,
                 "items": {"type": "null"}}}, "additionalProperties": false}""");
        JsonPrefix all = new JsonPrefix(s);
        assertTrue(all.accept("{\"a\": true, \"b\": [null]".getBytes(StandardCharsets.UTF_8)));
        assertFalse(all.copy().accept(','), "no key is left for a comma");
        JsonPrefix array = new JsonPrefix(s);
        assertTrue(array.accept("{\"b\": [null".getBytes(StandardCharsets.UTF_8)));
        assertFalse(array.copy().accept(','), "the array is full");
        JsonPrefix key = new JsonPrefix(s);
        assertTrue(key.accept("{\"".getBytes(StandardCharsets.UTF_8)));
        assertFalse(key.copy().accept('c'), "no property starts with c");
        assertTrue(key.accept('a'));
        // an extra key is fine where additionalProperties allows it, and its value may be anything
        assertTrue(allows(schema("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"null\"}}}"),
                "{\"a\": null, \"zz\": [1, {\"q\": \"r\"}]}"));
        // enum numbers end where the next byte cannot continue any value
        JsonSchema numbers = schema("{\"type\": \"object\", \"properties\": {\"n\": {\"enum\": [1, 12, 1.5]}}}");
        assertTrue(allows(numbers, "{\"n\": 1}") && allows(numbers, "{\"n\": 12}") && allows(numbers, "{\"n\":1.5}"));
        assertFalse(allows(numbers, "{\"n\": 13}"));
    }

    /**
     * Random walks over bytes, each step a byte the automaton accepts (structural bytes preferred, so that walks
     * close their containers): some byte is always accepted until the object is complete, and a completed walk is an
     * instance Jackson reads.
     */
    @Test
    void randomWalksNeverReachADeadEnd() throws Exception {
        java.util.SplittableRandom r = new java.util.SplittableRandom(7);
        byte[] preferred = "}]\",:0123456789tfnkaeloprs{[-.".getBytes(StandardCharsets.UTF_8);
        int completed = 0;
        for (JsonSchema s : List.of(schema(PERSON), JsonSchema.anyObject(), schema("""
                {"$defs": {"N": {"type": "object", "properties": {"v": {"enum": [1, 12, "x"]},
                   "k": {"type": "array", "items": {"$ref": "#/$defs/N"}, "maxItems": 2}}, "required": ["v"],
                   "additionalProperties": false}}, "$ref": "#/$defs/N"}"""))) {
            for (int walk = 0; walk < 300; walk++) {
                JsonPrefix p = new JsonPrefix(s);
                java.io.ByteArrayOutputStream doc = new java.io.ByteArrayOutputStream();
                for (int step = 0; step < 400 && !p.complete(); step++) {
                    List<Integer> ok = new java.util.ArrayList<>();
                    for (int b = 0; b < 256; b++) {
                        if (p.copy().accept(b)) {
                            ok.add(b);
                        }
                    }
                    assertFalse(ok.isEmpty(), "dead end after " + doc.toString(StandardCharsets.UTF_8));
                    List<Integer> good = ok.stream().filter(b -> new String(preferred, StandardCharsets.ISO_8859_1)
                            .indexOf(b) >= 0 && b != ' ').toList();
                    List<Integer> from = !good.isEmpty() && r.nextInt(10) > 0 ? good : ok;
                    int b = from.get(r.nextInt(from.size()));
                    assertTrue(p.accept(b));
                    doc.write(b);
                }
                if (p.complete()) {
                    completed++;
                    assertTrue(JSON.readTree(doc.toByteArray()).isObject(), doc.toString(StandardCharsets.UTF_8));
                }
            }
        }
        assertTrue(completed > 100, completed + " walks completed");
    }

    @Test
    void refsAndRecursion() throws Exception {
        JsonSchema tree = schema("""
                {"$defs": {"Node": {"type": "object", "properties": {"v": {"type": "integer"},
                   "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}, "required": ["v"],
                   "additionalProperties": false}},
                 "$ref": "#/$defs/Node"}""");
        assertTrue(allows(tree, "{\"v\": 1, \"kids\": [{\"v\": 2}, {\"v\": 3, \"kids\": [{\"v\": 4, \"kids\": []}]}]}"));
        assertFalse(allows(tree, "{\"v\": 1, \"kids\": [{\"w\": 2}]}"));
        JsonSchema pydantic = schema("""
                {"properties": {"pet": {"anyOf": [{"$ref": "#/definitions/Pet"}, {"type": "null"}]}},
                 "definitions": {"Pet": {"properties": {"name": {"type": "string"}}, "required": ["name"]}},
                 "required": ["pet"], "type": "object"}""");
        assertTrue(allows(pydantic, "{\"pet\": {\"name\": \"Koa\"}}") && allows(pydantic, "{\"pet\": null}"));
        assertFalse(allows(pydantic, "{\"pet\": {}}"));
    }

    @Test
    void unsupportedSchemasAreErrorsNamingThePlace() {
        Map<String, List<String>> bad = new java.util.LinkedHashMap<>();
        bad.put("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": \"x+\"}}}",
                List.of("/properties/a", "pattern"));
        bad.put("{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"integer\", \"minimum\": 0}}}",
                List.of("/properties/n", "minimum"));
        bad.put("{\"type\": \"array\"}", List.of("root must be an object"));
        bad.put("{\"type\": \"object\", \"required\": [\"x\"]}", List.of("\"x\" is not among the properties"));
        bad.put("{\"type\": \"object\", \"properties\": {\"a\": {\"anyOf\": [{\"type\": \"string\"}, "
                + "{\"enum\": [\"x\"]}]}}}", List.of("/properties/a/anyOf", "two alternatives"));
        bad.put("{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"http://x/y\"}}}", List.of("$ref"));
        bad.put("{\"type\": \"objekt\"}", List.of("type \"objekt\""));
        bad.put("{\"type\": \"object\", \"properties\": {\"s\": {\"type\": \"string\", \"minLength\": -1}}}",
                List.of("/properties/s/minLength"));
        bad.forEach((json, words) -> {
            var e = assertThrows(IllegalArgumentException.class, () -> schema(json), json);
            assertTrue(e.getMessage().startsWith("schema"), e.getMessage());
            for (String w : words) {
                assertTrue(e.getMessage().contains(w), json + " -> " + e.getMessage());
            }
        });
    }
}
