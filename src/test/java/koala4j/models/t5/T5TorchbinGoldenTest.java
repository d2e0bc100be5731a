package koala4j.models.t5;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import koala4j.backend.cpu.CpuOps;
import koala4j.models.Checkpoint;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.testing.GoldenFile;

/**
 * The T5 golden (golden/t5_byt5_tiny: transformers 4.57.6, torch 2.13 CPU fp32) run from its weights saved as
 * torch.save files, the way kebyt5-*-preview publishes pytorch_model.bin: golden/torchbin/t5_byt5_tiny_bin (one
 * file) and t5_byt5_tiny_bin_sharded (three shards + pytorch_model.bin.index.json), both loaded through
 * {@link Checkpoint#open}, which finds no safetensors there and falls back to the .bin files. Outputs must be within
 * the golden tolerance (|Δ| <= 1e-4 + 1e-4·|ref|, as T5GoldenTest) and bit-identical to the run from
 * model.safetensors: the bytes are the same, so is the computation.
 */
class T5TorchbinGoldenTest {

    private static final double ATOL = 1e-4;
    private static final double RTOL = 1e-4;
    private final Ops ops = new CpuOps();

    private Tensor ids(GoldenFile g, String name) {
        long[] shape = g.shape(name);
        return ops.fromArray(g.longs(name), Math.toIntExact(shape[0]), Math.toIntExact(shape[1]));
    }

    private record Outputs(float[] encoderLast, float[] logits) {
    }

    private Outputs run(Path folder, GoldenFile g) {
        try (Checkpoint ckpt = Checkpoint.open(folder, null, ops)) {
            T5ForConditionalGeneration model = new T5ForConditionalGeneration(T5Config.from(ckpt.config()));
            assertEquals(List.of(), model.loadWeights(ckpt).unexpectedKeys(), "every checkpoint key has a module (tied aliases included)");
            var encoded = model.encode(ids(g, "in.input_ids"), ids(g, "in.attention_mask"));
            var decoded = model.decode(ids(g, "in.decoder_input_ids"), encoded);
            return new Outputs(encoded.lastHiddenState().toFloatArray(), decoded.logits().toFloatArray());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"golden/torchbin/t5_byt5_tiny_bin", "golden/torchbin/t5_byt5_tiny_bin_sharded"})
    void binFolderGivesTheGoldenOutputs(String folder) {
        GoldenFile g = GoldenFile.open(resource("golden/t5_byt5_tiny/io.safetensors"));
        Outputs bin = run(resource(folder), g);
        assertClose(g.floats("out.encoder_last_hidden_state"), bin.encoderLast(), ATOL, RTOL, "encoder_last_hidden_state");
        assertClose(g.floats("out.logits"), bin.logits(), ATOL, RTOL, "logits");
        Outputs safetensors = run(resource("golden/t5_byt5_tiny/model"), g);
        // the same weights: the same outputs up to the order of vector lane sums, which depends on whether C2 has
        // compiled the Vector API kernels yet (the interpreter's fallback sums lanes in another order)
        assertClose(safetensors.encoderLast(), bin.encoderLast(), 1e-6, 1e-6, "encoder output vs the safetensors run's");
        assertClose(safetensors.logits(), bin.logits(), 1e-6, 1e-6, "logits vs the safetensors run's");
    }
}
