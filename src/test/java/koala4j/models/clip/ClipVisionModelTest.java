package koala4j.models.clip;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.models.Checkpoint;
import koala4j.models.clip.ClipVisionModel.FeatureSelect;
import koala4j.nn.Module.LoadReport;
import koala4j.nn.WeightException;
import koala4j.nn.WeightSource;
import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.testing.GoldenFile;

/**
 * CLIPVisionModel against golden/clip_vision_tiny and the Ko-LLaVA v0 vision tower (transformers 4.57.6, torch
 * 2.13 CPU fp32). Tolerance |Δ| <= 1e-4 + 1e-4·|ref| (golden README): the float32 reference is within 1.4e-6 of
 * float64 (case.json), and our float32 sums reassociate differently (GEMM blocking, online softmax).
 */
class ClipVisionModelTest {

    private static final double ATOL = 1e-4;
    private static final double RTOL = 1e-4;
    private final Ops ops = new CpuOps();

    private Tensor tensor(GoldenFile g, String name) {
        int[] shape = Arrays.stream(g.shape(name)).mapToInt(Math::toIntExact).toArray();
        return ops.fromArray(g.floats(name), shape);
    }

    @Test
    void everyOutputMatchesTransformers() {
        GoldenFile g = GoldenFile.open(resource("golden/clip_vision_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/clip_vision_tiny/model"), null, ops)) {
            ClipVisionModel model = ClipVisionModel.load(ckpt);
            assertEquals(new ClipVisionConfig(32, 64, 3, 4, 32, 8, 3, Activation.QUICK_GELU, 1e-5f, 16),
                    model.config());
            Tensor pixels = tensor(g, "in.pixel_values");                     // [2, 3, 32, 32]

            // mid.embeddings: [class; patches] + positions, before pre_layrnorm
            assertClose(g.floats("mid.embeddings"), model.embeddings(pixels).toFloatArray(), ATOL, RTOL, "embeddings");

            ClipVisionModel.Output out = model.forward(pixels);
            assertEquals(4, out.hiddenStates().size());
            for (int i = 0; i < 4; i++) {
                assertArrayEquals(new int[] {2, 17, 32}, out.hiddenStates().get(i).shape());
                assertClose(g.floats("out.hidden_states." + i), out.hiddenStates().get(i).toFloatArray(), ATOL, RTOL,
                        "hidden_states." + i);
            }
            assertClose(g.floats("out.penultimate_hidden_state"), out.penultimate().toFloatArray(), ATOL, RTOL,
                    "penultimate");
            assertClose(g.floats("out.last_hidden_state"), out.lastHiddenState().toFloatArray(), ATOL, RTOL, "last");
            assertArrayEquals(new int[] {2, 32}, out.pooled().shape());
            assertClose(g.floats("out.pooler_output"), out.pooled().toFloatArray(), ATOL, RTOL, "pooler_output");
        }
    }

    @Test
    void featureSelectionFollowsLlava() {
        GoldenFile g = GoldenFile.open(resource("golden/clip_vision_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/clip_vision_tiny/model"), null, ops)) {
            ClipVisionModel model = ClipVisionModel.load(ckpt);
            Tensor pixels = tensor(g, "in.pixel_values");
            float[] penultimate = g.floats("out.penultimate_hidden_state");     // [2, 17, 32]

            // "default" / "patch": hidden_states[-2][:, 1:]
            Tensor patch = model.features(pixels, -2, FeatureSelect.PATCH);
            assertArrayEquals(new int[] {2, 16, 32}, patch.shape());
            assertClose(rows(penultimate, 2, 17, 32, 1, 17), patch.toFloatArray(), ATOL, RTOL, "patch features");

            // "full" / "cls_patch": all 17 tokens; layer 2 counted from the front is the same layer
            Tensor full = model.features(pixels, 2, FeatureSelect.FULL);
            assertArrayEquals(new int[] {2, 17, 32}, full.shape());
            assertClose(penultimate, full.toFloatArray(), ATOL, RTOL, "full features");

            // a list of layers: concatenated along channels, in the order given
            Tensor multi = model.features(pixels, new int[] {-1, 0}, FeatureSelect.PATCH);
            assertArrayEquals(new int[] {2, 16, 64}, multi.shape());
            float[] last = rows(g.floats("out.last_hidden_state"), 2, 17, 32, 1, 17);
            float[] first = rows(g.floats("out.hidden_states.0"), 2, 17, 32, 1, 17);
            float[] got = multi.toFloatArray();
            float[] gotLast = new float[2 * 16 * 32];
            float[] gotFirst = new float[2 * 16 * 32];
            for (int r = 0; r < 2 * 16; r++) {
                System.arraycopy(got, r * 64, gotLast, r * 32, 32);
                System.arraycopy(got, r * 64 + 32, gotFirst, r * 32, 32);
            }
            assertClose(last, gotLast, ATOL, RTOL, "layer -1 half");
            assertClose(first, gotFirst, ATOL, RTOL, "layer 0 half");

            assertEquals(FeatureSelect.PATCH, FeatureSelect.of("default"));
            assertEquals(FeatureSelect.PATCH, FeatureSelect.of("patch"));
            assertEquals(FeatureSelect.FULL, FeatureSelect.of("full"));
            assertEquals(FeatureSelect.FULL, FeatureSelect.of("cls_patch"));
            assertThrows(IllegalArgumentException.class, () -> FeatureSelect.of("spatial_unpad"));
            var e = assertThrows(IllegalArgumentException.class, () -> model.features(pixels, -5, FeatureSelect.PATCH));
            assertTrue(e.getMessage().contains("-5"), e.getMessage());
            var wrong = ops.fromArray(new float[2 * 3 * 16 * 16], 2, 3, 16, 16);
            e = assertThrows(IllegalArgumentException.class, () -> model.forward(wrong));
            assertTrue(e.getMessage().contains("[2, 3, 16, 16]") && e.getMessage().contains("32"), e.getMessage());
        }
    }

    /**
     * golden e2e/kollava_v0: the original-layout Ko-LLaVA vision tower folder (CLIPVisionModel.save_pretrained);
     * expected.safetensors runN.vision_features = hidden_states[-2][:, 1:] of runN.pixel_values.
     */
    @Test
    void kollavaVisionTowerGivesTheRecordedFeatures() {
        GoldenFile g = GoldenFile.open(resource("golden/e2e_images/kollava_v0/expected.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/e2e/kollava_v0_vision"), null, ops)) {
            ClipVisionModel model = ClipVisionModel.load(ckpt);
            for (String run : List.of("run0", "run1")) {
                Tensor features = model.features(tensor(g, run + ".pixel_values"), -2, FeatureSelect.PATCH);
                assertArrayEquals(new int[] {1, 16, 32}, features.shape());
                assertClose(g.floats(run + ".vision_features"), features.toFloatArray(), ATOL, RTOL, run);
            }
        }
    }

    /** The same tower found under llava-hf's prefix, and inside a CLIPModel checkpoint next to a text tower. */
    @Test
    void towerIsFoundUnderAPrefixAndBesideOtherModels() {
        GoldenFile g = GoldenFile.open(resource("golden/e2e_images/kollava_v0/expected.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/e2e/kollava_v0_vision"), null, ops)) {
            ClipVisionConfig config = ClipVisionConfig.from(ckpt.config());
            Map<String, Tensor> keys = new LinkedHashMap<>();
            for (String key : ckpt.keys()) {
                keys.put("vision_tower." + key, ckpt.tensor(key).orElseThrow());
            }
            keys.put("multi_modal_projector.linear_1.weight", ops.fromArray(new float[4], 2, 2));
            keys.put("language_model.lm_head.weight", ops.fromArray(new float[4], 2, 2));
            keys.put("vision_tower.vision_model.embeddings.position_ids", ops.fromArray(new long[17], 1, 17));
            MapSource llava = new MapSource(keys);
            assertEquals("vision_tower.", ClipVisionModel.prefixIn(llava));

            ClipVisionModel model = new ClipVisionModel(config);
            LoadReport report = model.loadTower(llava, ClipVisionModel.prefixIn(llava));
            assertEquals(List.of(), report.unexpectedKeys(), "the projector, LM and position_ids buffer are not ours");
            assertClose(g.floats("run0.vision_features"),
                    model.features(tensor(g, "run0.pixel_values"), -2, FeatureSelect.PATCH).toFloatArray(), ATOL, RTOL,
                    "under vision_tower.");

            // CLIPModel / AltCLIPModel: vision_model.* beside text_model.*, visual_projection, logit_scale
            Map<String, Tensor> clip = new LinkedHashMap<>();
            for (String key : ckpt.keys()) {
                clip.put(key, ckpt.tensor(key).orElseThrow());
            }
            clip.put("text_model.embeddings.token_embedding.weight", ops.fromArray(new float[4], 2, 2));
            clip.put("visual_projection.weight", ops.fromArray(new float[4], 2, 2));
            clip.put("vision_model.unknown.weight", ops.fromArray(new float[4], 2, 2));
            MapSource full = new MapSource(clip);
            assertEquals("", ClipVisionModel.prefixIn(full));
            report = new ClipVisionModel(config).loadTower(full, "");
            assertEquals(List.of("vision_model.unknown.weight"), report.unexpectedKeys());

            var none = new MapSource(Map.of("text_model.final_layer_norm.weight", ops.fromArray(new float[2], 2)));
            var e = assertThrows(WeightException.class, () -> ClipVisionModel.prefixIn(none));
            assertTrue(e.getMessage().contains("not a CLIP vision tower"), e.getMessage());
            Map<String, Tensor> two = new LinkedHashMap<>(keys);
            two.putAll(clip);
            e = assertThrows(WeightException.class, () -> ClipVisionModel.prefixIn(new MapSource(two)));
            assertTrue(e.getMessage().contains("several"), e.getMessage());
        }
    }

    /**
     * Half-precision checkpoints (llava-hf ships float16) load as stored and compute in float32. Reference: the same
     * golden outputs (|ref| <= 3.9); tolerance |Δ| <= tol + tol·|ref| with tol 5e-3 for F16 and 3e-2 for BF16: rounding
     * the weights to F16 (relative 2^-11) or BF16 (2^-8) moves the outputs of this tiny random tower by at most 1.5e-3
     * (F16) and 1.1e-2 (BF16), measured; a weight the loader mishandled would move them by O(1).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F16", "BF16"})
    void halfPrecisionWeightsWork(DType dtype) {
        GoldenFile g = GoldenFile.open(resource("golden/clip_vision_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/clip_vision_tiny/model"), null, ops)) {
            Map<String, Tensor> half = new LinkedHashMap<>();
            for (String key : ckpt.keys()) {
                half.put(key, ckpt.tensor(key).orElseThrow().to(dtype));
            }
            ClipVisionModel model = new ClipVisionModel(ClipVisionConfig.from(ckpt.config()));
            assertEquals(List.of(), model.loadTower(new MapSource(half), "").unexpectedKeys());
            ClipVisionModel.Output out = model.forward(tensor(g, "in.pixel_values"));
            assertEquals(DType.F32, out.lastHiddenState().dtype());
            double tol = dtype == DType.F16 ? 5e-3 : 3e-2;
            assertClose(g.floats("out.last_hidden_state"), out.lastHiddenState().toFloatArray(), tol, tol,
                    dtype + " last_hidden_state");
            assertClose(g.floats("out.pooler_output"), out.pooled().toFloatArray(), tol, tol, dtype + " pooled");
        }
    }

    @Test
    void configIsReadFromEveryLayout(@TempDir Path dir) throws Exception {
        // llava-hf: LlavaConfig.vision_config, missing fields take CLIPVisionConfig's defaults
        ClipVisionConfig llava = ClipVisionConfig.from(Json.read(resource("golden/e2e/llava/model/config.json")));
        assertEquals(new ClipVisionConfig(32, 64, 3, 2, 32, 8, 3, Activation.QUICK_GELU, 1e-5f, 16), llava);
        assertEquals(16, llava.numPatches());
        assertEquals(17, llava.numPositions());

        // llava-1.5-7b-hf's vision_config as published: defaults fill hidden_act, eps, num_channels
        ClipVisionConfig l15 = config(dir, """
                {"model_type": "llava", "vision_config": {"hidden_size": 1024, "image_size": 336,
                 "intermediate_size": 4096, "model_type": "clip_vision_model", "num_attention_heads": 16,
                 "num_hidden_layers": 24, "patch_size": 14, "projection_dim": 768, "vocab_size": 32000}}""");
        assertEquals(new ClipVisionConfig(1024, 4096, 24, 16, 336, 14, 3, Activation.QUICK_GELU, 1e-5f, 768), l15);
        assertEquals(576, l15.numPatches());
        // LlavaConfig() without vision_config builds the same ViT-L/14-336 tower
        assertEquals(l15, config(dir, "{\"model_type\": \"llava\"}"));

        // CLIPConfig and AltCLIPConfig: the nested vision_config; vision_config_dict wins when present
        assertEquals(new ClipVisionConfig(1024, 4096, 24, 16, 224, 14, 3, Activation.QUICK_GELU, 1e-5f, 768),
                config(dir, """
                        {"model_type": "clip", "projection_dim": 768, "text_config": {"hidden_size": 768},
                         "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                          "num_hidden_layers": 24, "patch_size": 14, "projection_dim": 768}}"""));
        assertEquals(new ClipVisionConfig(1024, 4096, 24, 16, 224, 14, 3, Activation.QUICK_GELU, 1e-5f, 512),
                config(dir, """
                        {"model_type": "altclip", "vision_config": {"hidden_size": 768},
                         "vision_config_dict": {"hidden_size": 1024, "intermediate_size": 4096,
                          "num_attention_heads": 16, "num_hidden_layers": 24, "patch_size": 14}}"""));
        // CLIPConfig() / AltCLIPConfig() with no vision config: ViT-B/32 at 224
        assertEquals(new ClipVisionConfig(768, 3072, 12, 12, 224, 32, 3, Activation.QUICK_GELU, 1e-5f, 512),
                config(dir, "{\"model_type\": \"altclip\", \"vision_config\": null}"));
        assertEquals(Activation.GELU, config(dir, "{\"model_type\": \"altclip_vision_model\", \"hidden_act\": \"gelu\"}")
                .hiddenAct());

        // errors name the file and field
        var e = assertThrows(JsonException.class, () -> config(dir, """
                {"model_type": "llava", "mm_vision_tower": "openai/clip-vit-large-patch14"}"""));
        assertTrue(e.getMessage().contains("vision_config") && e.getMessage().contains("mm_vision_tower")
                && e.getMessage().contains("config.json"), e.getMessage());
        e = assertThrows(JsonException.class, () -> config(dir, """
                {"model_type": "llava", "vision_config": {"model_type": "siglip_vision_model"}}"""));
        assertTrue(e.getMessage().contains("siglip_vision_model"), e.getMessage());
        e = assertThrows(JsonException.class, () -> config(dir, "{\"model_type\": \"clip_text_model\"}"));
        assertTrue(e.getMessage().contains("clip_text_model"), e.getMessage());
        e = assertThrows(JsonException.class, () -> config(dir, "{\"hidden_act\": \"swish\"}"));
        assertTrue(e.getMessage().contains("hidden_act") && e.getMessage().contains("swish"), e.getMessage());
        e = assertThrows(JsonException.class, () -> config(dir, "{\"image_size\": 224, \"patch_size\": 15}"));
        assertTrue(e.getMessage().contains("patch_size"), e.getMessage());
    }

    private static ClipVisionConfig config(Path dir, String json) throws Exception {
        Path file = dir.resolve("config.json");
        Files.writeString(file, json);
        return ClipVisionConfig.from(Json.read(file));
    }

    /** Rows [from, to) of axis 1 of a [B, N, C] array. */
    private static float[] rows(float[] x, int b, int n, int c, int from, int to) {
        float[] out = new float[b * (to - from) * c];
        for (int i = 0; i < b; i++) {
            System.arraycopy(x, (i * n + from) * c, out, i * (to - from) * c, (to - from) * c);
        }
        return out;
    }

    private record MapSource(Map<String, Tensor> tensors) implements WeightSource {
        @Override
        public Optional<Tensor> tensor(String key) {
            return Optional.ofNullable(tensors.get(key));
        }

        @Override
        public Set<String> keys() {
            return tensors.keySet();
        }

        @Override
        public String describe() {
            return "test map";
        }
    }
}
