package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import koala4j.backend.cpu.CpuOps;
import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaConfig;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Quantization;

/**
 * Q8_0 and Q4_0 KV caches (llama.cpp's {@code --cache-type-k/v q8_0 / q4_0}) on a random LLaMA with head_dim 32 (one
 * block per head row): logits stay within 2 % (Q8_0) / 10 % (Q4_0) of the largest logit of an F32 cache's (keys and
 * values rounded to 8 or 4 bits per block of 32, as ggml rounds them; measured 0.3-0.4 % and 6.2-7.5 %), the cache
 * takes 34 / 18 bytes per 32 values, and copies between caches of one format are exact.
 */
class QuantisedKvCacheTest {

    private static final LlamaConfig CONFIG = new LlamaConfig(300, 128, 256, 2, 4, 2, 32, Activation.SILU, 1e-6f,
            10000.0, null, 256, false, false, false, null, List.of(), null);

    private static LlamaForCausalLM model(LlamaConfig config) {
        LlamaForCausalLM lm = new LlamaForCausalLM(config);
        lm.load(new LlmBench.RandomWeights(new CpuOps(), lm.namedParameters().keySet(), Quantization.NONE, 5, lm));
        return lm;
    }

    @ParameterizedTest
    @CsvSource({"Q8_0, 0.02", "Q4_0, 0.10"})
    void logitsStayCloseToAFloatCacheThroughPromptChunksAndSteps(DType format, double tolerance) {
        LlamaForCausalLM lm = model(CONFIG);
        lm.prefillChunk(16);                                          // a 40-token prompt: chunks read the cache
        long[] prompt = new SplittableRandom(3).longs(40, 3, 300).toArray();
        KvCache exact = lm.newCache(1, 64, DType.F32);
        KvCache q8 = lm.newCache(1, 64, format);
        assertEquals(format, q8.dtype());
        Tensor a = lm.forwardIds(lm.ops().fromArray(prompt, 1, prompt.length), exact, true);
        Tensor b = lm.forwardIds(lm.ops().fromArray(prompt, 1, prompt.length), q8, true);
        for (int step = 0; step < 12; step++) {
            assertNear(a.toFloatArray(), b.toFloatArray(), tolerance, "step " + step);
            long next = a.reshape(-1).argmax(0, false).toLongArray()[0];
            a = lm.forwardIds(lm.ops().fromArray(new long[] {next}, 1, 1), exact, true);
            b = lm.forwardIds(lm.ops().fromArray(new long[] {next}, 1, 1), q8, true);
        }
        // a copy of the cache (a prompt shared by several choices) continues bit for bit as the original
        KvCache copy = lm.newCache(1, 64, format);
        copy.copyPrefix(q8, q8.length());
        long[] token = {7};
        assertArrayEquals(lm.forwardIds(lm.ops().fromArray(token, 1, 1), q8, true).toFloatArray(),
                lm.forwardIds(lm.ops().fromArray(token, 1, 1), copy, true).toFloatArray());
        // beams: broadcast then reorder moves whole blocks
        KvCache beams = lm.newCache(2, 64, format);
        beams.broadcastFrom(copy);
        beams.reorder(new long[] {1, 1});
        float[] two = lm.forwardIds(lm.ops().fromArray(new long[] {9, 9}, 2, 1), beams, true).toFloatArray();
        float[] one = lm.forwardIds(lm.ops().fromArray(new long[] {9}, 1, 1), copy, true).toFloatArray();
        assertArrayEquals(one, java.util.Arrays.copyOfRange(two, 0, one.length));
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(names = {"Q8_0", "Q4_0"})
    void benchLlmReportsTheCache(DType format) throws InterruptedException {
        java.io.StringWriter text = new java.io.StringWriter();
        // a 40-token prompt in passes of 16 over the quantised cache
        LlmBench.run(CONFIG, new LlmBench.Options("tiny", Quantization.NONE, 40, 5, 0, 1, 8_000_000, format, 1,
                16), new CpuOps(), "cpu", new java.io.PrintWriter(text, true));
        String out = text.toString();
        assertTrue(out.contains("KV cache " + format) && out.contains("generation: 4 decode steps")
                && out.contains("prompt: 40 tokens in") && out.contains("(in passes of 16 positions)"), out);
    }

    @Test
    void sizesTypesAndRefusals() {
        // 2 layers x 2 KV heads x 32 dims x 2 (K and V) = 256 values per position: 1024 bytes in F32, 272 in Q8_0,
        // 144 in Q4_0
        assertEquals(1024, KvCache.bytesPerPosition(CONFIG, DType.F32));
        assertEquals(272, KvCache.bytesPerPosition(CONFIG, DType.Q8_0));
        assertEquals(DType.Q8_0, KvCache.parseType("--kv-cache", "q8_0"));
        assertEquals(DType.Q8_0, KvCache.parseType("--kv-cache", "Q8"));
        assertEquals(144, KvCache.bytesPerPosition(CONFIG, DType.Q4_0));
        assertEquals(DType.Q4_0, KvCache.parseType("--kv-cache", "q4_0"));
        assertEquals(DType.Q4_0, KvCache.parseType("--kv-cache", "Q4"));
        var unknown = assertThrows(IllegalArgumentException.class, () -> KvCache.parseType("--kv-cache", "q5_0"));
        assertTrue(unknown.getMessage().contains("--kv-cache 'q5_0': expected f32, f16, q8_0 or q4_0"),
                unknown.getMessage());
        LlamaConfig narrow = new LlamaConfig(300, 64, 128, 2, 4, 4, 16, Activation.SILU, 1e-6f, 10000.0, null, 256,
                false, false, false, null, List.of(), null);
        LlamaForCausalLM small = model(narrow);
        for (DType format : new DType[] {DType.Q8_0, DType.Q4_0}) {
            var heads = assertThrows(IllegalArgumentException.class, () -> small.newCache(1, 8, format));
            assertTrue(heads.getMessage().contains("a " + format + " KV cache needs head_dim a multiple of 32")
                    && heads.getMessage().contains("is 16"), heads.getMessage());
        }
    }

    private static void assertNear(float[] want, float[] got, double tolerance, String where) {
        double max = 0;
        double diff = 0;
        for (int i = 0; i < want.length; i++) {
            max = Math.max(max, Math.abs(want[i]));
            diff = Math.max(diff, Math.abs(got[i] - want[i]));
        }
        assertTrue(max > 0 && diff <= tolerance * max, where + ": max |diff| " + diff + " of max |logit| " + max);
    }
}
