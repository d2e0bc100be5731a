package koala4j.models;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import koala4j.backend.cpu.CpuOps;
import koala4j.models.clip.ClipTextConfig;
import koala4j.models.clip.ClipTextModel;
import koala4j.models.unet.UNet2DConditionModel;
import koala4j.models.unet.UNetConfig;
import koala4j.models.vae.AutoencoderKL;
import koala4j.nn.WeightException;
import koala4j.nn.WeightSource;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.testing.GoldenFile;

/**
 * The models against ../shared/golden (diffusers 0.36 / transformers 4.57.6, torch 2.13 CPU fp32), loaded from
 * folders in the published layout (config.json + model.safetensors / diffusion_pytorch_model.safetensors).
 * Tolerance |Δ| <= 1e-4 + 1e-4·|ref| as the golden README suggests: the float32 reference is within 7e-6 of
 * float64, and our float32 sums reassociate differently (GEMM blocking, online softmax).
 */
class ModelGoldenTest {

    private static final double ATOL = 1e-4;
    private static final double RTOL = 1e-4;
    private final Ops ops = new CpuOps();

    private Tensor input(GoldenFile g, String name) {
        int[] shape = Arrays.stream(g.shape(name)).mapToInt(Math::toIntExact).toArray();
        return ops.fromArray(g.floats(name), shape);
    }

    /** transformers 5 stores a CLIPTextModel without its text_model. level; the same weights load and give the same. */
    @Test
    void clipTextEncoderStoredWithoutItsTextModelLevel() {
        GoldenFile g = GoldenFile.open(resource("golden/clip_text_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/clip_text_tiny/quick_gelu"), null, ops)) {
            WeightSource flat = WeightSource.renamed(ckpt, k -> k.replaceFirst("^text_model\\.", ""),
                    k -> "text_model." + k);
            assertTrue(flat.keys().contains("embeddings.token_embedding.weight"), flat.keys().toString());
            ClipTextModel model = new ClipTextModel(ClipTextConfig.from(ckpt.config()));
            assertEquals(List.of(), model.load(ClipTextModel.textKeys(flat)).unexpectedKeys());
            long[] ids = g.longs("in.quick_gelu.input_ids");
            assertClose(g.floats("out.quick_gelu.last_hidden_state"),
                    model.forward(ops.fromArray(ids, 3, 77)).lastHiddenState().toFloatArray(), ATOL, RTOL,
                    "last_hidden_state");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"quick_gelu", "gelu_proj"})
    void clipTextEncoders(String variant) {
        GoldenFile g = GoldenFile.open(resource("golden/clip_text_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/clip_text_tiny/" + variant), null, ops)) {
            ClipTextModel model = new ClipTextModel(ClipTextConfig.from(ckpt.config()));
            model.load(ckpt);
            long[] ids = g.longs("in." + variant + ".input_ids");
            ClipTextModel.Output out = model.forward(ops.fromArray(ids, 3, 77));
            for (int i = 0; i < out.hiddenStates().size(); i++) {
                assertClose(g.floats("out." + variant + ".hidden_states." + i), out.hiddenStates().get(i).toFloatArray(),
                        ATOL, RTOL, "hidden_states." + i);
            }
            assertClose(g.floats("out." + variant + ".penultimate_hidden_state"), out.penultimate().toFloatArray(),
                    ATOL, RTOL, "penultimate");
            assertClose(g.floats("out." + variant + ".last_hidden_state"), out.lastHiddenState().toFloatArray(),
                    ATOL, RTOL, "last_hidden_state");
            if (variant.equals("quick_gelu")) {
                assertClose(g.floats("out.quick_gelu.pooler_output"), out.pooled().toFloatArray(), ATOL, RTOL, "pooled");
            } else {
                assertClose(g.floats("out.gelu_proj.text_embeds"), out.textEmbeds().toFloatArray(), ATOL, RTOL, "text_embeds");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"unet_sdxl_tiny", "unet_koala_tiny", "unet_sd15_tiny"})
    void unets(String name) {
        GoldenFile g = GoldenFile.open(resource("golden/" + name + "/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/" + name + "/unet"), null, ops)) {
            UNet2DConditionModel unet = new UNet2DConditionModel(UNetConfig.from(ckpt.config()));
            koala4j.nn.Module.LoadReport report = unet.load(ckpt);
            assertEquals(java.util.List.of(), report.unexpectedKeys(), "every checkpoint key has a module");
            UNet2DConditionModel.AddedConditions added = g.names().contains("in.text_embeds")
                    ? new UNet2DConditionModel.AddedConditions(input(g, "in.text_embeds"), input(g, "in.time_ids")) : null;
            Tensor out = unet.forward(input(g, "in.sample"), input(g, "in.timestep"), input(g, "in.encoder_hidden_states"),
                    added, null);
            assertClose(g.floats("out.sample"), out.toFloatArray(), ATOL, RTOL, name + " noise prediction");
        }
    }

    @Test
    void vaeEncodeAndDecode() {
        GoldenFile g = GoldenFile.open(resource("golden/vae_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/vae_tiny/vae"), null, ops)) {
            AutoencoderKL vae = new AutoencoderKL(AutoencoderKL.Config.from(ckpt.config()));
            vae.load(ckpt);
            Tensor image = input(g, "in.image");
            assertClose(g.floats("out.encoder_out"), vae.encoderOutput(image).toFloatArray(), ATOL, RTOL, "encoder");
            AutoencoderKL.Posterior posterior = vae.encode(image);
            assertClose(g.floats("out.latent_mean"), posterior.mean().toFloatArray(), ATOL, RTOL, "mean");
            assertClose(g.floats("out.latent_logvar"), posterior.logvar().toFloatArray(), ATOL, RTOL, "logvar");
            assertClose(g.floats("out.latent_std"), posterior.std().toFloatArray(), ATOL, RTOL, "std");
            Tensor latent = input(g, "in.latent");
            assertClose(g.floats("out.post_quant_conv"), vae.postQuantConv(latent).toFloatArray(), ATOL, RTOL, "post_quant_conv");
            assertClose(g.floats("out.decoded"), vae.decode(latent).toFloatArray(), ATOL, RTOL, "decoded");
            // a single tile covering the whole latent is the plain decode
            assertClose(g.floats("out.decoded"), vae.decodeTiled(latent, 8).toFloatArray(), ATOL, RTOL, "tiled (one tile)");
            // several overlapping tiles stay close to the whole decode away from the seams' blend
            Tensor tiled = vae.decodeTiled(latent, 4);
            assertEquals(Arrays.toString(new int[] {1, 3, 32, 32}), Arrays.toString(tiled.shape()));
        }
    }

    /** The same UNet stored as the fp16 variant (diffusion_pytorch_model.fp16.safetensors), read by the kernels as F16. */
    @ParameterizedTest
    @ValueSource(strings = {"F16", "BF16"})
    void halfPrecisionVariantsLoadAndStayClose(String dtype, @TempDir Path dir) throws Exception {
        Path unet = resource("golden/unet_sdxl_tiny/unet");
        Files.copy(unet.resolve("config.json"), dir.resolve("config.json"));
        java.util.List<koala4j.io.safetensors.TensorEntry> half = new java.util.ArrayList<>();
        try (koala4j.io.safetensors.SafetensorsFile f = koala4j.io.safetensors.SafetensorsFile.open(
                unet.resolve("diffusion_pytorch_model.safetensors"))) {
            for (koala4j.io.safetensors.TensorEntry e : f.entries()) {
                float[] v = e.data().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED);
                short[] bits = new short[v.length];
                for (int i = 0; i < v.length; i++) {
                    bits[i] = dtype.equals("F16") ? koala4j.tensor.DType.f32ToF16(v[i]) : koala4j.tensor.DType.f32ToBf16(v[i]);
                }
                half.add(dtype.equals("F16") ? koala4j.io.safetensors.SafetensorsWriter.f16(e.name(), e.shape(), bits)
                        : koala4j.io.safetensors.SafetensorsWriter.bf16(e.name(), e.shape(), bits));
            }
            koala4j.io.safetensors.SafetensorsWriter.write(dir.resolve("diffusion_pytorch_model.fp16.safetensors"), half,
                    java.util.Map.of());
        }
        GoldenFile g = GoldenFile.open(resource("golden/unet_sdxl_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(dir, "fp16", ops)) {
            UNet2DConditionModel model = new UNet2DConditionModel(UNetConfig.from(ckpt.config()));
            model.load(ckpt);
            Tensor out = model.forward(input(g, "in.sample"), input(g, "in.timestep"), input(g, "in.encoder_hidden_states"),
                    new UNet2DConditionModel.AddedConditions(input(g, "in.text_embeds"), input(g, "in.time_ids")), null);
            // weights rounded to 11 (F16) or 8 (BF16) mantissa bits: relative error 2^-11 / 2^-8 per weight, compounded
            // through ~20 layers; computed in F32 from the half weights
            double tol = dtype.equals("F16") ? 5e-3 : 4e-2;
            assertClose(g.floats("out.sample"), out.toFloatArray(), tol, tol, dtype + " variant");
        }
        assertThrows(RuntimeException.class, () -> Checkpoint.open(dir, "bf17", ops));
    }

    @Test
    void aShapeMismatchNamesTheFolderTheKeyAndBothShapes(@TempDir Path dir) throws Exception {
        Path unet = resource("golden/unet_sd15_tiny/unet");
        Files.copy(unet.resolve("diffusion_pytorch_model.safetensors"), dir.resolve("diffusion_pytorch_model.safetensors"));
        String config = Files.readString(unet.resolve("config.json")).replace("\"out_channels\": 4", "\"out_channels\": 3");
        Files.writeString(dir.resolve("config.json"), config);
        try (Checkpoint ckpt = Checkpoint.open(dir, null, ops)) {
            UNet2DConditionModel model = new UNet2DConditionModel(UNetConfig.from(ckpt.config()));
            WeightException e = assertThrows(WeightException.class, () -> model.load(ckpt));
            assertTrue(e.getMessage().contains(dir.toString()) && e.getMessage().contains("conv_out.weight")
                    && e.getMessage().contains("[4, ") && e.getMessage().contains("[3, "), e.getMessage());
        }
    }

    @Test
    void unknownConfigValuesAreRejectedByName(@TempDir Path dir) throws Exception {
        Path unet = resource("golden/unet_sd15_tiny/unet");
        String config = Files.readString(unet.resolve("config.json"))
                .replace("\"CrossAttnDownBlock2D\"", "\"SimpleCrossAttnDownBlock2D\"");
        Files.writeString(dir.resolve("config.json"), config);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> UNetConfig.from(koala4j.io.json.Json.read(dir.resolve("config.json"))));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("SimpleCrossAttnDownBlock2D"), e.getMessage());
    }
}
