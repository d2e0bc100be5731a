package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

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

    /** Whether the whole document is accepted and complete, along some reading of the schema's unions. */
    private static boolean allows(JsonSchema s, String doc) {
        return JsonOutput.allows(s, doc.getBytes(StandardCharsets.UTF_8));
    }

    private static final String UNIQUE = """
            {"type": "object", "additionalProperties": false, "properties": {
              "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
              "n": {"type": "array", "items": {"type": "number"}, "uniqueItems": true},
              "colors": {"type": "array", "items": {"$ref": "#/$defs/Color"}, "uniqueItems": true},
              "flags": {"type": "array", "items": {"type": "boolean"}, "uniqueItems": true}},
             "$defs": {"Color": {"enum": ["red", "green"]}}}""";

    private static final String TUPLES = """
            {"type": "object", "additionalProperties": false, "properties": {
              "t": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false,
                "minItems": 2},
              "old": {"type": "array", "items": [{"type": "boolean"}], "additionalItems": {"type": "integer"}},
              "rest": {"prefixItems": [{"type": "string"}], "items": {"type": "integer"}},
              "m": {"type": "object", "minProperties": 1, "maxProperties": 2},
              "pet": {"allOf": [{"$ref": "#/$defs/Pet"}], "description": "the pet", "default": null}},
             "$defs": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}""";

    private static final String BOUNDED = """
            {"type": "object", "properties": {"a": {"type": "integer", "minimum": 10, "maximum": 20},
              "b": {"type": "number", "exclusiveMinimum": 0.5, "maximum": 1}}, "additionalProperties": false}""";

    private static final String PETS = """
            {"type": "object", "properties": {"pets": {"type": "array", "items": {"$ref": "#/$defs/Pet"}}},
             "required": ["pets"], "additionalProperties": false,
             "$defs": {"Pet": {"anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}, {"type": "string"}]},
               "Cat": {"type": "object", "properties": {"name": {"type": "string"}, "meows": {"type": "boolean"}},
                 "required": ["name", "meows"], "additionalProperties": false},
               "Dog": {"type": "object", "properties": {"name": {"type": "string"}, "barks": {"type": "boolean"}},
                 "required": ["name", "barks"], "additionalProperties": false}}}""";

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
        JsonSchema bounded = schema(BOUNDED);
        JsonSchema tuples = schema(TUPLES);
        JsonSchema unique = schema(UNIQUE);
        JsonSchema patterned = schema("""
                {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[a-f]{2}-\\\\d+$"},
                  "day": {"type": "string", "format": "date"}, "near": {"pattern": "(ab|c)+"}},
                 "additionalProperties": false}""");
        for (JsonSchema s : List.of(schema(PERSON), JsonSchema.anyObject(), schema("""
                {"$defs": {"N": {"type": "object", "properties": {"v": {"enum": [1, 12, "x"]},
                   "k": {"type": "array", "items": {"$ref": "#/$defs/N"}, "maxItems": 2}}, "required": ["v"],
                   "additionalProperties": false}}, "$ref": "#/$defs/N"}"""), schema(PETS), bounded, patterned, tuples,
                unique)) {
            for (int walk = 0; walk < 300; walk++) {
                List<JsonPrefix> p = List.of(new JsonPrefix(s));
                java.io.ByteArrayOutputStream doc = new java.io.ByteArrayOutputStream();
                for (int step = 0; step < 400 && p.stream().noneMatch(JsonPrefix::complete); step++) {
                    List<Integer> ok = new java.util.ArrayList<>();
                    for (int b = 0; b < 256; b++) {
                        if (!JsonOutput.step(p, new byte[] {(byte) b}).isEmpty()) {
                            ok.add(b);
                        }
                    }
                    assertFalse(ok.isEmpty(), "dead end after " + doc.toString(StandardCharsets.UTF_8));
                    List<Integer> good = ok.stream().filter(b -> new String(preferred, StandardCharsets.ISO_8859_1)
                            .indexOf(b) >= 0 && b != ' ').toList();
                    List<Integer> from = !good.isEmpty() && r.nextInt(10) > 0 ? good : ok;
                    int b = from.get(r.nextInt(from.size()));
                    p = JsonOutput.step(p, new byte[] {(byte) b});
                    doc.write(b);
                }
                if (p.stream().anyMatch(JsonPrefix::complete)) {
                    completed++;
                    var instance = JSON.readTree(doc.toByteArray());
                    assertTrue(instance.isObject(), doc.toString(StandardCharsets.UTF_8));
                    if (s == patterned) {
                        assertTrue(instance.path("code").asText("ab-1").matches("[a-f]{2}-\\d+"), instance.toString());
                        assertTrue(instance.path("day").asText("2000-01-01").matches("\\d{4}-\\d\\d-\\d\\d"),
                                instance.toString());
                        assertTrue(Pattern.compile("(ab|c)+").matcher(instance.path("near").asText("c")).find(),
                                instance.toString());
                    }
                    if (s == unique) {
                        com.fasterxml.jackson.databind.JsonNode exact;
                        try {
                            exact = new ObjectMapper().enable(
                                    com.fasterxml.jackson.databind.DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
                                    .readTree(doc.toByteArray());
                        } catch (Exception hugeExponent) {
                            exact = JSON.createObjectNode();     // 9e2740900721133847: no BigDecimal to compare
                        }
                        for (var list : exact) {
                            java.util.Set<String> seen = new java.util.HashSet<>();
                            for (var item : list) {
                                String key = item.isNumber() ? item.decimalValue().stripTrailingZeros().toString()
                                        : item.toString();
                                assertTrue(seen.add(key), "repeated " + key + " in " + instance);
                            }
                        }
                    }
                    if (s == tuples && instance.has("t")) {
                        var t = instance.get("t");
                        assertTrue(t.size() == 2 && t.get(0).isIntegralNumber() && t.get(1).isTextual(), instance.toString());
                    }
                    if (s == tuples && instance.has("m")) {
                        assertTrue(instance.get("m").size() >= 1 && instance.get("m").size() <= 2, instance.toString());
                    }
                    if (s == bounded && instance.has("a")) {
                        assertTrue(instance.get("a").isIntegralNumber() && instance.get("a").asInt() >= 10
                                && instance.get("a").asInt() <= 20, instance.toString());
                    }
                    if (s == bounded && instance.has("b")) {
                        assertTrue(instance.get("b").decimalValue().compareTo(new java.math.BigDecimal("0.5")) > 0
                                && instance.get("b").decimalValue().compareTo(java.math.BigDecimal.ONE) <= 0,
                                instance.toString());
                    }
                    for (var pet : instance.path("pets")) {
                        // a Cat or a Dog (never both, never neither) or a string
                        assertTrue(pet.isTextual() || pet.size() == 2 && pet.get("name").isTextual()
                                && (pet.path("meows").isBoolean() != pet.path("barks").isBoolean()), instance.toString());
                    }
                }
            }
        }
        assertTrue(completed > 150, completed + " walks completed");
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

    /**
     * anyOf alternatives that start alike (pydantic's Union of two models, a string or an enum of strings, integer or
     * number, object shapes at the root): a document is allowed when one alternative allows it, followed side by side.
     */
    @Test
    void alternativesThatStartAlike() throws Exception {
        JsonSchema pets = schema(PETS);
        assertTrue(allows(pets, "{\"pets\": [{\"name\": \"Koa\", \"meows\": true}, {\"barks\": false, \"name\": \"B\"},"
                + " \"fish\", {\"name\": \"C\", \"meows\": false}]}"));
        assertFalse(allows(pets, "{\"pets\": [{\"name\": \"Koa\", \"meows\": true, \"barks\": true}]}"));
        assertFalse(allows(pets, "{\"pets\": [{\"name\": \"Koa\"}]}"));
        assertFalse(allows(pets, "{\"pets\": [{\"name\": \"Koa\", \"purrs\": true}]}"));
        JsonSchema alike = schema("""
                {"type": "object", "properties": {"s": {"anyOf": [{"enum": ["x", "yz"]}, {"type": "string", "maxLength": 1}]},
                  "n": {"oneOf": [{"type": "integer"}, {"enum": [1.5, 2.25]}]}}, "additionalProperties": false}""");
        for (String ok : List.of("{\"s\": \"x\"}", "{\"s\": \"yz\"}", "{\"s\": \"q\"}", "{\"n\": 12}", "{\"n\": 2.25}")) {
            assertTrue(allows(alike, ok), ok);
        }
        for (String no : List.of("{\"s\": \"qq\"}", "{\"s\": \"y\"}x", "{\"n\": 1.25}", "{\"n\": 2.5}")) {
            assertFalse(allows(alike, no), no);
        }
        JsonSchema root = schema("""
                {"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
                  "additionalProperties": false}, {"type": "object", "properties": {"b": {"type": "null"}},
                  "required": ["b"], "additionalProperties": false}]}""");
        assertTrue(allows(root, "{\"a\": 1}") && allows(root, "{\"b\": null}"));
        assertFalse(allows(root, "{\"a\": null}") || allows(root, "{}"));
    }

    /** uniqueItems over strings (escapes decoded), numbers (by value), enums (also through $ref) and booleans. */
    @Test
    void uniqueItems() throws Exception {
        JsonSchema s = schema(UNIQUE);
        for (String ok : List.of("{\"tags\": [\"a\", \"b\", \"ab\"]}", "{\"n\": [1, 10, 1.5, -1]}",
                "{\"colors\": [\"green\", \"red\"]}", "{\"flags\": [true, false]}", "{\"tags\": []}")) {
            assertTrue(allows(s, ok), ok);
        }
        for (String no : List.of("{\"tags\": [\"a\", \"a\"]}", "{\"tags\": [\"a\", \"\\u0061\"]}",
                "{\"n\": [1, 1.0]}", "{\"n\": [2, 20e-1]}", "{\"colors\": [\"red\", \"red\"]}",
                "{\"flags\": [true, true]}")) {
            assertFalse(allows(s, no), no);
        }
        for (String[] c : new String[][] {{"{\"colors\": [\"red\", \"", "r"}, {"{\"colors\": [\"red\", \"green\"", ","},
                {"{\"flags\": [false, ", "f"}, {"{\"flags\": [false, true", ","}, {"{\"tags\": [\"a\", \"a", "\""}}) {
            JsonPrefix p = new JsonPrefix(s);
            assertTrue(p.accept(c[0].getBytes(StandardCharsets.UTF_8)), c[0]);
            assertFalse(p.copy().accept(c[1].getBytes(StandardCharsets.UTF_8)), c[0] + c[1]);
        }
        for (String[] bad : new String[][] {
                {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\", \"uniqueItems\": true, "
                        + "\"items\": {\"type\": \"object\"}}}}", "not objects or arrays"},
                {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\", \"uniqueItems\": true, "
                        + "\"items\": {\"type\": \"string\", \"maxLength\": 2}}}}", "supply of distinct values"},
                {"{\"type\": \"object\", \"properties\": {\"a\": {\"uniqueItems\": true, \"minItems\": 3, "
                        + "\"items\": {\"type\": \"boolean\"}}}}", "a minimum above its maximum"}}) {
            var e = assertThrows(IllegalArgumentException.class, () -> schema(bad[0]), bad[0]);
            assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
        }
    }

    /** Tuples (prefixItems, or items as a list with additionalItems), min/maxProperties, allOf of one schema, not. */
    @Test
    void tuplesPropertyCountsAndAllOf() throws Exception {
        JsonSchema s = schema(TUPLES);
        for (String ok : List.of("{\"t\": [1, \"a\"]}", "{\"old\": [true]}", "{\"old\": [true, 1, 2]}",
                "{\"rest\": [\"x\", 3, 4]}", "{\"rest\": []}", "{\"m\": {\"a\": 1}}", "{\"m\": {\"a\": 1, \"b\": []}}",
                "{\"pet\": {\"name\": \"Koa\"}}")) {
            assertTrue(allows(s, ok), ok);
        }
        for (String no : List.of("{\"t\": [1]}", "{\"t\": [1, \"a\", 2]}", "{\"t\": [\"a\", 1]}", "{\"old\": [1]}",
                "{\"old\": [true, \"x\"]}", "{\"rest\": [\"x\", \"y\"]}", "{\"m\": {}}",
                "{\"m\": {\"a\": 1, \"b\": 2, \"c\": 3}}", "{\"pet\": {}}")) {
            assertFalse(allows(s, no), no);
        }
        JsonSchema notNull = schema("""
                {"type": "object", "properties": {"v": {"not": {"type": "null"}}, "w": {"type": ["string", "number",
                  "null"], "not": {"type": ["number"]}}}, "additionalProperties": false}""");
        for (String ok : List.of("{\"v\": 1}", "{\"v\": \"x\"}", "{\"v\": [null]}", "{\"w\": \"x\"}", "{\"w\": null}")) {
            assertTrue(allows(notNull, ok), ok);
        }
        for (String no : List.of("{\"v\": null}", "{\"w\": 1}", "{\"w\": 1.5}")) {
            assertFalse(allows(notNull, no), no);
        }
        for (String[] bad : new String[][] {{"{\"not\": {\"enum\": [1]}}", "only a not of types"},
                {"{\"type\": \"number\", \"not\": {\"type\": \"integer\"}}", "fractions only"},
                {"{\"type\": \"null\", \"not\": {\"type\": \"null\"}}", "no value of the allowed types"}}) {
            var e = assertThrows(IllegalArgumentException.class, () -> schema("{\"type\": \"object\", \"properties\": "
                    + "{\"a\": " + bad[0] + "}}"), bad[0]);
            assertTrue(e.getMessage().contains("/properties/a/not") && e.getMessage().contains(bad[1]), e.getMessage());
        }
        // propertyNames: an enum turns the allowed extra keys into properties; a pattern / length applies to every key
        JsonSchema keyed = schema("""
                {"type": "object", "properties": {
                  "scores": {"type": "object", "additionalProperties": {"type": "integer"},
                    "propertyNames": {"enum": ["math", "art"]}},
                  "tags": {"type": "object", "properties": {"ko": {"type": "boolean"}},
                    "additionalProperties": {"type": "boolean"}, "propertyNames": {"pattern": "^[a-z]{2}$"}}},
                 "additionalProperties": false}""");
        for (String ok : List.of("{\"scores\": {\"math\": 1, \"art\": 2}}", "{\"tags\": {\"ko\": true, \"en\": false}}",
                "{\"scores\": {}}")) {
            assertTrue(allows(keyed, ok), ok);
        }
        for (String no : List.of("{\"scores\": {\"music\": 1}}", "{\"scores\": {\"math\": \"x\"}}",
                "{\"tags\": {\"eng\": true}}", "{\"tags\": {\"E\": true}}", "{\"tags\": {\"e\": true}}")) {
            assertFalse(allows(keyed, no), no);
        }
        JsonPrefix key = new JsonPrefix(keyed);
        assertTrue(key.accept("{\"tags\": {\"e".getBytes(StandardCharsets.UTF_8)));
        assertFalse(key.copy().accept('"'), "a one-letter key is too short for the pattern");
        assertFalse(key.copy().accept('X'));
        for (String[] bad : new String[][] {
                {"{\"type\": \"object\", \"properties\": {\"Ab\": {}}, \"propertyNames\": {\"pattern\": \"^[a-z]+$\"}}",
                        "property \"Ab\" does not satisfy propertyNames"},
                {"{\"type\": \"object\", \"properties\": {\"x\": {}}, \"propertyNames\": {\"enum\": [\"y\"]}}",
                        "property \"x\" is not among propertyNames"},
                {"{\"type\": \"object\", \"propertyNames\": {\"minimum\": 3}}", "found \"minimum\""}}) {
            var e = assertThrows(IllegalArgumentException.class, () -> schema(bad[0]), bad[0]);
            assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
        }
        JsonPrefix p = new JsonPrefix(s);
        assertTrue(p.accept("{\"m\": {\"a\": 1, \"b\": 2".getBytes(StandardCharsets.UTF_8)));
        assertFalse(p.copy().accept(','), "maxProperties 2: no third key");
        JsonPrefix q = new JsonPrefix(s);
        assertTrue(q.accept("{\"t\": [1, \"a\"".getBytes(StandardCharsets.UTF_8)));
        assertFalse(q.copy().accept(','), "a pair has no third item");
        for (String[] bad : new String[][] {
                {"{\"type\": \"object\", \"properties\": {\"a\": {\"allOf\": [{\"type\": \"string\"}, "
                        + "{\"maxLength\": 2}]}}}", "/properties/a/allOf"},
                {"{\"type\": \"object\", \"minProperties\": 2, \"properties\": {\"a\": {}}, "
                        + "\"additionalProperties\": false}", "minProperties 2"},
                {"{\"type\": \"object\", \"properties\": {\"t\": {\"prefixItems\": [{}], \"items\": false, "
                        + "\"minItems\": 2}}}", "a minimum above its maximum"}}) {
            var e = assertThrows(IllegalArgumentException.class, () -> schema(bad[0]), bad[0]);
            assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
        }
    }

    /** minimum / maximum, exclusive as numbers (draft 6+) or flags (draft 4), for integers and numbers. */
    @Test
    void numericBounds() throws Exception {
        JsonSchema s = schema("""
                {"type": "object", "properties": {"age": {"type": "integer", "minimum": 10, "maximum": 20},
                  "p": {"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 1},
                  "t": {"type": "number", "minimum": -5, "maximum": -2},
                  "old": {"type": "integer", "minimum": 0, "exclusiveMinimum": true},
                  "five": {"type": "integer", "multipleOf": 5, "maximum": 12}, "half": {"multipleOf": 0.5}},
                 "additionalProperties": false}""");
        for (String ok : List.of("{\"age\": 10}", "{\"age\": 20}", "{\"age\":15}", "{\"p\": 0.75}", "{\"p\": 0.5000001}",
                "{\"t\": -5}", "{\"t\": -2.0}", "{\"t\": -3.25}", "{\"old\": 1}", "{\"old\": 99999999999999999999}",
                "{\"five\": 10}", "{\"five\": -5}", "{\"half\": 2.5}", "{\"half\": -0.50}")) {
            assertTrue(allows(s, ok), ok);
        }
        for (String no : List.of("{\"age\": 9}", "{\"age\": 21}", "{\"age\": 100}", "{\"age\": -15}",
                "{\"p\": 0.5}", "{\"p\": 1}", "{\"p\": 1.0}", "{\"p\": 0.4}", "{\"p\": 5e-1}", "{\"t\": -1}",
                "{\"t\": -6}", "{\"t\": -5.01}", "{\"t\": 2}", "{\"old\": 0}", "{\"old\": -1}",
                "{\"five\": 15}", "{\"five\": 11}", "{\"half\": 0.25}")) {
            assertFalse(allows(s, no), no);
        }
        // prefixes that no digit could save are refused at once
        for (String[] c : new String[][] {{"{\"age\": ", "3"}, {"{\"age\": ", "-"}, {"{\"age\": 2", "1"},
                {"{\"age\": 1", "."}, {"{\"p\": ", "1"}, {"{\"p\": 0.", "4"}, {"{\"p\": 0.7", "e"},
                {"{\"t\": -", "1"}, {"{\"t\": -5", "1"}, {"{\"t\": ", "0"}, {"{\"old\": ", "0"}}) {
            JsonPrefix p = new JsonPrefix(s);
            assertTrue(p.accept(c[0].getBytes(StandardCharsets.UTF_8)), c[0]);
            assertFalse(p.accept(c[1].getBytes(StandardCharsets.UTF_8)), c[0] + c[1]);
        }
        JsonPrefix p = new JsonPrefix(s);
        assertTrue(p.accept("{\"t\": -5.".getBytes(StandardCharsets.UTF_8)) && p.copy().accept('0')
                && !p.copy().accept('1'), "-5.0 is the bound, -5.01 below it");
    }

    /**
     * {@link NumberBounds#feasible} against brute force: over random bounds (integers and one-decimal numbers below
     * 50, inclusive or not), every prefix of every number up to 3 integer and 2 fraction digits is feasible exactly
     * when one of those numbers that starts with it lies within the bounds.
     */
    @Test
    void boundsAgreeWithBruteForce() throws Exception {
        List<String> numbers = new java.util.ArrayList<>();
        for (String sign : List.of("", "-")) {
            for (int whole = 0; whole < 1000; whole++) {
                numbers.add(sign + whole);
                for (int f = 0; f < 10; f++) {
                    numbers.add(sign + whole + "." + f);
                    for (int g = 0; g < 10; g++) {
                        numbers.add(sign + whole + "." + f + g);
                    }
                }
            }
        }
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        for (int trial = 0; trial < 36; trial++) {
            boolean integer = trial % 3 == 0;
            StringBuilder doc = new StringBuilder("{\"type\": \"" + (integer ? "integer" : "number") + "\"");
            int tenths = r.nextInt(-500, 500);
            String lo = java.math.BigDecimal.valueOf(tenths, 1).toPlainString();
            String hi = java.math.BigDecimal.valueOf(tenths + r.nextInt(0, 300), 1).toPlainString();
            if (r.nextInt(4) > 0) {
                doc.append(r.nextBoolean() ? ", \"minimum\": " : ", \"exclusiveMinimum\": ").append(lo);
            }
            if (r.nextInt(4) > 0) {
                doc.append(r.nextBoolean() ? ", \"maximum\": " : ", \"exclusiveMaximum\": ").append(hi);
            }
            if (r.nextInt(3) == 0) {
                doc.append(", \"multipleOf\": ").append(List.of("0.5", "3", "0.3", "2.5", "0.25", "7").get(r.nextInt(6)));
            }
            doc.append('}');
            JsonSchema n;
            try {
                n = schema("{\"type\": \"object\", \"properties\": {\"n\": " + doc + "}}").properties[0];
            } catch (IllegalArgumentException empty) {
                continue;                       // exclusive bounds at one value: nothing between them
            }
            java.util.Set<String> feasible = new java.util.HashSet<>();
            for (String v : numbers) {
                if (integer && v.contains(".")) {
                    continue;
                }
                byte[] b = v.getBytes(StandardCharsets.US_ASCII);
                if (NumberBounds.within(b, b.length, n)) {
                    for (int k = 1; k <= v.length(); k++) {
                        feasible.add(v.substring(0, k));
                    }
                }
            }
            java.util.Set<String> prefixes = new java.util.HashSet<>();
            for (String v : numbers) {
                for (int k = 1; k <= v.length(); k++) {
                    prefixes.add(v.substring(0, k));
                }
            }
            for (String prefix : prefixes) {
                if (integer && prefix.contains(".")) {
                    continue;
                }
                byte[] b = prefix.getBytes(StandardCharsets.US_ASCII);
                boolean expected = feasible.contains(prefix);
                // the brute force sees no completion beyond 3 integer or 2 fraction digits: a prefix at that edge that
                // it finds hopeless may still have longer ones (past the bounds' magnitude, or 0.001 nearer a bound)
                String[] parts = prefix.replace("-", "").split("\\.", -1);
                if (!expected && (parts[0].length() >= 3 || parts.length > 1 && parts[1].length() >= 2)) {
                    continue;
                }
                assertEquals(expected, NumberBounds.feasible(b, b.length, n, integer), doc + " prefix " + prefix);
            }
        }
    }

    @Test
    void unsupportedSchemasAreErrorsNamingThePlace() {
        Map<String, List<String>> bad = new java.util.LinkedHashMap<>();
        bad.put("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": \"(x)\\\\1\"}}}",
                List.of("/properties/a/pattern", "\\1"));
        bad.put("{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"integer\", \"multipleOf\": 0}}}",
                List.of("/properties/n/multipleOf", "expected a number above 0"));
        bad.put("{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"array\", \"uniqueItems\": true}}}",
                List.of("/properties/n", "uniqueItems"));
        bad.put("{\"type\": \"object\", \"properties\": {\"n\": {\"minimum\": 3, \"exclusiveMaximum\": 3}}}",
                List.of("/properties/n", "no number lies between minimum 3 and maximum 3"));
        bad.put("{\"type\": \"object\", \"properties\": {\"n\": {\"maximum\": \"9\"}}}",
                List.of("/properties/n/maximum", "expected a number"));
        bad.put("{\"type\": \"array\"}", List.of("root must be an object"));
        bad.put("{\"type\": \"object\", \"required\": [\"x\"]}", List.of("\"x\" is not among the properties"));
        bad.put("{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"#/$defs/L\"}}, \"$defs\": {\"L\": "
                + "{\"anyOf\": [{\"$ref\": \"#/$defs/L\"}, {\"type\": \"null\"}]}}}", List.of("one of its own alternatives"));
        bad.put("{\"anyOf\": [{\"type\": \"object\"}, {\"type\": \"string\"}]}", List.of("root must be an object"));
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
