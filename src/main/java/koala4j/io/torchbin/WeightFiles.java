package koala4j.io.torchbin;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import koala4j.io.safetensors.ShardedCheckpoint;
import koala4j.io.safetensors.TensorEntry;

/**
 * The weights of one model, whichever format they were published in: safetensors ({@link ShardedCheckpoint}) or
 * torch.save ({@link TorchCheckpoint}). Names, tensors and files; closing invalidates every tensor's data.
 */
public interface WeightFiles extends AutoCloseable {

    /** Every tensor name, sorted. */
    Set<String> names();

    /** The tensor, or empty when absent. */
    Optional<TensorEntry> get(String name);

    /** The tensor, or an error naming the checkpoint and the missing tensor. */
    TensorEntry require(String name);

    /** The files the tensors come from (one when not sharded). */
    List<Path> files();

    @Override
    void close();

    /**
     * Opens a folder's weights in transformers' and diffusers' order: safetensors first (any of
     * {@code ShardedCheckpoint}'s names for the variant: then exactly {@link ShardedCheckpoint#open}), else torch.save
     * ({@code pytorch_model.bin}, its index, or {@code diffusion_pytorch_model.bin}: {@link TorchCheckpoint#open}),
     * never both. A file is opened by what it holds: a zip or legacy pickle as torch.save, anything else as
     * safetensors; an index {@code .json} by its name ({@code .bin.} in it means torch.save). When a folder has
     * neither format, the error lists every name looked for.
     */
    static WeightFiles open(Path fileOrFolder, String variant) {
        TorchCheckpoint.checkVariant(variant);
        if (Files.isDirectory(fileOrFolder)) {
            if (hasSafetensors(fileOrFolder, variant)) {
                return of(ShardedCheckpoint.open(fileOrFolder, variant));
            }
            Path torch = TorchCheckpoint.resolve(fileOrFolder, variant);
            if (torch != null) {
                return TorchCheckpoint.open(torch);
            }
            throw new TorchbinException(fileOrFolder, null, "no safetensors checkpoint%s found; looked for %s; nor a torch.save one: looked for %s; the folder has %s"
                    .formatted(variant == null ? "" : " for variant \"" + variant + "\"",
                            String.join(", ", WeightNames.all(WeightNames.SAFETENSORS, variant)),
                            String.join(", ", WeightNames.all(WeightNames.BIN, variant)), WeightNames.weightFilesIn(fileOrFolder)));
        }
        String name = fileOrFolder.getFileName() == null ? "" : fileOrFolder.getFileName().toString();
        boolean torch = name.endsWith(".json") ? name.contains(WeightNames.BIN + ".") : looksLikeTorchSave(fileOrFolder);
        return torch ? TorchCheckpoint.open(fileOrFolder, variant) : of(ShardedCheckpoint.open(fileOrFolder, variant));
    }

    /** Whether {@link #open} would read this folder's weights from safetensors (any name it looks for exists). */
    static boolean hasSafetensors(Path folder, String variant) {
        return WeightNames.firstExisting(folder, WeightNames.all(WeightNames.SAFETENSORS, variant)) != null;
    }

    /**
     * Hub allow-patterns (relative to a model folder) for its torch.save weights of {@code variant}: the names
     * {@link TorchCheckpoint} looks for and the shards an index names ({@code pytorch_model-*-of-*.bin}).
     */
    static List<String> torchPatterns(String variant) {
        TorchCheckpoint.checkVariant(variant);
        return WeightNames.torchPatterns(variant);
    }

    /** A safetensors checkpoint seen through this interface; closing it closes the checkpoint. */
    static WeightFiles of(ShardedCheckpoint safetensors) {
        return new WeightFiles() {
            @Override
            public Set<String> names() {
                return safetensors.names();
            }

            @Override
            public Optional<TensorEntry> get(String name) {
                return safetensors.get(name);
            }

            @Override
            public TensorEntry require(String name) {
                return safetensors.require(name);
            }

            @Override
            public List<Path> files() {
                return safetensors.files();
            }

            @Override
            public void close() {
                safetensors.close();
            }

            @Override
            public String toString() {
                return safetensors.toString();
            }
        };
    }

    /** A zip archive ("PK") or a legacy bare pickle (0x80 PROTO): torch.save's two formats. */
    private static boolean looksLikeTorchSave(Path file) {
        byte[] head = new byte[2];
        try (InputStream in = Files.newInputStream(file)) {
            if (in.readNBytes(head, 0, 2) < 2) return false;
        } catch (IOException e) {
            return false;   // let the safetensors reader report the problem
        }
        return (head[0] == 'P' && head[1] == 'K') || ((head[0] & 0xFF) == 0x80 && head[1] >= 2 && head[1] <= 5);
    }
}
