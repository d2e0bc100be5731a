package koala4j.io.torchbin;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.io.safetensors.ShardedCheckpoint;
import koala4j.io.safetensors.TensorEntry;

/**
 * The weights of one model saved by {@code torch.save}: a single {@code pytorch_model.bin} /
 * {@code diffusion_pytorch_model.bin}, or shards listed by {@code pytorch_model.bin.index.json}
 * ({@code {"metadata": {...}, "weight_map": {"<tensor>": "<shard file>"}}}, as transformers' {@code save_pretrained}
 * writes them: {@code pytorch_model-00001-of-00003.bin}, ...). Each file is read by {@link TorchFile}: mapped, the
 * pickle read through an allow-list (no code runs), contiguous tensors handed out as zero-copy views.
 *
 * <p>Folder rules, with {@code v} the variant: transformers {@code pytorch_model[.v].bin}, else
 * {@code pytorch_model.bin.index[.v].json}; diffusers {@code diffusion_pytorch_model.bin.index[.v].json}, else
 * {@code diffusion_pytorch_model[.v].bin}; the same order and the same variant rules as {@code ShardedCheckpoint}
 * has for safetensors (see {@link WeightFiles#open} for choosing between the two formats). A folder holding both a
 * transformers and a diffusers checkpoint is ambiguous and refused.
 *
 * <p>Index checks: {@code weight_map} is an object of strings; each shard named is a file in the index's own folder
 * (no {@code ../}); every listed tensor is in the shard the index names; no tensor is in two shards. Tensors a shard
 * holds beyond the index are served too, as transformers loads whole shards.
 *
 * <p>Ownership: closing this closes every file, invalidating all tensors' data. Thread-safety: {@link #get} may be
 * called from several threads.
 */
public final class TorchCheckpoint implements WeightFiles {
    private final Path source;
    private final List<TorchFile> shards;
    private final Map<String, TorchFile> owner;   // sorted by name

    private TorchCheckpoint(Path source, List<TorchFile> shards, Map<String, TorchFile> owner) {
        this.source = source;
        this.shards = List.copyOf(shards);
        this.owner = Collections.unmodifiableMap(owner);
    }

    /** Opens a torch.save file, a {@code .bin.index.json} or a folder (resolved by the rules above). */
    public static TorchCheckpoint open(Path fileOrFolder) {
        return open(fileOrFolder, null);
    }

    /** As {@link #open(Path)}; {@code variant} ({@code null} or e.g. {@code "fp16"}) only affects folders. */
    public static TorchCheckpoint open(Path fileOrFolder, String variant) {
        Objects.requireNonNull(fileOrFolder, "fileOrFolder");
        checkVariant(variant);
        if (Files.isDirectory(fileOrFolder)) {
            Path found = resolve(fileOrFolder, variant);
            if (found == null) {
                throw new TorchbinException(fileOrFolder, null, "no torch.save checkpoint%s found; looked for %s; the folder has %s"
                        .formatted(variant == null ? "" : " for variant \"" + variant + "\"",
                                String.join(", ", WeightNames.all(WeightNames.BIN, variant)), WeightNames.weightFilesIn(fileOrFolder)));
            }
            return openFile(found);
        }
        if (!Files.isRegularFile(fileOrFolder)) {
            throw new TorchbinException(fileOrFolder, null, "no such file or folder");
        }
        return openFile(fileOrFolder);
    }

    /** The torch.save weights file or index of a folder by the rules above, or {@code null} when there is none. */
    static Path resolve(Path folder, String variant) {
        Path transformers = WeightNames.firstExisting(folder, WeightNames.transformers(WeightNames.BIN, variant));
        Path diffusers = WeightNames.firstExisting(folder, WeightNames.diffusers(WeightNames.BIN, variant));
        if (transformers != null && diffusers != null) {
            throw new TorchbinException(folder, null, "holds both %s and %s, expected one checkpoint per folder (open the file itself)"
                    .formatted(transformers.getFileName(), diffusers.getFileName()));
        }
        return transformers != null ? transformers : diffusers;
    }

    static void checkVariant(String variant) {
        if (variant != null && (variant.isEmpty() || variant.contains("/") || variant.contains("\\"))) {
            throw new IllegalArgumentException("variant \"" + variant + "\", expected null or a name such as \"fp16\"");
        }
    }

    /** Every tensor name, sorted. */
    @Override
    public Set<String> names() {
        return owner.keySet();
    }

    /**
     * The tensor, or empty when absent. A dense copy is made on first access for non-contiguous and converted
     * tensors; a complex or quantized tensor is refused with a {@link TorchbinException}.
     */
    @Override
    public Optional<TensorEntry> get(String name) {
        TorchFile file = owner.get(name);
        return file == null ? Optional.empty() : file.get(name);
    }

    /** The tensor, or an error naming the checkpoint and the missing tensor. */
    @Override
    public TensorEntry require(String name) {
        return get(name).orElseThrow(() -> new TorchbinException(source, name, "not in this checkpoint, expected one of its %d tensors (%s)"
                .formatted(owner.size(), shards.size() == 1 ? shards.getFirst().file().getFileName() : shards.size() + " shards")));
    }

    /** The .bin files, in the order the index first names them (one file when not sharded). */
    @Override
    public List<Path> files() {
        return shards.stream().map(TorchFile::file).toList();
    }

    /** Closes every file; all tensors' data becomes invalid. */
    @Override
    public void close() {
        ShardedCheckpoint.closeEach(shards, TorchFile::close);
    }

    @Override
    public String toString() {
        return "TorchCheckpoint[" + source + ", " + shards.size() + " file(s), " + owner.size() + " tensors]";
    }

    // ------------------------------------------------------------------------------------------------ opening

    private static TorchCheckpoint openFile(Path file) {
        if (file.getFileName().toString().endsWith(".json")) return openIndex(file);
        TorchFile single = TorchFile.open(file);
        Map<String, TorchFile> owner = new LinkedHashMap<>();
        for (String name : new TreeSet<>(single.names())) owner.put(name, single);
        return new TorchCheckpoint(file, List.of(single), owner);
    }

    private static TorchCheckpoint openIndex(Path index) {
        Map<String, String> weightMap;
        try {
            weightMap = Json.read(index).stringMap("weight_map");
        } catch (JsonException e) {
            throw new TorchbinException(index, null, e.detail(), e);
        }
        Map<String, Path> shardPaths = ShardedCheckpoint.shardPaths(index, weightMap, TorchbinException::new);
        List<TorchFile> shards = new ArrayList<>();
        boolean ok = false;
        try {
            Map<String, TorchFile> byShardName = new LinkedHashMap<>();
            Map<String, TorchFile> owner = new LinkedHashMap<>();
            for (Map.Entry<String, Path> e : shardPaths.entrySet()) {
                TorchFile shard = TorchFile.open(e.getValue());
                shards.add(shard);
                byShardName.put(e.getKey(), shard);
                for (String name : shard.names()) {
                    TorchFile previous = owner.putIfAbsent(name, shard);
                    if (previous != null) {
                        throw new TorchbinException(index, name, "is in both %s and %s, expected each tensor in one shard"
                                .formatted(previous.file().getFileName(), shard.file().getFileName()));
                    }
                }
            }
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                if (!byShardName.get(e.getValue()).contains(e.getKey())) {
                    TorchFile actual = owner.get(e.getKey());
                    throw new TorchbinException(index, e.getKey(), "listed in shard %s but absent from it%s"
                            .formatted(e.getValue(), actual == null ? ", expected it there"
                                    : " (it is in " + actual.file().getFileName() + "), expected the index to name its shard"));
                }
            }
            Map<String, TorchFile> sorted = new LinkedHashMap<>();
            new TreeSet<>(owner.keySet()).forEach(name -> sorted.put(name, owner.get(name)));
            TorchCheckpoint opened = new TorchCheckpoint(index, shards, sorted);
            ok = true;
            return opened;
        } finally {
            if (!ok) {
                for (TorchFile shard : shards) shard.close();
            }
        }
    }
}
