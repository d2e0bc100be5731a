package koala4j.pipelines;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import koala4j.io.hub.HubClient;
import koala4j.io.hub.ModelLocator;
import koala4j.io.torchbin.WeightFiles;

/** The files of a diffusers pipeline repo that loading needs, as hub allow-patterns (no other variants). */
public final class PipelineFiles {

    private PipelineFiles() {
    }

    public static List<String> patterns(String variant) {
        List<String> p = new ArrayList<>(List.of("model_index.json", "*/config.json", "scheduler/scheduler_config.json",
                "tokenizer/*", "tokenizer_2/*"));
        String v = variant == null ? "" : "." + variant;
        for (String base : List.of("diffusion_pytorch_model", "model")) {
            p.add("*/" + base + v + ".safetensors");
            p.add("*/" + base + ".safetensors.index" + v + ".json");
            p.add("*/" + base + v + ".safetensors.index.json");
            p.add("*/" + base + v + "-*-of-*.safetensors");
            p.add("*/" + base + "-*-of-*" + v + ".safetensors");
        }
        return List.copyOf(p);
    }

    /**
     * The second step of fetching a model: after {@code resolved = ModelLocator.resolve(model, hub, safetensors
     * patterns)}, each model folder in it (itself when it has config.json, and every subfolder with one) that got no
     * safetensors weights for {@code variant} gets its torch.save weights fetched instead ({@code pytorch_model.bin},
     * shards and index, {@code diffusion_pytorch_model.bin}; {@link WeightFiles#torchPatterns}). This is what
     * transformers and diffusers do: safetensors when the repo has them, .bin only otherwise, never both formats.
     * A local folder is returned as it is.
     */
    public static Path withTorchWeights(String model, HubClient hub, Path resolved, String variant) {
        List<String> fallback = torchFallbackPatterns(resolved, variant);
        return fallback.isEmpty() ? resolved : ModelLocator.resolve(model, hub, fallback);
    }

    /** Hub patterns for the .bin weights of every model folder under {@code folder} lacking safetensors weights. */
    static List<String> torchFallbackPatterns(Path folder, String variant) {
        List<Path> models = new ArrayList<>();
        if (Files.isRegularFile(folder.resolve("config.json"))) {
            models.add(folder);
        }
        try (Stream<Path> children = Files.list(folder)) {
            children.filter(p -> Files.isRegularFile(p.resolve("config.json"))).sorted().forEach(models::add);
        } catch (IOException e) {
            return List.of();   // nothing to add to; loading reports what is missing
        }
        List<String> patterns = new ArrayList<>();
        for (Path m : models) {
            if (!WeightFiles.hasSafetensors(m, variant)) {
                String prefix = m.equals(folder) ? "" : m.getFileName() + "/";
                WeightFiles.torchPatterns(variant).forEach(p -> patterns.add(prefix + p));
            }
        }
        return List.copyOf(patterns);
    }

    /**
     * Bytes of the weights a folder's loaders read, in it and its subfolders (a diffusers pipeline's components): per
     * folder its safetensors files, or, where it has none, its PyTorch .bin files (not training_args.bin), as
     * {@link WeightFiles#open} prefers them.
     *
     * @throws java.io.UncheckedIOException naming the folder when it cannot be listed
     */
    public static long checkpointBytes(Path folder) {
        try (Stream<Path> dirs = Files.walk(folder)) {
            long sum = 0;
            for (Path dir : dirs.filter(Files::isDirectory).toList()) {
                long safetensors = 0;
                long torch = 0;
                try (Stream<Path> files = Files.list(dir)) {
                    for (Path f : files.filter(Files::isRegularFile).toList()) {
                        String name = f.getFileName().toString();
                        if (name.endsWith(".safetensors")) {
                            safetensors += Files.size(f);
                        } else if (name.endsWith(".bin") && !name.equals("training_args.bin")) {
                            torch += Files.size(f);
                        }
                    }
                }
                sum += safetensors > 0 ? safetensors : torch;
            }
            return sum;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(folder + ": cannot list its weight files (" + e.getMessage() + ")",
                    e);
        }
    }
}
