package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.CpuOps;
import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.testing.TinyChatModels;

/**
 * Batched decoding on the e2e tiny LLaMA: {@link LlamaForCausalLM#decodeStep} over sequences at different positions
 * gives each the logits of its own one-sequence step (within 1e-5 of the largest logit: the batched products sum in
 * another order), and concurrent generations through a {@link DecodeBatcher} give the ids they give alone, greedy and
 * sampled, while sharing steps.
 */
class DecodeBatcherTest {

    private static VisionChat llama;
    private static final String[] PROMPTS = {"The koala", "Seoul is a city in", "Once upon a time, in a forest far away,"};

    @BeforeAll
    static void load() {
        llama = TinyChatModels.loadLlama();
    }

    @AfterAll
    static void close() {
        llama.close();
    }

    @Test
    void aBatchedStepIsEachSequencesOwnStep() {
        batchedStepsEqualOwnSteps(llama, PROMPTS);
        LlamaForCausalLM lm = llama.languageModel();
        var e = assertThrows(IllegalArgumentException.class, () -> lm.decodeStep(new long[] {1, 2},
                List.of(lm.newCache(1, 8))));
        assertTrue(e.getMessage().contains("one cache per id"), e.getMessage());
        var wide = assertThrows(IllegalArgumentException.class, () -> lm.decodeStep(new long[] {1},
                List.of(lm.newCache(2, 8))));
        assertTrue(wide.getMessage().contains("holds 2 sequences"), wide.getMessage());
    }

    /** F16 caches, and a Mistral whose 6-position sliding window is shorter than the prompts (a mask per sequence). */
    @Test
    void halfCachesAndSlidingWindows(@org.junit.jupiter.api.io.TempDir java.nio.file.Path work) throws Exception {
        VisionChat half = VisionChat.load(TinyChatModels.llama(), null, new VisionChat.Options(null, null, null,
                VisionChat.Options.defaults().frames(), VisionChat.Options.defaults().hub(), 0,
                koala4j.tensor.DType.F16), new CpuOps());
        try {
            batchedStepsEqualOwnSteps(half, PROMPTS);
        } finally {
            half.close();
        }
        java.nio.file.Path model = work.resolve("mistral_window");
        koala4j.testing.TinyPipelines.copyTree(koala4j.testing.Close.resource("transformers5/variants/mistral_window"),
                model);
        for (String file : List.of("tokenizer.json", "tokenizer_config.json")) {
            java.nio.file.Files.copy(koala4j.testing.Close.resource("transformers5/llama/" + file), model.resolve(file));
        }
        VisionChat mistral = VisionChat.load(model, null, VisionChat.Options.defaults(), new CpuOps());
        try {
            assertEquals(6, mistral.languageModel().config().slidingWindow());
            batchedStepsEqualOwnSteps(mistral, new String[] {"a b", "one two three four five six seven",
                    "the koala sleeps in the tree all day long"});
        } finally {
            mistral.close();
        }
    }

    /** 12 steps of the prompts' sequences together, each against its own one-sequence steps: the same logits. */
    private static void batchedStepsEqualOwnSteps(VisionChat chat, String[] prompts) {
        LlamaForCausalLM lm = chat.languageModel();
        int s = prompts.length;
        List<KvCache> alone = new ArrayList<>();
        List<KvCache> together = new ArrayList<>();
        long[] next = new long[s];
        for (int i = 0; i < s; i++) {
            int[] ids = chat.tokenizer().encode(prompts[i], true);
            long[] prompt = java.util.Arrays.stream(ids).asLongStream().toArray();
            for (List<KvCache> caches : List.of(alone, together)) {
                KvCache c = lm.newCache(1, ids.length + 16);
                float[] logits = lm.forwardIds(lm.ops().fromArray(prompt, 1, ids.length), c, true).toFloatArray();
                next[i] = LogitsProcessing.argmax(logits);
                caches.add(c);
            }
        }
        for (int step = 0; step < 12; step++) {
            float[] batched = lm.decodeStep(next, together).toFloatArray();                    // [S, 1, V]
            int vocab = batched.length / s;
            for (int i = 0; i < s; i++) {
                float[] own = lm.forwardIds(lm.ops().fromArray(new long[] {next[i]}, 1, 1), alone.get(i), true)
                        .toFloatArray();
                // bit for bit: the few-rows kernels (Gemv.fewRows for F32 / F16, Q8Gemm for Q8_0) form each row
                // exactly as the one-row kernels do
                assertArrayEquals(own, java.util.Arrays.copyOfRange(batched, i * vocab, (i + 1) * vocab),
                        "step " + step + " sequence " + i);
                assertEquals(alone.get(i).length(), together.get(i).length());
                next[i] = LogitsProcessing.argmax(own);
            }
        }
    }

    @Test
    void concurrentGenerationsShareStepsAndKeepTheirIds() throws Exception {
        LlamaForCausalLM lm = llama.languageModel();
        TextGeneration alone = new TextGeneration(lm, llama.tokenizer());
        DecodeBatcher batcher = new DecodeBatcher(lm, DecodeBatcher.DEFAULT_MAX_BATCH);
        TextGeneration shared = new TextGeneration(lm, llama.tokenizer(), batcher);
        int n = PROMPTS.length * 2;
        List<SamplingParams> params = new ArrayList<>();
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            prompts.add(llama.tokenizer().encode(PROMPTS[i % PROMPTS.length], true));
            SamplingParams p = SamplingParams.greedy(24, List.of()).withIgnoreEos(true);
            params.add(i < PROMPTS.length ? p : p.withSampling(1.0, 0, 0.9, 7 + i));
        }
        List<int[]> expected = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            expected.add(alone.generate(prompts.get(i), params.get(i), TextGeneration.TokenListener.NONE, Cancel.NEVER)
                    .tokenIds());
        }
        // The generations take each token in step (all run 24 tokens), so that their next steps are asked for at
        // about the same moment and meet. Whether they do is up to the scheduler (the tiny model's steps take tens
        // of microseconds): rounds repeat, each checking the ids, until steps have been shared, at most ten.
        int rounds = 0;
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            do {
                rounds++;
                CyclicBarrier together = new CyclicBarrier(n);
                List<Future<int[]>> runs = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    int k = i;
                    runs.add(pool.submit(() -> shared.generate(prompts.get(k), params.get(k), (id, text) -> {
                        if (id >= 0) {   // id -1: held-back text after the last token, not a token
                            await(together);
                        }
                    }, Cancel.NEVER).tokenIds()));
                }
                for (int i = 0; i < n; i++) {
                    assertArrayEquals(expected.get(i), runs.get(i).get(), "generation " + i + ", round " + rounds);
                }
            } while (batcher.stats().largest() < 2 && rounds < 10);
        } finally {
            pool.shutdownNow();
        }
        var full = lm.newCache(1, 1);
        lm.forwardIds(lm.ops().fromArray(new long[] {1}, 1, 1), full, true);
        var e = assertThrows(IllegalArgumentException.class, () -> batcher.step(5, full));
        assertTrue(e.getMessage().contains("at 1 of 1 positions"), e.getMessage());
        DecodeBatcher.Stats stats = batcher.stats();
        assertEquals((long) rounds * n * 23, stats.steps(), stats.toString());
        assertTrue(stats.largest() >= 2 && stats.batches() < stats.steps(), stats.toString());
    }

    /**
     * Seated generations wait for each other: with a patience longer than the test, four generations that have all
     * taken their seats (a barrier at their first token) decode every step in one batch of four, and their ids are
     * their own. Without the seats, a step that found the model free ran at once, and groups that once missed each
     * other took turns for good (8 layers of llava-1.5-7b, 4 generations: 59 batches for 124 steps).
     */
    @Test
    void seatedGenerationsDecodeInFullBatches() throws Exception {
        LlamaForCausalLM lm = llama.languageModel();
        DecodeBatcher batcher = new DecodeBatcher(lm, DecodeBatcher.DEFAULT_MAX_BATCH, java.time.Duration.ofMinutes(5));
        TextGeneration shared = new TextGeneration(lm, llama.tokenizer(), batcher);
        TextGeneration alone = new TextGeneration(lm, llama.tokenizer());
        int n = 4;
        int tokens = 16;
        CyclicBarrier seated = new CyclicBarrier(n);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<int[]>> runs = new ArrayList<>();
            List<SamplingParams> params = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                SamplingParams p = SamplingParams.greedy(tokens, List.of()).withIgnoreEos(true)
                        .withSampling(1.0, 0, 0.9, 11 + i);
                params.add(p);
                int[] prompt = llama.tokenizer().encode(PROMPTS[i % PROMPTS.length], true);
                boolean[] first = {true};
                runs.add(pool.submit(() -> shared.generate(prompt, p, (id, text) -> {
                    if (id >= 0 && first[0]) {
                        first[0] = false;
                        await(seated);
                    }
                }, Cancel.NEVER).tokenIds()));
            }
            for (int i = 0; i < n; i++) {
                int[] prompt = llama.tokenizer().encode(PROMPTS[i % PROMPTS.length], true);
                assertArrayEquals(alone.generate(prompt, params.get(i), TextGeneration.TokenListener.NONE,
                        Cancel.NEVER).tokenIds(), runs.get(i).get(), "generation " + i);
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(new DecodeBatcher.Stats(tokens - 1, (long) n * (tokens - 1), n), batcher.stats());
    }

    /**
     * A seated generation that does not ask for its step holds the others up for the patience only, then they run
     * without it; a closed seat (closing twice is harmless) holds nothing up.
     */
    @Test
    void aMissingStepIsAwaitedForThePatienceOnly() {
        LlamaForCausalLM lm = llama.languageModel();
        java.time.Duration patience = java.time.Duration.ofMillis(40);
        DecodeBatcher batcher = new DecodeBatcher(lm, DecodeBatcher.DEFAULT_MAX_BATCH, patience);
        TextGeneration shared = new TextGeneration(lm, llama.tokenizer(), batcher);
        int[] prompt = llama.tokenizer().encode(PROMPTS[0], true);
        SamplingParams p = SamplingParams.greedy(6, List.of()).withIgnoreEos(true);
        int[] expected = new TextGeneration(lm, llama.tokenizer()).generate(prompt, p,
                TextGeneration.TokenListener.NONE, Cancel.NEVER).tokenIds();
        DecodeBatcher.Seat idle = batcher.seat();
        long t0 = System.nanoTime();
        assertArrayEquals(expected, shared.generate(prompt, p, TextGeneration.TokenListener.NONE, Cancel.NEVER)
                .tokenIds());
        long waited = System.nanoTime() - t0;
        // five steps, each after waiting out the patience for the idle seat
        assertTrue(waited >= 5 * patience.toNanos(), "waited " + waited / 1e6 + " ms");
        idle.close();
        idle.close();
        assertEquals(new DecodeBatcher.Stats(5, 5, 1), batcher.stats());
        assertArrayEquals(expected, shared.generate(prompt, p, TextGeneration.TokenListener.NONE, Cancel.NEVER)
                .tokenIds());
        assertEquals(new DecodeBatcher.Stats(10, 10, 1), batcher.stats());
        assertThrows(IllegalArgumentException.class, () -> new DecodeBatcher(lm, 1, java.time.Duration.ofMillis(-1)));
    }

    private static void await(CyclicBarrier barrier) {
        try {
            barrier.await(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
