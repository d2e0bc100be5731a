package koala4j.pipelines;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.cli.Main;
import koala4j.io.image.AnyResImageProcessor;
import koala4j.io.image.Images;
import koala4j.io.json.Json;
import koala4j.models.Checkpoint;
import koala4j.models.llava.AnyResGrid;
import koala4j.models.llava.LlavaConfig;
import koala4j.models.llava.LlavaModel;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.testing.GoldenFile;

/**
 * LLaVA-NeXT (anyres) against llava_next/ (transformers 5.18.0, PIL image processing; make_llava_next.py): the
 * image processor's tiles exactly as transformers' pixel_values (|Δ| <= 1e-6, float32 rounding of the same
 * arithmetic), the packed image features (tower, projector, grid layout, unpadding, image_newline) within
 * |Δ| <= 1e-4 + 1e-4·|ref|, and through {@code koala4j chat}: prompt ids with the processor's image-token count and
 * the greedy ids of two questions about four pictures (2x2 and 3x1 grids; rows and columns unpadded), exact.
 */
class LlavaNextTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Ops OPS = new CpuOps();
    private static final List<String> IMAGES = List.of("llava.png", "kollava.png", "wide.png", "tall.png");

    @TempDir
    Path work;

    private static Path folder() {
        return resource("llava_next/model");
    }

    @Test
    void tilesMatchTheImageProcessor() throws IOException {
        GoldenFile g = GoldenFile.open(resource("llava_next/expected.safetensors"));
        Json settings = Json.read(folder().resolve("processor_config.json")).object("image_processor");
        AnyResImageProcessor processor = AnyResImageProcessor.from(settings,
                AnyResGrid.pinpoints(settings, "image_grid_pinpoints"));
        for (String name : IMAGES) {
            AnyResImageProcessor.Tiles tiles = processor.preprocess(Images.read(resource("llava_next/" + name)));
            long[] shape = g.shape(name);
            assertEquals(shape[0], tiles.pixels().batch(), name + " tiles");
            assertClose(g.floats(name), tiles.pixels().data(), 1e-6, 0, name);
        }
    }

    @Test
    void bestResolutionAndUnpaddingFollowTransformers() {
        List<int[]> pins = AnyResGrid.DEFAULT_PINPOINTS;
        // the reference's rule: the most of the picture's own pixels kept, then the least padding
        assertArrayEquals(new int[] {336, 672}, AnyResImageProcessor.selectBestResolution(300, 600, pins));
        assertArrayEquals(new int[] {672, 672}, AnyResImageProcessor.selectBestResolution(800, 800, pins));
        assertArrayEquals(new int[] {1008, 336}, AnyResImageProcessor.selectBestResolution(1200, 300, pins));
        // a 60x45 (h x w) image on a 48x48 grid: columns unpadded, 36 kept (padding 6 each side)
        assertEquals(new AnyResGrid.Unpadded(0, 48, 6, 42), AnyResGrid.unpad(60, 45, 48, 48));
        assertEquals(new AnyResGrid.Unpadded(6, 42, 0, 48), AnyResGrid.unpad(45, 60, 48, 48));
        var bad = assertThrows(koala4j.io.json.JsonException.class, () -> AnyResGrid.pinpoints(
                Json.parse("{\"image_grid_pinpoints\": [[336]]}", "config.json"), "image_grid_pinpoints"));
        assertTrue(bad.getMessage().contains("image_grid_pinpoints"), bad.getMessage());
    }

    @Test
    void packedImageFeaturesMatchTheModel() throws IOException {
        try (Checkpoint ckpt = Checkpoint.open(folder(), null, OPS)) {
            LlavaConfig c = LlavaConfig.from(ckpt.config());
            assertTrue(c.anyres());
            LlavaModel llava = LlavaModel.load(ckpt, koala4j.tensor.quant.Quantization.NONE,
                    new LlavaModel.ImageTokens(c.imageTokenIndex(), -1, -1));
            assertPackedFeatures(VisionEncoder.inCheckpoint(ckpt, c), llava);
        }
    }

    /** Each picture's packed features from {@code encoder} against the reference's, within 1e-4 + 1e-4·|ref|. */
    static void assertPackedFeatures(VisionEncoder encoder, LlavaModel llava) throws IOException {
        GoldenFile g = GoldenFile.open(resource("llava_next/expected.safetensors"));
        for (String name : IMAGES) {
            Tensor packed = encoder.encode(List.of(Images.read(resource("llava_next/" + name))), llava,
                    Cancel.NEVER).getFirst();
            long[] shape = g.shape(name + ".features");
            assertEquals(shape[0], packed.size(0), name + " feature rows");
            assertClose(g.floats(name + ".features"), packed.toFloatArray(), 1e-4, 1e-4, name);
        }
    }

    @Test
    void chatGivesTheReferenceIds() throws IOException {
        JsonNode expected = JSON.readTree(resource("llava_next/expected.json").toFile());
        for (JsonNode r : expected.get("runs")) {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            int code = Main.run(new String[] {"chat", "--model", folder().toString(), "--image",
                    resource("llava_next/" + r.get("image").asText()).toString(), "--prompt", r.get("question").asText(),
                    "--max-new-tokens", Integer.toString(r.get("new_ids").size()), "--ignore-eos", "--json"},
                    new PrintWriter(out), new PrintWriter(err), Map.of("HF_HUB_OFFLINE", "1", "HF_HOME",
                            work.resolve("hf").toString()));
            assertEquals(0, code, err.toString());
            JsonNode got = JSON.readTree(out.toString());
            String what = r.get("image").asText() + " / " + r.get("question").asText();
            assertArrayEquals(ints(r.get("input_ids")), ints(got.get("prompt_ids")), what);
            assertArrayEquals(ints(r.get("new_ids")), ints(got.get("output_ids")), what);
        }
    }

    @Test
    void aProcessorAndModelThatDisagreeAreNamed() throws IOException {
        Path copy = work.resolve("mismatch");
        koala4j.testing.TinyPipelines.copyTree(folder(), copy);
        // the processor tiles at 64x64 only, where the model's pinpoints give the tall picture a 3x1 grid
        var settings = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(
                copy.resolve("processor_config.json").toFile());
        ((com.fasterxml.jackson.databind.node.ObjectNode) settings.get("image_processor"))
                .putArray("image_grid_pinpoints").addArray().add(64).add(64);
        JSON.writeValue(copy.resolve("processor_config.json").toFile(), settings);
        StringWriter err = new StringWriter();
        int code = Main.run(new String[] {"chat", "--model", copy.toString(), "--image",
                resource("llava_next/tall.png").toString(), "--prompt", "hi", "--max-new-tokens", "1"},
                new PrintWriter(new StringWriter()), new PrintWriter(err), Map.of("HF_HUB_OFFLINE", "1", "HF_HOME",
                        work.resolve("hf").toString()));
        assertEquals(1, code);
        assertTrue(err.toString().contains("image_grid_pinpoints") && err.toString().contains("disagree"),
                err.toString());
    }

}
