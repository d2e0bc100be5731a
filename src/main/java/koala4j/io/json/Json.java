package koala4j.io.json;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.StringJoiner;

/**
 * An immutable view of one JSON object, remembering the file it came from and its JSON path, so that every error
 * names the file, the key, the value found and the type expected (STYLE.md R3, R9).
 *
 * <p>It reads the {@code config.json} files that diffusers' {@code ConfigMixin} and transformers'
 * {@code PretrainedConfig} write, with the parsing rules of Python's {@code json.load} ({@code NaN} and
 * {@code Infinity} accepted), but stricter in three ways that turn silent surprises into errors: duplicate keys
 * and trailing content are rejected, and numbers are not converted between kinds ({@code 3.0} is not an int).
 *
 * <p><b>Missing versus null.</b> {@code xxxOr(key, dflt)} returns {@code dflt} only when the key is absent. A
 * present {@code null} is an error for typed accessors, because in these configs {@code null} often means something
 * other than the default ({@code "sliding_window": null} is "no window", {@code "mid_block_type": null} is "no mid
 * block"). Use {@link #isNull}, the {@code ...Opt} accessors (empty when missing or null), {@link #objectOr}, or an
 * enum constant whose {@link JsonName#jsonName()} is {@code null}.
 *
 * <p><b>Hostile input.</b> Nesting deeper than {@value #MAX_DEPTH} levels, numbers longer than Jackson's default 1000
 * digits, and strings over its default 20M characters are refused by Jackson's {@link StreamReadConstraints} before
 * any tree is built; together with the iterative tree builder this means no input can exhaust the stack.
 *
 * <p>Thread-safety: immutable; share freely.
 */
public final class Json {
    /** Configs and safetensors headers nest at most ~6 levels; 64 leaves room and bounds every recursion. */
    public static final int MAX_DEPTH = 64;
    /** Larger than any config or tokenizer file, small enough to read into one array. */
    static final long MAX_FILE_BYTES = 512L << 20;
    private static final int MAX_RENDERED = 80;

    private static final JsonMapper MAPPER = JsonMapper.builder(JsonFactory.builder()
                    .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH).build())
                    // Python's json.dump writes NaN/Infinity for float('nan')/float('inf') unless allow_nan=False.
                    .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
                    .build())
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /** The JSON type of a value, for fields that accept several ({@code int | list[int] | list[list[int]]}). */
    public enum Kind { MISSING, NULL, BOOLEAN, NUMBER, STRING, LIST, OBJECT }

    private final Path file;
    private final String path;
    private final ObjectNode node;

    private Json(Path file, String path, ObjectNode node) {
        this.file = file;
        this.path = path;
        this.node = node;
    }

    // ---------------------------------------------------------------------------------------------------- opening

    /** Reads a UTF-8 JSON file whose top level is an object; errors name the file (and line/column for syntax). */
    public static Json read(Path file) {
        Objects.requireNonNull(file, "file");
        byte[] bytes;
        try {
            long size = Files.size(file);
            if (size > MAX_FILE_BYTES) {
                throw JsonException.problem(file, "file is %d bytes, expected at most %d for a JSON document"
                        .formatted(size, MAX_FILE_BYTES), null);
            }
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw JsonException.problem(file, "cannot read file (" + e + ")", e);
        }
        return parse(bytes, file);
    }

    /** Parses {@code text} as if it had been read from a file named {@code sourceName} (used in every error). */
    public static Json parse(String text, String sourceName) {
        return parse(text, Path.of(sourceName));
    }

    /** Parses {@code text} as if it had been read from {@code file}. */
    public static Json parse(String text, Path file) {
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(file, "file");
        JsonNode root;
        try {
            root = MAPPER.readTree(text);
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String where = at == null || at.getLineNr() < 0 ? ""
                    : " at line %d, column %d".formatted(at.getLineNr(), at.getColumnNr());
            throw JsonException.problem(file, "invalid JSON" + where + ": " + abbreviate(e.getOriginalMessage(), 300), e);
        }
        if (root == null || root.isMissingNode()) {
            throw new JsonException(file, "", "an empty document", "a JSON object");
        }
        if (!root.isObject()) {
            throw new JsonException(file, "", render(root), "a JSON object");
        }
        return new Json(file, "", (ObjectNode) root);
    }

    /** Parses UTF-8 bytes strictly (malformed UTF-8 is an error naming the byte offset, never replaced). */
    public static Json parse(byte[] utf8, Path file) {
        Objects.requireNonNull(file, "file");
        return parse(decodeUtf8(utf8, file), file);
    }

    // ---------------------------------------------------------------------------------------------------- identity

    /** The file this object was read from. */
    public Path file() {
        return file;
    }

    /** The RFC 6901 JSON pointer of this object: {@code ""} for the document, e.g. {@code "/vision_config"}. */
    public String path() {
        return path;
    }

    /** Keys in document order. */
    public Set<String> keys() {
        Set<String> keys = new LinkedHashSet<>();
        node.fieldNames().forEachRemaining(keys::add);
        return Collections.unmodifiableSet(keys);
    }

    /** True when the key is present, even with a {@code null} value. */
    public boolean has(String key) {
        return node.has(key);
    }

    /** True when the key is present with a {@code null} value. */
    public boolean isNull(String key) {
        JsonNode v = node.get(key);
        return v != null && v.isNull();
    }

    public Kind kind(String key) {
        JsonNode v = node.get(key);
        if (v == null) return Kind.MISSING;
        if (v.isNull()) return Kind.NULL;
        if (v.isBoolean()) return Kind.BOOLEAN;
        if (v.isNumber()) return Kind.NUMBER;
        if (v.isTextual()) return Kind.STRING;
        if (v.isArray()) return Kind.LIST;
        return Kind.OBJECT;
    }

    /** Escape hatch: a deep copy of the underlying Jackson node (a copy, so this view stays immutable). */
    public JsonNode node() {
        return node.deepCopy();
    }

    /**
     * An error about {@code key} of this object, for checks only the caller can make, e.g.
     * {@code throw j.error("attention_head_dim", "3 entries", "4, one per entry of down_block_types")}.
     */
    public JsonException error(String key, String found, String expected) {
        return new JsonException(file, at(key), found, expected);
    }

    // ---------------------------------------------------------------------------------------------------- scalars

    public int intValue(String key) {
        return intAt(required(key, "int"), at(key));
    }

    public int intOr(String key, int dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : intAt(v, at(key));
    }

    /** Empty when the key is missing or null. */
    public Optional<Integer> intOpt(String key) {
        JsonNode v = node.get(key);
        return v == null || v.isNull() ? Optional.empty() : Optional.of(intAt(v, at(key)));
    }

    public long longValue(String key) {
        return longAt(required(key, "long"), at(key));
    }

    public long longOr(String key, long dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : longAt(v, at(key));
    }

    /** Any JSON number, including {@code NaN} and {@code ±Infinity}; integers convert exactly up to 2^53. */
    public double doubleValue(String key) {
        return doubleAt(required(key, "number"), at(key));
    }

    public double doubleOr(String key, double dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : doubleAt(v, at(key));
    }

    /** Empty when the key is missing or null. */
    public Optional<Double> doubleOpt(String key) {
        JsonNode v = node.get(key);
        return v == null || v.isNull() ? Optional.empty() : Optional.of(doubleAt(v, at(key)));
    }

    /** A number rounded to the nearest float; a finite value beyond float range is an error, not infinity. */
    public float floatValue(String key) {
        return floatAt(required(key, "float"), at(key));
    }

    public float floatOr(String key, float dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : floatAt(v, at(key));
    }

    public boolean boolValue(String key) {
        return boolAt(required(key, "boolean"), at(key));
    }

    public boolean boolOr(String key, boolean dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : boolAt(v, at(key));
    }

    public String string(String key) {
        return stringAt(required(key, "string"), at(key));
    }

    public String stringOr(String key, String dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : stringAt(v, at(key));
    }

    /** Empty when the key is missing or null. */
    public Optional<String> stringOpt(String key) {
        JsonNode v = node.get(key);
        return v == null || v.isNull() ? Optional.empty() : Optional.of(stringAt(v, at(key)));
    }

    /**
     * The constant matching a JSON string: by {@link JsonName#jsonName()} (exact) when the enum implements
     * {@link JsonName}, else by constant name, ignoring case. JSON {@code null} matches a constant whose
     * {@code jsonName()} is {@code null}. {@code dflt} is returned only when the key is missing. Anything else is
     * an error that lists the accepted values.
     */
    public <E extends Enum<E>> E enumOr(String key, Class<E> type, E dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : enumAt(v, at(key), type);
    }

    public <E extends Enum<E>> E enumValue(String key, Class<E> type) {
        return enumAt(required(key, "one of " + accepted(type)), at(key), type);
    }

    // ---------------------------------------------------------------------------------------------------- lists

    public List<Integer> intList(String key) {
        return listAt(required(key, "list of int"), at(key), "list of int", this::intAt);
    }

    public List<Integer> intListOr(String key, List<Integer> dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : listAt(v, at(key), "list of int", this::intAt);
    }

    public List<Long> longList(String key) {
        return listAt(required(key, "list of long"), at(key), "list of long", this::longAt);
    }

    public List<Double> doubleList(String key) {
        return listAt(required(key, "list of number"), at(key), "list of number", this::doubleAt);
    }

    public List<Double> doubleListOr(String key, List<Double> dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : listAt(v, at(key), "list of number", this::doubleAt);
    }

    public List<String> stringList(String key) {
        return listAt(required(key, "list of string"), at(key), "list of string", this::stringAt);
    }

    public List<String> stringListOr(String key, List<String> dflt) {
        JsonNode v = node.get(key);
        return v == null ? dflt : listAt(v, at(key), "list of string", this::stringAt);
    }

    /** A list of lists of ints, e.g. diffusers' per-layer {@code transformer_layers_per_block: [[1], [1], [2]]}. */
    public List<List<Integer>> intLists(String key) {
        return listAt(required(key, "list of list of int"), at(key), "list of list of int",
                (v, p) -> listAt(v, p, "list of int", this::intAt));
    }

    /**
     * An "int or list of ints" field, the way diffusers expands them ({@code if isinstance(x, int): x = [x] * n}):
     * an int becomes {@code repeat} copies; a list is returned as it is (its length is the caller's to check).
     */
    public List<Integer> intOrIntList(String key, int repeat) {
        return intOrIntListAt(required(key, "int or list of int"), at(key), repeat);
    }

    /** {@link #intOrIntList} with {@code dflt} repeated when the key is missing. */
    public List<Integer> intOrIntListOr(String key, int repeat, int dflt) {
        JsonNode v = node.get(key);
        return v == null ? Collections.nCopies(checkRepeat(repeat), dflt) : intOrIntListAt(v, at(key), repeat);
    }

    /** An object whose values are all strings, in document order (e.g. safetensors' {@code __metadata__}). */
    public Map<String, String> stringMap(String key) {
        String p = at(key);
        JsonNode v = required(key, "object of strings");
        if (!v.isObject()) throw new JsonException(file, p, render(v), "object of strings");
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : v.properties()) {
            out.put(e.getKey(), stringAt(e.getValue(), p + "/" + escape(e.getKey())));
        }
        return Collections.unmodifiableMap(out);
    }

    // ---------------------------------------------------------------------------------------------------- objects

    public Json object(String key) {
        return objectAt(required(key, "object"), at(key));
    }

    /** Empty when the key is missing or null (transformers treats {@code "text_config": null} as "use the default"). */
    public Optional<Json> objectOr(String key) {
        JsonNode v = node.get(key);
        return v == null || v.isNull() ? Optional.empty() : Optional.of(objectAt(v, at(key)));
    }

    public List<Json> objects(String key) {
        return listAt(required(key, "list of object"), at(key), "list of object", this::objectAt);
    }

    /** Quotes and escapes {@code s} as a JSON string literal (Jackson's encoder; non-ASCII is kept as is). */
    public static String quote(String s) {
        return "\"" + new String(JsonStringEncoder.getInstance().quoteAsString(s)) + "\"";
    }

    /** {@code file#path} and the start of the object's JSON, for debugging. */
    @Override
    public String toString() {
        return file + "#" + path + " " + abbreviate(node.toString(), 200);
    }

    // ---------------------------------------------------------------------------------------------------- internals

    private interface Conv<T> {
        T at(JsonNode value, String path);
    }

    private String at(String key) {
        return path + "/" + escape(key);
    }

    private JsonNode required(String key, String expected) {
        JsonNode v = node.get(key);
        if (v == null) throw new JsonException(file, at(key), null, expected);
        return v;
    }

    private int intAt(JsonNode v, String p) {
        if (!v.isIntegralNumber()) throw new JsonException(file, p, render(v), "int");
        if (!v.canConvertToInt()) throw new JsonException(file, p, render(v), "int in [-2147483648, 2147483647]");
        return v.intValue();
    }

    private long longAt(JsonNode v, String p) {
        if (!v.isIntegralNumber()) throw new JsonException(file, p, render(v), "integer");
        if (!v.canConvertToLong()) throw new JsonException(file, p, render(v), "integer in [-2^63, 2^63)");
        return v.longValue();
    }

    private double doubleAt(JsonNode v, String p) {
        if (!v.isNumber()) throw new JsonException(file, p, render(v), "number");
        return v.doubleValue();
    }

    private float floatAt(JsonNode v, String p) {
        double d = doubleAt(v, p);
        float f = (float) d;
        if (Float.isInfinite(f) && !Double.isInfinite(d)) {
            throw new JsonException(file, p, render(v), "float (magnitude at most 3.4028235E38)");
        }
        return f;
    }

    private boolean boolAt(JsonNode v, String p) {
        if (!v.isBoolean()) throw new JsonException(file, p, render(v), "boolean");
        return v.booleanValue();
    }

    private String stringAt(JsonNode v, String p) {
        if (!v.isTextual()) throw new JsonException(file, p, render(v), "string");
        return v.textValue();
    }

    private Json objectAt(JsonNode v, String p) {
        if (!v.isObject()) throw new JsonException(file, p, render(v), "object");
        return new Json(file, p, (ObjectNode) v);
    }

    private <E extends Enum<E>> E enumAt(JsonNode v, String p, Class<E> type) {
        boolean named = JsonName.class.isAssignableFrom(type);
        if (v.isNull() || v.isTextual()) {
            String s = v.textValue();   // null for JSON null
            for (E c : type.getEnumConstants()) {
                if (named ? Objects.equals(((JsonName) c).jsonName(), s) : s != null && c.name().equalsIgnoreCase(s)) {
                    return c;
                }
            }
        }
        throw new JsonException(file, p, render(v), "one of " + accepted(type));
    }

    private static <E extends Enum<E>> String accepted(Class<E> type) {
        StringJoiner names = new StringJoiner(", ");
        for (E c : type.getEnumConstants()) {
            String name = c instanceof JsonName n ? n.jsonName() : c.name();
            names.add(name == null ? "null" : quote(name));
        }
        return names.toString();
    }

    private <T> List<T> listAt(JsonNode v, String p, String expected, Conv<T> element) {
        if (!v.isArray()) throw new JsonException(file, p, render(v), expected);
        List<T> out = new ArrayList<>(v.size());
        for (int i = 0; i < v.size(); i++) {
            out.add(element.at(v.get(i), p + "/" + i));
        }
        return Collections.unmodifiableList(out);
    }

    private List<Integer> intOrIntListAt(JsonNode v, String p, int repeat) {
        checkRepeat(repeat);
        if (v.isArray()) return listAt(v, p, "int or list of int", this::intAt);
        if (!v.isIntegralNumber()) throw new JsonException(file, p, render(v), "int or list of int");
        return Collections.nCopies(repeat, intAt(v, p));
    }

    private static int checkRepeat(int repeat) {
        if (repeat < 0) throw new IllegalArgumentException("repeat is " + repeat + ", expected >= 0");
        return repeat;
    }

    /** RFC 6901: '~' and '/' inside a key become "~0" and "~1". */
    static String escape(String key) {
        return key.indexOf('~') < 0 && key.indexOf('/') < 0 ? key : key.replace("~", "~0").replace("/", "~1");
    }

    /** The value as compact JSON, cut short so a hostile multi-megabyte value cannot flood a message. */
    static String render(JsonNode v) {
        return abbreviate(v.toString(), MAX_RENDERED);
    }

    static String abbreviate(String s, int max) {
        if (s == null) return "null";
        return s.length() <= max ? s : s.substring(0, max - 1) + "…";
    }

    private static String decodeUtf8(byte[] bytes, Path file) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);   // UTF-8 never decodes to more chars than bytes
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) result = decoder.flush(out);
        if (result.isError()) {
            int at = in.position();
            throw JsonException.problem(file, "not valid UTF-8: malformed sequence at byte %d (0x%02X)"
                    .formatted(at, at < bytes.length ? bytes[at] & 0xFF : 0), null);
        }
        return out.flip().toString();
    }
}
