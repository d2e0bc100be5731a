package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.image.Images;
import koala4j.testing.TinyChatModels;

/**
 * LLaMA and LLaVA beam search against golden/beam_search (made by its make_beam_search.py with transformers 4.57.6,
 * torch 2.13 CPU fp32, from the golden e2e llama and llava folders): the new ids of generate(num_beams=...) with
 * length_penalty, early_stopping (true, false, "never"), one or two eos ids that the model produces (so that
 * hypotheses finish early) or none, a repetition penalty, beam sampling (draws from torch's generator seeded
 * right before, as SamplingParams' seed gives them), and no_repeat_ngram_size, min_length, min_new_tokens and min_p,
 * greedy (one beam) and with beams. Ids exact.
 */
class BeamSearchGoldenTest {

    @TempDir
    static Path work;

    private static final CpuOps OPS = new CpuOps();
    private static VisionChat llama;
    private static VisionChat llava;
    private static JsonNode runs;
    private static JsonNode returns;

    @BeforeAll
    static void load() throws Exception {
        llama = VisionChat.load(TinyChatModels.llama(), null, VisionChat.Options.defaults(), OPS);
        llava = VisionChat.load(TinyChatModels.llava(work), "llava-hf/tiny", VisionChat.Options.defaults(), OPS);
        runs = new ObjectMapper().readTree(resource("golden/beam_search/expected.json").toFile()).get("runs");
        returns = new ObjectMapper().readTree(resource("golden/beam_search/returns.json").toFile()).get("runs");
    }

    @AfterAll
    static void close() {
        llama.close();
        llava.close();
    }

    /**
     * generate()'s settings as SamplingParams: beams, eos as given (null: none), the other processors, beam sampling
     * when do_sample.
     */
    private static SamplingParams params(JsonNode s, List<Integer> folderEos) {
        List<Integer> eos = folderEos;
        if (s.has("eos_token_id")) {
            eos = new ArrayList<>();
            JsonNode e = s.get("eos_token_id");
            if (e.isArray()) {
                for (JsonNode id : e) {
                    eos.add(id.asInt());
                }
            } else if (!e.isNull()) {
                eos.add(e.asInt());
            }
        }
        TextGenerationConfig.EarlyStopping early = !s.has("early_stopping") ? TextGenerationConfig.EarlyStopping.FALSE
                : s.get("early_stopping").isBoolean()
                        ? s.get("early_stopping").asBoolean() ? TextGenerationConfig.EarlyStopping.TRUE
                                : TextGenerationConfig.EarlyStopping.FALSE
                        : TextGenerationConfig.parseEarlyStopping(s.get("early_stopping").asText());
        SamplingParams p = SamplingParams.greedy(s.get("max_new_tokens").asInt(), eos)
                .withRepetitionPenalty(s.has("repetition_penalty") ? s.get("repetition_penalty").asDouble() : 1.0)
                .withBeams(new SamplingParams.Beams(s.get("num_beams").asInt(),
                        s.has("length_penalty") ? (float) s.get("length_penalty").asDouble() : 1f, early));
        p = p.withConstraints(new SamplingParams.Constraints(s.path("no_repeat_ngram_size").asInt(0),
                s.path("min_length").asInt(0), s.path("min_new_tokens").asInt(0), s.path("min_p").asDouble(0)));
        if (s.path("do_sample").asBoolean()) {
            // transformers' defaults: temperature 1, top_k 50, top_p 1
            p = p.withSampling(s.path("temperature").asDouble(1.0), s.path("top_k").asInt(50),
                    s.path("top_p").asDouble(1.0), s.get("seed").asLong());
        }
        return p;
    }

    @Test
    void llamaGenerateFromPromptIdsMatchesTransformers() {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        int checked = 0;
        for (JsonNode run : runs) {
            if (!run.get("model").asText().equals("llama")) {
                continue;
            }
            SamplingParams p = params(run.get("settings"), List.of(2));
            var result = gen.generate(ints(run.get("input_ids")), p, TextGeneration.TokenListener.NONE, Cancel.NEVER);
            String what = run.get("prompt").asText() + " " + run.get("settings");
            assertArrayEquals(ints(run.get("new_ids")), result.tokenIds(), what);
            int[] ids = result.tokenIds();
            boolean endsInEos = ids.length > 0 && p.eosTokenIds().contains(ids[ids.length - 1]);
            assertEquals(endsInEos ? TextGeneration.StopReason.EOS : TextGeneration.StopReason.MAX_NEW_TOKENS,
                    result.stopReason(), what);
            checked++;
        }
        assertEquals(42, checked);
    }

    @Test
    void llavaBeamsFromTheImagePromptMatchTransformers() throws Exception {
        var image = Images.read(TinyChatModels.image("llava"));
        int checked = 0;
        for (JsonNode run : runs) {
            if (!run.get("model").asText().equals("llava")) {
                continue;
            }
            Conversation c = Conversation.empty().user(run.get("question").asText(),
                    List.of(new Conversation.Picture(image, "image.png")));
            VisionChat.Reply reply = llava.reply(c, params(run.get("settings"), llava.defaults().eosTokenIds()),
                    TextGeneration.TokenListener.NONE, Cancel.NEVER);
            assertArrayEquals(ints(run.get("input_ids")), reply.promptIds(), "prompt of " + run.get("question"));
            assertArrayEquals(ints(run.get("new_ids")), reply.outputIds(), run.get("question") + " "
                    + run.get("settings"));
            checked++;
        }
        assertEquals(4, checked);
    }

    /**
     * generate(num_beams=B, num_return_sequences=R) against golden/beam_search/returns.json (make_beam_returns.py,
     * transformers 5.18): the R best hypotheses of one search, best first, each at its own length (eos where it
     * ended there), from prompt ids (LLaMA) and through {@link VisionChat#replies} with R choices (LLaVA, image
     * prompt). Ids exact.
     */
    @Test
    void returnedSequencesAreTheBestHypothesesAsTransformersGivesThem() throws Exception {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        var image = Images.read(TinyChatModels.image("llava"));
        int checked = 0;
        for (JsonNode run : returns) {
            JsonNode s = run.get("settings");
            JsonNode expected = run.get("sequences");
            int r = s.get("num_return_sequences").asInt();
            assertEquals(r, expected.size());
            String what = run.path("prompt").asText(run.path("question").asText()) + " " + s;
            List<int[]> got = new ArrayList<>();
            if (run.get("model").asText().equals("llama")) {
                int[] prompt = ints(run.get("input_ids"));
                SamplingParams p = params(s, List.of(2));
                List<TextGeneration.TokenListener> listeners = new ArrayList<>();
                for (int i = 0; i < r; i++) {
                    listeners.add(TextGeneration.TokenListener.NONE);
                }
                for (TextGeneration.Result result : gen.beamHypotheses(TextGeneration.embedIds(llama.languageModel(),
                        prompt), prompt, p, listeners, Cancel.NEVER)) {
                    got.add(result.tokenIds());
                }
            } else {
                Conversation c = Conversation.empty().user(run.get("question").asText(),
                        List.of(new Conversation.Picture(image, "image.png")));
                SamplingParams p = params(s, llava.defaults().eosTokenIds());
                List<VisionChat.Choice> choices = new ArrayList<>();
                for (int i = 0; i < r; i++) {
                    choices.add(new VisionChat.Choice(p, TextGeneration.TokenListener.NONE, reply -> { }));
                }
                for (VisionChat.Reply reply : llava.replies(c, choices, Cancel.NEVER, false)) {
                    assertArrayEquals(ints(run.get("input_ids")), reply.promptIds(), what);
                    got.add(reply.outputIds());
                }
            }
            for (int i = 0; i < r; i++) {
                assertArrayEquals(ints(expected.get(i)), got.get(i), "sequence " + i + " of " + what);
            }
            checked++;
        }
        assertEquals(11, checked);
    }

    @Test
    void moreSequencesThanBeamsAreRefused() {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        SamplingParams p = SamplingParams.greedy(4, List.of(2))
                .withBeams(new SamplingParams.Beams(2, 1f, TextGenerationConfig.EarlyStopping.FALSE));
        int[] prompt = {1, 310};
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> gen.beamHypotheses(TextGeneration.embedIds(llama.languageModel(), prompt), prompt, p,
                        List.of(TextGeneration.TokenListener.NONE, TextGeneration.TokenListener.NONE,
                                TextGeneration.TokenListener.NONE), Cancel.NEVER));
        assertTrue(e.getMessage().contains("num_return_sequences 3 with num_beams 2"), e.getMessage());
    }

    @Test
    void generationConfigSetsTheBeams() {
        var g = koala4j.io.json.Json.parse("""
                {"num_beams": 4, "length_penalty": 0.5, "early_stopping": "never", "eos_token_id": 2}""",
                "generation_config.json");
        assertEquals(new SamplingParams.Beams(4, 0.5f, TextGenerationConfig.EarlyStopping.NEVER),
                SamplingParams.fromGenerationConfig(g, List.of()).beams());
        assertEquals(SamplingParams.Beams.NONE, SamplingParams.fromGenerationConfig(
                koala4j.io.json.Json.parse("{}", "generation_config.json"), List.of(2)).beams());
        var bad = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new SamplingParams.Beams(0, 1f, TextGenerationConfig.EarlyStopping.FALSE));
        assertTrue(bad.getMessage().contains("num_beams 0"), bad.getMessage());
        // more beams than the heap holds: an error before anything is allocated
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        SamplingParams huge = SamplingParams.greedy(8, List.of(2))
                .withBeams(new SamplingParams.Beams(Integer.MAX_VALUE, 1f, TextGenerationConfig.EarlyStopping.FALSE));
        var tooMany = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> gen.generate(new int[] {1, 310}, huge, TextGeneration.TokenListener.NONE, Cancel.NEVER));
        assertTrue(tooMany.getMessage().contains("num_beams " + Integer.MAX_VALUE)
                && tooMany.getMessage().contains("GB"), tooMany.getMessage());
    }

    @Test
    void theChosenHypothesisStreamsAtTheEndAndStopStringsCutIt() {
        TextGeneration gen = new TextGeneration(llama.languageModel(), llama.tokenizer());
        JsonNode run = runs.get(0);
        SamplingParams p = params(run.get("settings"), List.of(2));
        List<Integer> streamed = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        var full = gen.generate(ints(run.get("input_ids")), p, (id, delta) -> {
            if (id >= 0) {
                streamed.add(id);
            }
            text.append(delta);
        }, Cancel.NEVER);
        assertArrayEquals(full.tokenIds(), streamed.stream().mapToInt(Integer::intValue).toArray());
        assertEquals(full.text(), text.toString());
        String stop = full.text().substring(2, 4);
        var cut = gen.generate(ints(run.get("input_ids")), p.withStopStrings(List.of(stop)),
                TextGeneration.TokenListener.NONE, Cancel.NEVER);
        assertEquals(TextGeneration.StopReason.STOP_STRING, cut.stopReason());
        assertEquals(full.text().substring(0, full.text().indexOf(stop)), cut.text());
        assertTrue(cut.tokenIds().length < full.tokenIds().length);
    }
}
