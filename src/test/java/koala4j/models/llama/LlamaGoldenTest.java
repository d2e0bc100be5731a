package koala4j.models.llama;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.CpuOps;
import koala4j.models.Checkpoint;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Quantization;
import koala4j.testing.GoldenFile;

/**
 * LlamaForCausalLM against golden/llama_tiny (transformers 4.57.6 LlamaForCausalLM, torch 2.13 CPU fp32; GQA 4 heads
 * / 2 KV heads, rope_theta 1e4, 2 layers). Tolerance |Δ| <= 1e-4 + 1e-4·|ref| (golden README: the float32 reference
 * is within 2e-7 of float64 here; our sums reassociate differently). Generated ids must match exactly.
 */
class LlamaGoldenTest {

    private static final double ATOL = 1e-4;
    private static final double RTOL = 1e-4;
    private final Ops ops = new CpuOps();

    /** max |ref - got| / max |ref|. */
    private static double maxDiffOfLargest(float[] ref, float[] got) {
        double maxRef = 0;
        double maxDiff = 0;
        for (int i = 0; i < ref.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
            maxDiff = Math.max(maxDiff, Math.abs(ref[i] - got[i]));
        }
        return maxDiff / maxRef;
    }

    private static float[] row(float[] all, int index, int width) {
        return Arrays.copyOfRange(all, index * width, (index + 1) * width);
    }

    @Test
    void logitsAndHiddenStatesOfThePrompt() {
        GoldenFile g = GoldenFile.open(resource("golden/llama_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/llama_tiny/model"), null, ops)) {
            LlamaForCausalLM lm = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            long[] ids = g.longs("in.input_ids");
            KvCache cache = lm.newCache(1, 32);
            LlamaForCausalLM.Output out = lm.forward(lm.embed(ops.fromArray(ids, 1, ids.length)), cache, false, true);
            assertEquals(ids.length, cache.length());
            assertArrayEquals(new int[] {1, 12, 256}, out.logits().shape());
            assertEquals(3, out.hiddenStates().size(), "embeddings, after layer 0, final norm");
            for (int i = 0; i < 3; i++) {
                assertClose(g.floats("out.hidden_states." + i), out.hiddenStates().get(i).toFloatArray(), ATOL, RTOL,
                        "hidden_states." + i);
            }
            assertClose(g.floats("out.logits"), out.logits().toFloatArray(), ATOL, RTOL, "logits");
        }
    }

    @Test
    void greedyTwentyTokensWithTheCache() {
        GoldenFile g = GoldenFile.open(resource("golden/llama_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/llama_tiny/model"), null, ops)) {
            LlamaForCausalLM lm = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            long[] prompt = g.longs("in.input_ids");
            long[] expected = g.longs("out.generated_ids");
            float[] stepLogits = g.floats("out.generate_step_logits");
            KvCache cache = lm.newCache(1, expected.length);
            // the prompt in two chunks: the cache must make that the same as one call
            lm.forwardIds(ops.fromArray(Arrays.copyOf(prompt, 5), 1, 5), cache, true);
            Tensor logits = lm.forwardIds(ops.fromArray(Arrays.copyOfRange(prompt, 5, prompt.length), 1,
                    prompt.length - 5), cache, true);                                       // [1, 1, V]
            long[] ids = Arrays.copyOf(prompt, expected.length);
            for (int step = 0; step < 20; step++) {
                assertClose(row(stepLogits, step, 256), logits.toFloatArray(), ATOL, RTOL, "step " + step + " logits");
                long next = logits.reshape(-1).argmax(0, false).toLongArray()[0];
                ids[prompt.length + step] = next;
                logits = lm.forwardIds(ops.fromArray(new long[] {next}, 1, 1), cache, true);
            }
            assertArrayEquals(expected, ids);
            assertEquals(expected.length, cache.length());
            var full = assertThrows(IllegalArgumentException.class,
                    () -> lm.forwardIds(ops.fromArray(new long[] {1}, 1, 1), cache, true));
            assertTrue(full.getMessage().contains("KV cache full"), full.getMessage());
        }
    }

    @Test
    void aPromptComputedInChunksGivesTheSameLogitsAndStopsBetweenChunks() {
        GoldenFile g = GoldenFile.open(resource("golden/llama_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/llama_tiny/model"), null, ops)) {
            LlamaForCausalLM lm = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            assertEquals(LlamaForCausalLM.DEFAULT_PREFILL_CHUNK, lm.prefillChunk());
            lm.prefillChunk(5);
            long[] ids = g.longs("in.input_ids");                                               // 12 positions
            Tensor embeds = lm.embed(ops.fromArray(ids, 1, ids.length));
            int[] chunks = {0};
            KvCache cache = lm.newCache(1, 32);
            Tensor all = lm.forward(embeds, cache, false, () -> chunks[0]++);
            assertEquals(3, chunks[0], "5 + 5 + 2 positions");
            assertArrayEquals(new int[] {1, 12, 256}, all.shape());
            assertClose(g.floats("out.logits"), all.toFloatArray(), ATOL, RTOL, "logits of a prompt in chunks of 5");
            assertEquals(12, cache.length());

            KvCache lastOnly = lm.newCache(1, 32);
            assertClose(row(g.floats("out.logits"), 11, 256), lm.forward(embeds, lastOnly, true).toFloatArray(),
                    ATOL, RTOL, "last position's logits");

            KvCache stopped = lm.newCache(1, 32);
            var stop = assertThrows(java.util.concurrent.CancellationException.class,
                    () -> lm.forward(embeds, stopped, true, () -> {
                        if (stopped.length() > 0) {
                            throw new java.util.concurrent.CancellationException("stop");
                        }
                    }));
            assertEquals("stop", stop.getMessage());
            assertEquals(5, stopped.length(), "the first chunk only");
            // a prompt that does not fit is refused before its first chunk
            KvCache small = lm.newCache(1, 8);
            var full = assertThrows(IllegalArgumentException.class, () -> lm.forward(embeds, small, true));
            assertTrue(full.getMessage().contains("KV cache full"), full.getMessage());
            assertEquals(0, small.length());
            var zero = assertThrows(IllegalArgumentException.class, () -> lm.prefillChunk(0));
            assertTrue(zero.getMessage().contains("prefill chunk of 0 positions"), zero.getMessage());
        }
    }

    /**
     * Q4_0 weights (4.5 bits): the model equals the float model given the Q4_0 values as its Linear weights (|Δ| <=
     * 1e-4 + 1e-4·|ref|, sums in another order), and stays within 20 % of the largest logit of the original float
     * model on this tiny random one (11.6 % measured; Q8_0: within 2 %).
     */
    @Test
    void q4WeightsStayNearTheFloatModel() {
        GoldenFile g = GoldenFile.open(resource("golden/llama_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/llama_tiny/model"), null, ops)) {
            LlamaForCausalLM lm = LlamaForCausalLM.load(ckpt, Quantization.Q4_0);
            LlamaForCausalLM values = LlamaForCausalLM.load(ckpt, Quantization.NONE);
            var q4 = lm.linears();
            var f32 = values.linears();
            for (int i = 0; i < q4.size(); i++) {
                Tensor w = q4.get(i).weight().get();
                assertEquals(DType.Q4_0, w.dtype());
                f32.get(i).weight().set(ops.fromArray(w.toFloatArray(), w.shape()));
            }
            long[] ids = g.longs("in.input_ids");
            float[] logits = lm.forwardIds(ops.fromArray(ids, 1, ids.length), lm.newCache(1, 12), false).toFloatArray();
            assertClose(values.forwardIds(ops.fromArray(ids, 1, ids.length), values.newCache(1, 12), false)
                    .toFloatArray(), logits, ATOL, RTOL, "Q4_0 model against the float model of its values");
            double off = maxDiffOfLargest(g.floats("out.logits"), logits);
            assertTrue(off < 0.20, "Q4 logits differ by " + off + " of the largest |logit|");
            long linearWeights = 0;
            for (var linear : q4) {
                linearWeights += linear.weight().get().numel();
            }
            assertTrue(lm.weightBytesPerToken() >= linearWeights * 18 / 32
                    && lm.weightBytesPerToken() < linearWeights * 34 / 32);
        }
    }

    @Test
    void q8WeightsStayCloseToTheFloatModel() {
        GoldenFile g = GoldenFile.open(resource("golden/llama_tiny/io.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(resource("golden/llama_tiny/model"), null, ops)) {
            LlamaForCausalLM lm = LlamaForCausalLM.load(ckpt, Quantization.Q8_0);
            for (var linear : lm.linears()) {
                assertEquals(DType.Q8_0, linear.weight().get().dtype());
            }
            long[] ids = g.longs("in.input_ids");
            float[] logits = lm.forwardIds(ops.fromArray(ids, 1, ids.length), lm.newCache(1, 12), false).toFloatArray();
            // 8-bit weights: relative error per weight <= 1/254 of its block's max; on logits this stays ~1%
            double off = maxDiffOfLargest(g.floats("out.logits"), logits);
            assertTrue(off < 0.02, "Q8 logits differ by " + off + " of the largest |logit|");
            // the Q8 bytes per decoding step: 34/32 per Linear weight
            long linearWeights = 0;
            for (var linear : lm.linears()) {
                linearWeights += linear.weight().get().numel();
            }
            assertTrue(lm.weightBytesPerToken() >= linearWeights * 34 / 32);
        }
    }

    @Test
    void configReadsRopeScalingAndRejectsUnknownTypes() {
        var json = koala4j.io.json.Json.parse("""
                {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10,
                 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "eos_token_id": [2, 7]}""",
                "config.json");
        LlamaConfig c = LlamaConfig.from(json);
        assertEquals(LlamaConfig.RopeType.LLAMA3, c.ropeScaling().type());
        assertEquals(java.util.List.of(2, 7), c.eosTokenIds());
        assertEquals(4, c.numKeyValueHeads(), "num_key_value_heads defaults to num_attention_heads");
        assertEquals(16, c.headDim());
        float[] inv = RotaryEmbedding.inverseFrequencies(c, 10);
        float[] plain = RotaryEmbedding.inverseFrequencies(new LlamaConfig(10, 64, 128, 1, 4, 4, 16,
                koala4j.tensor.Activation.SILU, 1e-6f, 10000.0, null, 2048, false, false, false, 1, java.util.List.of(2), null),
                10);
        // llama3 keeps the high frequencies (short wavelengths) and divides the lowest by the factor
        assertEquals(plain[0], inv[0], 0f);
        assertEquals(plain[7] / 8f, inv[7], 1e-12f);
        var bad = assertThrows(koala4j.io.json.JsonException.class, () -> LlamaConfig.from(koala4j.io.json.Json.parse(
                "{\"rope_scaling\": {\"type\": \"su\", \"factor\": 2.0}}", "config.json")));
        assertTrue(bad.getMessage().contains("\"su\"") && bad.getMessage().contains("yarn or longrope"),
                bad.getMessage());
    }

    @Test
    void configReadsTransformers5RopeParameters() {
        // 5.x writes rope_theta and the scaling in one rope_parameters object, with no top-level rope_theta
        LlamaConfig llama3 = LlamaConfig.from(koala4j.io.json.Json.parse("""
                {"hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 4096,
                 "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                  "low_freq_factor": 1.0, "high_freq_factor": 4.0}}""", "config.json"));
        assertEquals(500000.0, llama3.ropeTheta());
        assertEquals(LlamaConfig.RopeType.LLAMA3, llama3.ropeScaling().type());
        assertEquals(4096, llama3.ropeScaling().originalMaxPositionEmbeddings(),
                "original_max_position_embeddings defaults to max_position_embeddings, as standardize_rope_params does");
        LlamaConfig plain = LlamaConfig.from(koala4j.io.json.Json.parse(
                "{\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000.0}}", "config.json"));
        assertEquals(1000.0, plain.ropeTheta());
        assertEquals(null, plain.ropeScaling());
        LlamaConfig linear = LlamaConfig.from(koala4j.io.json.Json.parse(
                "{\"rope_theta\": 20000.0, \"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": 2.0}}",
                "config.json"));
        assertEquals(20000.0, linear.ropeTheta(), "a top-level rope_theta fills a rope_parameters without one");
        assertEquals(LlamaConfig.RopeType.LINEAR, linear.ropeScaling().type());
    }
}
