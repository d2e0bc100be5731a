package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.hub.FakeHub;
import koala4j.io.hub.HubClient;
import koala4j.io.hub.ModelLocator;
import koala4j.models.Checkpoint;

/**
 * Fetching a repo whose weights are partly torch.save only (kebyt5-*-preview, Ko-LLaVA, AltCLIP publish
 * pytorch_model.bin): safetensors are fetched where the repo has them and .bin only where it has none, never both,
 * through a stand-in hub on 127.0.0.1 ({@link FakeHub}).
 */
class TorchWeightsDownloadTest {
    private static final String REPO = "koala-test/tiny-pipe";

    @TempDir
    Path work;

    private static byte[] read(String resource) throws IOException {
        return Files.readAllBytes(resource(resource));
    }

    private HubClient client(FakeHub hub, String home) {
        return new HubClient(HubClient.Options.fromEnvironment(Map.of("HF_HOME", work.resolve(home).toString(),
                "HF_ENDPOINT", hub.endpoint().toString())), HubClient.Progress.NONE);
    }

    private static List<String> fetched(FakeHub hub) {
        return hub.requests.stream().map(FakeHub.Request::path).filter(p -> p.contains("/resolve/"))
                .map(p -> p.substring(p.indexOf("/resolve/") + "/resolve/".length()).replaceFirst("^[^/]+/", "")).sorted().toList();
    }

    @Test
    void aTransformersRepoWithOnlyPytorchModelBinLoads() throws IOException {
        try (FakeHub hub = new FakeHub()) {
            hub.add("config.json", read("golden/torchbin/t5_byt5_tiny_bin/config.json"), false);
            hub.add("generation_config.json", read("golden/torchbin/t5_byt5_tiny_bin/generation_config.json"), false);
            hub.add("pytorch_model.bin", read("golden/torchbin/t5_byt5_tiny_bin/pytorch_model.bin"), true);
            hub.add("tf_model.h5", new byte[100], true);
            HubClient client = client(hub, "hf1");
            Path folder = PipelineFiles.withTorchWeights(REPO, client, ModelLocator.resolve(REPO, client, TextToText.FILES), null);
            assertEquals(List.of("config.json", "generation_config.json", "pytorch_model.bin"), fetched(hub));
            try (Checkpoint ckpt = Checkpoint.open(folder, null, new CpuOps())) {
                assertTrue(ckpt.keys().contains("shared.weight"));
            }
        }
    }

    @Test
    void safetensorsWinWhereARepoHasBothFormats() throws IOException {
        try (FakeHub hub = new FakeHub()) {
            hub.add("model_index.json", "{\"_class_name\": \"StableDiffusionPipeline\"}".getBytes(), false);
            hub.add("unet/config.json", "{}".getBytes(), false);
            hub.add("unet/diffusion_pytorch_model.safetensors", new byte[300], true);
            hub.add("unet/diffusion_pytorch_model.bin", new byte[300], true);
            // text_encoder has safetensors only in another variant: its .bin (sharded) is what loads
            hub.add("text_encoder/config.json", "{}".getBytes(), false);
            hub.add("text_encoder/model.fp16.safetensors", new byte[200], true);
            hub.add("text_encoder/pytorch_model.bin.index.json", "{\"weight_map\": {}}".getBytes(), false);
            hub.add("text_encoder/pytorch_model-00001-of-00002.bin", new byte[100], true);
            hub.add("text_encoder/pytorch_model-00002-of-00002.bin", new byte[100], true);
            hub.add("vae/config.json", "{}".getBytes(), false);
            hub.add("vae/diffusion_pytorch_model.bin", new byte[100], true);
            hub.add("vae/diffusion_pytorch_model.fp16.bin", new byte[100], true);
            HubClient client = client(hub, "hf2");
            Path folder = PipelineFiles.withTorchWeights(REPO, client, ModelLocator.resolve(REPO, client, PipelineFiles.patterns(null)), null);
            assertEquals(List.of("model_index.json", "text_encoder/config.json", "text_encoder/pytorch_model-00001-of-00002.bin",
                    "text_encoder/pytorch_model-00002-of-00002.bin", "text_encoder/pytorch_model.bin.index.json", "unet/config.json",
                    "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.bin"), fetched(hub));
            // a second run finds everything in the cache and asks for nothing more
            int before = fetched(hub).size();
            assertEquals(folder, PipelineFiles.withTorchWeights(REPO, client, ModelLocator.resolve(REPO, client, PipelineFiles.patterns(null)), null));
            assertEquals(before, fetched(hub).size());
        }
    }

    @Test
    void fallbackPatternsFollowTheVariant(@TempDir Path folder) throws IOException {
        Files.writeString(folder.resolve("config.json"), "{}");
        assertEquals(List.of("pytorch_model.fp16.bin", "pytorch_model.bin.index.fp16.json", "pytorch_model.fp16.bin.index.json",
                "diffusion_pytorch_model.bin.index.fp16.json", "diffusion_pytorch_model.bin.fp16.index.json", "diffusion_pytorch_model.fp16.bin",
                "diffusion_pytorch_model.fp16.bin.index.json", "pytorch_model.fp16-*-of-*.bin", "pytorch_model-*-of-*.fp16.bin",
                "diffusion_pytorch_model.fp16-*-of-*.bin", "diffusion_pytorch_model-*-of-*.fp16.bin"),
                PipelineFiles.torchFallbackPatterns(folder, "fp16"));
        Files.write(folder.resolve("model.fp16.safetensors"), new byte[0]);
        assertEquals(List.of(), PipelineFiles.torchFallbackPatterns(folder, "fp16"));
    }
}
