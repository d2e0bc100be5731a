package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.image.Images;
import koala4j.tensor.DType;
import koala4j.testing.TinyChatModels;

/**
 * Several answers to one prompt ({@link VisionChat#replies}, {@link VisionChat#completions}; OpenAI's {@code n}) on
 * the e2e tiny LLaVA and LLaMA: computed once and decoded together, each choice gives exactly the ids it gives alone
 * with its seed (the batched steps equal one-sequence steps bit for bit), a failing choice stops the others and its
 * error is the one thrown, and the first choice's answer stays in the prompt cache for the next turn.
 */
@Timeout(120)
class ChoicesTest {

    @TempDir
    static Path work;

    private static final CpuOps OPS = new CpuOps();
    private static VisionChat llava;
    /** The same folder without a prompt cache: every reply computes its whole prompt. */
    private static VisionChat llavaUncached;
    private static VisionChat llama;
    private static Conversation question;

    @BeforeAll
    static void load() throws IOException {
        Path folder = TinyChatModels.llava(work);
        llava = VisionChat.load(folder, "llava-hf/tiny", VisionChat.Options.defaults(), OPS);
        var d = VisionChat.Options.defaults();
        llavaUncached = VisionChat.load(folder, "llava-hf/tiny", new VisionChat.Options(null, null, null, d.frames(),
                d.hub(), 0, DType.F32), OPS);
        llama = TinyChatModels.loadLlama();
        question = Conversation.empty().user("What is in the picture?", List.of(new Conversation.Picture(
                Images.read(TinyChatModels.image("llava")), "image.png")));
    }

    @AfterAll
    static void close() {
        llava.close();
        llavaUncached.close();
        llama.close();
    }

    private static SamplingParams sampled(VisionChat chat, long seed) {
        return chat.defaults().withSampling(1.0, 0, 0.9, seed).withMaxNewTokens(24).withIgnoreEos(true);
    }

    @Test
    void choicesDecodeTogetherAndAnswerAsAlone() {
        int n = 4;
        List<int[]> alone = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            alone.add(llavaUncached.reply(question, sampled(llavaUncached, 30 + i), TextGeneration.TokenListener.NONE,
                    Cancel.NEVER).outputIds());
        }
        // whether the choices' steps meet is up to the scheduler (the tiny model's steps take microseconds): rounds
        // until they have, each round's answers checked, at most ten
        boolean shared = false;
        for (int round = 0; round < 10 && !shared; round++) {
            Map<Integer, VisionChat.Reply> ended = new ConcurrentHashMap<>();
            List<VisionChat.Choice> choices = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int k = i;
                choices.add(new VisionChat.Choice(sampled(llavaUncached, 30 + i), TextGeneration.TokenListener.NONE,
                        reply -> assertEquals(null, ended.put(k, reply), "choice " + k + " ended twice")));
            }
            DecodeBatcher.Stats before = llavaUncached.decodeStats();
            List<VisionChat.Reply> replies = llavaUncached.replies(question, choices, Cancel.NEVER, false);
            DecodeBatcher.Stats after = llavaUncached.decodeStats();
            assertEquals(n, replies.size());
            for (int i = 0; i < n; i++) {
                assertArrayEquals(alone.get(i), replies.get(i).outputIds(), "choice " + i + ", round " + round);
                assertSame(replies.get(i), ended.get(i));
                assertEquals(replies.getFirst().promptIds().length, replies.get(i).promptIds().length);
            }
            assertEquals((long) n * 23, after.steps() - before.steps());
            shared = after.batches() - before.batches() < after.steps() - before.steps();
        }
        assertTrue(shared, "no steps shared in 10 rounds: " + llavaUncached.decodeStats());
        assertTrue(alone.stream().map(java.util.Arrays::toString).distinct().count() > 1, "sampled choices differ");
        assertThrows(IllegalArgumentException.class, () -> llava.replies(question, List.of(), Cancel.NEVER, false));
    }

    /**
     * Raw completions too; and with beam search the choices are the best hypotheses of one search (transformers'
     * num_return_sequences; golden in BeamSearchGoldenTest): the first is the answer of the search alone, the others
     * differ from it and from each other.
     */
    @Test
    void completionsAndBeams() {
        String prompt = "Once upon a time";
        List<VisionChat.Choice> choices = new ArrayList<>();
        List<VisionChat.Choice> beams = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            choices.add(new VisionChat.Choice(sampled(llama, 7 + i), TextGeneration.TokenListener.NONE, r -> { }));
            beams.add(new VisionChat.Choice(llama.rawDefaults().withGreedy().withMaxNewTokens(8)
                    .withBeams(new SamplingParams.Beams(3, 1f, TextGenerationConfig.EarlyStopping.FALSE)),
                    TextGeneration.TokenListener.NONE, r -> { }));
        }
        List<VisionChat.Reply> together = llama.completions(prompt, List.of(), choices, Cancel.NEVER, false);
        List<VisionChat.Reply> beamed = llama.completions(prompt, List.of(), beams, Cancel.NEVER, false);
        for (int i = 0; i < 3; i++) {
            llama.clearCaches();
            assertArrayEquals(alone(prompt, choices.get(i).params()), together.get(i).outputIds(), "choice " + i);
        }
        assertArrayEquals(alone(prompt, beams.getFirst().params()), beamed.getFirst().outputIds(), "best hypothesis");
        assertEquals(3, beamed.stream().map(r -> java.util.Arrays.toString(r.outputIds())).distinct().count(),
                "three hypotheses");
        List<VisionChat.Choice> tooMany = new ArrayList<>(beams);
        tooMany.add(beams.getFirst());
        assertThrows(IllegalArgumentException.class, () -> llama.completions(prompt, List.of(), tooMany, Cancel.NEVER,
                false));
    }

    private static int[] alone(String prompt, SamplingParams params) {
        return llama.complete(prompt, List.of(), params, TextGeneration.TokenListener.NONE, Cancel.NEVER).outputIds();
    }

    @Test
    void aFailingChoiceStopsTheOthersAndItsErrorIsThrown() {
        Map<Integer, Boolean> ended = new ConcurrentHashMap<>();
        List<VisionChat.Choice> choices = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            int k = i;
            int[] tokens = {0};
            choices.add(new VisionChat.Choice(sampled(llama, i), (id, text) -> {
                if (k == 1 && id >= 0 && ++tokens[0] == 3) {
                    throw new IllegalStateException("choice 1 failed at its third token");
                }
            }, r -> ended.put(k, true)));
        }
        var e = assertThrows(IllegalStateException.class, () -> llama.completions("The koala", List.of(), choices,
                Cancel.NEVER, false));
        assertEquals("choice 1 failed at its third token", e.getMessage());
        assertEquals(null, ended.get(1));

        AtomicBoolean cancelled = new AtomicBoolean();
        List<VisionChat.Choice> watched = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            watched.add(new VisionChat.Choice(sampled(llama, i), (id, text) -> cancelled.set(true), r -> { }));
        }
        assertThrows(CancellationException.class, () -> llama.completions("The koala", List.of(), watched,
                cancelled::get, false));
    }

    /**
     * The prompt stays in the prompt cache after the choices (the first choice's answer after it, as a single reply
     * leaves its own), and the next turn, resuming from it, answers as a model without a cache does.
     */
    @Test
    void theNextTurnResumesFromThePromptCache() {
        llava.clearCaches();
        List<VisionChat.Choice> choices = new ArrayList<>();
        for (int seed = 1; seed <= 2; seed++) {
            choices.add(new VisionChat.Choice(sampled(llava, seed).withMaxNewTokens(6), TextGeneration.TokenListener.NONE,
                    r -> { }));
        }
        List<VisionChat.Reply> replies = llava.replies(question, choices, Cancel.NEVER, false);
        int promptPositions = replies.getFirst().generation().promptTokens();
        Conversation next = question.assistant(replies.getFirst().text()).user("And what colour is it?");
        SamplingParams greedy = llava.defaults().withGreedy().withMaxNewTokens(8);
        VisionChat.Reply later = llava.reply(next, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
        assertTrue(later.generation().reusedPromptTokens() >= promptPositions, later.generation().reusedPromptTokens()
                + " reused of a first prompt of " + promptPositions);
        assertArrayEquals(llavaUncached.reply(next, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER)
                .outputIds(), later.outputIds());
    }
}
