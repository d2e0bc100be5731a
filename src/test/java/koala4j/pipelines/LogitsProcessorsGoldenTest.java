package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.floats;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.testing.TinyChatModels;

/**
 * generate()'s less common processors and warpers against golden/logits_processors (made by its
 * make_logits_processors.py with transformers 4.57.6, torch 2.13 CPU fp32): each processor class on score rows
 * (typical, epsilon and eta sampling with 1 and 3 tokens kept, sequence bias, bad words with and without eos ids,
 * suppressed and forced tokens, the exponential length decay, invalid values, renormalisation), and generate() on the
 * golden e2e tiny LLaMA with those settings written as a generation_config.json: greedy, beam search and beam sampling
 * (draws from torch's generator seeded right before, as SamplingParams' seed gives them). Removed tokens must be the
 * same ones; the other scores within 1e-5 + 1e-5 |ref|; ids exact.
 */
class LogitsProcessorsGoldenTest {

    private static final JsonMapper MAPPER = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();
    private static VisionChat llama;

    @BeforeAll
    static void load() {
        llama = TinyChatModels.loadLlama();
    }

    @AfterAll
    static void close() {
        llama.close();
    }

    private static JsonNode golden(String file, String key) throws Exception {
        return MAPPER.readTree(resource("golden/logits_processors/" + file).toFile()).get(key);
    }

    private static List<Integer> idList(JsonNode array) {
        List<Integer> ids = new ArrayList<>();
        for (JsonNode id : array) {
            ids.add(id.asInt());
        }
        return ids;
    }

    private static List<Integer> eosList(JsonNode eos) {
        return eos == null || eos.isNull() ? List.of() : eos.isArray() ? idList(eos) : List.of(eos.asInt());
    }

    private static void apply(String processor, JsonNode a, float[] row, int[] history) {
        int keep = a.path("min_tokens_to_keep").asInt(1);
        switch (processor) {
            case "typical_p" -> LogitsProcessing.typical(row, (float) a.get("mass").asDouble(), keep);
            case "epsilon_cutoff" -> LogitsProcessing.epsilon(row, (float) a.get("epsilon").asDouble(), keep);
            case "eta_cutoff" -> LogitsProcessing.eta(row, (float) a.get("epsilon").asDouble(), keep);
            case "sequence_bias" -> {
                Map<List<Integer>, Float> bias = new LinkedHashMap<>();
                for (JsonNode pair : a.get("sequence_bias")) {
                    bias.put(idList(pair.get(0)), (float) pair.get(1).asDouble());
                }
                LogitsProcessing.sequenceBias(row, history, history.length, bias, "sequence_bias");
            }
            case "bad_words_ids" -> {
                List<List<Integer>> words = new ArrayList<>();
                a.get("bad_words_ids").forEach(w -> words.add(idList(w)));
                var p = SamplingParams.greedy(1, eosList(a.get("eos_token_id")))
                        .withProcessors(new SamplingParams.Processors(Map.of(), words, List.of(), List.of(), -1,
                                List.of(), null, false, false, 1, 0, 0));
                Sampler.process(row, history, history.length, history.length, p);
            }
            case "suppress_tokens" -> LogitsProcessing.suppress(row, idList(a.get("suppress_tokens")));
            case "begin_suppress_tokens" -> {
                // begin_index is the prompt length: the history's length when the processor acts
                var p = SamplingParams.greedy(1, List.of()).withProcessors(new SamplingParams.Processors(Map.of(),
                        List.of(), List.of(), idList(a.get("begin_suppress_tokens")), -1, List.of(), null, false, false,
                        1, 0, 0));
                Sampler.process(row, history, history.length, a.get("begin_index").asInt(), p);
            }
            case "forced_bos_token_id" -> {
                var p = SamplingParams.greedy(1, List.of()).withProcessors(new SamplingParams.Processors(Map.of(),
                        List.of(), List.of(), List.of(), a.get("forced_bos_token_id").asInt(), List.of(), null, false,
                        false, 1, 0, 0));
                Sampler.process(row, history, history.length, 0, p);
            }
            case "forced_eos_token_id" -> {
                // max_length = prompt + max_new_tokens; here a prompt of 0 tokens and max_new_tokens = max_length
                var p = SamplingParams.greedy(a.get("max_length").asInt(), List.of())
                        .withProcessors(new SamplingParams.Processors(Map.of(), List.of(), List.of(), List.of(), -1,
                                idList(a.get("forced_eos_token_id")), null, false, false, 1, 0, 0));
                Sampler.process(row, history, history.length, 0, p);
            }
            case "exponential_decay_length_penalty" -> {
                var p = SamplingParams.greedy(1, idList(a.get("eos_token_id")))
                        .withProcessors(new SamplingParams.Processors(Map.of(), List.of(), List.of(), List.of(), -1,
                                List.of(), new SamplingParams.Processors.LengthDecay(a.get("start").asInt(),
                                a.get("factor").asDouble()), false, false, 1, 0, 0));
                Sampler.process(row, history, history.length, a.get("prompt_length").asInt(), p);
            }
            case "remove_invalid_values" -> LogitsProcessing.removeInvalid(row);
            case "renormalize_logits" -> System.arraycopy(LogitsProcessing.logSoftmax(row), 0, row, 0, row.length);
            default -> fail("no case for " + processor);
        }
    }

    @Test
    void eachProcessorMatchesTransformersOnScoreRows() throws Exception {
        int checked = 0;
        for (JsonNode c : golden("processors.json", "cases")) {
            String what = c.get("processor").asText() + " " + c.get("args") + " on " + c.get("input_ids");
            float[] row = floats(c.get("scores"));
            apply(c.get("processor").asText(), c.get("args"), row, ints(c.get("input_ids")));
            float[] expected = floats(c.get("expected"));
            for (int i = 0; i < row.length; i++) {
                if (Float.isFinite(expected[i])) {
                    assertEquals(expected[i], row[i], 1e-5f + 1e-5f * Math.abs(expected[i]), what + " [" + i + "]");
                } else {
                    assertEquals(expected[i], row[i], what + " [" + i + "]");
                }
            }
            checked++;
        }
        assertEquals(88, checked);
    }

    @Test
    void generateWithTheseGenerationConfigsMatchesTransformers() throws Exception {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        int checked = 0;
        for (JsonNode run : golden("runs.json", "runs")) {
            JsonNode config = run.get("generation_config");
            SamplingParams p = SamplingParams.fromGenerationConfig(Json.parse(config.toString(),
                    "generation_config.json"), List.of(2));
            if (!run.get("seed").isNull()) {
                p = p.withSeed(run.get("seed").asLong());
            }
            var result = gen.generate(ints(run.get("input_ids")), p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertArrayEquals(ints(run.get("new_ids")), result.tokenIds(), run.get("prompt") + " " + config);
            checked++;
        }
        assertEquals(54, checked);
    }

    @Test
    void generationConfigFieldsAreReadAndCheckedByName() {
        var p = SamplingParams.fromGenerationConfig(Json.parse("""
                {"sequence_bias": [[[5, 6], -1.5], [[7], 2]], "bad_words_ids": [[3], [4, 5]], "suppress_tokens": null,
                 "begin_suppress_tokens": [9], "forced_bos_token_id": 11, "forced_eos_token_id": [2, 12],
                 "exponential_decay_length_penalty": [4, 1.25], "remove_invalid_values": true,
                 "renormalize_logits": true, "typical_p": 0.95, "epsilon_cutoff": 3e-4, "eta_cutoff": 1.5,
                 "stop_strings": "END", "num_beam_groups": 1, "penalty_alpha": 0.0}""", "generation_config.json"),
                List.of(2)).processors();
        assertEquals(Map.of(List.of(5, 6), -1.5f, List.of(7), 2f), p.sequenceBias());
        assertEquals(List.of(List.of(3), List.of(4, 5)), p.badWordsIds());
        assertEquals(List.of(), p.suppressTokens());
        assertEquals(new SamplingParams.Processors.LengthDecay(4, 1.25), p.lengthDecay());
        assertEquals(List.of(2, 12), p.forcedEosTokenIds());
        assertEquals(0.95, p.typicalP());
        assertEquals(3e-4, p.epsilonCutoff());
        assertEquals(0, p.etaCutoff(), "generate() switches eta sampling off outside (0, 1)");
        assertTrue(p.removeInvalidValues() && p.renormalizeLogits());
        assertEquals(List.of("END"), SamplingParams.fromGenerationConfig(Json.parse("{\"stop_strings\": \"END\"}",
                "generation_config.json"), List.of()).stopStrings());
        assertEquals(2.5, SamplingParams.fromGenerationConfig(Json.parse("{\"max_time\": 2.5}",
                "generation_config.json"), List.of()).constraints().maxTime());
        assertEquals(0, SamplingParams.fromGenerationConfig(Json.parse("{\"max_time\": null}",
                "generation_config.json"), List.of()).constraints().maxTime(), "null: no limit");

        for (String bad : List.of("{\"sequence_bias\": [[5, -1.5]]}", "{\"sequence_bias\": [[[], 1.0]]}",
                "{\"sequence_bias\": {\"5\": 1.0}}", "{\"bad_words_ids\": [3, 4]}", "{\"bad_words_ids\": [[]]}",
                "{\"bad_words_ids\": [[-1]]}", "{\"exponential_decay_length_penalty\": [4]}",
                "{\"typical_p\": 0}", "{\"suppress_tokens\": \"3\"}", "{\"num_beam_groups\": 2}",
                "{\"penalty_alpha\": 0.6}", "{\"force_words_ids\": [[5]]}", "{\"guidance_scale\": 3.0}",
                "{\"renormalize_logits\": \"yes\"}", "{\"max_time\": -1}", "{\"max_time\": 0}")) {
            var e = assertThrows(RuntimeException.class, () -> SamplingParams.fromGenerationConfig(
                    Json.parse(bad, "generation_config.json"), List.of(2)), bad);
            assertTrue(e instanceof JsonException || e instanceof IllegalArgumentException, bad);
            String field = bad.substring(2, bad.indexOf('"', 2));
            assertTrue(e.getMessage().contains("generation_config.json") && e.getMessage().contains(field),
                    bad + " -> " + e.getMessage());
        }
    }

    @Test
    void tokenIdsOutsideTheVocabularyAreNamedWhenGenerating() {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        int vocab = llama.languageModel().config().vocabSize();
        var p = SamplingParams.greedy(4, List.of(2)).withProcessors(new SamplingParams.Processors(
                Map.of(List.of(vocab + 5), 1f), List.of(), List.of(), List.of(), -1, List.of(), null, false, false, 1,
                0, 0));
        var e = assertThrows(IllegalArgumentException.class,
                () -> gen.generate(new int[] {1, 310}, p, TextGeneration.TokenListener.NONE, Cancel.NEVER));
        assertTrue(e.getMessage().contains("sequence_bias") && e.getMessage().contains(Integer.toString(vocab + 5)),
                e.getMessage());
    }
}
