package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.floats;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import koala4j.testing.TinyChatModels;

/**
 * Token log-probabilities against golden/logprobs (made by its make_logprobs.py with transformers 4.57.6, torch 2.13
 * CPU fp32, from the golden e2e tiny LLaMA): log_softmax of the raw logits for each greedy new token and for every
 * prompt token after the first, with the 5 most likely ids. Log-probabilities within 1e-4 + 1e-4 |ref|; ids exact.
 */
class LogprobsGoldenTest {

    private static VisionChat llama;
    private static JsonNode cases;

    @BeforeAll
    static void load() throws Exception {
        llama = TinyChatModels.loadLlama();
        cases = new ObjectMapper().readTree(resource("golden/logprobs/expected.json").toFile()).get("cases");
    }

    @AfterAll
    static void close() {
        llama.close();
    }

    /** Collects what the generation hands out, asking for {@code top} alternatives and (or not) the prompt's. */
    private static final class Collector implements TextGeneration.TokenListener {
        final int top;
        final boolean prompt;
        final List<TextGeneration.TokenLogprobs> tokens = new ArrayList<>();
        final List<Integer> order = new ArrayList<>();
        List<TextGeneration.TokenLogprobs> promptTokens;

        Collector(int top, boolean prompt) {
            this.top = top;
            this.prompt = prompt;
        }

        @Override
        public void onToken(int id, String textDelta) {
            if (id >= 0) {
                order.add(id);
            }
        }

        @Override
        public int topLogprobs() {
            return top;
        }

        @Override
        public boolean promptLogprobs() {
            return prompt;
        }

        @Override
        public void onLogprobs(TextGeneration.TokenLogprobs token) {
            assertEquals(tokens.size(), order.size(), "log-probabilities come before their token");
            tokens.add(token);
        }

        @Override
        public void onPromptLogprobs(List<TextGeneration.TokenLogprobs> p) {
            assertTrue(tokens.isEmpty(), "the prompt's come first");
            promptTokens = p;
        }
    }

    private static void assertMatches(JsonNode expected, TextGeneration.TokenLogprobs got, int top, String what) {
        assertEquals(expected.get("id").asInt(), got.id(), what);
        float ref = (float) expected.get("logprob").asDouble();
        assertEquals(ref, got.logprob(), 1e-4f + 1e-4f * Math.abs(ref), what);
        int[] ids = ints(expected.get("top_ids"));
        float[] values = floats(expected.get("top_logprobs"));
        assertEquals(top, got.topIds().length, what);
        for (int i = 0; i < top; i++) {
            assertEquals(ids[i], got.topIds()[i], what + " top " + i);
            assertEquals(values[i], got.topLogprobs()[i], 1e-4f + 1e-4f * Math.abs(values[i]), what + " top " + i);
        }
    }

    @Test
    void generatedAndPromptTokensMatchTransformers() {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        for (JsonNode c : cases) {
            for (int top : new int[] {0, 3, 5}) {
                Collector collector = new Collector(top, true);
                var result = gen.generate(ints(c.get("input_ids")), SamplingParams.greedy(8, List.of()), collector,
                        Cancel.NEVER);
                String what = c.get("prompt").asText() + " top " + top;
                assertArrayEquals(ints(c.get("new_ids")), result.tokenIds(), what);
                for (int i = 0; i < 8; i++) {
                    assertMatches(c.get("logprobs").get(i), collector.tokens.get(i), top, what + " token " + i);
                }
                JsonNode prompt = c.get("prompt_logprobs");
                assertEquals(prompt.size() + 1, collector.promptTokens.size(), what);
                var first = collector.promptTokens.getFirst();
                assertEquals(1, first.id());
                assertTrue(Float.isNaN(first.logprob()) && first.topIds().length == 0, "nothing predicts the first");
                for (int i = 0; i < prompt.size(); i++) {
                    assertMatches(prompt.get(i), collector.promptTokens.get(i + 1), top, what + " prompt " + (i + 1));
                }
            }
        }
    }

    @Test
    void promptLogprobsNeedTheWholePromptAndNoBeams() {
        // a prompt cache holding the prompt: scoring it computes it all again, and the answer is the same
        JsonNode c = cases.get(0);
        int[] ids = ints(c.get("input_ids"));
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        var cache = new TextGeneration.PromptCache();
        var embeds = TextGeneration.embedIds(llama.languageModel(), ids);
        gen.generate(embeds, ids, SamplingParams.greedy(2, List.of()), TextGeneration.TokenListener.NONE, Cancel.NEVER,
                cache);
        Collector collector = new Collector(2, true);
        var result = gen.generate(embeds, ids, SamplingParams.greedy(8, List.of()), collector, Cancel.NEVER, cache);
        assertEquals(0, result.reusedPromptTokens());
        assertEquals(ids.length, collector.promptTokens.size());
        assertMatches(c.get("prompt_logprobs").get(0), collector.promptTokens.get(1), 2, "after a cached run");
        // no new tokens: only the prompt is scored (a completions request with echo and max_tokens 0)
        Collector only = new Collector(1, true);
        assertEquals(0, gen.generate(ids, SamplingParams.greedy(0, List.of()), only, Cancel.NEVER).tokenIds().length);
        assertEquals(ids.length, only.promptTokens.size());
        assertTrue(only.tokens.isEmpty());

        var beams = SamplingParams.greedy(4, List.of()).withBeams(new SamplingParams.Beams(2, 1f,
                TextGenerationConfig.EarlyStopping.FALSE));
        var e = assertThrows(IllegalArgumentException.class,
                () -> gen.generate(ids, beams, new Collector(0, false), Cancel.NEVER));
        assertTrue(e.getMessage().contains("num_beams 2"), e.getMessage());
    }
}
