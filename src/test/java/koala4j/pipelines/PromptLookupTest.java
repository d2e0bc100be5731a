package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.models.Checkpoint;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.tensor.quant.Quantization;
import koala4j.tokenizers.Tokenizer;

/**
 * Prompt lookup decoding: the drafts are transformers' PromptLookupCandidateGenerator's (golden/prompt_lookup:
 * 300 random sequences, made by make_drafts.py), and a generation with it gives exactly the tokens, text, stop,
 * log-probabilities and prompt-cache state of one pass per token, in fewer passes when drafts are accepted.
 */
class PromptLookupTest {

    private static Checkpoint tiny;
    private static LlamaForCausalLM lm;

    @BeforeAll
    static void load() {
        tiny = Checkpoint.open(resource("golden/llama_tiny/model"), null, new CpuOps());
        lm = LlamaForCausalLM.load(tiny, Quantization.NONE);
    }

    @AfterAll
    static void close() {
        tiny.close();
    }

    private static final PromptLookup LOOKUP = new PromptLookup(6, 2);

    @Test
    void draftsAreTransformersCandidates() throws Exception {
        JsonNode cases = new ObjectMapper().readTree(resource("golden/prompt_lookup/drafts.json").toFile())
                .get("cases");
        int withDrafts = 0;
        for (JsonNode c : cases) {
            int[] sequence = ints(c.get("sequence"));
            var eos = new HashSet<Integer>();
            c.get("eos").forEach(e -> eos.add(e.asInt()));
            var lookup = new PromptLookup(c.get("num_tokens").asInt(), c.get("max_ngram").asInt());
            int[] want = ints(c.get("drafts"));
            assertArrayEquals(want, lookup.draft(sequence, sequence.length, Integer.MAX_VALUE, eos), c.toString());
            withDrafts += want.length > 0 ? 1 : 0;
            // a sequence given with spare room after its length: only [0, length) counts
            int[] padded = Arrays.copyOf(sequence, sequence.length + 5);
            Arrays.fill(padded, sequence.length, padded.length, sequence.length > 0 ? sequence[0] : 0);
            assertArrayEquals(want, lookup.draft(padded, sequence.length, Integer.MAX_VALUE, eos));
            int limit = want.length / 2;
            assertArrayEquals(Arrays.copyOf(want, limit), lookup.draft(sequence, sequence.length, limit, eos),
                    "the limit keeps the first drafts");
        }
        assertTrue(withDrafts > 200, withDrafts + " cases with drafts");
        assertArrayEquals(new int[0], PromptLookup.NONE.draft(new int[] {1, 2, 1}, 3, 10, List.of()));
        var e = assertThrows(IllegalArgumentException.class, () -> new PromptLookup(3, 0));
        assertTrue(e.getMessage().contains("n-grams up to 0"), e.getMessage());
    }

    /** A greedy answer on the tiny model that repeats itself, so that drafts come from its own output too. */
    @Test
    void greedyGivesTheSameTokensInFewerPasses() throws Exception {
        TextGeneration gen = new TextGeneration(lm, null);
        int[] prompt = TextGenerationTest.prompt();
        SamplingParams greedy = SamplingParams.greedy(48, List.of()).withIgnoreEos(true);
        var plain = gen.generate(prompt, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
        var looked = gen.generate(prompt, greedy.withLookup(LOOKUP), TextGeneration.TokenListener.NONE, Cancel.NEVER);
        assertArrayEquals(plain.tokenIds(), looked.tokenIds());
        assertEquals(plain.decodeSteps(), looked.decodeSteps(), "the same positions fed back");
        assertEquals(new TextGeneration.Drafts(47, 0, 0), plain.drafts());
        var none = gen.generate(prompt, greedy.withMaxNewTokens(0).withLookup(LOOKUP),
                TextGeneration.TokenListener.NONE, Cancel.NEVER);
        assertEquals(0, none.tokenIds().length);
        assertEquals(0, none.decodeSteps());
        var d = looked.drafts();
        assertTrue(d.accepted() > 0 && d.passes() < 47, d.toString());
        assertEquals(47, d.passes() + d.accepted(), "each pass adds one token besides the drafts it keeps");

        // the golden runs of golden/e2e/llama (transformers' greedy ids)
        JsonNode expected = new ObjectMapper().readTree(resource("golden/e2e/llama/expected.json").toFile());
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/e2e/llama/model"), null, new CpuOps())) {
            LlamaForCausalLM model = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            for (JsonNode run : expected.get("runs")) {
                var r = new TextGeneration(model, null).generate(ints(run.at("/expected/input_ids")),
                        SamplingParams.greedy(run.get("max_new_tokens").asInt(), List.of()).withLookup(LOOKUP),
                        TextGeneration.TokenListener.NONE, Cancel.NEVER);
                assertArrayEquals(ints(run.at("/expected/new_ids")), r.tokenIds(), run.get("prompt").asText());
            }
        }
    }

    /** The draws are taken in the same order, one per chosen token, so a seed gives the same answer. */
    @Test
    void seededSamplingDrawsTheSameTokens() {
        TextGeneration gen = new TextGeneration(lm, null);
        int accepted = 0;
        for (long seed = 0; seed < 8; seed++) {
            // the tiny model's logits are nearly flat: a low temperature makes answers that repeat (drafts kept)
            double temperature = seed < 4 ? 0.02 : 0.5;
            SamplingParams p = SamplingParams.greedy(40, List.of()).withIgnoreEos(true)
                    .withSampling(temperature, 0, 0.9, seed).withRepetitionPenalty(seed % 2 == 0 ? 1.0 : 1.1);
            int[] prompt = TextGenerationTest.prompt();
            var plain = gen.generate(prompt, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            var looked = gen.generate(prompt, p.withLookup(LOOKUP), TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertArrayEquals(plain.tokenIds(), looked.tokenIds(), "seed " + seed);
            accepted += looked.drafts().accepted();
        }
        assertTrue(accepted > 0, "some drafts were kept");
    }

    /**
     * Stops inside a pass (an eos id, a stop string, max_new_tokens) end the answer where one pass per token ends it,
     * and the prompt cache then holds the same positions: a next turn resumes with the same tokens.
     */
    @Test
    void stopsInsideAPassEndWhereOnePassPerTokenEnds() {
        Tokenizer letters = TextGenerationTest.LETTERS;
        TextGeneration gen = new TextGeneration(lm, letters);
        int[] prompt = TextGenerationTest.prompt();
        SamplingParams base = SamplingParams.greedy(40, List.of()).withIgnoreEos(true);
        int[] free = gen.generate(prompt, base, TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds();
        String text = letters.decode(free);
        List<SamplingParams> cases = new ArrayList<>();
        for (int at : new int[] {7, 15, 23, 31}) {
            cases.add(base.withStopStrings(List.of(text.substring(at, at + 3))));
            cases.add(SamplingParams.greedy(40, List.of(free[at])));
            cases.add(base.withMaxNewTokens(at));
        }
        int accepted = 0;
        for (SamplingParams p : cases) {
            var plainCache = new TextGeneration.PromptCache();
            var lookedCache = new TextGeneration.PromptCache();
            var plain = gen.generate(TextGeneration.embedIds(lm, prompt), prompt, p, TextGeneration.TokenListener.NONE,
                    Cancel.NEVER, plainCache);
            List<String> deltas = new ArrayList<>();
            var looked = gen.generate(TextGeneration.embedIds(lm, prompt), prompt, p.withLookup(LOOKUP),
                    (id, delta) -> deltas.add(delta), Cancel.NEVER, lookedCache);
            assertArrayEquals(plain.tokenIds(), looked.tokenIds(), p.toString());
            assertEquals(plain.text(), looked.text());
            assertEquals(plain.text(), String.join("", deltas));
            assertEquals(plain.stopReason(), looked.stopReason());
            assertEquals(plainCache.length(), lookedCache.length(), "the same positions kept for the next turn");
            assertEquals(looked.decodeSteps(), looked.drafts().passes() + looked.drafts().accepted());
            accepted += looked.drafts().accepted();

            int[] next = new int[prompt.length + plain.tokenIds().length + 2];
            System.arraycopy(prompt, 0, next, 0, prompt.length);
            System.arraycopy(plain.tokenIds(), 0, next, prompt.length, plain.tokenIds().length);
            next[next.length - 2] = 5;
            next[next.length - 1] = 9;
            SamplingParams turn = SamplingParams.greedy(12, List.of());
            var resumed = gen.generate(TextGeneration.embedIds(lm, next), next, turn.withLookup(LOOKUP),
                    TextGeneration.TokenListener.NONE, Cancel.NEVER, lookedCache);
            assertArrayEquals(gen.generate(next, turn, TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds(),
                    resumed.tokenIds());
            assertTrue(resumed.reusedPromptTokens() > prompt.length, "the kept positions were reused");
        }
        assertTrue(accepted > 0);
    }

    @Test
    void logprobsAndJsonOutputAreThoseOfOnePassPerToken() {
        TextGeneration gen = new TextGeneration(lm, null);
        List<TextGeneration.TokenLogprobs> plain = new ArrayList<>();
        List<TextGeneration.TokenLogprobs> looked = new ArrayList<>();
        SamplingParams p = SamplingParams.greedy(30, List.of()).withIgnoreEos(true);
        gen.generate(TextGenerationTest.prompt(), p, listener(plain), Cancel.NEVER);
        var r = gen.generate(TextGenerationTest.prompt(), p.withLookup(LOOKUP), listener(looked), Cancel.NEVER);
        assertTrue(r.drafts().accepted() > 0);
        assertEquals(plain.size(), looked.size());
        for (int i = 0; i < plain.size(); i++) {
            var a = plain.get(i);
            var b = looked.get(i);
            assertEquals(a.id(), b.id());
            // a pass over several positions may round the logits differently from a pass over one
            assertEquals(a.logprob(), b.logprob(), 1e-4, "token " + i);
            assertArrayEquals(a.topIds(), b.topIds(), "token " + i);
        }
    }

    private static TextGeneration.TokenListener listener(List<TextGeneration.TokenLogprobs> into) {
        return new TextGeneration.TokenListener() {
            @Override
            public void onToken(int id, String textDelta) {
            }

            @Override
            public int topLogprobs() {
                return 3;
            }

            @Override
            public void onLogprobs(TextGeneration.TokenLogprobs token) {
                into.add(token);
            }
        };
    }

    /**
     * LongRoPE frequencies depend on a call's length past position 24: drafts stop short of it, so the answer that
     * crosses it is transformers' (golden/rope_scaling, computed one token at a time).
     */
    @Test
    void noDraftsWhereTheRopeDependsOnTheCallLength() throws Exception {
        JsonNode expected = new ObjectMapper().readTree(resource("golden/rope_scaling/v4/expected.json").toFile())
                .at("/models/longrope_model/runs/0");
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/rope_scaling/v4/longrope_model"), null,
                new CpuOps())) {
            LlamaForCausalLM model = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            int[] answer = ints(expected.get("new_ids"));
            var r = new TextGeneration(model, null).generate(ints(expected.get("input_ids")),
                    SamplingParams.greedy(answer.length, List.of()).withLookup(new PromptLookup(10, 1)),
                    TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertArrayEquals(answer, r.tokenIds());
        }
    }

    @Test
    void generationConfigSetsIt() {
        var on = SamplingParams.fromGenerationConfig(Json.parse("{\"prompt_lookup_num_tokens\": 10, "
                + "\"max_matching_ngram_size\": 3}", "generation_config.json"), List.of(2));
        assertEquals(new PromptLookup(10, 3), on.lookup());
        var dflt = SamplingParams.fromGenerationConfig(Json.parse("{\"prompt_lookup_num_tokens\": 5, "
                + "\"max_matching_ngram_size\": null}", "generation_config.json"), List.of(2));
        assertEquals(new PromptLookup(5, 2), dflt.lookup());
        var off = SamplingParams.fromGenerationConfig(Json.parse("{\"prompt_lookup_num_tokens\": null}",
                "generation_config.json"), List.of(2));
        assertEquals(PromptLookup.NONE, off.lookup());
        assertEquals(PromptLookup.NONE, SamplingParams.greedy(3, List.of()).lookup());
        var zero = assertThrows(JsonException.class, () -> SamplingParams.fromGenerationConfig(Json.parse(
                "{\"prompt_lookup_num_tokens\": 0}", "generation_config.json"), List.of(2)));
        assertTrue(zero.getMessage().contains("prompt_lookup_num_tokens") && zero.getMessage().contains("at least 1"),
                zero.getMessage());
        var ngram = assertThrows(JsonException.class, () -> SamplingParams.fromGenerationConfig(Json.parse(
                "{\"max_matching_ngram_size\": 0}", "generation_config.json"), List.of(2)));
        assertTrue(ngram.getMessage().contains("max_matching_ngram_size"), ngram.getMessage());
    }
}
