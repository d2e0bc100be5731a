package koala4j.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

import koala4j.backend.Backend;
import koala4j.backend.Backends;
import koala4j.io.json.Json;
import koala4j.models.unet.UNet2DConditionModel;
import koala4j.models.unet.UNetConfig;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * One UNet evaluation of a real-size config with random weights: the time a denoising step costs (a step with
 * classifier-free guidance is batch 2).
 */
@Command(mixinStandardHelpOptions = true, name = "unet", description = "Time UNet evaluations of a real-size config (random weights).")
final class BenchUnetCommand implements Callable<Integer> {

    @Option(names = "--config", defaultValue = "koala-700m",
            description = "A bundled config (koala-700m, koala-1b, sdxl-base, ssd-1b, segmind-vega, sd15, sd21, "
                    + "bk-sdm-base, bk-sdm-small, bk-sdm-tiny) or a path to a UNet config.json.")
    String config;

    @Option(names = "--size", defaultValue = "512", description = "Image size in pixels (latent = size / 8).")
    int size;

    @Option(names = "--batch", defaultValue = "2", description = "Batch (2 = one guided step).")
    int batch;

    @Option(names = "--iterations", defaultValue = "2", description = "Timed evaluations after one warm-up.")
    int iterations;

    @Option(names = "--dtype", defaultValue = "f16", description = "Weight storage: f16, bf16 or f32.")
    String dtype;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        if (size < 64 || size % 64 != 0) {
            throw new IllegalArgumentException("--size " + size + ": expected a multiple of 64, at least 64");
        }
        if (batch < 1 || iterations < 1) {
            throw new IllegalArgumentException("--batch and --iterations must be at least 1");
        }
        DType weights = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            case "f32" -> DType.F32;
            default -> throw new IllegalArgumentException("--dtype " + dtype + ": expected f16, bf16 or f32");
        };
        Json json = loadConfig(config);
        UNetConfig cfg = UNetConfig.from(json);
        Backend backend = Backends.select("auto");
        Ops ops = backend.ops();
        UNet2DConditionModel unet = new UNet2DConditionModel(cfg);
        unet.initRandom(ops, weights, 1, 0.02f);
        int latent = size / 8;
        int context = cfg.crossAttentionDim().getFirst();
        Tensor sample = random(ops, new int[] {batch, cfg.inChannels(), latent, latent}, 1f, 7);
        Tensor t = ops.fromArray(new float[] {500f}, 1);
        Tensor text = random(ops, new int[] {batch, 77, context}, 1f, 8);
        UNet2DConditionModel.AddedConditions added = null;
        if (cfg.textTimeEmbedding()) {
            int pooled = cfg.projectionClassEmbeddingsInputDim() - 6 * cfg.additionTimeEmbedDim();
            float[] ids = new float[batch * 6];
            for (int b = 0; b < batch; b++) {
                System.arraycopy(new float[] {size, size, 0, 0, size, size}, 0, ids, b * 6, 6);
            }
            added = new UNet2DConditionModel.AddedConditions(random(ops, new int[] {batch, pooled}, 1f, 9),
                    ops.fromArray(ids, batch, 6));
        }
        out.printf(Locale.ROOT, "unet %s: %,d parameters (%s), %dx%d px (latent %d), batch %d, backend %s (%s)%n",
                config, unet.parameterCount(), weights, size, size, latent, batch, backend.name(), backend.reason());
        unet.forward(sample, t, text, added, null);
        double best = Double.MAX_VALUE;
        double total = 0;
        for (int i = 0; i < iterations; i++) {
            long start = System.nanoTime();
            unet.forward(sample, t, text, added, null);
            double s = (System.nanoTime() - start) / 1e9;
            best = Math.min(best, s);
            total += s;
        }
        Runtime rt = Runtime.getRuntime();
        out.printf(Locale.ROOT, "per evaluation: best %.2f s, mean %.2f s; heap in use %.2f GiB%n", best,
                total / iterations, (rt.totalMemory() - rt.freeMemory()) / (1024.0 * 1024 * 1024));
        return 0;
    }

    private static Json loadConfig(String name) throws IOException {
        Path path = Path.of(name);
        if (Files.isRegularFile(path)) {
            return Json.read(path);
        }
        try (InputStream in = BenchUnetCommand.class.getResourceAsStream("/koala4j/configs/" + name + ".unet.json")) {
            if (in == null) {
                throw new IllegalArgumentException("--config " + name + ": not a bundled config (koala-700m, koala-1b, "
                        + "sdxl-base, ssd-1b, segmind-vega, sd15, sd21, bk-sdm-base, bk-sdm-small, bk-sdm-tiny) "
                        + "nor a file");
            }
            return Json.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), name + ".unet.json");
        }
    }

    private static Tensor random(Ops ops, int[] shape, float scale, long seed) {
        int n = Math.toIntExact(Tensor.numel(shape));
        float[] v = new float[n];
        long state = seed;
        for (int i = 0; i < n; i++) {
            state = state * 6364136223846793005L + 1442695040888963407L;
            v[i] = ((state >>> 40) / (float) (1L << 24) - 0.5f) * 2 * scale;
        }
        return ops.fromArray(v, shape);
    }
}
