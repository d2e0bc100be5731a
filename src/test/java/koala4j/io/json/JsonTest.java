package koala4j.io.json;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

class JsonTest {
    // Shaped like a diffusers UNet config.json, plus the awkward values real files contain.
    private static final String CONFIG = """
            {
              "in_channels": 4,
              "big": 3000000000,
              "huge": 123456789012345678901234567890,
              "norm_eps": 1e-05,
              "int_as_float_field": 2,
              "float_big": 1e300,
              "nan": NaN,
              "neg_inf": -Infinity,
              "flip_sin_to_cos": true,
              "_class_name": "UNet2DConditionModel",
              "sliding_window": null,
              "three_point_o": 3.0,
              "block_out_channels": [320, 640, 1280],
              "mixed": [1, "two", 3],
              "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
              "ratios": [0.5, 1, 2.5],
              "transformer_layers_per_block": [[1], [1], [2]],
              "ragged": [[1], 2],
              "attention_head_dim": 8,
              "head_list": [5, 10, 20],
              "act_fn": "silu",
              "mid_block_type": null,
              "addition_embed_type": "text_time",
              "vision_config": {"hidden_size": 32, "inner": {"n": "x"}},
              "blocks": [{"a": 1}, {"a": 2}],
              "meta": {"format": "pt", "note": "ü"},
              "bad_meta": {"format": 3},
              "a/b~c": "odd key"
            }
            """;

    private final Json j = Json.parse(CONFIG, "config.json");

    enum Act { GELU, GELU_TANH, SILU }

    enum MidBlock implements JsonName {
        CROSS_ATTN("UNetMidBlock2DCrossAttn"), SIMPLE("UNetMidBlock2DSimpleCrossAttn"), NONE(null);

        private final String jsonName;

        MidBlock(String jsonName) {
            this.jsonName = jsonName;
        }

        @Override
        public String jsonName() {
            return jsonName;
        }
    }

    enum AddEmbed implements JsonName {
        TEXT("text"), TEXT_TIME("text_time");

        private final String jsonName;

        AddEmbed(String jsonName) {
            this.jsonName = jsonName;
        }

        @Override
        public String jsonName() {
            return jsonName;
        }
    }

    private static void fails(String message, Executable call) {
        JsonException e = assertThrows(JsonException.class, call);
        assertEquals(message, e.getMessage());
    }

    // ------------------------------------------------------------------------------------------------ scalars

    @Test
    void ints() {
        assertEquals(4, j.intValue("in_channels"));
        assertEquals(4, j.intOr("in_channels", 9));
        assertEquals(9, j.intOr("absent", 9));
        assertEquals(Optional.of(4), j.intOpt("in_channels"));
        assertEquals(Optional.empty(), j.intOpt("absent"));
        assertEquals(Optional.empty(), j.intOpt("sliding_window"));
        fails("config.json: /absent: missing, expected int", () -> j.intValue("absent"));
        fails("config.json: /_class_name: found \"UNet2DConditionModel\", expected int", () -> j.intOr("_class_name", 0));
        fails("config.json: /three_point_o: found 3.0, expected int", () -> j.intValue("three_point_o"));
        fails("config.json: /big: found 3000000000, expected int in [-2147483648, 2147483647]", () -> j.intValue("big"));
        // null is not "missing": in these configs it often means something other than the default
        fails("config.json: /sliding_window: found null, expected int", () -> j.intOr("sliding_window", 4096));
    }

    @Test
    void errorCarriesItsParts() {
        JsonException e = assertThrows(JsonException.class, () -> j.intValue("_class_name"));
        assertEquals(Path.of("config.json"), e.file());
        assertEquals("/_class_name", e.path());
        assertEquals("\"UNet2DConditionModel\"", e.found());
        assertEquals("int", e.expected());
        assertEquals("/_class_name: found \"UNet2DConditionModel\", expected int", e.detail());
        JsonException missing = assertThrows(JsonException.class, () -> j.string("absent"));
        assertNull(missing.found());
        assertEquals("string", missing.expected());
    }

    @Test
    void longs() {
        assertEquals(3_000_000_000L, j.longOr("big", 0));
        assertEquals(3_000_000_000L, j.longValue("big"));
        assertEquals(7L, j.longOr("absent", 7));
        fails("config.json: /huge: found 123456789012345678901234567890, expected integer in [-2^63, 2^63)",
                () -> j.longOr("huge", 0));
        fails("config.json: /norm_eps: found 1.0E-5, expected integer", () -> j.longValue("norm_eps"));
        fails("config.json: /absent: missing, expected long", () -> j.longValue("absent"));
    }

    @Test
    void doublesAndFloats() {
        assertEquals(1e-5, j.doubleOr("norm_eps", 0));
        assertEquals(1e-5, j.doubleValue("norm_eps"));
        assertEquals(2.0, j.doubleOr("int_as_float_field", 0), "an int is a valid float, as in Python");
        assertTrue(Double.isNaN(j.doubleOr("nan", 0)));
        assertEquals(Double.NEGATIVE_INFINITY, j.doubleOr("neg_inf", 0));
        assertEquals(0.25, j.doubleOr("absent", 0.25));
        assertEquals(Optional.of(1e-5), j.doubleOpt("norm_eps"));
        assertEquals(Optional.empty(), j.doubleOpt("sliding_window"));
        assertEquals(1e-5f, j.floatOr("norm_eps", 0));
        assertEquals(1e-5f, j.floatValue("norm_eps"));
        assertEquals(0.5f, j.floatOr("absent", 0.5f));
        assertEquals(Float.NEGATIVE_INFINITY, j.floatOr("neg_inf", 0), "an infinity stays infinite");
        fails("config.json: /float_big: found 1.0E300, expected float (magnitude at most 3.4028235E38)",
                () -> j.floatOr("float_big", 0));
        fails("config.json: /act_fn: found \"silu\", expected number", () -> j.doubleOr("act_fn", 0));
        fails("config.json: /absent: missing, expected float", () -> j.floatValue("absent"));
    }

    @Test
    void booleansAndStrings() {
        assertTrue(j.boolOr("flip_sin_to_cos", false));
        assertTrue(j.boolValue("flip_sin_to_cos"));
        assertFalse(j.boolOr("absent", false));
        fails("config.json: /in_channels: found 4, expected boolean", () -> j.boolOr("in_channels", false));
        assertEquals("UNet2DConditionModel", j.string("_class_name"));
        assertEquals("UNet2DConditionModel", j.stringOr("_class_name", "x"));
        assertEquals("x", j.stringOr("absent", "x"));
        assertEquals(Optional.of("silu"), j.stringOpt("act_fn"));
        assertEquals(Optional.empty(), j.stringOpt("mid_block_type"));
        fails("config.json: /in_channels: found 4, expected string", () -> j.string("in_channels"));
        fails("config.json: /absent: missing, expected string", () -> j.string("absent"));
        fails("config.json: /mid_block_type: found null, expected string", () -> j.stringOr("mid_block_type", "x"));
    }

    @Test
    void enums() {
        assertEquals(Act.SILU, j.enumOr("act_fn", Act.class, Act.GELU), "constant names match ignoring case");
        assertEquals(Act.GELU, j.enumOr("absent", Act.class, Act.GELU));
        assertEquals(AddEmbed.TEXT_TIME, j.enumOr("addition_embed_type", AddEmbed.class, AddEmbed.TEXT));
        assertEquals(AddEmbed.TEXT_TIME, j.enumValue("addition_embed_type", AddEmbed.class));
        // null selects the constant whose jsonName() is null, not the default
        assertEquals(MidBlock.NONE, j.enumOr("mid_block_type", MidBlock.class, MidBlock.CROSS_ATTN));
        assertEquals(MidBlock.CROSS_ATTN, j.enumOr("absent", MidBlock.class, MidBlock.CROSS_ATTN));
        fails("config.json: /addition_embed_type: found \"text_time\", expected one of \"GELU\", \"GELU_TANH\", \"SILU\"",
                () -> j.enumOr("addition_embed_type", Act.class, Act.GELU));
        fails("config.json: /act_fn: found \"silu\", expected one of \"UNetMidBlock2DCrossAttn\", \"UNetMidBlock2DSimpleCrossAttn\", null",
                () -> j.enumOr("act_fn", MidBlock.class, MidBlock.NONE));
        fails("config.json: /mid_block_type: found null, expected one of \"text\", \"text_time\"",
                () -> j.enumOr("mid_block_type", AddEmbed.class, AddEmbed.TEXT));
        fails("config.json: /in_channels: found 4, expected one of \"GELU\", \"GELU_TANH\", \"SILU\"",
                () -> j.enumOr("in_channels", Act.class, Act.GELU));
        fails("config.json: /absent: missing, expected one of \"text\", \"text_time\"",
                () -> j.enumValue("absent", AddEmbed.class));
    }

    // ------------------------------------------------------------------------------------------------ lists

    @Test
    void intLists() {
        assertEquals(List.of(320, 640, 1280), j.intList("block_out_channels"));
        assertEquals(List.of(320, 640, 1280), j.intListOr("block_out_channels", List.of()));
        assertEquals(List.of(1), j.intListOr("absent", List.of(1)));
        assertEquals(List.of(320L, 640L, 1280L), j.longList("block_out_channels"));
        fails("config.json: /mixed/1: found \"two\", expected int", () -> j.intList("mixed"));
        fails("config.json: /in_channels: found 4, expected list of int", () -> j.intList("in_channels"));
        fails("config.json: /absent: missing, expected list of int", () -> j.intList("absent"));
        fails("config.json: /mixed/1: found \"two\", expected integer", () -> j.longList("mixed"));
        assertThrows(UnsupportedOperationException.class, () -> j.intList("block_out_channels").add(1));
    }

    @Test
    void otherLists() {
        assertEquals(List.of("DownBlock2D", "CrossAttnDownBlock2D"), j.stringList("down_block_types"));
        assertEquals(List.of("z"), j.stringListOr("absent", List.of("z")));
        fails("config.json: /block_out_channels/0: found 320, expected string", () -> j.stringList("block_out_channels"));
        assertEquals(List.of(0.5, 1.0, 2.5), j.doubleList("ratios"));
        assertEquals(List.of(0.5, 1.0, 2.5), j.doubleListOr("ratios", List.of()));
        assertEquals(List.of(3.0), j.doubleListOr("absent", List.of(3.0)));
        fails("config.json: /mixed/1: found \"two\", expected number", () -> j.doubleList("mixed"));
        fails("config.json: /sliding_window: found null, expected list of number", () -> j.doubleListOr("sliding_window", List.of()));
    }

    @Test
    void nestedIntLists() {
        assertEquals(List.of(List.of(1), List.of(1), List.of(2)), j.intLists("transformer_layers_per_block"));
        fails("config.json: /ragged/1: found 2, expected list of int", () -> j.intLists("ragged"));
        fails("config.json: /block_out_channels/0: found 320, expected list of int", () -> j.intLists("block_out_channels"));
        fails("config.json: /in_channels: found 4, expected list of list of int", () -> j.intLists("in_channels"));
    }

    @Test
    void intOrIntList() {
        assertEquals(List.of(8, 8, 8), j.intOrIntList("attention_head_dim", 3));
        assertEquals(List.of(5, 10, 20), j.intOrIntList("head_list", 3), "a list is kept as it is");
        assertEquals(List.of(), j.intOrIntList("attention_head_dim", 0));
        assertEquals(List.of(1, 1), j.intOrIntListOr("absent", 2, 1));
        assertEquals(List.of(8, 8), j.intOrIntListOr("attention_head_dim", 2, 1));
        fails("config.json: /act_fn: found \"silu\", expected int or list of int", () -> j.intOrIntList("act_fn", 2));
        fails("config.json: /transformer_layers_per_block/0: found [1], expected int",
                () -> j.intOrIntList("transformer_layers_per_block", 3));
        fails("config.json: /absent: missing, expected int or list of int", () -> j.intOrIntList("absent", 3));
        assertThrows(IllegalArgumentException.class, () -> j.intOrIntList("attention_head_dim", -1));
    }

    @Test
    void stringMaps() {
        assertEquals(Map.of("format", "pt", "note", "ü"), j.stringMap("meta"));
        assertEquals(List.of("format", "note"), List.copyOf(j.stringMap("meta").keySet()), "document order");
        fails("config.json: /bad_meta/format: found 3, expected string", () -> j.stringMap("bad_meta"));
        fails("config.json: /blocks: found [{\"a\":1},{\"a\":2}], expected object of strings", () -> j.stringMap("blocks"));
    }

    // ------------------------------------------------------------------------------------------------ objects

    @Test
    void nestedObjectsRememberTheirPath() {
        Json vision = j.object("vision_config");
        assertEquals("/vision_config", vision.path());
        assertEquals(Path.of("config.json"), vision.file());
        assertEquals(32, vision.intValue("hidden_size"));
        Json inner = vision.object("inner");
        assertEquals("/vision_config/inner", inner.path());
        fails("config.json: /vision_config/inner/n: found \"x\", expected int", () -> inner.intValue("n"));
        fails("config.json: /vision_config/absent: missing, expected object", () -> vision.object("absent"));
        fails("config.json: /in_channels: found 4, expected object", () -> j.object("in_channels"));
    }

    @Test
    void optionalAndListedObjects() {
        assertTrue(j.objectOr("vision_config").isPresent());
        assertTrue(j.objectOr("absent").isEmpty());
        assertTrue(j.objectOr("mid_block_type").isEmpty(), "null means 'not given' for a sub-config");
        fails("config.json: /in_channels: found 4, expected object", () -> j.objectOr("in_channels"));
        List<Json> blocks = j.objects("blocks");
        assertEquals(2, blocks.size());
        assertEquals("/blocks/1", blocks.get(1).path());
        assertEquals(2, blocks.get(1).intValue("a"));
        fails("config.json: /block_out_channels/0: found 320, expected object", () -> j.objects("block_out_channels"));
        fails("config.json: /absent: missing, expected list of object", () -> j.objects("absent"));
    }

    @Test
    void keysPresenceAndKinds() {
        assertEquals("in_channels", j.keys().iterator().next());
        assertEquals(28, j.keys().size());
        assertTrue(j.has("sliding_window"));
        assertTrue(j.isNull("sliding_window"));
        assertFalse(j.isNull("in_channels"));
        assertFalse(j.isNull("absent"));
        assertFalse(j.has("absent"));
        assertEquals(Json.Kind.MISSING, j.kind("absent"));
        assertEquals(Json.Kind.NULL, j.kind("sliding_window"));
        assertEquals(Json.Kind.BOOLEAN, j.kind("flip_sin_to_cos"));
        assertEquals(Json.Kind.NUMBER, j.kind("norm_eps"));
        assertEquals(Json.Kind.STRING, j.kind("act_fn"));
        assertEquals(Json.Kind.LIST, j.kind("transformer_layers_per_block"));
        assertEquals(Json.Kind.OBJECT, j.kind("vision_config"));
    }

    @Test
    void keysWithSlashOrTildeAreEscapedInPaths() {
        fails("config.json: /a~1b~0c: found \"odd key\", expected int", () -> j.intValue("a/b~c"));
    }

    @Test
    void nodeIsACopyAndTheViewStaysImmutable() {
        ObjectNode copy = (ObjectNode) j.node();
        copy.put("in_channels", 99);
        assertEquals(4, j.intValue("in_channels"));
        assertThrows(UnsupportedOperationException.class, () -> j.keys().clear());
    }

    @Test
    void callerErrorsNameTheFileAndKey() {
        JsonException e = j.object("vision_config").error("hidden_size", "32", "a multiple of 64");
        assertEquals("config.json: /vision_config/hidden_size: found 32, expected a multiple of 64", e.getMessage());
    }

    @Test
    void toStringShowsWhereAndWhat() {
        assertEquals("config.json#/vision_config/inner {\"n\":\"x\"}", j.object("vision_config").object("inner").toString());
    }

    @Test
    void longFoundValuesAreAbbreviated() {
        Json big = Json.parse("{\"k\": \"" + "x".repeat(100_000) + "\"}", "big.json");
        JsonException e = assertThrows(JsonException.class, () -> big.intValue("k"));
        assertTrue(e.found().length() <= 80, e.found());
        assertTrue(e.getMessage().length() < 200);
    }

    @Test
    void longKeysAreAbbreviatedInMessagesButNotInPaths() {
        String key = "k".repeat(10_000);
        Json big = Json.parse("{\"" + key + "\": {\"n\": \"x\"}}", "big.json");
        JsonException e = assertThrows(JsonException.class, () -> big.object(key).intValue("n"));
        assertEquals("big.json: /" + "k".repeat(59) + "…/n: found \"x\", expected int", e.getMessage());
        assertEquals("/" + key + "/n", e.path());
    }

    // ------------------------------------------------------------------------------------------------ parsing

    @Test
    void syntaxErrorsGiveLineAndColumn() {
        JsonException e = assertThrows(JsonException.class, () -> Json.parse("{\n  \"a\": 1,\n  \"b\": }\n", "c.json"));
        assertTrue(e.getMessage().startsWith("c.json: invalid JSON at line 3, column 8: "), e.getMessage());
        assertEquals(Path.of("c.json"), e.file());
        assertEquals("", e.path());
    }

    @Test
    void documentMustBeOneObject() {
        fails("c.json: (document): found [1,2], expected a JSON object", () -> Json.parse("[1,2]", "c.json"));
        fails("c.json: (document): found 3, expected a JSON object", () -> Json.parse("3", "c.json"));
        fails("c.json: (document): found an empty document, expected a JSON object", () -> Json.parse("  ", "c.json"));
        JsonException trailing = assertThrows(JsonException.class, () -> Json.parse("{} {}", "c.json"));
        assertTrue(trailing.getMessage().startsWith("c.json: invalid JSON at line 1, column 4: Trailing token"), trailing.getMessage());
    }

    @Test
    void duplicateKeysAreRejected() {
        JsonException e = assertThrows(JsonException.class, () -> Json.parse("{\"a\": 1, \"a\": 2}", "c.json"));
        assertTrue(e.getMessage().startsWith("c.json: invalid JSON at line 1"), e.getMessage());
        assertTrue(e.getMessage().contains("Duplicate field 'a'"), e.getMessage());
    }

    @Test
    void hostileNestingIsRefusedWithoutStackOverflow() {
        String deepArrays = "{\"a\":" + "[".repeat(200_000) + "]".repeat(200_000) + "}";
        JsonException e = assertThrows(JsonException.class, () -> Json.parse(deepArrays, "deep.json"));
        assertTrue(e.getMessage().contains("nesting depth"), e.getMessage());
        StringBuilder deepObjects = new StringBuilder();
        for (int i = 0; i < 100_000; i++) deepObjects.append("{\"a\":");
        deepObjects.append("1").append("}".repeat(100_000));
        assertThrows(JsonException.class, () -> Json.parse(deepObjects.toString(), "deep.json"));
        String ok = "{\"a\":" + "[".repeat(Json.MAX_DEPTH - 1) + "]".repeat(Json.MAX_DEPTH - 1) + "}";
        assertEquals(Json.Kind.LIST, Json.parse(ok, "ok.json").kind("a"));
    }

    @Test
    void overlongNumbersAreRefused() {
        String digits = "9".repeat(5000);
        JsonException e = assertThrows(JsonException.class, () -> Json.parse("{\"n\": " + digits + "}", "n.json"));
        assertTrue(e.getMessage().startsWith("n.json: invalid JSON"), e.getMessage());
    }

    @Test
    void readNamesTheFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("config.json");
        Files.writeString(file, CONFIG);
        Json read = Json.read(file);
        assertEquals(file, read.file());
        assertEquals(4, read.intValue("in_channels"));
        fails(file + ": /absent: missing, expected int", () -> read.intValue("absent"));

        Path missing = dir.resolve("nope.json");
        JsonException e = assertThrows(JsonException.class, () -> Json.read(missing));
        assertTrue(e.getMessage().startsWith(missing + ": cannot read file (java.nio.file.NoSuchFileException"), e.getMessage());

        Path broken = dir.resolve("broken.json");
        Files.writeString(broken, "{\"a\": [1, 2}");
        JsonException syntax = assertThrows(JsonException.class, () -> Json.read(broken));
        assertTrue(syntax.getMessage().startsWith(broken + ": invalid JSON at line 1, column 12: "), syntax.getMessage());
    }

    @Test
    void malformedUtf8IsAnErrorNotAReplacement(@TempDir Path dir) throws Exception {
        byte[] prefix = "{\"name\": \"".getBytes(StandardCharsets.US_ASCII);   // 10 bytes
        byte[] bytes = new byte[prefix.length + 3];
        System.arraycopy(prefix, 0, bytes, 0, prefix.length);
        bytes[10] = (byte) 0xC3;   // start of a 2-byte sequence, cut off by '"'
        bytes[11] = '"';
        bytes[12] = '}';
        Path file = dir.resolve("bad.json");
        Files.write(file, bytes);
        fails(file + ": not valid UTF-8: malformed sequence at byte 10 (0xC3)", () -> Json.read(file));
        // an encoded surrogate (CESU-8) is not UTF-8 either
        byte[] cesu = "{\"a\": \"\u0000\u0000\u0000\"}".getBytes(StandardCharsets.UTF_8);
        cesu[7] = (byte) 0xED;
        cesu[8] = (byte) 0xA0;
        cesu[9] = (byte) 0x80;
        fails("x.json: not valid UTF-8: malformed sequence at byte 7 (0xED)", () -> Json.parse(cesu, Path.of("x.json")));
        assertEquals("한국어", Json.parse("{\"k\": \"한국어\"}".getBytes(StandardCharsets.UTF_8), Path.of("k.json")).string("k"));
    }

    @Test
    void quoteEscapesLikeJson() {
        assertEquals("\"a\\\"b\\\\c\\n\\u0001ü한\"", Json.quote("a\"b\\c\n\u0001ü한"));
        assertEquals("a\"b\\c\n\u0001ü한", Json.parse("{\"k\": " + Json.quote("a\"b\\c\n\u0001ü한") + "}", "q.json").string("k"));
    }
}
