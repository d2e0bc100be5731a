package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.CpuOps;
import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaConfig;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.quant.Q8;
import koala4j.tensor.quant.Quantization;

/**
 * {@code bench llm} on a tiny LLaMA shape, end to end (both bounds reported, for Q8_0 and F16 weights), and the
 * plain weight reader the paired bound uses: every byte of segments of odd sizes, across its 4 MB pieces.
 */
class LlmBenchTest {

    private static final LlamaConfig TINY = new LlamaConfig(96, 64, 128, 2, 4, 4, 16, Activation.SILU, 1e-6f,
            10000.0, null, 256, false, false, false, null, List.of(), null);

    @Test
    void readerSumsEveryByteOfEverySegment() throws InterruptedException {
        long[] sizes = {13, 8, 31, 40, (4L << 20) + 5, 9L << 20};
        List<MemorySegment> segments = new java.util.ArrayList<>();
        long want = 0;
        long total = 0;
        for (long size : sizes) {
            MemorySegment s = Arena.ofAuto().allocate(size, 64);
            for (long i = 0; i < size; i++) {
                s.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + size));
            }
            // what the reader adds: little-endian longs of each 4 MB piece, then the piece's odd bytes one by one
            for (long at = 0; at < size; at += 4L << 20) {
                long end = Math.min(size, at + (4L << 20));
                long longs = (end - at) / 8;
                for (long i = 0; i < longs; i++) {
                    want += s.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.nativeOrder()),
                            at + i * 8);
                }
                for (long i = at + longs * 8; i < end; i++) {
                    want += s.get(ValueLayout.JAVA_BYTE, i);
                }
            }
            total += size;
            segments.add(s);
        }
        try (MemoryBandwidth.Reader reader = new MemoryBandwidth.Reader(segments, 3)) {
            assertEquals(total, reader.bytes());
            for (int streams : MemoryBandwidth.STREAMS) {
                assertTrue(reader.readOnce(streams) > 0);
                assertEquals(want, reader.lastSum(), streams + " streams per thread");
            }
            assertTrue(reader.readFastest() > 0);
            assertEquals(want, reader.lastSum(), "a second round of reads sees the same bytes");
            var e = assertThrows(IllegalArgumentException.class, () -> reader.readOnce(3));
            assertEquals("streams 3: expected 1, 2 or 4", e.getMessage());
        }
    }

    @Test
    void weightSegmentsCoverEveryLinearWeightInItsStoredFormat() {
        for (Quantization q : Quantization.values()) {
            LlamaForCausalLM lm = new LlamaForCausalLM(TINY);
            lm.load(new LlmBench.RandomWeights(new CpuOps(), lm.namedParameters().keySet(), q, 3, lm));
            long linear = 0;
            for (var l : lm.linears()) {
                long n = l.weight().get().numel();
                linear += switch (q) {
                    case Q8_0 -> Q8.bytesFor(n);
                    case Q4_0 -> koala4j.tensor.quant.Q4.bytesFor(n);
                    case NONE -> n * 2;
                };
            }
            long bytes = LlmBench.weightSegments(lm).orElseThrow().stream().mapToLong(MemorySegment::byteSize).sum();
            assertEquals(linear, bytes, q.toString());
        }
    }

    @Test
    void warmUpCoversAtLeast512LayerSteps() {
        assertEquals(512, LlmBench.warmUpTokens(1));
        assertEquals(64, LlmBench.warmUpTokens(8));
        assertEquals(16, LlmBench.warmUpTokens(32));
        assertEquals(16, LlmBench.warmUpTokens(40));
    }

    @Test
    void tinyBenchReportsTheStreamLikeAndThePairedBound() throws InterruptedException {
        for (Quantization q : Quantization.values()) {
            StringWriter text = new StringWriter();
            LlmBench.run(TINY, new LlmBench.Options("tiny", q, 4, 5, 0, 1, 8_000_000), new CpuOps(), "cpu",
                    new PrintWriter(text, true));
            String out = text.toString();
            assertTrue(out.contains("KV cache F32"), out);
            assertTrue(out.contains("generation: 4 decode steps"), out);
            assertTrue(out.contains("prompt: 4 tokens in") && out.contains("(one pass)"), out);
            assertTrue(out.contains("bandwidth bound: "), out);
            Matcher paired = Pattern.compile("paired bound: (\\d+) decode steps, .* read ([0-9.]+) GB/s = ([0-9.]+)"
                    + " tokens/s; decode ([0-9.]+) tokens/s .* reached (\\d+) %").matcher(out);
            assertTrue(paired.find(), out);
            assertEquals("4", paired.group(1), out);
            for (int g = 2; g <= 5; g++) {
                assertTrue(Double.parseDouble(paired.group(g)) > 0, out);
            }
        }
    }

    @Test
    void anF16KvCacheHalvesTheCacheBytes() throws InterruptedException {
        // 2 layers x 4 KV heads x 16 dims x 2 (K and V) = 256 values per position: 1024 bytes in F32, 512 in F16
        assertEquals(1024, KvCache.bytesPerPosition(TINY, DType.F32));
        assertEquals(512, KvCache.bytesPerPosition(TINY, DType.F16));
        StringWriter text = new StringWriter();
        LlmBench.run(TINY, new LlmBench.Options("tiny", Quantization.NONE, 4, 5, 0, 1, 8_000_000, DType.F16),
                new CpuOps(), "cpu", new PrintWriter(text, true));
        String out = text.toString();
        assertTrue(out.contains("KV cache F16") && out.contains("generation: 4 decode steps"), out);
        var e = assertThrows(IllegalArgumentException.class,
                () -> new LlmBench.Options("tiny", Quantization.NONE, 4, 5, 0, 1, 8_000_000, DType.BF16));
        assertTrue(e.getMessage().contains("KV cache type BF16"), e.getMessage());
    }

    /**
     * {@code --batch 3}: the lockstep batched steps, then the server's two paths on the same model (three generation
     * threads through a DecodeBatcher; three choices of one prompt), each with its steps and batches.
     */
    @Test
    void batchReportsLockstepConcurrentChatsAndChoices() throws InterruptedException {
        StringWriter text = new StringWriter();
        LlmBench.run(TINY, new LlmBench.Options("tiny", Quantization.NONE, 4, 5, 0, 1, 8_000_000, DType.F32, 3),
                new CpuOps(), "cpu", new PrintWriter(text, true));
        String out = text.toString();
        assertTrue(out.contains("batched decode: 3 sequences x 5 steps"), out);
        Matcher chats = Pattern.compile("through the DecodeBatcher, 3 concurrent generations .* = ([0-9.]+) tokens/s"
                + " in all; 12 steps in (\\d+) batches").matcher(out);
        assertTrue(chats.find(), out);
        assertTrue(Double.parseDouble(chats.group(1)) > 0 && Integer.parseInt(chats.group(2)) <= 12, out);
        Matcher choices = Pattern.compile("3 choices of one 4-token prompt .* = ([0-9.]+) tokens/s in all; 12 steps in"
                + " (\\d+) batches").matcher(out);
        assertTrue(choices.find(), out);
        assertTrue(Double.parseDouble(choices.group(1)) > 0 && Integer.parseInt(choices.group(2)) <= 12, out);
    }

    /** --prompt-lookup: passes over 1 + k positions for k = 1, 2, 4, 5, and a generation with and without it. */
    @Test
    void promptLookupReportsWhatAPassOverDraftsCosts() throws InterruptedException {
        StringWriter text = new StringWriter();
        LlmBench.run(TINY, new LlmBench.Options("tiny", Quantization.NONE, 6, 8, 0, 1, 8_000_000, DType.F32, 1, 512, 5),
                new CpuOps(), "cpu", new PrintWriter(text, true));
        String out = text.toString();
        assertTrue(Pattern.compile("a pass over the last token and k drafts \\(best of 6, after a 6-token prompt\\): "
                + "one token [0-9.]+ ms; 1 drafts .*, 2 drafts .*, 4 drafts .*, 5 drafts [0-9.]+ ms \\([0-9.]+ steps, "
                + "[0-9.]+x with all kept\\)").matcher(out).find(), out);
        assertTrue(Pattern.compile("prompt lookup of up to 5 drafts, a 3-token block said twice: 7 tokens in "
                + "\\d+ passes"
                + " \\(\\d+ of \\d+ drafted tokens kept\\)").matcher(out).find(), out);
        var e = assertThrows(IllegalArgumentException.class, () -> new LlmBench.Options("tiny", Quantization.NONE, 6,
                8, 0, 1, 8_000_000, DType.F32, 1, 512, -1));
        assertTrue(e.getMessage().contains("--prompt-lookup -1"), e.getMessage());
    }
}
