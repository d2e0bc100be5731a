package koala4j.models;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.Set;

import koala4j.io.json.Json;
import koala4j.io.safetensors.TensorEntry;
import koala4j.io.torchbin.WeightFiles;
import koala4j.nn.WeightSource;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * One model folder as published: {@code config.json} plus its safetensors weights (single file, sharded with an
 * index, or a variant such as fp16), or, when the folder has no safetensors, its torch.save weights
 * ({@code pytorch_model.bin}, shards with an index, {@code diffusion_pytorch_model.bin}; see
 * {@link WeightFiles#open}). Weights are mmap'ed and handed out as zero-copy tensors of {@code ops};
 * closing the checkpoint unmaps them, so it must outlive every model loaded from it.
 */
public final class Checkpoint implements WeightSource, AutoCloseable {

    private final Path folder;
    private final Json config;
    private final WeightFiles weights;
    private final Ops ops;

    private Checkpoint(Path folder, Json config, WeightFiles weights, Ops ops) {
        this.folder = folder;
        this.config = config;
        this.weights = weights;
        this.ops = ops;
    }

    /** Opens {@code folder}/config.json and the weights next to it ({@code variant} null or e.g. "fp16"). */
    public static Checkpoint open(Path folder, String variant, Ops ops) {
        if (!Files.isDirectory(folder)) {
            throw new IllegalArgumentException(folder + ": model folder not found");
        }
        Path configFile = folder.resolve("config.json");
        if (!Files.isRegularFile(configFile)) {
            throw new IllegalArgumentException(configFile + ": missing (every model folder has its config.json)");
        }
        Json config = Json.read(configFile);
        return new Checkpoint(folder, config, WeightFiles.open(folder, variant), ops);
    }

    public Path folder() {
        return folder;
    }

    public Json config() {
        return config;
    }

    public Ops ops() {
        return ops;
    }

    @Override
    public Optional<Tensor> tensor(String key) {
        return weights.get(key).map(this::wrap);
    }

    private Tensor wrap(TensorEntry e) {
        int[] shape = new int[e.shape().length];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = Math.toIntExact(e.shape()[i]);
        }
        return ops.wrap(e.data(), e.dtype(), shape);
    }

    @Override
    public Set<String> keys() {
        return weights.names();
    }

    @Override
    public String describe() {
        return folder.toString();
    }

    @Override
    public void close() {
        weights.close();
    }
}
