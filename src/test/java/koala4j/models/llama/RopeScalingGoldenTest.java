package koala4j.models.llama;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.floats;
import static koala4j.testing.JsonArrays.longs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.models.Checkpoint;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Quantization;

/**
 * YaRN and LongRoPE against golden/rope_scaling (made by its make_rope_scaling.py: v4/ with transformers 4.57.6 from
 * rope_scaling configs, v5/ with 5.18 from rope_parameters ones; torch 2.13 CPU fp32). inv_freq within 1e-6
 * relative (both sides compute it in float32; Math.pow and torch's pow may differ in the last bit), cos and sin within
 * 2e-6 (float cos/sin of the same arguments), logits |Δ| <= 1e-4 + 1e-4·|ref| as LlamaGoldenTest, ids exact.
 */
class RopeScalingGoldenTest {

    private final Ops ops = new CpuOps();

    private static JsonNode json(Path file) throws IOException {
        return new ObjectMapper().readTree(file.toFile());
    }

    private static LlamaConfig config(Path folder) {
        return LlamaConfig.from(Json.read(folder.resolve("config.json")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"v4", "v5"})
    void frequenciesAttentionFactorAndCosSinMatchTransformers(String version) throws IOException {
        Path dir = resource("golden/rope_scaling/" + version);
        JsonNode cases = json(dir.resolve("rope.json")).get("cases");
        assertEquals(9, cases.size());
        for (var it = cases.fields(); it.hasNext(); ) {
            var entry = it.next();
            String name = version + "/" + entry.getKey();
            JsonNode golden = entry.getValue();
            LlamaConfig c = config(dir.resolve(entry.getKey()));
            assertEquals(golden.get("attention_scaling").asDouble(), c.ropeScaling().attentionFactor(), 1e-12,
                    name + " attention factor");
            float[] inv = RotaryEmbedding.inverseFrequencies(c, 1);
            assertClose(floats(golden.get("inv_freq")), inv, 0, 1e-6, name + " inv_freq");
            RotaryEmbedding rotary = new RotaryEmbedding(c);
            for (JsonNode call : golden.get("calls")) {
                long[] positions = longs(call.get("positions"));
                // the golden calls are [0, 1, 2, 7, 15] and a contiguous range: the frequencies follow the last
                // position, so the rows of one call over 0 .. last are the same
                int start = positions.length == 5 ? 0 : (int) positions[0];
                int n = (int) positions[positions.length - 1] + 1 - start;
                Tensor[] cosSin = rotary.cosSin(ops, start, n);
                int d = c.headDim();
                float[] cos = new float[positions.length * d];
                float[] sin = new float[positions.length * d];
                float[] allCos = cosSin[0].toFloatArray();
                float[] allSin = cosSin[1].toFloatArray();
                for (int p = 0; p < positions.length; p++) {
                    System.arraycopy(allCos, (int) (positions[p] - start) * d, cos, p * d, d);
                    System.arraycopy(allSin, (int) (positions[p] - start) * d, sin, p * d, d);
                }
                String what = name + " positions " + Arrays.toString(positions);
                assertClose(floats(call.get("cos")), cos, 2e-6, 0, what + " cos");
                assertClose(floats(call.get("sin")), sin, 2e-6, 0, what + " sin");
            }
        }
    }

    @Test
    void theTwoConfigFormatsReadLongRopeAsTheirOwnVersions() {
        // 4.57 takes original_max_position_embeddings from the top level only and then replaces factor by
        // max / original; transformers 5 reads it from the rope fields too and keeps an explicit factor
        Path v4 = resource("golden/rope_scaling/v4");
        Path v5 = resource("golden/rope_scaling/v5");
        var nested4 = config(v4.resolve("longrope_nested_original")).ropeScaling();
        var nested5 = config(v5.resolve("longrope_nested_original")).ropeScaling();
        assertEquals(80, nested4.originalMaxPositionEmbeddings());
        assertEquals(20, nested5.originalMaxPositionEmbeddings());
        assertEquals(4.0, config(v4.resolve("longrope_top_level_and_factor")).ropeScaling().factor());
        assertEquals(2.0, config(v5.resolve("longrope_top_level_and_factor")).ropeScaling().factor());
        assertEquals(16, config(v5.resolve("longrope_top_level_and_factor")).ropeScaling()
                .originalMaxPositionEmbeddings());
        assertEquals(20, RotaryEmbedding.lengthDependentAbove(config(v5.resolve("longrope_nested_original"))));
        assertEquals(Integer.MAX_VALUE, RotaryEmbedding.lengthDependentAbove(config(v4.resolve("yarn_default"))));
    }

    @ParameterizedTest
    @ValueSource(strings = {"yarn_model", "longrope_model"})
    void greedyIdsAndLogitsOfTinyModels(String name) throws IOException {
        Path dir = resource("golden/rope_scaling/v4");
        JsonNode expected = json(dir.resolve("expected.json")).at("/models/" + name);
        try (Checkpoint ckpt = Checkpoint.open(dir.resolve(name), null, ops)) {
            LlamaForCausalLM lm = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            for (JsonNode run : expected.get("runs")) {
                // prompts computed 4 positions at a time too: LongRoPE's prompts past its original length stay one call
                for (int chunk : new int[] {LlamaForCausalLM.DEFAULT_PREFILL_CHUNK, 4}) {
                    lm.prefillChunk(chunk);
                    assertGreedyRun(lm, run, name + " prompt of " + run.get("input_ids").size() + " in chunks of "
                            + chunk);
                }
            }
        }
    }

    private void assertGreedyRun(LlamaForCausalLM lm, JsonNode run, String what) {
        long[] prompt = longs(run.get("input_ids"));
        long[] want = longs(run.get("new_ids"));
        KvCache cache = lm.newCache(1, prompt.length + want.length);
        Tensor logits = lm.forwardIds(ops.fromArray(prompt, 1, prompt.length), cache, true);
        long[] got = new long[want.length];
        for (int step = 0; step < want.length; step++) {
            got[step] = logits.reshape(-1).argmax(0, false).toLongArray()[0];
            if (step == want.length - 1) {
                assertClose(floats(run.get("last_logits")), logits.toFloatArray(), 1e-4, 1e-4,
                        what + ", last step logits");
            } else {
                logits = lm.forwardIds(ops.fromArray(new long[] {got[step]}, 1, 1), cache, true);
            }
        }
        assertArrayEquals(want, got, what);
    }

    @Test
    void badLongRopeAndYarnConfigsNameTheField() {
        var shortList = assertThrows(JsonException.class, () -> LlamaConfig.from(Json.parse("""
                {"hidden_size": 64, "num_attention_heads": 4, "rope_scaling": {"rope_type": "longrope",
                 "short_factor": [1, 1, 1], "long_factor": [1, 2, 3, 4, 5, 6, 7, 8], "factor": 2.0}}""",
                "config.json")));
        assertTrue(shortList.getMessage().contains("short_factor") && shortList.getMessage().contains("3 numbers")
                && shortList.getMessage().contains("8, one per rotary frequency"), shortList.getMessage());
        var noFactor = assertThrows(JsonException.class, () -> LlamaConfig.from(Json.parse("""
                {"hidden_size": 32, "num_attention_heads": 4, "rope_scaling": {"rope_type": "longrope",
                 "short_factor": [1, 1], "long_factor": [1, 2]}}""", "config.json")));
        assertTrue(noFactor.getMessage().contains("factor"), noFactor.getMessage());
        var yarnFactor = assertThrows(JsonException.class, () -> LlamaConfig.from(Json.parse(
                "{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 0}}", "config.json")));
        assertTrue(yarnFactor.getMessage().contains("a positive factor"), yarnFactor.getMessage());
        var missing = assertThrows(JsonException.class, () -> LlamaConfig.from(Json.parse(
                "{\"rope_scaling\": {\"rope_type\": \"yarn\"}}", "config.json")));
        assertTrue(missing.getMessage().contains("factor"), missing.getMessage());
        for (String[] hostile : new String[][] {
                {"{\"rope_type\": \"yarn\", \"factor\": 2, \"beta_fast\": -4}", "beta_fast"},
                {"{\"rope_type\": \"yarn\", \"factor\": 2, \"attention_factor\": 0}", "attention_factor"},
                {"{\"rope_type\": \"longrope\", \"factor\": 2, \"short_factor\": [1, 0],"
                        + " \"long_factor\": [1, 2]}", "short_factor"},
                {"{\"rope_type\": \"longrope\", \"attention_factor\": -1, \"short_factor\": [1, 1],"
                        + " \"long_factor\": [1, 2]}", "attention_factor"}}) {
            var e = assertThrows(JsonException.class, () -> LlamaConfig.from(Json.parse(
                    "{\"hidden_size\": 16, \"num_attention_heads\": 4, \"rope_scaling\": " + hostile[0] + "}",
                    "config.json")));
            assertTrue(e.getMessage().contains(hostile[1]), hostile[0] + ": " + e.getMessage());
        }
        // 4.57 needs no factor when the attention factor is given (the unboxing of a missing one once threw here)
        var given = LlamaConfig.from(Json.parse("""
                {"hidden_size": 16, "num_attention_heads": 4, "rope_scaling": {"rope_type": "longrope",
                 "attention_factor": 0.9, "short_factor": [1, 1], "long_factor": [1, 2]}}""", "config.json"))
                .ropeScaling();
        assertEquals(0.9, given.attentionFactor());
        assertEquals(2048, given.originalMaxPositionEmbeddings());
        assertTrue(Double.isNaN(given.factor()));
        var partial = assertThrows(JsonException.class, () -> LlamaConfig.from(Json.parse(
                "{\"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": 0.5}}",
                "config.json")));
        assertTrue(partial.getMessage().contains("partial_rotary_factor") && partial.getMessage().contains("0.5"),
                partial.getMessage());
        // transformers 5 derives a missing factor from the two lengths
        LlamaConfig derived = LlamaConfig.from(Json.parse("""
                {"max_position_embeddings": 8192, "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0,
                 "original_max_position_embeddings": 2048}}""", "config.json"));
        assertEquals(4.0, derived.ropeScaling().factor());
        assertEquals(0.1 * Math.log(4) + 1, derived.ropeScaling().attentionFactor(), 1e-15);
    }
}
