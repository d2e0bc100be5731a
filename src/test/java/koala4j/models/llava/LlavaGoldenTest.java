package koala4j.models.llava;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.json.Json;
import koala4j.models.Checkpoint;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Quantization;
import koala4j.testing.GoldenFile;

/**
 * The LLaVA composition against golden/llava_tiny (transformers 4.57.6 LlavaForConditionalGeneration, hub key
 * layout) and golden/e2e/kollava_v0 (the original LLaVA v0 layout of Ko-LLaVA: one-Linear mm_projector,
 * &lt;im_start&gt; + 16 &lt;im_patch&gt; + &lt;im_end&gt;). The vision tower is the recorded hidden state where the
 * golden has it, else the test-only {@link TinyClipVision}. Floats |Δ| <= 1e-4 + 1e-4·|ref| (golden README); ids
 * exact.
 */
class LlavaGoldenTest {

    private static final double ATOL = 1e-4;
    private static final double RTOL = 1e-4;
    private final Ops ops = new CpuOps();

    private Tensor tensor(GoldenFile g, String name) {
        int[] shape = Arrays.stream(g.shape(name)).mapToInt(Math::toIntExact).toArray();
        return ops.fromArray(g.floats(name), shape);
    }

    private static int[] ints(long[] values) {
        return Arrays.stream(values).mapToInt(Math::toIntExact).toArray();
    }

    @Test
    void transformersLayoutFromTheRecordedVisionLayer() {
        GoldenFile g = GoldenFile.open(resource("golden/llava_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/llava_tiny/model"), null, ops)) {
            LlavaModel llava = LlavaModel.load(ckpt, Quantization.NONE);
            LlavaConfig c = llava.config();
            assertEquals(LlavaConfig.Layout.TRANSFORMERS, c.layout());
            assertEquals(List.of(-2), c.visionFeatureLayers());
            assertEquals(259, llava.imageTokens().imageToken());
            VisionFeatures recorded = pixels -> tensor(g, "out.vision_feature_layer_output");   // [1, 17, 32]
            Tensor image = llava.imageEmbeds(recorded, tensor(g, "in.pixel_values"));          // [1, 16, 64]
            assertClose(g.floats("out.image_hidden_states"), image.toFloatArray(), ATOL, RTOL, "image_hidden_states");

            int[] ids = ints(g.longs("in.input_ids"));
            Tensor embeds = llava.inputEmbeds(ids, List.of(image.select(0, 0)));                 // [1, 27, 64]
            LlamaForCausalLM lm = llava.languageModel();
            var out = lm.forward(embeds, lm.newCache(1, ids.length), false, true);
            for (int i = 0; i < 3; i++) {
                assertClose(g.floats("out.hidden_states." + i), out.hiddenStates().get(i).toFloatArray(), ATOL, RTOL,
                        "hidden_states." + i);
            }
            assertClose(g.floats("out.logits"), out.logits().toFloatArray(), ATOL, RTOL, "logits");

            long[] expected = g.longs("out.generated_ids");
            var result = new koala4j.pipelines.TextGeneration(lm, null).generate(embeds, ids,
                    koala4j.pipelines.SamplingParams.greedy(10, List.of()), (id, d) -> { }, () -> false);
            assertArrayEquals(ints(Arrays.copyOfRange(expected, ids.length, expected.length)), result.tokenIds());
        }
    }

    @Test
    void transformersLayoutTowerFromPixels() {
        GoldenFile g = GoldenFile.open(resource("golden/llava_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/llava_tiny/model"), null, ops)) {
            LlavaConfig c = LlavaConfig.from(ckpt.config());
            TinyClipVision tower = new TinyClipVision(c.visionConfig(), c.visionFeatureLayers().getFirst());
            tower.load(LlavaModel.transformersKeys(ckpt), "vision_tower.");
            assertClose(g.floats("out.vision_feature_layer_output"),
                    tower.features(tensor(g, "in.pixel_values")).toFloatArray(), ATOL, RTOL, "vision layer -2");
        }
    }

    @Test
    void originalV0LayoutGeneratesKoLlavaIds() throws Exception {
        Path folder = resource("golden/e2e/kollava_v0");
        GoldenFile g = GoldenFile.open(folder.resolve("expected.safetensors"));
        JsonNode expected = new ObjectMapper().readTree(folder.resolve("expected.json").toFile());
        try (Checkpoint ckpt = Checkpoint.open(folder, null, ops)) {
            LlavaModel llava = LlavaModel.load(ckpt, Quantization.NONE);
            LlavaConfig c = llava.config();
            assertEquals(LlavaConfig.Layout.ORIGINAL, c.layout());
            assertEquals(new LlavaModel.ImageTokens(500, 501, 502), llava.imageTokens());
            Path towerFolder = c.localVisionTower(folder).orElseThrow();
            try (Checkpoint towerCkpt = Checkpoint.open(towerFolder, null, ops)) {
                TinyClipVision tower = new TinyClipVision(towerCkpt.config(), c.visionFeatureLayers().getFirst());
                tower.load(towerCkpt);
                int run = 0;
                for (JsonNode r : expected.get("runs")) {
                    String key = "run" + run++;
                    Tensor features = tower.features(tensor(g, key + ".pixel_values"));          // [1, 17, 32]
                    assertClose(g.floats(key + ".vision_features"), features.slice(1, 1, 17).toFloatArray(), ATOL,
                            RTOL, key + " vision features");
                    Tensor image = llava.projectImageFeatures(features);                        // [1, 16, 64]
                    assertClose(g.floats(key + ".image_embeds"), image.toFloatArray(), ATOL, RTOL, key + " image embeds");
                    int[] ids = ints(toLongs(r.at("/expected/input_ids")));
                    Tensor embeds = llava.inputEmbeds(ids, List.of(image));
                    assertEquals(ids.length, embeds.size(1));
                    var result = new koala4j.pipelines.TextGeneration(llava.languageModel(), null).generate(embeds, ids,
                            koala4j.pipelines.SamplingParams.greedy(r.get("max_new_tokens").asInt(), List.of()),
                            (id, d) -> { }, () -> false);
                    assertArrayEquals(ints(toLongs(r.at("/expected/new_ids"))), result.tokenIds(), key);
                }
            }
        }
    }

    private static long[] toLongs(JsonNode list) {
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = list.get(i).asLong();
        }
        return out;
    }

    @Test
    void mergeConventionsAndTheirErrors() {
        LlavaConfig v15 = LlavaConfig.from(Json.parse("""
                {"architectures": ["LlavaLlamaForCausalLM"], "hidden_size": 8, "num_attention_heads": 2,
                 "num_hidden_layers": 1, "vocab_size": 20, "mm_vision_tower": "openai/clip-vit-large-patch14-336",
                 "mm_hidden_size": 4, "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2,
                 "mm_use_im_start_end": false, "mm_use_im_patch_token": false}""", "config.json"));
        assertEquals(2, v15.projectorDepth());
        assertTrue(v15.dropClsToken());
        var placeholder = new LlavaModel.ImageTokens(-200, -1, -1);
        var spans = ImageMerge.spans(v15, placeholder, new int[] {1, 5, -200, 7, -200}, new int[] {3, 2});
        assertEquals(List.of(new ImageMerge.Span(2, 1, 0, 0, 3), new ImageMerge.Span(4, 1, 1, 0, 2)), spans);
        assertThrows(IllegalArgumentException.class,
                () -> ImageMerge.spans(v15, placeholder, new int[] {1, -200}, new int[] {3, 2}));

        LlavaConfig hf = LlavaConfig.from(Json.parse("""
                {"architectures": ["LlavaForConditionalGeneration"], "image_token_index": 9,
                 "text_config": {"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2,
                  "num_hidden_layers": 1, "vocab_size": 20},
                 "vision_config": {"hidden_size": 4}}""", "config.json"));
        var tokens = new LlavaModel.ImageTokens(9, -1, -1);
        assertEquals(List.of(new ImageMerge.Span(1, 2, 0, 0, 2), new ImageMerge.Span(4, 1, 1, 0, 1)),
                ImageMerge.spans(hf, tokens, new int[] {1, 9, 9, 3, 9}, new int[] {2, 1}));
        var mismatch = assertThrows(IllegalArgumentException.class,
                () -> ImageMerge.spans(hf, tokens, new int[] {1, 9, 9}, new int[] {3}));
        assertTrue(mismatch.getMessage().contains("do not match"), mismatch.getMessage());

        var bad = assertThrows(koala4j.io.json.JsonException.class, () -> LlavaConfig.from(Json.parse(
                "{\"mm_vision_tower\": \"x\", \"mm_hidden_size\": 4, \"mm_projector_type\": \"resampler\"}",
                "config.json")));
        assertTrue(bad.getMessage().contains("resampler"), bad.getMessage());
    }

    @Test
    void newerTransformersKeysLoadThroughTheLegacyView() {
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/llava_tiny/model"), null, ops)) {
            // the same weights under the keys transformers >= 4.52 uses inside the model
            java.util.Map<String, String> toNew = new java.util.TreeMap<>();
            for (String k : ckpt.keys()) {
                String n = k.startsWith("language_model.model.") ? "model.language_model." + k.substring(21)
                        : k.startsWith("language_model.lm_head.") ? k.substring(15) : "model." + k;
                toNew.put(n, k);
            }
            koala4j.nn.WeightSource renamed = new koala4j.nn.WeightSource() {
                @Override
                public java.util.Optional<Tensor> tensor(String key) {
                    return toNew.containsKey(key) ? ckpt.tensor(toNew.get(key)) : java.util.Optional.empty();
                }

                @Override
                public java.util.Set<String> keys() {
                    return toNew.keySet();
                }

                @Override
                public String describe() {
                    return "renamed";
                }
            };
            assertTrue(renamed.keys().contains("model.language_model.embed_tokens.weight"));
            var root = new LlavaModel.LlavaForConditionalGeneration(LlavaConfig.from(ckpt.config()));
            var report = root.load(LlavaModel.transformersKeys(renamed));
            assertTrue(report.unexpectedKeys().stream().allMatch(k -> k.startsWith("vision_tower.")),
                    report.unexpectedKeys().toString());
            assertArrayEquals(ckpt.tensor("language_model.lm_head.weight").orElseThrow().toFloatArray(),
                    root.languageModel.linears().getLast().weight().get().toFloatArray());
        }
    }

    @Test
    void mlpProjectorKeysKeepTheSequentialIndices() {
        var projector = LlavaMultiModalProjector.original(4, 8, 2);
        assertEquals(List.of("0.weight", "0.bias", "2.weight", "2.bias"),
                List.copyOf(projector.namedParameters().keySet()));
    }
}
