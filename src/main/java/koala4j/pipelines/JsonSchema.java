package koala4j.pipelines;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * A JSON Schema compiled for constrained generation ({@link JsonPrefix}): the subset that structured-output servers
 * (OpenAI's strict mode, vLLM, llama.cpp) take from the schemas pydantic and zod write. {@code type} (one or a list),
 * {@code properties} / {@code required} / {@code additionalProperties} (keys in any order, each once; by JSON Schema's
 * rule extra keys are allowed unless additionalProperties is false), {@code items} / {@code minItems} /
 * {@code maxItems}, {@code minLength} / {@code maxLength} (code points; an escape counts one), {@code minimum} /
 * {@code maximum} / {@code exclusiveMinimum} / {@code exclusiveMaximum} (numbers or draft 4's flags; see
 * {@link NumberBounds}), {@code enum} /
 * {@code const} (the value written as Jackson writes it compactly), {@code anyOf} / {@code oneOf} (oneOf read as anyOf,
 * as llama.cpp and outlines do; alternatives that start alike are followed side by side by {@link JsonPrefix}'s
 * callers until the bytes rule all but one out), and {@code $ref} into {@code $defs} /
 * {@code definitions} (recursion included). Annotations (title, description, default, examples, $schema, ...) are
 * ignored; any other keyword is an error naming it, so that nothing is silently unchecked. Immutable.
 */
public final class JsonSchema {

    static final int OBJECT = 1;
    static final int ARRAY = 2;
    static final int STRING = 4;
    static final int NUMBER = 8;
    static final int INTEGER = 16;
    static final int BOOLEAN = 32;
    static final int NULL = 64;
    static final int ALL = 127;

    /** Reads JSON texts the automaton accepted (property names here, whole items for {@link JsonPrefix}). */
    static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    /** Whether a (JSON-escaped) property name is a string this schema's length and pattern allow. */
    boolean allowsName(String escaped) {
        String name;
        try {
            name = JSON.readTree("\"" + escaped + "\"").asText();
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            return false;
        }
        int length = name.codePointCount(0, name.length());
        if (length < minLength || length > maxLength) {
            return false;
        }
        if (pattern == null) {
            return true;
        }
        long[] states = pattern.start();
        long[] scratch = new long[states.length];
        for (int i = 0; i < name.length(); ) {
            int cp = name.codePointAt(i);
            i += Character.charCount(cp);
            if (!pattern.step(states, cp, scratch)) {
                return false;
            }
        }
        return pattern.matches(states);
    }

    /** Whether numbers of this schema have a lower or an upper bound, or must be multiples of something. */
    boolean bounded() {
        return minimum != null || maximum != null || multipleOf != null;
    }

    /** Automaton states all patterns and formats of one schema document may make together. */
    static final int MAX_REGEX_STATES = 16 * 1024;

    /** Properties and enum values per schema: a bitmask each. */
    static final int MAX_MEMBERS = 64;

    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "$schema",
            "$id", "$comment", "deprecated", "readOnly", "writeOnly", "$defs", "definitions");
    private static final Map<String, Integer> TYPES = Map.of("object", OBJECT, "array", ARRAY, "string", STRING,
            "number", NUMBER, "integer", INTEGER, "boolean", BOOLEAN, "null", NULL);

    /** Any JSON value. */
    static final JsonSchema ANY = new JsonSchema();
    /** Any JSON object (OpenAI's json_object). */
    static final JsonSchema ANY_OBJECT = new JsonSchema();
    /** No value at all (items false: nothing after a tuple's positions). */
    static final JsonSchema NOTHING = new JsonSchema();

    static {
        ANY.types = ALL;
        ANY.items = ANY;
        ANY.additional = ANY;
        ANY_OBJECT.types = OBJECT;
        ANY_OBJECT.additional = ANY;
        ANY_OBJECT.items = ANY;
    }

    /** Any JSON object: OpenAI's json_object response format. */
    public static JsonSchema anyObject() {
        return ANY_OBJECT;
    }

    int types;
    // objects
    byte[][] names = new byte[0][];             // property names as they appear between the quotes (JSON-escaped)
    JsonSchema[] properties = new JsonSchema[0];
    long required;
    JsonSchema additional;                       // null: no other keys
    JsonSchema keyNames;                         // propertyNames' length and pattern for keys, or null
    // arrays
    JsonSchema items;                            // after the prefix; NOTHING: no more items
    JsonSchema[] prefix = new JsonSchema[0];     // prefixItems (a tuple's positions)
    int minItems;
    int maxItems = Integer.MAX_VALUE;
    boolean uniqueItems;
    int minProperties;
    int maxProperties = Integer.MAX_VALUE;
    // strings
    int minLength;
    int maxLength = Integer.MAX_VALUE;
    JsonRegex pattern;                           // pattern or format, null: none
    // numbers: bounds (null: none), each inclusive unless its flag says exclusive
    java.math.BigDecimal minimum;
    java.math.BigDecimal maximum;
    boolean minimumExclusive;
    boolean maximumExclusive;
    java.math.BigDecimal multipleOf;
    // enum / const: the only values, as compact JSON
    byte[][] literals;
    // anyOf / oneOf
    JsonSchema[] alternatives;
    // a $ref, resolved after the whole document is compiled
    private String ref;

    private JsonSchema() {
    }

    /**
     * Compiles {@code schema}, whose root must describe an object (as OpenAI requires).
     *
     * @param where what the schema is, for errors (e.g. {@code response_format.json_schema.schema})
     * @throws IllegalArgumentException naming the place (a JSON pointer) and the keyword or value that is not supported
     */
    public static JsonSchema compile(JsonNode schema, String where) {
        Map<String, JsonSchema> defs = new HashMap<>();
        List<JsonSchema> refs = new ArrayList<>();
        Compiler compiler = new Compiler(schema, where, defs, refs);
        JsonSchema root = compiler.node(schema, "");
        // every $ref's schema, found before any is filled in (a chain of refs ends at a schema that is not one)
        Map<JsonSchema, JsonSchema> targets = new java.util.IdentityHashMap<>();
        for (JsonSchema r : refs) {
            JsonSchema target = defs.get(r.ref);
            if (target == null) {
                throw new IllegalArgumentException(where + ": $ref \"" + r.ref + "\" names no schema under $defs or "
                        + "definitions");
            }
            targets.put(r, resolved(target, defs, where));
        }
        targets.forEach(JsonSchema::copyFrom);
        compiler.checkUniques();
        targets.forEach(JsonSchema::copyFrom);      // again, with what checkUniques set on the schemas
        JsonSchema top = resolved(root, defs, where);
        checkUnionLoops(top, where, new java.util.IdentityHashMap<>());
        if (!top.onlyObjects(new java.util.IdentityHashMap<>())) {
            throw new IllegalArgumentException(where + ": the root must be an object schema ({\"type\": \"object\", ...}"
                    + " or an anyOf of such)");
        }
        return top;
    }

    /**
     * One object that any of {@code objects} (each from {@link #compile}) allows: an anyOf of them, however alike they
     * start (tool calls: one alternative per tool, told apart by the name written inside them).
     */
    public static JsonSchema union(java.util.Collection<JsonSchema> objects) {
        if (objects.isEmpty()) {
            throw new IllegalArgumentException("a union of no object schemas");
        }
        JsonSchema u = new JsonSchema();
        u.types = ALL;
        u.alternatives = objects.toArray(JsonSchema[]::new);
        if (!u.onlyObjects(new java.util.IdentityHashMap<>())) {
            throw new IllegalArgumentException("a union of object schemas holds a schema that is not an object");
        }
        return u;
    }

    /** No anyOf reaches itself through alternatives alone (a value would never settle on a schema). */
    private static void checkUnionLoops(JsonSchema s, String where, Map<JsonSchema, Boolean> seen) {
        if (s == null || seen.put(s, Boolean.TRUE) != null) {
            return;
        }
        if (s.alternatives != null) {
            java.util.ArrayDeque<JsonSchema> todo = new java.util.ArrayDeque<>(List.of(s.alternatives));
            Map<JsonSchema, Boolean> reached = new java.util.IdentityHashMap<>();
            while (!todo.isEmpty()) {
                JsonSchema a = todo.pop();
                if (a == s) {
                    throw new IllegalArgumentException(where + ": an anyOf / oneOf that is one of its own alternatives "
                            + "(through $ref)");
                }
                if (a.alternatives != null && reached.put(a, Boolean.TRUE) == null) {
                    todo.addAll(List.of(a.alternatives));
                }
            }
            for (JsonSchema a : s.alternatives) {
                checkUnionLoops(a, where, seen);
            }
        }
        for (JsonSchema p : s.properties) {
            checkUnionLoops(p, where, seen);
        }
        checkUnionLoops(s.additional, where, seen);
        checkUnionLoops(s.items, where, seen);
        for (JsonSchema p : s.prefix) {
            checkUnionLoops(p, where, seen);
        }
    }

    /** Every value this schema allows is an object (unions: every alternative; a $ref loop of unions allows none). */
    private boolean onlyObjects(Map<JsonSchema, Boolean> visiting) {
        if (alternatives == null) {
            return types == OBJECT && literals == null;
        }
        if (visiting.put(this, Boolean.TRUE) != null) {
            return true;
        }
        for (JsonSchema a : alternatives) {
            if (!a.onlyObjects(visiting)) {
                return false;
            }
        }
        return true;
    }

    /** A $ref chain followed to its end (a ref to a ref ...). */
    private static JsonSchema resolved(JsonSchema s, Map<String, JsonSchema> defs, String where) {
        int hops = 0;
        while (s.ref != null) {
            s = defs.get(s.ref);
            if (s == null || ++hops > 64) {
                throw new IllegalArgumentException(where + ": $ref chain without a schema at its end");
            }
        }
        return s;
    }

    private void copyFrom(JsonSchema o) {
        types = o.types;
        names = o.names;
        properties = o.properties;
        required = o.required;
        additional = o.additional;
        keyNames = o.keyNames;
        items = o.items;
        prefix = o.prefix;
        minItems = o.minItems;
        maxItems = o.maxItems;
        uniqueItems = o.uniqueItems;
        minProperties = o.minProperties;
        maxProperties = o.maxProperties;
        minLength = o.minLength;
        maxLength = o.maxLength;
        pattern = o.pattern;
        minimum = o.minimum;
        maximum = o.maximum;
        minimumExclusive = o.minimumExclusive;
        maximumExclusive = o.maximumExclusive;
        multipleOf = o.multipleOf;
        literals = o.literals;
        alternatives = o.alternatives;
        ref = null;
    }

    /**
     * How many schemas a value starting with byte {@code b} may follow: this one (0 or 1), or of a union the
     * alternatives' (nested unions flattened, in order).
     */
    int countFor(int b) {
        if (alternatives == null) {
            return startsWith(b) ? 1 : 0;
        }
        int n = 0;
        for (JsonSchema a : alternatives) {
            n += a.countFor(b);
        }
        return n;
    }

    /** The {@code k}-th ({@code k < countFor(b)}) schema a value starting with {@code b} may follow. */
    JsonSchema nthFor(int b, int k) {
        if (alternatives == null) {
            return this;
        }
        for (JsonSchema a : alternatives) {
            int n = a.countFor(b);
            if (k < n) {
                return a.nthFor(b, k);
            }
            k -= n;
        }
        throw new IllegalArgumentException("no alternative " + k + " for a value starting with " + b);
    }

    private boolean startsWith(int b) {
        if (literals != null) {
            for (byte[] l : literals) {
                if ((l[0] & 0xFF) == b) {
                    return true;
                }
            }
            return false;
        }
        return (types & typeOfStart(b)) != 0 || (types & INTEGER) != 0 && typeOfStart(b) == NUMBER;
    }

    /** The type a value starting with {@code b} has (NUMBER for numbers); 0 when no value starts so. */
    static int typeOfStart(int b) {
        return switch (b) {
            case '{' -> OBJECT;
            case '[' -> ARRAY;
            case '"' -> STRING;
            case 't', 'f' -> BOOLEAN;
            case 'n' -> NULL;
            default -> b == '-' || b >= '0' && b <= '9' ? NUMBER : 0;
        };
    }

    private static final class Compiler {
        private final String where;
        private final Map<String, JsonSchema> defs;
        private final List<JsonSchema> refs;
        /** Automaton states of the document's patterns and formats so far (each costs states^2 bits). */
        private int regexStates;
        /** Arrays with uniqueItems, and where they are. */
        private final Map<JsonSchema, String> uniques = new java.util.LinkedHashMap<>();

        /** Once every $ref is resolved: each uniqueItems array's items must be of a kind it can follow. */
        void checkUniques() {
            uniques.forEach((s, path) -> uniqueItemsFor(s, path));
        }

        Compiler(JsonNode document, String where, Map<String, JsonSchema> defs, List<JsonSchema> refs) {
            this.where = where;
            this.defs = defs;
            this.refs = refs;
            for (String section : List.of("$defs", "definitions")) {
                JsonNode d = document.path(section);
                if (d.isObject()) {
                    for (var e : d.properties()) {
                        defs.put("#/" + section + "/" + e.getKey(), null);
                    }
                }
            }
            for (String section : List.of("$defs", "definitions")) {
                JsonNode d = document.path(section);
                if (d.isObject()) {
                    for (var e : d.properties()) {
                        defs.put("#/" + section + "/" + e.getKey(), node(e.getValue(), "/" + section + "/" + e.getKey()));
                    }
                }
            }
        }

        private IllegalArgumentException error(String path, String problem) {
            return new IllegalArgumentException(where + (path.isEmpty() ? "" : " at " + path) + ": " + problem);
        }

        JsonSchema node(JsonNode n, String path) {
            if (n.isBoolean() && n.asBoolean() || n.isObject() && n.isEmpty()) {
                return ANY;
            }
            if (!n.isObject()) {
                throw error(path, "expected a schema object, found " + abbreviate(n));
            }
            JsonSchema s = new JsonSchema();
            if (n.has("$ref")) {
                if (n.size() > 1 && hasConstraint(n, "$ref")) {
                    throw error(path, "$ref next to other keywords is not supported");
                }
                s.ref = n.get("$ref").asText();
                if (!defs.containsKey(s.ref)) {
                    throw error(path, "$ref \"" + s.ref + "\": only #/$defs/NAME and #/definitions/NAME are supported");
                }
                refs.add(s);
                return s;
            }
            for (String key : List.of("anyOf", "oneOf")) {
                if (n.has(key)) {
                    return union(n, key, path);
                }
            }
            if (n.has("allOf")) {
                // pydantic (v1, and v2 for a described field) wraps a $ref as allOf [$ref] to hang annotations on it
                JsonNode all = n.get("allOf");
                if (!all.isArray() || all.size() != 1 || hasConstraint(n, "allOf")) {
                    throw error(path + "/allOf", "only an allOf of one schema (with annotations beside it) is "
                            + "supported");
                }
                return node(all.get(0), path + "/allOf/0");
            }
            boolean typed = n.has("type");
            if (typed) {
                s.types |= typeBits(n.get("type"), path);
            }
            for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
                String key = it.next();
                JsonNode v = n.get(key);
                switch (key) {
                    case "type" -> {
                    }
                    case "properties" -> {
                        if (!v.isObject() || v.size() > MAX_MEMBERS) {
                            throw error(path + "/properties", "expected an object of at most " + MAX_MEMBERS
                                    + " property schemas");
                        }
                        s.names = new byte[v.size()][];
                        s.properties = new JsonSchema[v.size()];
                        int i = 0;
                        for (var e : v.properties()) {
                            s.names[i] = escaped(e.getKey());
                            s.properties[i] = node(e.getValue(), path + "/properties/" + e.getKey());
                            i++;
                        }
                        s.types |= typed ? 0 : OBJECT;
                    }
                    case "additionalProperties" -> s.types |= typed ? 0 : OBJECT;
                    case "required", "minItems", "maxItems", "minLength", "maxLength", "items", "enum", "const",
                         "prefixItems", "additionalItems" -> {
                    }
                    case "minProperties", "maxProperties", "not" -> s.types |= typed || key.equals("not") ? 0 : OBJECT;
                    case "propertyNames" -> s.types |= typed ? 0 : OBJECT;
                    case "uniqueItems" -> {
                        if (!v.isBoolean()) {
                            throw error(path + "/uniqueItems", "expected true or false, found " + abbreviate(v));
                        }
                        s.uniqueItems = v.asBoolean();
                        s.types |= typed ? 0 : ARRAY;
                    }
                    case "pattern", "format" -> {
                        if (n.has("pattern") && n.has("format")) {
                            throw error(path, "pattern and format together are not supported");
                        }
                        if (!v.isTextual()) {
                            throw error(path + "/" + key, "expected a string, found " + abbreviate(v));
                        }
                        try {
                            s.pattern = JsonRegex.compile(key.equals("pattern") ? v.asText() : format(v.asText()));
                        } catch (IllegalArgumentException e) {
                            throw error(path + "/" + key, e.getMessage());
                        }
                        regexStates += s.pattern.states();
                        if (regexStates > MAX_REGEX_STATES) {
                            throw error(path + "/" + key, "the patterns and formats of this schema make more than "
                                    + MAX_REGEX_STATES + " automaton states in all");
                        }
                        s.types |= typed ? 0 : STRING;
                    }
                    case "multipleOf" -> {
                        if (!v.isNumber() || v.decimalValue().signum() <= 0) {
                            throw error(path + "/multipleOf", "expected a number above 0, found " + abbreviate(v));
                        }
                        s.multipleOf = v.decimalValue().stripTrailingZeros();
                        s.types |= typed ? 0 : NUMBER;
                    }
                    case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" -> {
                        bound(s, key, v, path);
                        s.types |= typed ? 0 : NUMBER;
                    }
                    default -> {
                        if (!ANNOTATIONS.contains(key)) {
                            throw error(path, "keyword \"" + key + "\" is not supported (supported: type, properties, "
                                    + "required, additionalProperties, minProperties, maxProperties, items, "
                                    + "prefixItems, additionalItems, minItems, maxItems, minLength, maxLength, pattern, "
                                    + "format, minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, enum, "
                                    + "const, "
                                    + "anyOf, oneOf, allOf of one schema, $ref)");
                        }
                    }
                }
            }
            if (n.path("exclusiveMinimum").asBoolean(false) && n.path("exclusiveMinimum").isBoolean()) {
                s.minimumExclusive = s.minimum != null;
            }
            if (n.path("exclusiveMaximum").asBoolean(false) && n.path("exclusiveMaximum").isBoolean()) {
                s.maximumExclusive = s.maximum != null;
            }
            if (s.minimum != null && s.maximum != null && (s.minimum.compareTo(s.maximum) > 0
                    || s.minimum.compareTo(s.maximum) == 0 && (s.minimumExclusive || s.maximumExclusive))) {
                throw error(path, "no number lies between minimum " + s.minimum.toPlainString() + " and maximum "
                        + s.maximum.toPlainString());
            }
            JsonNode additional = n.get("additionalProperties");
            s.additional = additional == null || additional.isBoolean() && additional.asBoolean() ? ANY
                    : additional.isBoolean() ? null : node(additional, path + "/additionalProperties");
            if (n.has("required")) {
                JsonNode r = n.get("required");
                if (!r.isArray()) {
                    throw error(path + "/required", "expected a list of property names");
                }
                for (JsonNode name : r) {
                    int index = indexOf(s, name.asText());
                    if (index < 0) {
                        throw error(path + "/required", "\"" + name.asText() + "\" is not among the properties (a "
                                + "required key needs its schema under properties)");
                    }
                    s.required |= 1L << index;
                }
            }
            // a tuple: prefixItems (draft 2020-12) or items as a list (earlier drafts, with additionalItems)
            JsonNode tuple = n.has("prefixItems") ? n.get("prefixItems") : n.path("items").isArray() ? n.get("items")
                    : null;
            String tuplePath = path + (n.has("prefixItems") ? "/prefixItems" : "/items");
            if (tuple != null) {
                if (!tuple.isArray()) {
                    throw error(tuplePath, "expected a list of schemas");
                }
                s.prefix = new JsonSchema[tuple.size()];
                for (int i = 0; i < tuple.size(); i++) {
                    s.prefix[i] = node(tuple.get(i), tuplePath + "/" + i);
                }
                s.types |= typed ? 0 : ARRAY;
            }
            JsonNode rest = n.has("prefixItems") || tuple == null ? n.get("items") : n.get("additionalItems");
            String restPath = path + (n.has("prefixItems") || tuple == null ? "/items" : "/additionalItems");
            if (rest != null && rest.isBoolean() && !rest.asBoolean()) {
                s.items = NOTHING;
            } else if (rest != null) {
                s.items = node(rest, restPath);
            } else {
                s.items = ANY;
            }
            if (n.has("items")) {
                s.types |= typed ? 0 : ARRAY;
            }
            s.minItems = count(n, "minItems", 0, path);
            s.maxItems = count(n, "maxItems", Integer.MAX_VALUE, path);
            if (s.items == NOTHING) {
                s.maxItems = Math.min(s.maxItems, s.prefix.length);
            }
            if (s.uniqueItems) {
                uniques.put(s, path);                   // checked once $ref items are resolved
            }
            if (n.has("propertyNames")) {
                propertyNames(s, n.get("propertyNames"), path + "/propertyNames");
            }
            s.minProperties = count(n, "minProperties", 0, path);
            s.maxProperties = count(n, "maxProperties", Integer.MAX_VALUE, path);
            if (s.minProperties > s.maxProperties || s.additional == null && s.minProperties > s.names.length
                    || Long.bitCount(s.required) > s.maxProperties) {
                throw error(path, "no object has between minProperties " + s.minProperties + " and maxProperties "
                        + (s.maxProperties == Integer.MAX_VALUE ? "(none)" : s.maxProperties) + " of its "
                        + s.names.length + " allowed keys");
            }
            s.minLength = count(n, "minLength", 0, path);
            s.maxLength = count(n, "maxLength", Integer.MAX_VALUE, path);
            if (n.has("minItems") || n.has("maxItems")) {
                s.types |= typed ? 0 : ARRAY;
            }
            if (n.has("minLength") || n.has("maxLength")) {
                s.types |= typed ? 0 : STRING;
            }
            if (s.minItems > s.maxItems || s.minLength > s.maxLength) {
                throw error(path, "a minimum above its maximum");
            }
            if (n.has("enum") || n.has("const")) {
                List<JsonNode> values = new ArrayList<>();
                if (n.has("const")) {
                    values.add(n.get("const"));
                } else if (n.get("enum").isArray() && !n.get("enum").isEmpty()) {
                    n.get("enum").forEach(values::add);
                } else {
                    throw error(path + "/enum", "expected a non-empty list of values");
                }
                if (values.size() > MAX_MEMBERS) {
                    throw error(path + "/enum", "at most " + MAX_MEMBERS + " values");
                }
                s.literals = new byte[values.size()][];
                for (int i = 0; i < values.size(); i++) {
                    s.literals[i] = values.get(i).toString().getBytes(StandardCharsets.UTF_8);
                }
            }
            if (s.types == 0) {
                s.types = ALL;
            }
            if (n.has("not")) {
                s.types &= ~notTypes(n.get("not"), path + "/not", s.types);
                if (s.types == 0) {
                    throw error(path + "/not", "no value of the allowed types is left");
                }
            }
            return s;
        }

        private JsonSchema union(JsonNode n, String key, String path) {
            if (hasConstraint(n, key)) {
                throw error(path, key + " next to other keywords is not supported");
            }
            JsonNode list = n.get(key);
            if (!list.isArray() || list.isEmpty()) {
                throw error(path + "/" + key, "expected a non-empty list of schemas");
            }
            JsonSchema s = new JsonSchema();
            s.alternatives = new JsonSchema[list.size()];
            for (int i = 0; i < list.size(); i++) {
                s.alternatives[i] = node(list.get(i), path + "/" + key + "/" + i);
            }
            s.types = ALL;
            return s;
        }

        private static boolean hasConstraint(JsonNode n, String except) {
            for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (!k.equals(except) && !ANNOTATIONS.contains(k)) {
                    return true;
                }
            }
            return false;
        }

        /**
         * minimum / maximum, and exclusiveMinimum / exclusiveMaximum as a number (draft 6 and later, pydantic's gt /
         * lt) or as a flag on the other (draft 4); the tighter of two bounds on one side wins.
         */
        private void bound(JsonSchema s, String key, JsonNode v, String path) {
            boolean lower = key.toLowerCase(java.util.Locale.ROOT).contains("min");
            if (v.isBoolean() && key.startsWith("exclusive")) {
                return;                         // draft 4's flag: applied to minimum / maximum once all are read
            }
            if (!v.isNumber()) {
                throw error(path + "/" + key, "expected a number, found " + abbreviate(v));
            }
            java.math.BigDecimal value = v.decimalValue();
            boolean exclusive = key.startsWith("exclusive");
            if (lower) {
                int c = s.minimum == null ? 1 : value.compareTo(s.minimum);
                if (c > 0 || c == 0 && exclusive) {
                    s.minimum = value;
                    s.minimumExclusive = exclusive || c == 0 && s.minimumExclusive;
                }
            } else {
                int c = s.maximum == null ? -1 : value.compareTo(s.maximum);
                if (c < 0 || c == 0 && exclusive) {
                    s.maximum = value;
                    s.maximumExclusive = exclusive || c == 0 && s.maximumExclusive;
                }
            }
        }

        /**
         * uniqueItems for items whose equality and supply koala4j can follow: enum / const values, true / false /
         * null, strings without maxLength / pattern / format, numbers without bounds (any of them can still grow
         * into a value not used yet, so that no accepted prefix is a dead end). A finite supply (an enum's values,
         * true / false / null) caps maxItems.
         */
        private void uniqueItemsFor(JsonSchema s, String path) {
            JsonSchema item = s.items;
            if (s.prefix.length > 0 || item == null || item.alternatives != null || item == NOTHING) {
                throw error(path + "/uniqueItems", "supported with one items schema of scalars (enum, boolean, null, "
                        + "string, number), not with tuples or unions");
            }
            int distinct = -1;
            if (item.literals != null) {
                distinct = item.literals.length;
            } else if ((item.types & (OBJECT | ARRAY)) != 0) {
                throw error(path + "/uniqueItems", "supported for items that are scalars (enum, boolean, null, "
                        + "string, number), not objects or arrays");
            } else if ((item.types & STRING) != 0 && (item.maxLength != Integer.MAX_VALUE || item.pattern != null)
                    || (item.types & (NUMBER | INTEGER)) != 0 && item.bounded()) {
                throw error(path + "/uniqueItems", "supported for strings without maxLength, pattern or format and "
                        + "numbers without bounds or multipleOf (their supply of distinct values can run out)");
            } else if ((item.types & (STRING | NUMBER | INTEGER)) == 0) {
                distinct = ((item.types & BOOLEAN) != 0 ? 2 : 0) + ((item.types & NULL) != 0 ? 1 : 0);
            }
            if (distinct >= 0) {
                s.maxItems = Math.min(s.maxItems, distinct);
            }
            if (s.minItems > s.maxItems) {
                throw error(path, "a minimum above its maximum (minItems " + s.minItems + ", at most " + s.maxItems
                        + " distinct items)");
            }
        }

        /**
         * {@code propertyNames} (pydantic's constrained dict keys): an enum / const of names turns the allowed
         * additional keys into declared properties of the additional schema (and allows no others); a pattern,
         * format or length applies to every key as it is written. Declared properties must satisfy it.
         */
        private void propertyNames(JsonSchema s, JsonNode names, String path) {
            if (names.isBoolean() && names.asBoolean() || names.isObject() && names.isEmpty()) {
                return;
            }
            for (Iterator<String> it = names.fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (!Set.of("type", "enum", "const", "pattern", "format", "minLength", "maxLength").contains(k)
                        && !ANNOTATIONS.contains(k) || k.equals("type") && !names.get(k).asText().equals("string")) {
                    throw error(path, "only a string schema of enum, const, pattern, format, minLength and maxLength "
                            + "is supported here, found \"" + k + "\"");
                }
            }
            JsonSchema keys = node(names, path);
            if (keys.literals != null) {
                List<String> allowed = new ArrayList<>();
                for (byte[] literal : keys.literals) {
                    String text = new String(literal, StandardCharsets.UTF_8);
                    if (!text.startsWith("\"")) {
                        throw error(path, "property names are strings, found " + text);
                    }
                    allowed.add(text.substring(1, text.length() - 1));     // still JSON-escaped, as names are
                }
                List<byte[]> names2 = new ArrayList<>(List.of(s.names));
                List<JsonSchema> properties = new ArrayList<>(List.of(s.properties));
                for (byte[] declared : s.names) {
                    if (!allowed.contains(new String(declared, StandardCharsets.UTF_8))) {
                        throw error(path, "property \"" + new String(declared, StandardCharsets.UTF_8)
                                + "\" is not among propertyNames");
                    }
                }
                if (s.additional != null) {
                    for (String name : allowed) {
                        if (!names2.stream().anyMatch(d -> new String(d, StandardCharsets.UTF_8).equals(name))) {
                            names2.add(name.getBytes(StandardCharsets.UTF_8));
                            properties.add(s.additional);
                        }
                    }
                }
                if (names2.size() > MAX_MEMBERS) {
                    throw error(path, "more than " + MAX_MEMBERS + " property names in all");
                }
                s.names = names2.toArray(byte[][]::new);
                s.properties = properties.toArray(JsonSchema[]::new);
                s.additional = null;
                return;
            }
            for (byte[] declared : s.names) {
                String name = new String(declared, StandardCharsets.UTF_8);
                if (!keys.allowsName(name)) {
                    throw error(path, "property \"" + name + "\" does not satisfy propertyNames");
                }
            }
            s.keyNames = keys;
        }

        /** A {@code type} keyword's value (a name or a list of names) as type bits. */
        private int typeBits(JsonNode t, String path) {
            int bits = 0;
            for (JsonNode name : t.isArray() ? t : List.of(t)) {
                Integer bit = TYPES.get(name.asText());
                if (bit == null || !name.isTextual()) {
                    throw error(path, "type " + abbreviate(name) + ": expected object, array, string, number, "
                            + "integer, boolean or null");
                }
                bits |= bit;
            }
            return bits;
        }

        /**
         * The types a {@code not} takes away: only {@code {"not": {"type": ...}}} (pydantic's and zod's "not null")
         * is supported, so that what remains is still a set of types.
         */
        private int notTypes(JsonNode not, String path, int allowed) {
            if (!not.isObject() || !not.has("type") || hasConstraint(not, "type")) {
                throw error(path, "only a not of types ({\"not\": {\"type\": ...}}) is supported");
            }
            int bits = typeBits(not.get("type"), path);
            if ((bits & INTEGER) != 0 && (bits & NUMBER) == 0 && (allowed & NUMBER) != 0) {
                throw error(path, "not integer among numbers (fractions only) is not supported");
            }
            return (bits & NUMBER) != 0 ? bits | INTEGER : bits;
        }

        /** The pattern a {@code format} stands for (RFC 3339 dates and times, RFC 4122 UUIDs, dotted IPv4, e-mail). */
        private static String format(String name) {
            String date = "\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])";
            String time = "([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d+)?([Zz]|[+-]([01]\\d|2[0-3]):[0-5]\\d)";
            String octet = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
            String label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
            return switch (name) {
                case "date" -> "^" + date + "$";
                case "time" -> "^" + time + "$";
                case "date-time" -> "^" + date + "[Tt]" + time + "$";
                case "uuid" -> "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
                case "ipv4" -> "^(" + octet + "\\.){3}" + octet + "$";
                case "email" -> "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@" + label + "(\\." + label + ")+$";
                default -> throw new IllegalArgumentException("format \"" + name + "\" is not supported (supported: "
                        + "date, time, date-time, uuid, ipv4, email)");
            };
        }

        private int count(JsonNode n, String key, int dflt, String path) {
            if (!n.has(key)) {
                return dflt;
            }
            JsonNode v = n.get(key);
            if (!v.canConvertToInt() || !v.isIntegralNumber() || v.asInt() < 0) {
                throw error(path + "/" + key, "expected a count >= 0, found " + abbreviate(v));
            }
            return v.asInt();
        }

        /** A property name as it stands between the quotes of a key Jackson writes (JSON-escaped), in UTF-8. */
        private static byte[] escaped(String name) {
            String quoted = new com.fasterxml.jackson.databind.node.TextNode(name).toString();
            return quoted.substring(1, quoted.length() - 1).getBytes(StandardCharsets.UTF_8);
        }

        private static int indexOf(JsonSchema s, String name) {
            byte[] bytes = escaped(name);
            for (int i = 0; i < s.names.length; i++) {
                if (java.util.Arrays.equals(s.names[i], bytes)) {
                    return i;
                }
            }
            return -1;
        }

        private static String abbreviate(JsonNode n) {
            String text = n.toString();
            return text.length() > 40 ? text.substring(0, 40) + "..." : text;
        }
    }
}
