package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.json.Json;
import koala4j.models.Checkpoint;
import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.tensor.DType;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Quantization;
import koala4j.testing.GoldenFile;
import koala4j.tokenizers.Tokenizer;

/**
 * The generation loop on the golden tiny LLaMAs: greedy ids must equal transformers' generate exactly
 * (golden/llama_tiny: 20 tokens; golden/e2e/llama: 4 prompts x 12 tokens, eos_token_id=None there). Stop strings,
 * EOS, streaming and sampling are checked on the same model with a one-character-per-id test tokenizer.
 */
class TextGenerationTest {

    private static Checkpoint tiny;
    private static LlamaForCausalLM lm;

    /** Id i decodes to one letter; ids from 200 on to '\uFFFD' (like a lone byte-fallback piece). */
    static final Tokenizer LETTERS = new Tokenizer() {
        @Override
        public int[] encode(String text) {
            return text.chars().map(c -> c - 'a').toArray();
        }

        @Override
        public String decode(int[] ids) {
            StringBuilder sb = new StringBuilder();
            for (int id : ids) {
                sb.append(id >= 200 ? '\uFFFD' : (char) ('a' + id % 26));
            }
            return sb.toString();
        }
    };

    @BeforeAll
    static void load() {
        tiny = Checkpoint.open(resource("golden/llama_tiny/model"), null, new CpuOps());
        lm = LlamaForCausalLM.load(tiny, Quantization.NONE);
    }

    @AfterAll
    static void close() {
        tiny.close();
    }

    static int[] prompt() {
        GoldenFile g = GoldenFile.open(resource("golden/llama_tiny/io.safetensors"));
        return Arrays.stream(g.longs("in.input_ids")).mapToInt(Math::toIntExact).toArray();
    }

    @Test
    void greedyMatchesTransformersGenerate() {
        GoldenFile g = GoldenFile.open(resource("golden/llama_tiny/io.safetensors"));
        int[] prompt = prompt();
        long[] expected = g.longs("out.generated_ids");
        var result = new TextGeneration(lm, null).generate(prompt,
                SamplingParams.greedy(20, List.of(2)).withIgnoreEos(true), TextGeneration.TokenListener.NONE,
                Cancel.NEVER);
        assertArrayEquals(Arrays.stream(expected).skip(prompt.length).mapToInt(Math::toIntExact).toArray(),
                result.tokenIds());
        assertEquals(TextGeneration.StopReason.MAX_NEW_TOKENS, result.stopReason());
        assertEquals(12, result.promptTokens());
        assertEquals(19, result.decodeSteps(), "the first token comes from the prompt pass");
    }

    @Test
    void e2eLlamaPromptsGiveTheExpectedIds() throws Exception {
        JsonNode expected = new ObjectMapper().readTree(resource("golden/e2e/llama/expected.json").toFile());
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/e2e/llama/model"), null, new CpuOps())) {
            LlamaForCausalLM model = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            Json generationConfig = Json.read(resource("golden/e2e/llama/model/generation_config.json"));
            // the runs use eos_token_id=None: exactly max_new_tokens tokens
            SamplingParams defaults = SamplingParams.fromGenerationConfig(generationConfig, model.config().eosTokenIds());
            assertEquals(List.of(2), defaults.eosTokenIds());
            assertFalse(defaults.doSample());
            for (JsonNode run : expected.get("runs")) {
                int[] ids = ints(run.at("/expected/input_ids"));
                int[] want = ints(run.at("/expected/new_ids"));
                var result = new TextGeneration(model, null).generate(ids,
                        defaults.withMaxNewTokens(run.get("max_new_tokens").asInt()).withEosTokenIds(List.of()),
                        TextGeneration.TokenListener.NONE, Cancel.NEVER);
                assertArrayEquals(want, result.tokenIds(), run.get("prompt").asText());
            }
        }
    }

    /**
     * An F16 KV cache: keys and values rounded to F16 are the only difference, so the logits of a prompt pass and of
     * 12 single-token steps stay within 2e-3 * max |logit| of the F32 cache's (measured: about 1e-4), and the e2e
     * llama runs give their expected ids, through the prompt cache too.
     */
    @Test
    void f16KvCacheStaysCloseToTheF32One() throws Exception {
        int[] ids = prompt();
        KvCache f32 = lm.newCache(1, ids.length + 12);
        KvCache f16 = lm.newCache(1, ids.length + 12, DType.F16);
        assertEquals(DType.F32, f32.dtype());
        assertEquals(DType.F16, f16.dtype());
        var ops = lm.ops();
        int[] next = ids;
        for (int step = 0; step <= 12; step++) {
            Tensor input = ops.fromArray(next, 1, next.length);
            float[] want = lm.forwardIds(input, f32, true).toFloatArray();
            float[] got = lm.forwardIds(input, f16, true).toFloatArray();
            double max = 0;
            double diff = 0;
            int argmax = 0;
            for (int i = 0; i < want.length; i++) {
                max = Math.max(max, Math.abs(want[i]));
                diff = Math.max(diff, Math.abs(got[i] - want[i]));
                argmax = want[i] > want[argmax] ? i : argmax;
            }
            assertTrue(diff <= 2e-3 * max, "step " + step + ": max |diff| " + diff + " of max |logit| " + max);
            next = new int[] {argmax};
        }

        JsonNode expected = new ObjectMapper().readTree(resource("golden/e2e/llama/expected.json").toFile());
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/e2e/llama/model"), null, new CpuOps())) {
            LlamaForCausalLM model = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            model.kvCacheType(DType.F16);
            TextGeneration gen = new TextGeneration(model, null);
            TextGeneration.PromptCache cache = new TextGeneration.PromptCache();
            for (JsonNode run : expected.get("runs")) {
                int[] prompt = ints(run.at("/expected/input_ids"));
                SamplingParams p = SamplingParams.greedy(run.get("max_new_tokens").asInt(), List.of());
                assertArrayEquals(ints(run.at("/expected/new_ids")),
                        gen.generate(prompt, p, TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds());
                var cached = gen.generate(TextGeneration.embedIds(model, prompt), prompt, p,
                        TextGeneration.TokenListener.NONE, Cancel.NEVER, cache);
                assertArrayEquals(ints(run.at("/expected/new_ids")), cached.tokenIds());
            }
        }
        var e = assertThrows(IllegalArgumentException.class, () -> lm.kvCacheType(DType.BF16));
        assertTrue(e.getMessage().contains("KV cache type BF16: expected F32, F16, Q8_0 or Q4_0"), e.getMessage());
        var narrow = assertThrows(IllegalArgumentException.class, () -> lm.kvCacheType(DType.Q8_0));
        assertTrue(narrow.getMessage().contains("head_dim a multiple of 32"), narrow.getMessage());
        var parse = assertThrows(IllegalArgumentException.class, () -> KvCache.parseType("--kv-cache", "q5"));
        assertTrue(parse.getMessage().contains("--kv-cache 'q5': expected f32, f16, q8_0 or q4_0"), parse.getMessage());
    }

    /**
     * LongRoPE switches every position's frequencies once one forward call reaches past the original length (24 in
     * golden/rope_scaling/v4/longrope_model), so cached keys computed by shorter calls are not what the reference's
     * single call over a longer prompt computes: the prompt cache reuses nothing then, and still reuses prefixes of
     * prompts within the original length.
     */
    @Test
    void thePromptCacheReusesNothingWhereLongRopeChangesTheFrequencies() throws Exception {
        JsonNode expected = new ObjectMapper().readTree(resource("golden/rope_scaling/v4/expected.json").toFile())
                .at("/models/longrope_model/runs/0");
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/rope_scaling/v4/longrope_model"), null,
                new CpuOps())) {
            LlamaForCausalLM model = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            assertEquals(24, model.ropeLengthDependentAbove());
            TextGeneration gen = new TextGeneration(model, null);
            int[] twelve = ints(expected.get("input_ids"));
            int[] answer = ints(expected.get("new_ids"));
            SamplingParams greedy = SamplingParams.greedy(answer.length, List.of());
            TextGeneration.PromptCache cache = new TextGeneration.PromptCache();
            var shortTurn = gen.generate(TextGeneration.embedIds(model, Arrays.copyOf(twelve, 8)),
                    Arrays.copyOf(twelve, 8), SamplingParams.greedy(4, List.of()), TextGeneration.TokenListener.NONE,
                    Cancel.NEVER, cache);
            assertEquals(0, shortTurn.reusedPromptTokens());
            var first = gen.generate(TextGeneration.embedIds(model, twelve), twelve, greedy,
                    TextGeneration.TokenListener.NONE, Cancel.NEVER, cache);
            assertEquals(8, first.reusedPromptTokens(), "12 positions are within the original length");
            assertArrayEquals(answer, first.tokenIds(), "crossing position 24 while decoding, as transformers");

            int[] longer = new int[25];
            System.arraycopy(twelve, 0, longer, 0, 12);
            System.arraycopy(answer, 0, longer, 12, 11);
            longer[23] = 5;
            longer[24] = 6;
            SamplingParams few = SamplingParams.greedy(6, List.of());
            int[] uncached = gen.generate(longer, few, TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds();
            var next = gen.generate(TextGeneration.embedIds(model, longer), longer, few,
                    TextGeneration.TokenListener.NONE, Cancel.NEVER, cache);
            assertEquals(0, next.reusedPromptTokens(), "a 25-position prompt rotates every position by long factors");
            assertArrayEquals(uncached, next.tokenIds());
            var back = gen.generate(TextGeneration.embedIds(model, twelve), twelve, greedy,
                    TextGeneration.TokenListener.NONE, Cancel.NEVER, cache);
            assertEquals(0, back.reusedPromptTokens(), "the cached keys came from a 25-position call");
            assertArrayEquals(answer, back.tokenIds());
        }
    }

    /**
     * tokenizer.json's ByteFallback decoder turns a whole run of byte tokens into U+FFFDs when the run is not valid
     * UTF-8, so a later byte can change the text of earlier ones (":" then 0xA7 decodes to two U+FFFD): the streamed
     * text holds a trailing byte run back, and the deltas add up to the final text (sampled gibberish of the tiny
     * LLaMA; seed 0 streamed ":" where the text has U+FFFD before).
     */
    @Test
    void streamedDeltasAddUpToTheTextThroughByteRuns() {
        try (VisionChat chat = VisionChat.load(koala4j.testing.TinyChatModels.llama(), null,
                VisionChat.Options.defaults(), new CpuOps())) {
            TextGeneration gen = new TextGeneration(chat.languageModel(), chat.tokenizer());
            int[] prompt = {1, 310, 347, 377, 351, 266, 349, 271};
            for (long seed = 0; seed < 12; seed++) {
                StringBuilder streamed = new StringBuilder();
                var r = gen.generate(prompt, SamplingParams.greedy(12, List.of()).withSampling(1.5, 0, 1.0, seed),
                        (id, delta) -> streamed.append(delta), Cancel.NEVER);
                assertEquals(r.text(), streamed.toString(), "seed " + seed + ", ids " + Arrays.toString(r.tokenIds()));
            }
        }
    }

    @Test
    void eosStopsAndIsReturnedButNotDecoded() {
        int[] free = new TextGeneration(lm, null).generate(prompt(), SamplingParams.greedy(8, List.of()),
                TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds();
        int eos = free[3];
        int firstEos = 0;
        while (free[firstEos] != eos) {
            firstEos++;
        }
        var result = new TextGeneration(lm, LETTERS).generate(prompt(), SamplingParams.greedy(8, List.of(eos)),
                TextGeneration.TokenListener.NONE, Cancel.NEVER);
        assertEquals(TextGeneration.StopReason.EOS, result.stopReason());
        assertArrayEquals(Arrays.copyOf(free, firstEos + 1), result.tokenIds());
        assertEquals(LETTERS.decode(Arrays.copyOf(free, firstEos)), result.text());
        var ignoring = new TextGeneration(lm, null).generate(prompt(),
                SamplingParams.greedy(8, List.of(eos)).withIgnoreEos(true), TextGeneration.TokenListener.NONE,
                Cancel.NEVER);
        assertArrayEquals(free, ignoring.tokenIds(), "ignore-eos generates exactly N");
    }

    @Test
    void stopStringCutsTheTextAndStreamingNeverShowsIt() {
        int[] free = new TextGeneration(lm, null).generate(prompt(), SamplingParams.greedy(20, List.of()),
                TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds();
        String all = LETTERS.decode(free);
        String stop = all.substring(9, 12);
        int at = all.indexOf(stop);
        List<String> deltas = new ArrayList<>();
        List<Integer> streamed = new ArrayList<>();
        var result = new TextGeneration(lm, LETTERS).generate(prompt(),
                SamplingParams.greedy(20, List.of()).withStopStrings(List.of(stop, "\u0001never")),
                (id, delta) -> {
                    streamed.add(id);
                    deltas.add(delta);
                }, Cancel.NEVER);
        assertEquals(TextGeneration.StopReason.STOP_STRING, result.stopReason());
        assertEquals(all.substring(0, at), result.text());
        assertArrayEquals(Arrays.copyOf(free, at + stop.length()), result.tokenIds(), "stops on the completing token");
        assertEquals(result.text(), String.join("", deltas));
        assertEquals(result.tokenIds().length, streamed.stream().filter(id -> id >= 0).count());
        for (String d : deltas) {
            assertFalse(d.contains(stop));
        }
    }

    @Test
    void seededSamplingIsReproducibleAndTopKOneIsGreedy() {
        SamplingParams sampling = SamplingParams.greedy(10, List.of()).withSampling(1.3, 0, 0.95, 42);
        TextGeneration gen = new TextGeneration(lm, null);
        int[] a = gen.generate(prompt(), sampling, TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds();
        int[] b = gen.generate(prompt(), sampling, TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds();
        int[] c = gen.generate(prompt(), sampling.withSampling(1.3, 0, 0.95, 43), TextGeneration.TokenListener.NONE,
                Cancel.NEVER).tokenIds();
        assertArrayEquals(a, b, "same seed, same tokens");
        assertFalse(Arrays.equals(a, c), "another seed draws other tokens (10 draws at temperature 1.3)");
        int[] greedy = gen.generate(prompt(), SamplingParams.greedy(10, List.of()), TextGeneration.TokenListener.NONE,
                Cancel.NEVER).tokenIds();
        int[] topOne = gen.generate(prompt(), sampling.withSampling(0.7, 1, 1.0, 7), TextGeneration.TokenListener.NONE,
                Cancel.NEVER).tokenIds();
        assertArrayEquals(greedy, topOne);
        int[] penalised = gen.generate(prompt(), SamplingParams.greedy(10, List.of()).withRepetitionPenalty(100.0),
                TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds();
        assertEquals(10, Arrays.stream(penalised).distinct().count(), "a huge penalty forbids every repeat");
    }

    @Test
    void cancelStopsBetweenSteps() {
        int[] calls = {0};
        assertThrows(java.util.concurrent.CancellationException.class, () -> new TextGeneration(lm, null).generate(
                prompt(), SamplingParams.greedy(10, List.of()), (id, d) -> calls[0]++, () -> calls[0] >= 3));
        assertEquals(3, calls[0]);
    }

    /** transformers' max_time: checked after each new token, the clock started before the prompt. */
    @Test
    void maxTimeStopsAfterTheTokenThatPassesIt() {
        var greedy = SamplingParams.greedy(20, List.of(2)).withIgnoreEos(true);
        var passed = new TextGeneration(lm, null).generate(prompt(),
                greedy.withConstraints(greedy.constraints().withMaxTime(1e-9)), TextGeneration.TokenListener.NONE,
                Cancel.NEVER);
        assertEquals(1, passed.tokenIds().length);
        assertEquals(TextGeneration.StopReason.MAX_TIME, passed.stopReason());
        var ample = new TextGeneration(lm, null).generate(prompt(),
                greedy.withConstraints(greedy.constraints().withMaxTime(3600)), TextGeneration.TokenListener.NONE,
                Cancel.NEVER);
        assertEquals(20, ample.tokenIds().length);
        assertEquals(TextGeneration.StopReason.MAX_NEW_TOKENS, ample.stopReason());
        var beams = greedy.withBeams(new SamplingParams.Beams(2, 1f, TextGenerationConfig.EarlyStopping.FALSE))
                .withConstraints(greedy.constraints().withMaxTime(10));
        var e = assertThrows(IllegalArgumentException.class, () -> new TextGeneration(lm, null).generate(prompt(),
                beams, TextGeneration.TokenListener.NONE, Cancel.NEVER));
        assertTrue(e.getMessage().contains("max_time with num_beams 2"), e.getMessage());
        var negative = assertThrows(IllegalArgumentException.class, () -> greedy.constraints().withMaxTime(-1));
        assertTrue(negative.getMessage().contains("max_time -1.0"), negative.getMessage());
    }

    @Test
    void cancelStopsALongPromptBetweenItsChunks() {
        GoldenFile g = GoldenFile.open(resource("golden/llama_tiny/io.safetensors"));
        long[] expected = g.longs("out.generated_ids");
        lm.prefillChunk(4);
        try {
            int[] checks = {0};
            int[] tokens = {0};
            assertThrows(java.util.concurrent.CancellationException.class, () -> new TextGeneration(lm, null)
                    .generate(prompt(), SamplingParams.greedy(10, List.of()), (id, d) -> tokens[0]++,
                            () -> ++checks[0] > 2));
            assertEquals(3, checks[0], "checked before each of the 12-token prompt's chunks of 4, stopped at the third");
            assertEquals(0, tokens[0]);
            var result = new TextGeneration(lm, null).generate(prompt(),
                    SamplingParams.greedy(20, List.of(2)).withIgnoreEos(true), TextGeneration.TokenListener.NONE,
                    Cancel.NEVER);
            assertArrayEquals(Arrays.stream(expected).skip(12).mapToInt(Math::toIntExact).toArray(),
                    result.tokenIds(), "greedy ids of a prompt computed in chunks");
        } finally {
            lm.prefillChunk(LlamaForCausalLM.DEFAULT_PREFILL_CHUNK);
        }
    }

    private static koala4j.tensor.Tensor embeds(int[] ids) {
        return TextGeneration.embedIds(lm, ids);
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    @Test
    void promptCacheResumesAfterTheSharedPrefixWithTheSameTokens() {
        int[] a = prompt();
        TextGeneration gen = new TextGeneration(lm, null);
        TextGeneration.PromptCache cache = new TextGeneration.PromptCache();
        SamplingParams p = SamplingParams.greedy(6, List.of()).withIgnoreEos(true);
        var first = gen.generate(embeds(a), a, p, TextGeneration.TokenListener.NONE, Cancel.NEVER, cache);
        assertEquals(0, first.reusedPromptTokens());
        assertArrayEquals(gen.generate(a, p, TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds(),
                first.tokenIds());
        assertEquals(a.length + 5, cache.length(), "the prompt and the new tokens fed back (not the last one)");

        // the next turn: the prompt, the answer and more text; its cache must grow (the shared part is copied)
        int[] next = concat(a, first.tokenIds(), new int[] {5, 9, 11});
        var resumed = gen.generate(embeds(next), next, p, TextGeneration.TokenListener.NONE, Cancel.NEVER, cache);
        var fresh = gen.generate(next, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
        assertEquals(a.length + 5, resumed.reusedPromptTokens());
        assertArrayEquals(fresh.tokenIds(), resumed.tokenIds());

        // the same prompt again: everything but its last position, whose logits pick the first token
        var again = gen.generate(embeds(next), next, p, TextGeneration.TokenListener.NONE, Cancel.NEVER, cache);
        assertEquals(next.length - 1, again.reusedPromptTokens());
        assertArrayEquals(fresh.tokenIds(), again.tokenIds());

        // a prompt that differs at position 3 reuses 3 positions, with a longer answer than the cache has room for
        int[] edited = next.clone();
        edited[3] = edited[3] == 1 ? 2 : 1;
        SamplingParams longer = p.withMaxNewTokens(30);
        var diverged = gen.generate(embeds(edited), edited, longer, TextGeneration.TokenListener.NONE, Cancel.NEVER,
                cache);
        assertEquals(3, diverged.reusedPromptTokens());
        assertArrayEquals(gen.generate(edited, longer, TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds(),
                diverged.tokenIds());

        // a failed (cancelled) generation leaves nothing to reuse; clear() frees the cache
        assertThrows(java.util.concurrent.CancellationException.class, () -> gen.generate(embeds(edited), edited,
                longer, TextGeneration.TokenListener.NONE, () -> true, cache));
        assertEquals(0, cache.length());
        var afterFailure = gen.generate(embeds(edited), edited, longer, TextGeneration.TokenListener.NONE,
                Cancel.NEVER, cache);
        assertEquals(0, afterFailure.reusedPromptTokens());
        assertArrayEquals(diverged.tokenIds(), afterFailure.tokenIds());
        cache.clear();
        assertEquals(0, cache.length());
    }
}
