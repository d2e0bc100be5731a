package koala4j.io.safetensors;

import java.io.IOException;
import java.nio.file.DirectoryStream;
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

/**
 * The weights of one model: a single safetensors file, or several shards listed by an index file
 * ({@code {"metadata": {...}, "weight_map": {"<tensor>": "<shard file>"}}}), found in a folder by the names
 * transformers ({@code modeling_utils._get_resolved_checkpoint_files}) and diffusers
 * ({@code ModelMixin.from_pretrained}, {@code _fetch_index_file}) look for.
 *
 * <p>Folder rules, with {@code v} the variant ({@code _add_variant} inserts it before the last extension):
 * <ul>
 *   <li>transformers: {@code model[.v].safetensors}, else {@code model.safetensors.index[.v].json}
 *       (the single file wins, as in transformers);</li>
 *   <li>diffusers: {@code diffusion_pytorch_model.safetensors.index[.v].json}, else (variant only) the deprecated
 *       {@code diffusion_pytorch_model.safetensors.v.index.json} that diffusers still reads, else
 *       {@code diffusion_pytorch_model[.v].safetensors} (the index wins, as in diffusers);</li>
 *   <li>with a variant, last of all {@code <stem>.v.safetensors.index.json}: neither library looks for it, but
 *       re-sharding tools publish it (e.g. some SDXL fine-tunes on the hub).</li>
 * </ul>
 * A variant is never silently replaced by the full-precision files: if none of its names exists, the error lists
 * every name looked for and the safetensors files the folder does have. A folder holding both a transformers and a
 * diffusers checkpoint is ambiguous and refused.
 *
 * <p>Validated on open: the index is JSON with an object {@code weight_map} of strings; every shard it names
 * exists inside the index's folder; every listed tensor is in the shard the index names; no tensor is in two shards.
 * Every shard is opened (and fully validated) by {@link SafetensorsFile#open}. Tensors a shard holds beyond the
 * index are served too, as transformers loads whole shards.
 *
 * <p>Ownership: closing this closes all shards, invalidating their tensors' data. Thread-safety: immutable after
 * open.
 */
public final class ShardedCheckpoint implements AutoCloseable {
    private static final String TRANSFORMERS = "model";
    private static final String DIFFUSERS = "diffusion_pytorch_model";

    private final Path source;
    private final List<SafetensorsFile> shards;
    private final Map<String, TensorEntry> tensors;

    private ShardedCheckpoint(Path source, List<SafetensorsFile> shards, Map<String, TensorEntry> tensors) {
        this.source = source;
        this.shards = List.copyOf(shards);
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    /**
     * Opens a {@code .safetensors} file, an index {@code .json} file, or a folder (resolved by the rules above).
     * {@code variant} ({@code null} or e.g. {@code "fp16"}) only affects folders.
     */
    public static ShardedCheckpoint open(Path fileOrFolder, String variant) {
        Objects.requireNonNull(fileOrFolder, "fileOrFolder");
        if (variant != null && (variant.isEmpty() || variant.contains("/") || variant.contains("\\"))) {
            throw new IllegalArgumentException("variant \"" + variant + "\", expected null or a name such as \"fp16\"");
        }
        if (Files.isDirectory(fileOrFolder)) {
            return openFile(resolve(fileOrFolder, variant));
        }
        if (!Files.isRegularFile(fileOrFolder)) {
            throw new SafetensorsException(fileOrFolder, null, "no such file or folder");
        }
        return openFile(fileOrFolder);
    }

    /** Every tensor name, sorted. */
    public Set<String> names() {
        return tensors.keySet();
    }

    public Optional<TensorEntry> get(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    /** The tensor, or an error naming the checkpoint and the missing tensor. */
    public TensorEntry require(String name) {
        TensorEntry e = tensors.get(name);
        if (e == null) {
            throw new SafetensorsException(source, name, "not in this checkpoint, expected one of its %d tensors (%s)"
                    .formatted(tensors.size(), files().size() == 1 ? files().getFirst().getFileName()
                            : files().size() + " shards"));
        }
        return e;
    }

    /** The safetensors files, in the order the index first names them (one file when not sharded). */
    public List<Path> files() {
        return shards.stream().map(SafetensorsFile::file).toList();
    }

    /** Closes every shard; all tensors' data becomes invalid. */
    @Override
    public void close() {
        closeEach(shards, SafetensorsFile::close);
    }

    /** Closes every one of {@code files}, even when some fail; then throws the first failure, if any. */
    public static <T> void closeEach(List<T> files, java.util.function.Consumer<T> close) {
        RuntimeException first = null;
        for (T file : files) {
            try {
                close.accept(file);
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }

    /** Makes the exception a bad shard name raises, given the index file, the tensor key and what is wrong. */
    @FunctionalInterface
    public interface ShardError {
        RuntimeException of(Path index, String tensor, String detail);
    }

    /**
     * The shard files an index's {@code weight_map} (tensor -> file name) names, each once in first-seen order,
     * resolved in the index's folder. A name that leaves that folder (a hostile index: "../../etc/passwd") or a
     * file that does not exist is {@code error}'s exception, naming the index and the tensor.
     */
    public static Map<String, Path> shardPaths(Path index, Map<String, String> weightMap, ShardError error) {
        Path folder = index.toAbsolutePath().getParent().normalize();
        Map<String, Path> shardPaths = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : weightMap.entrySet()) {
            String shardName = e.getValue();
            if (shardPaths.containsKey(shardName)) continue;
            Path shard = folder.resolve(shardName).normalize();
            if (shard.getParent() == null || !shard.getParent().equals(folder)) {
                throw error.of(index, e.getKey(), "shard %s, expected a file name in the index's folder"
                        .formatted(SafetensorsException.quoted(shardName)));
            }
            if (!Files.isRegularFile(shard)) {
                throw error.of(index, e.getKey(), "shard %s does not exist, expected it next to the index"
                        .formatted(SafetensorsException.quoted(shardName)));
            }
            shardPaths.put(shardName, shard);
        }
        return shardPaths;
    }

    @Override
    public String toString() {
        return "ShardedCheckpoint[" + source + ", " + shards.size() + " file(s), " + tensors.size() + " tensors]";
    }

    // ------------------------------------------------------------------------------------------------ resolving

    /** Names looked for in a folder, in order, per library; see the class comment. */
    static List<String> candidates(String stem, String variant) {
        boolean diffusers = stem.equals(DIFFUSERS);
        if (variant == null) {
            String single = stem + ".safetensors";
            String index = stem + ".safetensors.index.json";
            return diffusers ? List.of(index, single) : List.of(single, index);
        }
        String single = stem + "." + variant + ".safetensors";
        String index = stem + ".safetensors.index." + variant + ".json";
        String nonstandard = stem + "." + variant + ".safetensors.index.json";
        return diffusers
                ? List.of(index, stem + ".safetensors." + variant + ".index.json", single, nonstandard)
                : List.of(single, index, nonstandard);
    }

    private static Path resolve(Path folder, String variant) {
        Path transformers = firstExisting(folder, candidates(TRANSFORMERS, variant));
        Path diffusers = firstExisting(folder, candidates(DIFFUSERS, variant));
        if (transformers != null && diffusers != null) {
            throw new SafetensorsException(folder, null, "holds both %s and %s, expected one checkpoint per folder (open the file itself)"
                    .formatted(transformers.getFileName(), diffusers.getFileName()));
        }
        if (transformers != null) return transformers;
        if (diffusers != null) return diffusers;
        List<String> looked = new ArrayList<>(candidates(TRANSFORMERS, variant));
        looked.addAll(candidates(DIFFUSERS, variant));
        throw new SafetensorsException(folder, null, "no safetensors checkpoint%s found; looked for %s; the folder has %s"
                .formatted(variant == null ? "" : " for variant \"" + variant + "\"", String.join(", ", looked),
                        safetensorsFilesIn(folder)));
    }

    private static Path firstExisting(Path folder, List<String> names) {
        for (String name : names) {
            Path p = folder.resolve(name);
            if (Files.isRegularFile(p)) return p;
        }
        return null;
    }

    private static String safetensorsFilesIn(Path folder) {
        Set<String> found = new TreeSet<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(folder)) {
            for (Path p : files) {
                String name = p.getFileName().toString();
                if (name.endsWith(".safetensors") || (name.contains(".safetensors.") && name.endsWith(".json"))) found.add(name);
            }
        } catch (IOException e) {
            return "(unlisted: " + e + ")";
        }
        if (found.isEmpty()) return "no .safetensors files";
        List<String> shown = new ArrayList<>(found).subList(0, Math.min(found.size(), 10));
        return String.join(", ", shown) + (found.size() > 10 ? ", … (" + found.size() + " in all)" : "");
    }

    // ------------------------------------------------------------------------------------------------ opening

    private static ShardedCheckpoint openFile(Path file) {
        if (file.getFileName().toString().endsWith(".json")) return openIndex(file);
        SafetensorsFile single = SafetensorsFile.open(file);
        Map<String, TensorEntry> tensors = new LinkedHashMap<>();
        for (TensorEntry e : single.entries()) tensors.put(e.name(), e);
        return new ShardedCheckpoint(file, List.of(single), sorted(tensors));
    }

    private static ShardedCheckpoint openIndex(Path index) {
        Map<String, String> weightMap;
        try {
            Json json = Json.read(index);
            weightMap = json.stringMap("weight_map");
        } catch (JsonException e) {
            throw new SafetensorsException(index, null, e.detail(), e);
        }
        Map<String, Path> shardPaths = shardPaths(index, weightMap, SafetensorsException::new);

        List<SafetensorsFile> shards = new ArrayList<>();
        boolean ok = false;
        try {
            Map<String, SafetensorsFile> byShardName = new LinkedHashMap<>();
            Map<String, TensorEntry> tensors = new LinkedHashMap<>();
            Map<String, Path> owner = new LinkedHashMap<>();
            for (Map.Entry<String, Path> e : shardPaths.entrySet()) {
                SafetensorsFile shard = SafetensorsFile.open(e.getValue());
                shards.add(shard);
                byShardName.put(e.getKey(), shard);
                for (TensorEntry t : shard.entries()) {
                    Path previous = owner.putIfAbsent(t.name(), shard.file());
                    if (previous != null) {
                        throw new SafetensorsException(index, t.name(), "is in both %s and %s, expected each tensor in one shard"
                                .formatted(previous.getFileName(), shard.file().getFileName()));
                    }
                    tensors.put(t.name(), t);
                }
            }
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                SafetensorsFile shard = byShardName.get(e.getValue());
                if (shard.get(e.getKey()).isEmpty()) {
                    Path actual = owner.get(e.getKey());
                    throw new SafetensorsException(index, e.getKey(), "listed in shard %s but absent from it%s"
                            .formatted(e.getValue(), actual == null ? ", expected it there"
                                    : " (it is in " + actual.getFileName() + "), expected the index to name its shard"));
                }
            }
            ShardedCheckpoint opened = new ShardedCheckpoint(index, shards, sorted(tensors));
            ok = true;
            return opened;
        } finally {
            if (!ok) {
                for (SafetensorsFile shard : shards) shard.close();
            }
        }
    }

    private static Map<String, TensorEntry> sorted(Map<String, TensorEntry> tensors) {
        Map<String, TensorEntry> out = new LinkedHashMap<>();
        new TreeSet<>(tensors.keySet()).forEach(name -> out.put(name, tensors.get(name)));
        return out;
    }
}
