package koala4j.pipelines;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.json.Json;
import koala4j.models.unet.UNet2DConditionModel;
import koala4j.models.unet.UNetConfig;
import koala4j.tensor.Tensor;
import koala4j.testing.TinyPipelines;

/**
 * Config knobs of the SDXL family beyond the golden cases: a VAE with latents_mean/latents_std (the SDXL pipeline
 * decodes latents * std / scaling_factor + mean, per channel), a guidance-distilled UNet (time_cond_proj_dim) and
 * a UNet with an explicit time_embedding_dim.
 */
class ConfigVariantsTest {

    @TempDir
    static Path work;

    @Test
    void latentsMeanAndStdUnNormaliseBeforeDecoding() throws Exception {
        Path folder = work.resolve("normalised");
        TinyPipelines.copyTree(TinyPipelines.assemble("sdxl", work), folder);
        Path vaeConfig = folder.resolve("vae/config.json");
        String config = Files.readString(vaeConfig)
                .replace("\"latents_mean\": null", "\"latents_mean\": [0.1, -0.2, 0.3, 0.0]")
                .replace("\"latents_std\": null", "\"latents_std\": [1.5, 0.5, 1.0, 2.0]");
        Files.writeString(vaeConfig, config);
        Map<String, Tensor> seen = new HashMap<>();
        try (TextToImage pipeline = TextToImage.load(folder, "normalised", null, null, new CpuOps())) {
            GenerationRequest request = new GenerationRequest(List.of("a koala"), null, 2, 5.0, "euler", null, 64, 64, 3,
                    1, 0.0, null, 0, 0, 1.0);
            pipeline.generate(request, null, seen::put, Progress.NONE, Cancel.NEVER);
        }
        float sf = (float) Json.read(vaeConfig).doubleValue("scaling_factor");
        float[] mean = {0.1f, -0.2f, 0.3f, 0.0f};
        float[] std = {1.5f, 0.5f, 1.0f, 2.0f};
        float[] latents = seen.get("latents_after_step.1").toFloatArray();
        float[] expected = new float[latents.length];
        int plane = latents.length / 4;
        for (int i = 0; i < latents.length; i++) {
            int c = i / plane;
            expected[i] = latents[i] * (std[c] / sf) + mean[c];
        }
        // same float operations in a different order: a few ulp
        assertClose(expected, seen.get("vae_decode_input").toFloatArray(), 1e-6, 1e-6, "vae_decode_input");
    }

    /**
     * A guidance-distilled UNet (time_cond_proj_dim, as LCM-SDXL ships) gets no CFG batch; the guidance scale
     * enters through get_guidance_scale_embedding and time_embedding.cond_proj instead, so changing it changes
     * the image while the batch stays 1.
     */
    @Test
    void guidanceDistilledUnetsTakeTheGuidanceAsAnEmbedding() throws Exception {
        Path folder = work.resolve("lcm");
        TinyPipelines.copyTree(TinyPipelines.assemble("sdxl", work), folder);
        Path unetDir = folder.resolve("unet");
        String config = Files.readString(unetDir.resolve("config.json"))
                .replace("\"time_cond_proj_dim\": null", "\"time_cond_proj_dim\": 8");
        Files.writeString(unetDir.resolve("config.json"), config);
        int c0 = UNetConfig.from(Json.parse(config, "config.json")).blockOutChannels().getFirst();
        Path weights = unetDir.resolve("diffusion_pytorch_model.safetensors");
        List<koala4j.io.safetensors.TensorEntry> entries = new java.util.ArrayList<>();
        try (var file = koala4j.io.safetensors.SafetensorsFile.open(weights)) {
            for (var e : file.entries()) {
                entries.add(koala4j.io.safetensors.SafetensorsWriter.f32(e.name(), e.shape(),
                        e.data().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED)));
            }
        }
        float[] cond = new float[c0 * 8];
        for (int i = 0; i < cond.length; i++) {
            cond[i] = (float) Math.sin(i) * 0.3f;
        }
        entries.add(koala4j.io.safetensors.SafetensorsWriter.f32("time_embedding.cond_proj.weight", new long[] {c0, 8}, cond));
        koala4j.io.safetensors.SafetensorsWriter.write(weights, entries, Map.of());
        float[][] images = new float[2][];
        int[] batch = new int[2];
        try (TextToImage pipeline = TextToImage.load(folder, "lcm", null, null, new CpuOps())) {
            for (int k = 0; k < 2; k++) {
                Map<String, Tensor> seen = new HashMap<>();
                GenerationRequest request = new GenerationRequest(List.of("a koala"), null, 2, k == 0 ? 2.0 : 8.0, "lcm",
                        null, 64, 64, 3, 1, 0.0, null, 0, 0, 1.0);
                images[k] = pipeline.generate(request, null, seen::put, Progress.NONE, Cancel.NEVER).imagesChw().getFirst();
                batch[k] = seen.get("unet_input.0").size(0);
            }
        }
        assertArrayEquals(new int[] {1, 1}, batch, "no CFG batch for a guidance-distilled UNet");
        org.junit.jupiter.api.Assertions.assertFalse(java.util.Arrays.equals(images[0], images[1]),
                "the guidance scale reaches the UNet through its embedding");
    }

    @Test
    void timeEmbeddingDimSizesTheTimeMlp() throws Exception {
        String text = Files.readString(resource("golden/unet_sd15_tiny/unet/config.json"))
                .replace("\"time_embedding_dim\": null", "\"time_embedding_dim\": 40");
        UNetConfig config = UNetConfig.from(Json.parse(text, "config.json"));
        UNet2DConditionModel unet = new UNet2DConditionModel(config);
        int c0 = config.blockOutChannels().getFirst();
        assertArrayEquals(new int[] {40, c0}, unet.namedParameters().get("time_embedding.linear_1.weight").shape());
        assertArrayEquals(new int[] {c0, 40},
                unet.namedParameters().get("down_blocks.0.resnets.0.time_emb_proj.weight").shape());
    }
}
