package koala4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;

import org.junit.jupiter.api.Test;

import koala4j.models.llama.LlamaConfig;
import koala4j.pipelines.LlmBench;
import koala4j.pipelines.MemoryBandwidth;
import koala4j.tensor.quant.Quantization;

/** {@code koala4j bench llm}: wiring and errors (the benchmark itself is run by hand; see README). */
class BenchLlmCommandTest {

    private static String[] run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out), new PrintWriter(err));
        return new String[] {Integer.toString(code), out.toString(), err.toString()};
    }

    @Test
    void helpListsTheOptions() {
        String[] r = run("bench", "llm", "--help");
        assertEquals("0", r[0]);
        for (String option : new String[] {"--config", "--quant", "--kv-cache", "--prompt-tokens", "--new-tokens",
                "--layers", "--prefill-chunk"}) {
            assertTrue(r[1].contains(option), r[1]);
        }
    }

    @Test
    void unknownConfigAndQuantAreOneLineErrors() {
        String[] r = run("bench", "llm", "--config", "gpt-5");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("ko-llava-13b") && r[2].contains("llava-1.5-7b"), r[2]);
        assertEquals(1, r[2].strip().lines().count());
        r = run("bench", "llm", "--config", "ko-llava-13b", "--quant", "q3");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("expected none, q8 or q4"), r[2]);
        r = run("bench", "llm", "--config", "ko-llava-13b", "--kv-cache", "q5");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("--kv-cache 'q5': expected f32, f16, q8_0 or q4_0"), r[2]);
        r = run("bench", "llm", "--config", "ko-llava-13b", "--prefill-chunk", "0");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("--prefill-chunk 0: expected at least 1"), r[2]);
    }

    @Test
    void modelSizesFollowTheShape() {
        LlamaConfig c = LlmBench.config("ko-llava-13b");
        // LLaMA-13B: 40 x (4 x 5120^2 + 3 x 5120 x 13824) + 32003 x 5120 lm_head = 12.85e9 Linear weights
        long q8 = LlmBench.weightBytesInMemory(c, Quantization.Q8_0);
        long f16 = LlmBench.weightBytesInMemory(c, Quantization.NONE);
        assertEquals(13.98, q8 / 1e9, 0.01, "Q8_0: 34 bytes per 32 Linear weights + the F16 embedding table");
        assertEquals(26.03, f16 / 1e9, 0.01, "F16");
    }

    @Test
    void bandwidthIsPositive() throws InterruptedException {
        MemoryBandwidth.Result r = MemoryBandwidth.measure(8_000_000, 1, 1);
        assertTrue(r.readGBs() > 0 && r.triadGBs() > 0, r.toString());
    }
}
