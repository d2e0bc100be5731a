package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import koala4j.backend.cpu.CpuOps;
import koala4j.cli.Main;
import koala4j.io.image.AnyResImageProcessor;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.io.safetensors.SafetensorsWriter;
import koala4j.io.safetensors.TensorEntry;
import koala4j.models.Checkpoint;
import koala4j.models.llava.AnyResGrid;
import koala4j.models.llava.LlavaConfig;
import koala4j.models.llava.LlavaModel;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.testing.GoldenFile;

/**
 * LLaVA-NeXT in the original LLaVA repository's layout (liuhaotian/llava-v1.6-*: {@code LlavaLlamaForCausalLM} with
 * image_aspect_ratio anyres, mm_patch_merge_type spatial_unpad, {@code model.image_newline}, an mlp2x_gelu
 * {@code model.mm_projector}, the tower in its own folder). The folder is the transformers-layout llava_next/ model
 * rewritten as LLaVA's own checkpoints are laid out (the inverse of transformers' convert_llava_next_weights_to_hf),
 * with its image_grid_pinpoints written as LLaVA writes them, [width, height]: the packed image features then equal
 * transformers' (1e-4 + 1e-4·|ref|), and {@code koala4j chat} answers with the template LLaVA infers from the name.
 */
class LlavaNextOriginalTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Ops OPS = new CpuOps();

    @TempDir
    static Path work;

    private static Path folder;

    @BeforeAll
    static void convert() throws IOException {
        Path from = resource("llava_next/model");
        folder = work.resolve("llava-v1.6-tiny");
        Path vision = folder.resolve("vision");
        Files.createDirectories(vision);
        List<TensorEntry> model = new ArrayList<>();
        List<TensorEntry> tower = new ArrayList<>();
        try (Checkpoint ckpt = Checkpoint.open(from, null, OPS)) {
            for (String key : new java.util.TreeSet<>(ckpt.keys())) {
                Tensor t = ckpt.tensor(key).orElseThrow();
                long[] shape = Arrays.stream(t.shape()).asLongStream().toArray();
                if (key.startsWith("vision_tower.")) {
                    tower.add(SafetensorsWriter.f32("vision_model." + key.substring("vision_tower.".length()), shape,
                            t.toFloatArray()));
                } else {
                    model.add(SafetensorsWriter.f32(originalKey(key), shape, t.toFloatArray()));
                }
            }
        }
        SafetensorsWriter.write(folder.resolve("model.safetensors"), model, Map.of("format", "pt"));
        SafetensorsWriter.write(vision.resolve("model.safetensors"), tower, Map.of("format", "pt"));

        JsonNode hf = JSON.readTree(from.resolve("config.json").toFile());
        ObjectNode config = ((ObjectNode) hf.get("text_config")).deepCopy();
        config.putArray("architectures").add("LlavaLlamaForCausalLM");
        config.put("model_type", "llava_llama");
        config.put("mm_vision_tower", "vision");
        config.put("mm_hidden_size", hf.at("/vision_config/hidden_size").asInt());
        config.put("mm_projector_type", "mlp2x_gelu");
        config.put("mm_vision_select_layer", -2);
        config.put("mm_vision_select_feature", "patch");
        config.put("mm_use_im_start_end", false);
        config.put("mm_use_im_patch_token", false);
        config.put("image_aspect_ratio", "anyres");
        config.put("mm_patch_merge_type", "spatial_unpad");
        ArrayNode pins = config.putArray("image_grid_pinpoints");
        for (JsonNode p : hf.get("image_grid_pinpoints")) {
            pins.addArray().add(p.get(1).asInt()).add(p.get(0).asInt());   // [height, width] -> [width, height]
        }
        JSON.writeValue(folder.resolve("config.json").toFile(), config);
        ObjectNode towerConfig = ((ObjectNode) hf.get("vision_config")).deepCopy();
        towerConfig.putArray("architectures").add("CLIPVisionModel");
        JSON.writeValue(vision.resolve("config.json").toFile(), towerConfig);
        ObjectNode processor = ((ObjectNode) JSON.readTree(from.resolve("processor_config.json").toFile())
                .get("image_processor")).deepCopy();
        processor.remove(List.of("image_grid_pinpoints", "do_pad"));
        processor.put("image_processor_type", "CLIPImageProcessor");
        JSON.writeValue(vision.resolve("preprocessor_config.json").toFile(), processor);
        for (String file : List.of("tokenizer.json", "tokenizer_config.json", "generation_config.json")) {
            Files.copy(from.resolve(file), folder.resolve(file));
        }
    }

    /** transformers' LLaVA-NeXT key -> the original repository's. */
    private static String originalKey(String key) {
        if (key.equals("image_newline")) {
            return "model.image_newline";
        }
        if (key.startsWith("multi_modal_projector.linear_1.")) {
            return "model.mm_projector.0." + key.substring("multi_modal_projector.linear_1.".length());
        }
        if (key.startsWith("multi_modal_projector.linear_2.")) {
            return "model.mm_projector.2." + key.substring("multi_modal_projector.linear_2.".length());
        }
        return key.substring("language_model.".length());
    }

    @Test
    void packedImageFeaturesEqualTransformers() throws IOException {
        Json config = Json.read(folder.resolve("config.json"));
        LlavaConfig c = LlavaConfig.from(config);
        assertEquals(LlavaConfig.Layout.ORIGINAL, c.layout());
        assertTrue(c.anyres());
        try (Checkpoint ckpt = Checkpoint.open(folder, null, OPS);
             VisionEncoder encoder = VisionEncoder.original(folder, config, c, null, null, OPS)) {
            LlavaModel llava = LlavaModel.load(ckpt, koala4j.tensor.quant.Quantization.NONE,
                    new LlavaModel.ImageTokens(LlavaConfig.ORIGINAL_IMAGE_PLACEHOLDER, -1, -1));
            LlavaNextTest.assertPackedFeatures(encoder, llava);
        }
    }

    /**
     * LLaVA's mm_utils reads each pinpoint as (width, height): for a small square picture, where a tall and a wide
     * grid keep the same pixels and waste the same, the first pair wins, and [32, 64] is a tall grid there (a wide
     * one for transformers, which reads [height, width]).
     */
    @Test
    void pinpointsAreWidthHeightPairs() {
        LlavaConfig c = LlavaConfig.from(Json.read(folder.resolve("config.json")));
        List<int[]> pins = c.imageGridPinpoints();                                   // as {height, width}
        assertArrayEquals(new int[] {32, 64}, pins.get(0));
        assertArrayEquals(new int[] {64, 32}, pins.get(1));
        Json tallFirst = Json.parse("{\"image_grid_pinpoints\": [[32, 64], [64, 32], [64, 64]]}", "config.json");
        List<int[]> original = LlavaConfig.from(withGrid(tallFirst)).imageGridPinpoints();
        assertArrayEquals(new int[] {64, 32}, AnyResImageProcessor.selectBestResolution(20, 20, original));
        assertArrayEquals(new int[] {32, 64}, AnyResImageProcessor.selectBestResolution(20, 20,
                AnyResGrid.pinpoints(tallFirst, "image_grid_pinpoints")));
        // the original repository truncates where transformers rounds at 7 decimals: a 176x55 picture on a 48x48
        // grid keeps 55 * (48 / 176) = 14.999999999999998 rows, 14 there (padding 17), 15 in transformers (16)
        assertEquals(new AnyResGrid.Unpadded(17, 31, 0, 48), AnyResGrid.unpad(55, 176, 48, 48, false));
        assertEquals(new AnyResGrid.Unpadded(16, 32, 0, 48), AnyResGrid.unpad(55, 176, 48, 48, true));
    }

    private static Json withGrid(Json grid) {
        ObjectNode c = (ObjectNode) JSON.valueToTree(Json.read(folder.resolve("config.json")).node());
        c.set("image_grid_pinpoints", grid.node().get("image_grid_pinpoints"));
        return Json.parse(c.toString(), "config.json");
    }

    @Test
    void chatAnswersWithTheTemplateLlavaInfers() throws IOException {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(new String[] {"chat", "--model", folder.toString(), "--image",
                resource("llava_next/wide.png").toString(), "--prompt", "What is this?", "--max-new-tokens", "5",
                "--ignore-eos", "--json"}, new PrintWriter(out), new PrintWriter(err),
                Map.of("HF_HUB_OFFLINE", "1", "HF_HOME", work.resolve("hf").toString()));
        assertEquals(0, code, err.toString());
        JsonNode got = JSON.readTree(out.toString());
        int[] ids = JSON.convertValue(got.get("prompt_ids"), int[].class);
        assertEquals(1, ids[0], "BOS first");
        assertEquals(1, Arrays.stream(ids).filter(id -> id == LlavaConfig.ORIGINAL_IMAGE_PLACEHOLDER).count(),
                Arrays.toString(ids));
        assertEquals(5, got.get("output_ids").size());
        assertTrue(err.toString().contains("conversation template 'llava_v1'"), err.toString());
        // the placeholder became the packed features of the picture (its base tile, its unpadded grid, newlines)
        long rows = GoldenFile.open(resource("llava_next/expected.safetensors")).shape("wide.png.features")[0];
        assertTrue(err.toString().contains("prompt " + (ids.length - 1 + rows) + " tokens"), err.toString());
    }

    /** liuhaotian/llava-v1.6-mistral-7b: LlavaMistralForCausalLM, a MistralConfig ("llava_mistral"). */
    @Test
    void theMistralVariantKeepsItsSlidingWindow() {
        ObjectNode c = (ObjectNode) JSON.valueToTree(Json.read(folder.resolve("config.json")).node());
        c.put("model_type", "llava_mistral").put("sliding_window", 6).putArray("architectures")
                .add("LlavaMistralForCausalLM");
        Json config = Json.parse(c.toString(), "config.json");
        assertTrue(LlavaConfig.isLlava(config));
        LlavaConfig llava = LlavaConfig.from(config);
        assertEquals(LlavaConfig.Layout.ORIGINAL, llava.layout());
        assertEquals(6, llava.textConfig().slidingWindow());
    }

    @Test
    void unsupportedAnyresSettingsAreNamed() {
        ObjectNode c = (ObjectNode) JSON.valueToTree(Json.read(folder.resolve("config.json")).node());
        c.put("image_aspect_ratio", "anyres_max_9");
        var e = assertThrows(JsonException.class, () -> LlavaConfig.from(Json.parse(c.toString(), "config.json")));
        assertTrue(e.getMessage().contains("image_aspect_ratio") && e.getMessage().contains("anyres_max_9"),
                e.getMessage());
        c.put("image_aspect_ratio", "anyres").put("mm_patch_merge_type", "flat");
        e = assertThrows(JsonException.class, () -> LlavaConfig.from(Json.parse(c.toString(), "config.json")));
        assertTrue(e.getMessage().contains("mm_patch_merge_type") && e.getMessage().contains("flat"), e.getMessage());
        c.put("mm_patch_merge_type", "spatial_unpad").putArray("image_grid_pinpoints").addArray().add(32);
        e = assertThrows(JsonException.class, () -> LlavaConfig.from(Json.parse(c.toString(), "config.json")));
        assertTrue(e.getMessage().contains("[width, height]"), e.getMessage());
    }
}
