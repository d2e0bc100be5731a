package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import koala4j.testing.TinyChatModels;

/**
 * JSON output mode on the e2e tiny LLaMA (random weights, so the JSON is the mask's doing): greedy and sampled runs
 * either end with a JSON object that Jackson parses (stop reason FORMAT) or, cut by max_new_tokens, with bytes that
 * still start one; eos never comes before the object closes.
 */
class JsonOutputTest {

    private static VisionChat llama;

    @BeforeAll
    static void load() {
        llama = TinyChatModels.loadLlama();
    }

    @AfterAll
    static void close() {
        llama.close();
    }

    @Test
    void everyRunIsAJsonObjectOrItsStart() throws Exception {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        int[] prompt = llama.tokenizer().encode("Answer in JSON: the koala is", true);
        ObjectMapper jackson = new ObjectMapper();
        int complete = 0;
        for (int seed = -1; seed < 12; seed++) {
            SamplingParams p = SamplingParams.greedy(120, List.of(2)).withFormat(SamplingParams.Format.JSON);
            if (seed >= 0) {
                p = p.withSampling(1.0, 0, 1.0, seed);
            }
            var r = gen.generate(prompt, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            JsonPrefix check = new JsonPrefix();
            for (int id : r.tokenIds()) {
                assertTrue(check.accept(llama.tokenBytes(id)), "seed " + seed + ": " + r.text());
            }
            if (r.stopReason() == TextGeneration.StopReason.FORMAT) {
                assertTrue(check.complete());
                assertTrue(jackson.readTree(r.text()).isObject(), r.text());
                complete++;
            } else {
                assertEquals(TextGeneration.StopReason.MAX_NEW_TOKENS, r.stopReason(), "seed " + seed + ": " + r.text());
                assertEquals(120, r.tokenIds().length);
            }
        }
        assertTrue(complete > 0, "some runs close their object within 120 tokens");
    }

    /** With a schema every finished answer is an instance of it; the keys it requires are all there. */
    @Test
    void schemaRunsGiveInstances() throws Exception {
        ObjectMapper jackson = new ObjectMapper();
        JsonSchema schema = JsonSchema.compile(jackson.readTree("""
                {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
                   "age": {"type": "integer"}, "kind": {"enum": ["koala", "panda"]},
                   "tags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3}},
                 "required": ["name", "age", "kind", "tags"], "additionalProperties": false}"""), "schema");
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        int[] prompt = llama.tokenizer().encode("A koala as JSON:", true);
        int complete = 0;
        for (int seed = 0; seed < 8; seed++) {
            SamplingParams p = SamplingParams.greedy(150, List.of(2)).withFormat(new SamplingParams.Format(schema))
                    .withSampling(1.0, 0, 1.0, seed);
            var r = gen.generate(prompt, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            if (r.stopReason() != TextGeneration.StopReason.FORMAT) {
                continue;
            }
            complete++;
            var node = jackson.readTree(r.text());
            assertEquals(4, node.size(), r.text());
            assertTrue(node.get("name").isTextual() && node.get("name").asText().codePointCount(0,
                    node.get("name").asText().length()) <= 6, r.text());
            assertTrue(node.get("age").isIntegralNumber(), r.text());
            assertTrue(List.of("koala", "panda").contains(node.get("kind").asText()), r.text());
            assertTrue(node.get("tags").isArray() && node.get("tags").size() <= 3, r.text());
            node.get("tags").forEach(t -> assertTrue(t.isBoolean(), r.text()));
        }
        assertTrue(complete > 0, "some runs finish their object within 150 tokens");
    }

    /**
     * A union of objects that start alike (tool calls: {"call": {"name": const, "args": ...}} per tool, and
     * {"response": string}): every finished answer is an instance of one alternative, with that alternative's
     * arguments; over the seeds more than one alternative is taken.
     */
    @Test
    void unionsOfObjectsThatStartAlike() throws Exception {
        ObjectMapper jackson = new ObjectMapper();
        List<String> docs = List.of("""
                {"type": "object", "properties": {"call": {"type": "object", "properties": {"name": {"const": "a"},
                  "args": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
                  "additionalProperties": false}}, "required": ["name", "args"], "additionalProperties": false}},
                 "required": ["call"], "additionalProperties": false}""", """
                {"type": "object", "properties": {"call": {"type": "object", "properties": {"name": {"const": "b"},
                  "args": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
                  "additionalProperties": false}}, "required": ["name", "args"], "additionalProperties": false}},
                 "required": ["call"], "additionalProperties": false}""", """
                {"type": "object", "properties": {"response": {"type": "string", "maxLength": 8}},
                 "required": ["response"], "additionalProperties": false}""");
        List<JsonSchema> alternatives = new java.util.ArrayList<>();
        for (String d : docs) {
            alternatives.add(JsonSchema.compile(jackson.readTree(d), "alternative"));
        }
        JsonSchema union = JsonSchema.union(alternatives);
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        int[] prompt = llama.tokenizer().encode("Call a tool:", true);
        java.util.Set<String> taken = new java.util.TreeSet<>();
        for (int seed = 0; seed < 24; seed++) {
            SamplingParams p = SamplingParams.greedy(120, List.of(2)).withFormat(new SamplingParams.Format(union))
                    .withSampling(1.0, 0, 1.0, seed);
            var r = gen.generate(prompt, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            if (r.stopReason() != TextGeneration.StopReason.FORMAT) {
                continue;
            }
            var node = jackson.readTree(r.text());
            assertEquals(1, node.size(), r.text());
            if (node.has("response")) {
                String text = node.get("response").asText();
                assertTrue(node.get("response").isTextual() && text.codePointCount(0, text.length()) <= 8, r.text());
                taken.add("response");
                continue;
            }
            var call = node.get("call");
            assertEquals(2, call.size(), r.text());
            String name = call.get("name").asText();
            var args = call.get("args");
            assertEquals(1, args.size(), r.text());
            assertTrue(name.equals("a") ? args.get("n").isIntegralNumber() : name.equals("b") && args.get("ok")
                    .isBoolean(), r.text());
            taken.add(name);
        }
        assertTrue(taken.size() >= 2, "alternatives taken: " + taken);
        // only objects
        assertThrows(IllegalArgumentException.class, () -> JsonSchema.union(List.of()));
        assertThrows(IllegalArgumentException.class, () -> JsonSchema.union(List.of(JsonSchema.ANY)));
    }

    @Test
    void noBeamsAndTheTextOfEachTokenIsItsBytes() {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        SamplingParams beams = SamplingParams.greedy(8, List.of(2)).withFormat(SamplingParams.Format.JSON)
                .withBeams(new SamplingParams.Beams(2, 1f, TextGenerationConfig.EarlyStopping.FALSE));
        var e = assertThrows(IllegalArgumentException.class,
                () -> gen.generate(new int[] {1, 310}, beams, TextGeneration.TokenListener.NONE, Cancel.NEVER));
        assertTrue(e.getMessage().contains("JSON output with num_beams 2"), e.getMessage());
        // a run's streamed text equals its bytes decoded (the answer starts with '{', no leading-space piece is lost)
        var r = gen.generate(new int[] {1, 310}, SamplingParams.greedy(40, List.of(2))
                .withFormat(SamplingParams.Format.JSON), TextGeneration.TokenListener.NONE, Cancel.NEVER);
        StringBuilder bytes = new StringBuilder();
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int id : r.tokenIds()) {
            out.writeBytes(llama.tokenBytes(id));
        }
        bytes.append(out.toString(StandardCharsets.UTF_8));
        assertEquals(bytes.toString().strip(), r.text().strip());
    }
}
