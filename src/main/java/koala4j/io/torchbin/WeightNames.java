package koala4j.io.torchbin;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * The weight file names transformers ({@code modeling_utils}: {@code SAFE_WEIGHTS_NAME}, {@code WEIGHTS_NAME} and
 * their {@code .index.json}) and diffusers ({@code ModelMixin.from_pretrained}, {@code _fetch_index_file}) look for
 * in a model folder, in their order, for both formats. For safetensors these are exactly
 * {@code ShardedCheckpoint}'s names (a test holds the two lists together); for torch.save the same scheme with
 * {@code pytorch_model} / {@code diffusion_pytorch_model} and {@code .bin}.
 */
final class WeightNames {
    static final String SAFETENSORS = ".safetensors";
    static final String BIN = ".bin";

    private WeightNames() {}

    /** Names for one library, first match wins; {@code variant} null or e.g. "fp16" (inserted by {@code _add_variant}). */
    static List<String> candidates(String stem, String extension, String variant, boolean diffusers) {
        if (variant == null) {
            String single = stem + extension;
            String index = stem + extension + ".index.json";
            return diffusers ? List.of(index, single) : List.of(single, index);
        }
        String single = stem + "." + variant + extension;
        String index = stem + extension + ".index." + variant + ".json";
        String nonstandard = stem + "." + variant + extension + ".index.json";
        return diffusers
                ? List.of(index, stem + extension + "." + variant + ".index.json", single, nonstandard)
                : List.of(single, index, nonstandard);
    }

    static List<String> transformers(String extension, String variant) {
        return candidates(extension.equals(BIN) ? "pytorch_model" : "model", extension, variant, false);
    }

    static List<String> diffusers(String extension, String variant) {
        return candidates("diffusion_pytorch_model", extension, variant, true);
    }

    /** Every name of one format, transformers' first. */
    static List<String> all(String extension, String variant) {
        List<String> names = new ArrayList<>(transformers(extension, variant));
        names.addAll(diffusers(extension, variant));
        return names;
    }

    static Path firstExisting(Path folder, List<String> names) {
        for (String name : names) {
            Path p = folder.resolve(name);
            if (Files.isRegularFile(p)) return p;
        }
        return null;
    }

    /** Hub globs (relative to a model folder) for the torch.save weights of a variant, shards included. */
    static List<String> torchPatterns(String variant) {
        List<String> patterns = new ArrayList<>(all(BIN, variant));
        String v = variant == null ? "" : "." + variant;
        for (String stem : List.of("pytorch_model", "diffusion_pytorch_model")) {
            patterns.add(stem + v + "-*-of-*" + BIN);           // transformers: pytorch_model.fp16-00001-of-00002.bin
            if (variant != null) patterns.add(stem + "-*-of-*" + v + BIN);
        }
        return List.copyOf(patterns);
    }

    /** The weight files a folder has (either format), for error messages. */
    static String weightFilesIn(Path folder) {
        Set<String> found = new TreeSet<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(folder)) {
            for (Path p : files) {
                String name = p.getFileName().toString();
                if (name.endsWith(SAFETENSORS) || name.endsWith(BIN)
                        || (name.endsWith(".json") && (name.contains(SAFETENSORS + ".") || name.contains(BIN + ".")))) {
                    found.add(name);
                }
            }
        } catch (IOException e) {
            return "(unlisted: " + e + ")";
        }
        if (found.isEmpty()) return "no .safetensors or .bin files";
        List<String> shown = new ArrayList<>(found).subList(0, Math.min(found.size(), 10));
        return String.join(", ", shown) + (found.size() > 10 ? ", … (" + found.size() + " in all)" : "");
    }
}
