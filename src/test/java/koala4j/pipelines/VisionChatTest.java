package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.image.ClipImageProcessor;
import koala4j.io.image.Image;
import koala4j.io.image.Images;
import koala4j.tokenizers.LlavaConversation;
import koala4j.tokenizers.TextTokenizer;
import koala4j.testing.TinyChatModels;

/**
 * {@link VisionChat} beyond the golden CLI runs (those are in cli.ChatCommandTest): prompt placement for several
 * images and turns in both prompt formats, LLaVA-1.5's original layout (-200 placeholder through
 * tokenizer_image_token, image_aspect_ratio "pad", llava_v1 inferred from the name), text-only models, errors,
 * cancellation and concurrent use. The LLaVA-1.5 folder is the tiny Ko-LLaVA one with its config switched to the 1.5
 * conventions (same weights: one Linear projector, which LLaVA-1.5's mm_projector_type "linear" also is).
 */
@Timeout(60)
class VisionChatTest {

    @TempDir
    static Path work;

    private static final CpuOps OPS = new CpuOps();
    private static VisionChat llava;
    private static VisionChat kollava;
    private static Image image;

    @BeforeAll
    static void load() throws IOException {
        llava = VisionChat.load(TinyChatModels.llava(work), "llava-hf/tiny", VisionChat.Options.defaults(), OPS);
        kollava = VisionChat.load(TinyChatModels.kollava(), null, VisionChat.Options.defaults(), OPS);
        image = Images.read(TinyChatModels.image("llava"));
    }

    @AfterAll
    static void close() {
        llava.close();
        kollava.close();
    }

    private static Conversation.Picture picture() {
        return new Conversation.Picture(image, "image.png");
    }

    @Test
    void imagesGoBeforeTheirTurnsTextInBothFormats() {
        Conversation c = Conversation.empty().user("Compare them.", List.of(picture(), picture()))
                .assistant("Two koalas.").user("And this one?", List.of(picture()));
        assertEquals("USER: <image>\n<image>\nCompare them. ASSISTANT: Two koalas. USER: <image>\nAnd this one? ASSISTANT:",
                ChatPrompts.render(llava.promptFormat().orElseThrow(), c, llava.tokenizer(), true));
        String system = "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
                + "helpful, detailed, and polite answers to the human's questions.";
        String image = "<im_start><image><im_end>\n";
        assertEquals(system + "###Human: " + image + image + "Compare them.###Assistant: Two koalas.###Human: " + image
                        + "And this one?###Assistant:",
                ChatPrompts.render(kollava.promptFormat().orElseThrow(), c, kollava.tokenizer(), true));
        assertEquals(List.of("###"), kollava.defaults().stopStrings(), "llava_v0 stops at its separator");
        assertEquals(List.of(), llava.defaults().stopStrings(), "a Jinja chat template stops at eos only");

        // three images expand into 3 x 16 image tokens, and the model takes them
        VisionChat.Reply reply = llava.reply(c, SamplingParams.greedy(2, List.of()), TextGeneration.TokenListener.NONE,
                Cancel.NEVER);
        assertEquals(48, Arrays.stream(reply.promptIds()).filter(id -> id == 500).count());
        assertEquals(3, reply.images());
        assertEquals(2, reply.outputIds().length);
    }

    /** The tiny Ko-LLaVA folder as a LLaVA-1.5 original checkpoint: -200 placeholder, no start/end tokens. */
    private static Path llava15(String name, String aspectRatio) {
        Path src = TinyChatModels.kollava();
        return TinyChatModels.withConfig(src, work.resolve(name), config -> {
            config.put("mm_use_im_start_end", false);
            config.put("mm_use_im_patch_token", false);
            config.put("mm_projector_type", "linear");
            config.put("image_aspect_ratio", aspectRatio);
            config.put("mm_vision_tower", src.resolveSibling("kollava_v0_vision").toAbsolutePath().toString());
        }, List.of("model.safetensors", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                "added_tokens.json", "generation_config.json"));
    }

    @Test
    void llava15OriginalLayoutUsesTokenizerImageTokenAndPadsToSquares() throws IOException {
        Path padded = llava15("llava-v1.5-tiny", "pad");
        Path square = llava15("llava-v1.5-tiny-square", "square");
        try (VisionChat pad = VisionChat.load(padded, null, VisionChat.Options.defaults(), OPS);
             VisionChat plain = VisionChat.load(square, null, VisionChat.Options.defaults(), OPS)) {
            assertEquals(VisionChat.Architecture.LLAVA_ORIGINAL, pad.architecture());
            LlavaConversation format = assertInstanceOf(LlavaConversation.class, pad.promptFormat().orElseThrow());
            assertEquals("llava_v1", format.name(), "'v1' in the folder name, as cli.py infers it");
            assertEquals(List.of("</s>"), pad.defaults().stopStrings());

            Conversation c = Conversation.empty().user("What is this?", List.of(picture()));
            SamplingParams greedy = SamplingParams.greedy(6, List.of()).withIgnoreEos(true);
            VisionChat.Reply reply = pad.reply(c, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            String system = "A chat between a curious human and an artificial intelligence assistant. The assistant "
                    + "gives helpful, detailed, and polite answers to the human's questions.";
            assertEquals(system + " USER: <image>\nWhat is this? ASSISTANT:", reply.prompt());
            // tokenizer_image_token: chunks tokenized with BOS, later chunks' BOS dropped, -200 between them
            TextTokenizer tok = pad.tokenizer();
            int[] head = tok.encode(system + " USER: ", true);
            int[] tail = tok.encode("\nWhat is this? ASSISTANT:", true);
            List<Integer> expected = new ArrayList<>();
            Arrays.stream(head).forEach(expected::add);
            expected.add(-200);
            Arrays.stream(tail).skip(1).forEach(expected::add);
            assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), reply.promptIds());
            assertEquals(reply.promptIds().length - 1 + 16, reply.generation().promptTokens(),
                    "the placeholder expands into the 16 patch rows");

            // image_aspect_ratio "pad": the same as padding by hand (expand2square with the processor's mean colour)
            Image squared = ClipImageProcessor.from(TinyChatModels.kollava().resolveSibling("kollava_v0_vision")
                    .resolve("preprocessor_config.json")).expandToSquare(image);
            assertEquals(60, squared.width());
            VisionChat.Reply byHand = plain.reply(Conversation.empty().user("What is this?",
                    List.of(new Conversation.Picture(squared, "padded"))), greedy, TextGeneration.TokenListener.NONE,
                    Cancel.NEVER);
            assertArrayEquals(byHand.promptIds(), reply.promptIds());
            assertArrayEquals(byHand.outputIds(), reply.outputIds());
        }
    }

    @Test
    void rawPromptsAndTextOnlyModels() throws IOException {
        try (VisionChat llama = VisionChat.load(TinyChatModels.llama(), null, VisionChat.Options.defaults(), OPS)) {
            assertEquals(VisionChat.Architecture.LLAMA, llama.architecture());
            assertTrue(llama.promptFormat().isEmpty());
            var noTemplate = assertThrows(IllegalArgumentException.class, () -> llama.reply(
                    Conversation.empty().user("Hi"), llama.defaults(), TextGeneration.TokenListener.NONE, Cancel.NEVER));
            assertTrue(noTemplate.getMessage().contains("--raw") && noTemplate.getMessage().contains("--template"),
                    noTemplate.getMessage());
            var images = assertThrows(IllegalArgumentException.class, () -> llama.complete("Hi", List.of(picture()),
                    llama.defaults(), TextGeneration.TokenListener.NONE, Cancel.NEVER));
            assertTrue(images.getMessage().contains("text-only"), images.getMessage());
            assertEquals(VisionChat.DEFAULT_MAX_NEW_TOKENS, llama.defaults().maxNewTokens(),
                    "generation_config.json sets no max_new_tokens");
        }
        try (VisionChat named = VisionChat.load(TinyChatModels.llama(), null,
                new VisionChat.Options(null, "llava_v0", null, 8, null, 1), OPS)) {
            VisionChat.Reply r = named.reply(Conversation.empty().user("Hi"), SamplingParams.greedy(3, List.of()),
                    TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertTrue(r.prompt().endsWith("###Human: Hi###Assistant:"), r.prompt());
        }
        var count = assertThrows(IllegalArgumentException.class, () -> llava.complete("no placeholder here",
                List.of(picture()), llava.defaults(), TextGeneration.TokenListener.NONE, Cancel.NEVER));
        assertTrue(count.getMessage().contains("0 <image> placeholder(s) for 1 image(s)"), count.getMessage());
        var video = assertThrows(IOException.class, () -> llava.readVideo(work.resolve("none.gif")));
        assertTrue(video.getMessage().contains("none.gif"), video.getMessage());
    }

    @Test
    void cancelledAndConcurrentReplies() throws Exception {
        Conversation c = Conversation.empty().user("What shapes are in this image?", List.of(picture()));
        SamplingParams params = SamplingParams.greedy(8, List.of()).withIgnoreEos(true);
        assertThrows(CancellationException.class, () -> llava.reply(c, params, TextGeneration.TokenListener.NONE,
                () -> true));
        int[] alone = llava.reply(c, params, TextGeneration.TokenListener.NONE, Cancel.NEVER).outputIds();
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            List<Future<int[]>> runs = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                runs.add(pool.submit(() -> llava.reply(c, params, TextGeneration.TokenListener.NONE, Cancel.NEVER)
                        .outputIds()));
            }
            for (Future<int[]> f : runs) {
                assertArrayEquals(alone, f.get());
            }
        } finally {
            pool.shutdown();
        }
        // sampling with a seed is reproducible
        SamplingParams sampled = params.withSampling(0.9, 20, 0.95, 7);
        assertArrayEquals(llava.reply(c, sampled, TextGeneration.TokenListener.NONE, Cancel.NEVER).outputIds(),
                llava.reply(c, sampled, TextGeneration.TokenListener.NONE, Cancel.NEVER).outputIds());
    }

    @Test
    void laterTurnsResumeFromThePreviousReplyAndGiveTheSameAnswers() throws IOException {
        SamplingParams greedy = SamplingParams.greedy(6, List.of()).withIgnoreEos(true);
        try (VisionChat chat = VisionChat.load(TinyChatModels.kollava(), null, VisionChat.Options.defaults(), OPS);
             VisionChat fresh = VisionChat.load(TinyChatModels.kollava(), null, VisionChat.Options.defaults(), OPS)) {
            Conversation first = Conversation.empty().user("What is this?", List.of(picture()));
            VisionChat.Reply one = chat.reply(first, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertEquals(0, one.generation().reusedPromptTokens());

            Conversation second = first.assistant(one.text()).user("And its colour?");
            VisionChat.Reply two = chat.reply(second, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            VisionChat.Reply reference = fresh.reply(second, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertArrayEquals(reference.promptIds(), two.promptIds());
            assertArrayEquals(reference.outputIds(), two.outputIds());
            assertEquals(0, reference.generation().reusedPromptTokens());
            // the system prompt, the image's patch tokens and the first question come from the cache
            assertTrue(two.generation().reusedPromptTokens() > one.promptIds().length / 2,
                    two.generation().reusedPromptTokens() + " of " + two.promptIds().length);

            // another picture at the same place: only the text before it is reused
            byte[] flipped = image.pixels().clone();
            for (int i = 0; i < flipped.length; i++) {
                flipped[i] = (byte) ~flipped[i];
            }
            Image other = new Image(image.width(), image.height(), image.channels(), flipped);
            Conversation changed = Conversation.empty().user("What is this?",
                    List.of(new Conversation.Picture(other, "other.png")));
            VisionChat.Reply three = chat.reply(changed, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            fresh.clearCaches();
            VisionChat.Reply threeFresh = fresh.reply(changed, greedy, TextGeneration.TokenListener.NONE,
                    Cancel.NEVER);
            assertArrayEquals(threeFresh.outputIds(), three.outputIds());
            int imageStart = indexOf(three.promptIds(), chat.tokenizer().tokenId("<im_start>").orElseThrow());
            assertEquals(imageStart + 1, three.generation().reusedPromptTokens(), "up to <im_start>, not the patches");
        }
    }

    @Test
    void twoCacheSlotsKeepTwoConversations() throws IOException {
        SamplingParams greedy = SamplingParams.greedy(4, List.of()).withIgnoreEos(true);
        VisionChat.Options two = new VisionChat.Options(null, null, null, 8, null, 2);
        try (VisionChat chat = VisionChat.load(TinyChatModels.kollava(), null, two, OPS);
             VisionChat single = VisionChat.load(TinyChatModels.kollava(), null, VisionChat.Options.defaults(), OPS);
             VisionChat fresh = VisionChat.load(TinyChatModels.kollava(), null,
                     new VisionChat.Options(null, null, null, 8, null, 0), OPS)) {
            Conversation a = Conversation.empty().user("What is this?", List.of(picture()));
            Conversation b = Conversation.empty().user("Describe the colours in detail, please.");
            VisionChat.Reply a1 = chat.reply(a, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            VisionChat.Reply b1 = chat.reply(b, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            single.reply(a, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            single.reply(b, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            // each follow-up resumes from its own conversation: all of its previous prompt and answer but the last
            Conversation a2 = a.assistant(a1.text()).user("And its size?");
            Conversation b2 = b.assistant(b1.text()).user("Thanks!");
            VisionChat.Reply a2r = chat.reply(a2, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            VisionChat.Reply b2r = chat.reply(b2, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertTrue(a2r.generation().reusedPromptTokens() >= a1.promptIds().length,
                    a2r.generation().reusedPromptTokens() + " reused of " + a1.promptIds().length);
            assertTrue(b2r.generation().reusedPromptTokens() >= b1.promptIds().length,
                    b2r.generation().reusedPromptTokens() + " reused of " + b1.promptIds().length);
            assertArrayEquals(fresh.reply(a2, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER).outputIds(),
                    a2r.outputIds());
            assertArrayEquals(fresh.reply(b2, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER).outputIds(),
                    b2r.outputIds());
            // b started from a's system prompt, copied into the second slot
            assertTrue(b1.generation().reusedPromptTokens() > 0);
            // one slot: b replaced a's cache, so a's follow-up shares only the system prompt with it
            VisionChat.Reply a2single = single.reply(a2, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertTrue(a2single.generation().reusedPromptTokens() < a1.promptIds().length,
                    a2single.generation().reusedPromptTokens() + " reused of " + a1.promptIds().length);
            assertArrayEquals(a2r.outputIds(), a2single.outputIds());
        }
    }

    private static int indexOf(int[] ids, int id) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == id) {
                return i;
            }
        }
        return -1;
    }

    @Test
    void webpPicturesAreAnswered() throws IOException {
        Image webp = Images.read(koala4j.testing.Close.resource("webp/lossy_q80.webp"));
        Conversation c = Conversation.empty().user("What is this?", List.of(new Conversation.Picture(webp, "a.webp")));
        VisionChat.Reply r = llava.reply(c, SamplingParams.greedy(4, List.of()).withIgnoreEos(true),
                TextGeneration.TokenListener.NONE, Cancel.NEVER);
        assertEquals(1, r.images());
        assertEquals(4, r.outputIds().length);
    }

    /**
     * withinContext (the server's choice): a prompt that fills max_position_embeddings is refused naming both counts,
     * an answer stops at the last position; without (the CLI's, transformers') both go on; dynamic NTK scaling, made
     * to run past the configured length, is not limited.
     */
    @Test
    void contextLimitWhenAsked() {
        Path short32 = TinyChatModels.llamaWithContext(work, 32);
        Path dynamic = TinyChatModels.withConfig(TinyChatModels.llama(), work.resolve("llama-dynamic"), c -> {
            c.put("max_position_embeddings", 32);
            c.putObject("rope_scaling").put("rope_type", "dynamic").put("factor", 2.0);
        }, TinyChatModels.LLAMA_FILES);
        SamplingParams params = SamplingParams.greedy(40, List.of()).withIgnoreEos(true);
        String prompt = "the koala sleeps in the tree all day long";
        try (VisionChat plain = VisionChat.load(short32, null, VisionChat.Options.defaults(), OPS);
             VisionChat ntk = VisionChat.load(dynamic, null, VisionChat.Options.defaults(), OPS)) {
            VisionChat.Reply capped = plain.complete(prompt, List.of(), params, TextGeneration.TokenListener.NONE,
                    Cancel.NEVER, true);
            assertEquals(32 - capped.promptIds().length, capped.outputIds().length);
            assertEquals(40, plain.complete(prompt, List.of(), params, TextGeneration.TokenListener.NONE, Cancel.NEVER)
                    .outputIds().length);
            assertEquals(40, ntk.complete(prompt, List.of(), params, TextGeneration.TokenListener.NONE, Cancel.NEVER,
                    true).outputIds().length);
            String longer = (prompt + " ").repeat(5);
            var e = assertThrows(VisionChat.ContextLengthExceeded.class, () -> plain.complete(longer, List.of(), params,
                    TextGeneration.TokenListener.NONE, Cancel.NEVER, true));
            assertEquals(32, e.contextLength());
            assertTrue(e.promptTokens() >= 32 && e.getMessage().contains("is 32: expected at most 31"), e.getMessage());
        }
    }
}
