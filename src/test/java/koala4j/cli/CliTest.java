package koala4j.cli;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.io.hub.FakeHub;
import koala4j.io.image.Image;
import koala4j.io.image.Images;
import koala4j.io.image.Png;
import koala4j.io.safetensors.SafetensorsFile;
import koala4j.io.safetensors.TensorEntry;
import koala4j.testing.TinyPipelines;

/** The CLI as a user types it: output, exit codes, one-line errors, and generate's options end to end. */
class CliTest {

    @TempDir
    static Path work;

    record Run(int code, String out, String err) {
    }

    static Run run(Map<String, String> env, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out), new PrintWriter(err), env);
        return new Run(code, out.toString(), err.toString());
    }

    static Run run(String... args) {
        return run(Map.of("HF_HOME", work.resolve("hf-empty").toString()), args);
    }

    @Test
    void versionNamesTheProgramAndJava() {
        Run r = run("--version");
        assertEquals(0, r.code());
        assertTrue(r.out().startsWith("koala4j ") && r.out().contains("Java"), r.out());
    }

    @Test
    void inspectAFileListsEveryTensorThenTheParameterCount() {
        Path file = resource("golden/vae_tiny/vae/diffusion_pytorch_model.safetensors");
        Run r = run("inspect", file.toString());
        assertEquals(0, r.code(), r.err());
        long expected = 0;
        int tensors;
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            tensors = f.entries().size();
            for (TensorEntry e : f.entries()) {
                expected += e.numel();
            }
        }
        List<String> lines = r.out().lines().toList();
        assertEquals(tensors + 1, lines.size());
        assertEquals("parameters: " + expected, lines.getLast());
        assertTrue(r.out().contains("decoder.conv_in.weight\tF32\t[32, 4, 3, 3]"), r.out());
    }

    @Test
    void inspectAPipelineFolderPrefixesEachComponent() {
        Path folder = TinyPipelines.assemble("sdxl", work);
        Run r = run("inspect", folder.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("unet/conv_in.weight") && r.out().contains("text_encoder_2/text_projection.weight")
                && r.out().contains("vae/decoder.conv_out.bias"), r.out());
        assertTrue(r.out().lines().toList().getLast().matches("parameters: \\d+"));
    }

    @Test
    void errorsAreOneLineWithoutAStackTraceUnlessVerbose() throws IOException {
        Run missing = run("inspect", work.resolve("nothing-here").toString());
        assertEquals(1, missing.code());
        assertEquals(1, missing.err().lines().count(), missing.err());
        assertTrue(missing.err().contains("nothing-here") && missing.err().contains("no such file"), missing.err());

        Path corrupt = work.resolve("corrupt.safetensors");
        Files.write(corrupt, new byte[] {(byte) 0xFF, 0, 0, 0, 0, 0, 0, 0x7F, '{'});
        Run bad = run("inspect", corrupt.toString());
        assertEquals(1, bad.code());
        assertEquals(1, bad.err().lines().count(), bad.err());
        assertTrue(bad.err().contains("corrupt.safetensors"), bad.err());
        Run verbose = run("inspect", corrupt.toString(), "--verbose");
        assertTrue(verbose.err().contains("\tat koala4j."), verbose.err());

        Run unknown = run("frobnicate");
        assertEquals(2, unknown.code());
    }

    @Test
    void benchUnetTimesAConfigWithRandomWeights() {
        Path config = resource("golden/unet_sdxl_tiny/unet/config.json");
        Run r = run("bench", "unet", "--config", config.toString(), "--size", "64", "--batch", "2", "--iterations", "1");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("parameters (F16)") && r.out().contains("per evaluation: best"), r.out());
        Run bad = run("bench", "unet", "--config", "koala-9b");
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("koala-9b") && bad.err().contains("koala-700m"), bad.err());
        Run size = run("bench", "unet", "--size", "100");
        assertTrue(size.err().contains("--size 100"), size.err());
    }

    @Test
    void modelsMarksThoseInTheHubCache() throws IOException {
        Path home = work.resolve("hf-home");
        Path repo = home.resolve("hub/models--etri-vilab--koala-700m");
        Files.createDirectories(repo.resolve("refs"));
        Files.createDirectories(repo.resolve("snapshots/abc123"));
        Files.writeString(repo.resolve("refs/main"), "abc123");
        Run r = run(Map.of("HF_HOME", home.toString()), "models");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().lines().anyMatch(l -> l.contains("* etri-vilab/koala-700m")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.contains("  etri-vilab/koala-1b")), r.out());
        assertTrue(r.out().contains("snapshots/abc123"), r.out());
    }

    @Test
    void generateRejectsBadValuesWithOneClearLine() {
        Path folder = TinyPipelines.assemble("sdxl", work);
        String[][] cases = {
            {"--width", "100"}, {"--height", "0"}, {"--steps", "0"}, {"--scheduler", "heun"},
            {"--timestep-spacing", "sideways"}, {"--num-images", "0"}, {"--out", work.resolve("x.jpg").toString()},
        };
        String[] expected = {"multiple of 8", "multiple of 8", "at least 1", "expected one of", "expected leading",
            "at least 1", ".png"};
        for (int i = 0; i < cases.length; i++) {
            List<String> args = new ArrayList<>(List.of("generate", "--model", folder.toString(), "--prompt", "x"));
            args.addAll(List.of(cases[i]));
            Run r = run(args.toArray(String[]::new));
            assertNotEquals(0, r.code(), String.join(" ", cases[i]));
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().contains(cases[i][0]) && r.err().contains(expected[i]), r.err());
        }
    }

    @Test
    void aBrokenPipelineFolderNamesTheFileAndField() throws IOException {
        Path broken = work.resolve("broken");
        TinyPipelines.copyTree(TinyPipelines.assemble("sd15", work), broken);
        String index = Files.readString(broken.resolve("model_index.json"));
        Files.writeString(broken.resolve("model_index.json"), index.replace("StableDiffusionPipeline", "KandinskyPipeline"));
        Run r = run("generate", "--model", broken.toString(), "--prompt", "x", "--out", work.resolve("b.png").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("model_index.json") && r.err().contains("KandinskyPipeline"), r.err());

        Files.writeString(broken.resolve("model_index.json"), index);
        try (Stream<Path> files = Files.walk(broken.resolve("vae"))) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
        Run noVae = run("generate", "--model", broken.toString(), "--prompt", "x", "--out", work.resolve("b.png").toString());
        assertEquals(1, noVae.code());
        assertTrue(noVae.err().contains("vae") && noVae.err().contains("missing"), noVae.err());
    }

    private static Image generate(Path out, String... extra) {
        Path folder = TinyPipelines.assemble("sdxl", work);
        List<String> args = new ArrayList<>(List.of("generate", "--model", folder.toString(), "--steps", "2",
                "--guidance", "5", "--seed", "3", "--out", out.toString()));
        args.addAll(List.of(extra));
        Run r = run(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        try {
            return Files.exists(out) ? Images.read(out) : null;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void batchesOfPromptsAndImagesPerPromptDrawOneLatentBatch() throws IOException {
        Image single = generate(work.resolve("single.png"), "--prompt", "a red koala");
        generate(work.resolve("batch.png"), "--prompt", "a red koala", "--prompt", "a blue koala", "--num-images", "2");
        for (int i = 1; i <= 4; i++) {
            assertTrue(Files.exists(work.resolve("batch-" + i + ".png")), "batch-" + i);
        }
        // torch draws the [4, C, h, w] latents in one call: the first image's noise equals the single run's
        Image first = Images.read(work.resolve("batch-1.png"));
        int maxDiff = 0;
        for (int i = 0; i < single.pixels().length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs((single.pixels()[i] & 0xFF) - (first.pixels()[i] & 0xFF)));
        }
        assertTrue(maxDiff <= 1, "first image of the batch differs from the single run by " + maxDiff);
        assertEquals("a blue koala", Png.readText(work.resolve("batch-3.png")).get("prompt"));
        assertFalse(java.util.Arrays.equals(first.pixels(), Images.read(work.resolve("batch-2.png")).pixels()));
    }

    @Test
    void imageToImageIsDeterministicAndKeepsTheSize() throws IOException {
        Path init = resource("golden/e2e_images/sdxl/run0.png");
        Image a = generate(work.resolve("i2i-a.png"), "--prompt", "a koala", "--init-image", init.toString(),
                "--strength", "0.5");
        Image b = generate(work.resolve("i2i-b.png"), "--prompt", "a koala", "--init-image", init.toString(),
                "--strength", "0.5");
        assertEquals(64, a.width());
        assertArrayEquals(a.pixels(), b.pixels());
        Run bad = run("generate", "--model", TinyPipelines.assemble("sdxl", work).toString(), "--prompt", "x",
                "--init-image", init.toString(), "--strength", "0", "--out", work.resolve("i2i-c.png").toString());
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("strength"), bad.err());
    }

    @Test
    @Timeout(120)
    void aHubIdIsDownloadedFromTheEndpointOnlyWithTheFilesThePipelineNeeds() throws IOException {
        Path folder = TinyPipelines.assemble("sd15", work);
        try (FakeHub hub = new FakeHub()) {
            try (Stream<Path> files = Files.walk(folder)) {
                for (Path p : files.filter(Files::isRegularFile).toList()) {
                    String rel = folder.relativize(p).toString().replace('\\', '/');
                    hub.add(rel, Files.readAllBytes(p), rel.endsWith(".safetensors"));
                }
            }
            hub.add("unet/diffusion_pytorch_model.fp16.safetensors", new byte[1000], true);
            hub.add("README.md", "# not needed".getBytes(), false);
            Map<String, String> env = new HashMap<>();
            env.put("HF_HOME", work.resolve("hf-download").toString());
            env.put("HF_ENDPOINT", hub.endpoint().toString());
            Path out = work.resolve("hub.png");
            Run r = run(env, "generate", "--model", "koala-test/tiny-pipe", "--prompt", "a cat", "--steps", "2",
                    "--seed", "5", "--out", out.toString());
            assertEquals(0, r.code(), r.err());
            assertTrue(Files.exists(out));
            List<String> fetched = hub.requests.stream().map(FakeHub.Request::path).toList();
            assertTrue(fetched.stream().noneMatch(p -> p.contains("fp16") || p.contains("README")), fetched.toString());
            assertTrue(fetched.stream().anyMatch(p -> p.contains("unet/diffusion_pytorch_model.safetensors")), fetched.toString());

            Map<String, String> offline = new HashMap<>(env);
            offline.put("HF_HUB_OFFLINE", "1");
            int before = hub.requests.size();
            Run again = run(offline, "generate", "--model", "koala-test/tiny-pipe", "--prompt", "a cat", "--steps", "2",
                    "--seed", "5", "--out", work.resolve("hub2.png").toString());
            assertEquals(0, again.code(), again.err());
            assertEquals(before, hub.requests.size(), "offline run made no request");
            assertArrayEquals(Images.read(out).pixels(), Images.read(work.resolve("hub2.png")).pixels());
        }
    }
}
