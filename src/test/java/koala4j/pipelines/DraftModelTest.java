package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.image.Images;
import koala4j.testing.TinyChatModels;

/**
 * Speculative decoding with a {@link DraftModel} on the e2e tiny models: the answers (greedy and sampled, raw
 * completions, several choices at once, a LLaVA image question drafted by its own language model) are exactly those
 * without a draft model, in fewer target passes where drafts are kept: the model drafting for itself keeps every
 * draft; the same weights with ReLU MLPs keep some (sampled answers at temperature 1 rarely pick the greedy
 * drafts, and stay the same). Drafting stops at the probability
 * floor and at the pass limit; an incompatible vocabulary is refused.
 */
@Timeout(120)
class DraftModelTest {

    @TempDir
    static Path work;

    private static final CpuOps OPS = new CpuOps();
    private static VisionChat llama;
    private static VisionChat llava;

    @BeforeAll
    static void load() {
        llama = TinyChatModels.loadLlama();
        llava = VisionChat.load(TinyChatModels.llava(work), "llava-hf/tiny", VisionChat.Options.defaults(), OPS);
    }

    @AfterAll
    static void close() {
        llama.close();
        llava.close();
    }

    private static DraftModel draft(Path folder, double pMin) {
        return DraftModel.load(folder, null, VisionChat.Options.defaults(), new DraftModel.Settings(4, pMin), OPS);
    }

    /**
     * The tiny LLaMA with ReLU in place of SiLU in its MLPs: a draft model that agrees with it often but not always
     * (greedy, it keeps 17 of 24 and 9 of 52 drafts of the two prompts).
     */
    private static Path relu() {
        Path to = work.resolve("llama-relu");
        if (Files.isDirectory(to)) {
            return to;
        }
        return TinyChatModels.withConfig(TinyChatModels.llama(), to, c -> c.put("hidden_act", "relu"),
                TinyChatModels.LLAMA_FILES);
    }

    /** The tiny LLaMA whose tokenizer.json spells ids 300 and 301 the other way round (no tokenizer.model). */
    private static Path swappedVocabulary() throws IOException {
        Path to = work.resolve("llama-swapped");
        TinyChatModels.withConfig(TinyChatModels.llama(), to, c -> { }, TinyChatModels.LLAMA_FILES.stream()
                .filter(f -> !f.startsWith("tokenizer.")).toList());
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var tok = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(
                TinyChatModels.llama().resolve("tokenizer.json").toFile());
        var vocab = (com.fasterxml.jackson.databind.node.ObjectNode) tok.get("model").get("vocab");
        String a = null;
        String b = null;
        for (var e : vocab.properties()) {
            if (e.getValue().asInt() == 300) {
                a = e.getKey();
            } else if (e.getValue().asInt() == 301) {
                b = e.getKey();
            }
        }
        vocab.put(a, 301);
        vocab.put(b, 300);
        json.writeValue(to.resolve("tokenizer.json").toFile(), tok);
        return to;
    }

    private static VisionChat.Reply complete(VisionChat chat, String prompt, SamplingParams p) {
        return chat.complete(prompt, List.of(), p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
    }

    @Test
    void draftedAnswersAreTheModelsOwn() {
        SamplingParams greedy = llama.rawDefaults().withGreedy().withMaxNewTokens(24).withIgnoreEos(true);
        SamplingParams sampled = llama.rawDefaults().withSampling(1.0, 0, 0.9, 3).withMaxNewTokens(24)
                .withIgnoreEos(true);
        for (String prompt : List.of("The koala is", "한국어 문장을 만들어 보자")) {
            for (SamplingParams p : List.of(greedy, sampled)) {
                llama.draftModel(null);
                llama.clearCaches();
                VisionChat.Reply plain = complete(llama, prompt, p);
                assertEquals(0, plain.generation().drafts().proposed());
                for (Path folder : List.of(TinyChatModels.llama(), relu())) {
                    try (DraftModel d = draft(folder, 0)) {
                        llama.draftModel(d);
                        llama.clearCaches();
                        VisionChat.Reply drafted = complete(llama, prompt, p);
                        String what = prompt + ", " + folder.getFileName() + ", sampled " + p.doSample();
                        assertArrayEquals(plain.outputIds(), drafted.outputIds(), what);
                        assertEquals(plain.text(), drafted.text(), what);
                        TextGeneration.Drafts drafts = drafted.generation().drafts();
                        assertTrue(drafts.proposed() > 0 && drafts.passes() < 24, what + ": " + drafts);
                        if (folder.equals(TinyChatModels.llama()) && !p.doSample()) {
                            // drafting for itself, greedy: every draft is the model's own choice
                            assertEquals(drafts.proposed(), drafts.accepted(), what + ": " + drafts);
                        } else if (!p.doSample()) {
                            assertTrue(drafts.accepted() > 0 && drafts.accepted() < drafts.proposed(),
                                    what + ": " + drafts);
                        }
                    }
                }
            }
        }
        llama.draftModel(null);
    }

    @Test
    void severalChoicesEachWithItsDrafts() {
        List<VisionChat.Choice> choices = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            choices.add(new VisionChat.Choice(llama.rawDefaults().withSampling(1.0, 0, 1.0, 20 + i)
                    .withMaxNewTokens(16).withIgnoreEos(true), TextGeneration.TokenListener.NONE, r -> { }));
        }
        llama.draftModel(null);
        List<VisionChat.Reply> plain = llama.completions("Once upon a time", List.of(), choices, Cancel.NEVER, false);
        try (DraftModel d = draft(relu(), 0)) {
            llama.draftModel(d);
            List<VisionChat.Reply> drafted = llama.completions("Once upon a time", List.of(), choices, Cancel.NEVER,
                    false);
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(plain.get(i).outputIds(), drafted.get(i).outputIds(), "choice " + i);
            }
        } finally {
            llama.draftModel(null);
        }
    }

    @Test
    void aLlavaQuestionDraftedByItsOwnLanguageModel() throws IOException {
        Conversation q = Conversation.empty().user("What shapes are in this image?", List.of(
                new Conversation.Picture(Images.read(TinyChatModels.image("llava")), "image.png")));
        SamplingParams p = llava.defaults().withGreedy().withMaxNewTokens(12).withIgnoreEos(true);
        llava.clearCaches();
        VisionChat.Reply plain = llava.reply(q, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
        try (DraftModel d = DraftModel.load(TinyChatModels.llava(work.resolve("draft")), null,
                VisionChat.Options.defaults(), new DraftModel.Settings(3, 0), OPS)) {
            llava.draftModel(d);
            llava.clearCaches();
            VisionChat.Reply drafted = llava.reply(q, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertArrayEquals(plain.outputIds(), drafted.outputIds());
            assertTrue(drafted.generation().drafts().proposed() > 0, drafted.generation().drafts().toString());
        } finally {
            llava.draftModel(null);
        }
    }

    /**
     * An original-layout Ko-LLaVA drafting for itself through {@link VisionChat.Options#draft}, its tower named as
     * --vision-tower names it (the draft folder loads with the same tower): the same answer about the image; the
     * text-only draft, which does not see the image, has some of its drafts kept.
     */
    @Test
    void koLlavaThroughTheOptionsWithItsVisionTower() throws IOException {
        Path tower = TinyChatModels.kollava().resolveSibling("kollava_v0_vision");
        var d = VisionChat.Options.defaults();
        var plainOptions = new VisionChat.Options(null, null, tower.toString(), d.frames(), null, 0, null);
        var draftOptions = new VisionChat.Options(null, null, tower.toString(), d.frames(), null, 0, null, 512, null,
                new DraftModel.Source(TinyChatModels.kollava(), null, new DraftModel.Settings(4, 0)));
        Conversation q = Conversation.empty().user("What is this?", List.of(new Conversation.Picture(
                Images.read(TinyChatModels.image("kollava_v0")), "image.png")));
        try (VisionChat plain = VisionChat.load(TinyChatModels.kollava(), "Ko-LLaVA-13b", plainOptions, OPS);
             VisionChat drafted = VisionChat.load(TinyChatModels.kollava(), "Ko-LLaVA-13b", draftOptions, OPS)) {
            SamplingParams p = plain.defaults().withGreedy().withMaxNewTokens(12).withIgnoreEos(true);
            VisionChat.Reply a = plain.reply(q, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            VisionChat.Reply b = drafted.reply(q, p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertArrayEquals(a.outputIds(), b.outputIds());
            assertTrue(b.generation().drafts().proposed() > 0, b.generation().drafts().toString());
            assertTrue(drafted.describe().contains("draft model"), drafted.describe());
        }
    }

    @Test
    void draftingStopsAtTheProbabilityFloorAndThePassLimit() {
        try (DraftModel d = draft(TinyChatModels.llama(), 0)) {
            int shared = d.sharedVocabulary(llama.tokenizer(), llama.languageModel().config().vocabSize());
            TextGeneration.Drafter s = d.session(new int[] {1, 450, 413}, 8, shared);
            assertEquals(4, s.draft(new int[8], 0, 10).length);
            assertEquals(2, s.draft(new int[8], 0, 2).length);
            assertEquals(0, s.draft(new int[8], 0, 0).length);
        }
        try (DraftModel d = draft(TinyChatModels.llama(), 1)) {
            int shared = d.sharedVocabulary(llama.tokenizer(), llama.languageModel().config().vocabSize());
            // a random tiny model is never certain of a token
            assertEquals(0, d.session(new int[] {1, 450, 413}, 8, shared).draft(new int[8], 0, 10).length);
        }
        assertThrows(IllegalArgumentException.class, () -> new DraftModel.Settings(0, 0.5));
        var bad = assertThrows(IllegalArgumentException.class,
                () -> DraftModel.Settings.fromOptions("--draft-max", 4, "--draft-p-min", 1.5));
        assertTrue(bad.getMessage().contains("--draft-p-min 1.5"), bad.getMessage());
    }

    @Test
    void anotherVocabularyIsRefused() throws IOException {
        try (DraftModel d = draft(swappedVocabulary(), 0)) {
            var e = assertThrows(IllegalArgumentException.class, () -> llama.draftModel(d));
            assertTrue(e.getMessage().contains("a draft model needs the target's vocabulary")
                    && e.getMessage().contains("token 300 is"), e.getMessage());
        }
    }
}
