package koala4j.pipelines;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaConfig;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.nn.WeightSource;
import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Q4;
import koala4j.tensor.quant.Q4Storage;
import koala4j.tensor.quant.Q8;
import koala4j.tensor.quant.Q8Storage;
import koala4j.tensor.quant.Quantization;

/**
 * {@code koala4j bench llm}: the language model of a real LLaVA at its real shape, with random weights made in
 * memory (seeded; F16 as the checkpoints store them, or Q8_0 made directly), timed on a random prompt: prompt
 * tokens per second (one batched pass), decode tokens per second (one pass per token), peak memory, and the
 * machine's memory bandwidth with the bound it puts on decoding (bytes of weights read per token / bandwidth),
 * measured twice: a STREAM-like loop before and after the run, and paired with each step of a second decode (a
 * plain read of the same weights right before the step; see {@link #paired}). With fewer layers than the model
 * has, it measures those and extrapolates the full model from the bytes per token.
 */
public final class LlmBench {

    /** The language models of the LLaVA checkpoints this project targets (their config.json values). */
    public static final Map<String, LlamaConfig> CONFIGS = Map.of(
            // etri-vilab/Ko-LLaVA-13b: LLaMA-13B shape, vocabulary + <im_patch>, <im_start>, <im_end>
            "ko-llava-13b", new LlamaConfig(32003, 5120, 13824, 40, 40, 40, 128, Activation.SILU, 1e-6f, 10000.0,
                    null, 2048, false, false, false, 1, List.of(2), null),
            // liuhaotian/llava-v1.5-7b and llava-hf/llava-1.5-7b-hf: Vicuna-7B v1.5
            "llava-1.5-7b", new LlamaConfig(32000, 4096, 11008, 32, 32, 32, 128, Activation.SILU, 1e-5f, 10000.0,
                    null, 4096, false, false, false, 1, List.of(2), null),
            // llava-hf/llava-v1.6-mistral-7b-hf: Mistral-7B-Instruct-v0.2 (8 KV heads, no sliding window)
            "llava-v1.6-mistral-7b", new LlamaConfig(32064, 4096, 14336, 32, 32, 8, 128, Activation.SILU, 1e-5f,
                    1000000.0, null, 32768, false, false, false, 1, List.of(2), null));

    /**
     * {@code kvCache}: the KV cache's element type, F32, F16, Q8_0 or Q4_0 (null: F32); {@code batch}: with more than
     * 1, also decode that many sequences together ({@link LlamaForCausalLM#decodeStep}, what concurrent chats share);
     * {@code prefillChunk}: the most prompt positions computed in one pass ({@link LlamaForCausalLM#prefillChunk});
     * {@code lookup}: with more than 0, also time passes over 1 + k positions for k up to it (what checking k drafts
     * of {@link PromptLookup} costs) and a generation with prompt lookup.
     */
    public record Options(String config, Quantization quantization, int promptTokens, int newTokens, int layers,
                          long seed, long bandwidthBytes, DType kvCache, int batch, int prefillChunk, int lookup) {

        public Options {
            kvCache = KvCache.checkType(kvCache == null ? DType.F32 : kvCache);
            if (batch < 1 || batch > 64) {
                throw new IllegalArgumentException("--batch " + batch + ": expected 1 to 64 sequences");
            }
            if (prefillChunk < 1) {
                throw new IllegalArgumentException("--prefill-chunk " + prefillChunk + ": expected at least 1");
            }
            if (lookup < 0 || lookup > 64) {
                throw new IllegalArgumentException("--prompt-lookup " + lookup + ": expected 0 (off) to 64 drafted "
                        + "tokens");
            }
        }

        /** Without prompt lookup. */
        public Options(String config, Quantization quantization, int promptTokens, int newTokens, int layers, long seed,
                       long bandwidthBytes, DType kvCache, int batch, int prefillChunk) {
            this(config, quantization, promptTokens, newTokens, layers, seed, bandwidthBytes, kvCache, batch,
                    prefillChunk, 0);
        }

        public Options(String config, Quantization quantization, int promptTokens, int newTokens, int layers, long seed,
                       long bandwidthBytes, DType kvCache, int batch) {
            this(config, quantization, promptTokens, newTokens, layers, seed, bandwidthBytes, kvCache, batch,
                    LlamaForCausalLM.DEFAULT_PREFILL_CHUNK);
        }

        public Options(String config, Quantization quantization, int promptTokens, int newTokens, int layers, long seed,
                       long bandwidthBytes, DType kvCache) {
            this(config, quantization, promptTokens, newTokens, layers, seed, bandwidthBytes, kvCache, 1);
        }

        public Options(String config, Quantization quantization, int promptTokens, int newTokens, int layers, long seed,
                       long bandwidthBytes) {
            this(config, quantization, promptTokens, newTokens, layers, seed, bandwidthBytes, DType.F32);
        }
    }

    private LlmBench() {
    }

    public static LlamaConfig config(String name) {
        LlamaConfig c = CONFIGS.get(name);
        if (c == null) {
            throw new IllegalArgumentException("--config " + name + ": expected one of " + CONFIGS.keySet().stream()
                    .sorted().toList());
        }
        return c;
    }

    /** Weight bytes one decoding step reads (as {@link LlamaForCausalLM#weightBytesPerToken}), from the shape alone. */
    public static long weightBytesPerToken(LlamaConfig c, Quantization q) {
        long linear = c.linearParameters();
        long linearBytes = switch (q) {
            case Q8_0 -> Q8.bytesFor(linear);
            case Q4_0 -> Q4.bytesFor(linear);
            case NONE -> linear * 2;
        };
        long norms = ((long) c.numHiddenLayers() * 2 + 1) * c.hiddenSize() * 2;
        return linearBytes + norms + (long) c.hiddenSize() * 2;
    }

    /** All weight bytes held in memory: the Linear weights, the norms and the whole (F16) embedding table. */
    public static long weightBytesInMemory(LlamaConfig c, Quantization q) {
        return weightBytesPerToken(c, q) - (long) c.hiddenSize() * 2 + (long) c.vocabSize() * c.hiddenSize() * 2;
    }

    private static LlamaConfig withLayers(LlamaConfig c, int layers) {
        return new LlamaConfig(c.vocabSize(), c.hiddenSize(), c.intermediateSize(), layers, c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.hiddenAct(), c.rmsNormEps(), c.ropeTheta(), c.ropeScaling(),
                c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.attentionBias(), c.mlpBias(), c.bosTokenId(),
                c.eosTokenIds(), c.slidingWindow());
    }

    /** Runs the benchmark and prints its report to {@code out}, line by line as results come in. */
    public static void run(Options o, Ops ops, String backend, java.io.PrintWriter out) throws InterruptedException {
        run(config(o.config()), o, ops, backend, out);
    }

    /** {@link #run(Options, Ops, String, java.io.PrintWriter)} for a given full-size config (tests use tiny ones). */
    static void run(LlamaConfig full, Options o, Ops ops, String backend, java.io.PrintWriter out)
            throws InterruptedException {
        int layers = o.layers() <= 0 ? full.numHiddenLayers() : Math.min(o.layers(), full.numHiddenLayers());
        LlamaConfig c = withLayers(full, layers);
        if (o.promptTokens() < 1 || o.newTokens() < 2) {
            throw new IllegalArgumentException("--prompt-tokens " + o.promptTokens() + " --new-tokens " + o.newTokens()
                    + ": expected at least 1 prompt token and 2 new tokens (the first comes from the prompt pass)");
        }
        int positions = o.promptTokens() + o.newTokens();
        long kvBytes = KvCache.bytesPerPosition(c, o.kvCache()) * positions;
        long need = weightBytesInMemory(c, o.quantization()) + kvBytes;
        long fullNeed = weightBytesInMemory(full, o.quantization());
        Optional<Long> available = memAvailable();
        out.printf(Locale.ROOT, "config %s: LLaMA hidden %d, intermediate %d, %d layers, %d heads (%d KV), vocab %d;"
                        + " weights %s, random (seed %d)%n", o.config(), full.hiddenSize(), full.intermediateSize(),
                full.numHiddenLayers(), full.numAttentionHeads(), full.numKeyValueHeads(), full.vocabSize(),
                switch (o.quantization()) {
                    case Q8_0 -> "Q8_0 (34 bytes per 32)";
                    case Q4_0 -> "Q4_0 (18 bytes per 32)";
                    case NONE -> "F16";
                }, o.seed());
        out.printf(Locale.ROOT, "KV cache %s%n", o.kvCache());
        out.printf(Locale.ROOT, "backend %s%n", backend);
        out.printf(Locale.ROOT, "memory: the full model's weights take %s; this run uses %d of %d layers: %s weights"
                        + " + %s KV cache; %s available%n", gb(fullNeed), layers, full.numHiddenLayers(),
                gb(need - kvBytes), gb(kvBytes), available.map(LlmBench::gb).orElse("unknown"));
        if (available.isPresent() && need > available.get() * 0.85) {
            long perLayer = weightBytesInMemory(withLayers(full, 2), o.quantization())
                    - weightBytesInMemory(withLayers(full, 1), o.quantization());
            long fixed = weightBytesInMemory(withLayers(full, 0), o.quantization());
            long fit = Math.max(0, (long) ((available.get() * 0.85 - fixed) / (perLayer + kvBytes / layers)));
            throw new IllegalArgumentException("the model needs " + gb(need) + " but " + gb(available.get())
                    + " is available; run with --layers " + Math.min(fit, full.numHiddenLayers())
                    + " (or fewer) and read the full-model extrapolation");
        }
        out.flush();

        MemoryBandwidth.Result bw = MemoryBandwidth.measure(o.bandwidthBytes(), threads(), 3);
        out.printf(Locale.ROOT, "memory bandwidth (STREAM-like, %s of buffers, %d threads): read %.1f GB/s (best of 1,"
                        + " 2, 4 streams per thread), triad %.1f GB/s%n", gb(bw.bufferBytes()), bw.threads(),
                bw.readGBs(), bw.triadGBs());
        out.flush();

        long t0 = System.nanoTime();
        LlamaForCausalLM lm = new LlamaForCausalLM(c);
        lm.load(new RandomWeights(ops, lm.namedParameters().keySet(), o.quantization(), o.seed(), lm));
        lm.kvCacheType(o.kvCache());
        lm.prefillChunk(o.prefillChunk());
        long t1 = System.nanoTime();
        long bytesPerToken = lm.weightBytesPerToken();
        if (bytesPerToken != weightBytesPerToken(c, o.quantization())) {
            throw new IllegalStateException("bytes per token " + bytesPerToken + " != shape formula "
                    + weightBytesPerToken(c, o.quantization()));
        }
        out.printf(Locale.ROOT, "weights made in %.1f s%n", (t1 - t0) / 1e9);
        out.flush();
        resetPeaks();   // the bandwidth buffers and the weight-making scratch are garbage now

        SplittableRandom rnd = new SplittableRandom(o.seed());
        TextGeneration gen = new TextGeneration(lm, null);
        // warm-up: C2 keeps improving the kernels for a while (8 layers of the 7B Q8_0 decoded 15.5 tok/s after 8
        // warm-up tokens and 19-20 tok/s in later runs), so warm up on at least 512 layer-steps, after a prompt as
        // long as the timed one: prompts of 41 tokens and more take the blocked GEMM, whose first use also compiles
        // (2 and 6 layers of the 13B Q8_0, 256 tokens after an 8-token warm-up: 1.92 and 4.13 s, 0.8 s of it fixed)
        gen.generate(rnd.ints(Math.max(8, o.promptTokens()), 3, c.vocabSize()).toArray(),
                SamplingParams.greedy(warmUpTokens(layers), List.of()), TextGeneration.TokenListener.NONE,
                Cancel.NEVER);
        int[] prompt = rnd.ints(o.promptTokens(), 3, c.vocabSize()).toArray();
        var result = gen.generate(prompt, SamplingParams.greedy(o.newTokens(), List.of()),
                TextGeneration.TokenListener.NONE, Cancel.NEVER);
        Optional<Long> peakRss = peakRss();
        long peakHeap = peakHeap();
        // the machine may be shared: measure again right after, and hold the run to the better of the two
        MemoryBandwidth.Result after = MemoryBandwidth.measure(o.bandwidthBytes(), threads(), 3);
        out.printf(Locale.ROOT, "memory bandwidth again after the run: read %.1f GB/s, triad %.1f GB/s%n",
                after.readGBs(), after.triadGBs());
        double readGBs = Math.max(bw.readGBs(), after.readGBs());
        double promptRate = result.promptTokensPerSecond();
        double decodeRate = result.decodeTokensPerSecond();
        long kvRead = kvBytesReadPerToken(c, o.kvCache(), o.promptTokens(), o.newTokens());
        double bound = readGBs * 1e9 / (bytesPerToken + kvRead);
        out.printf(Locale.ROOT, "prompt: %d tokens in %.2f s = %.1f tokens/s (%s)%n", result.promptTokens(),
                result.promptTime().toNanos() / 1e9, promptRate, result.promptTokens() > o.prefillChunk()
                        ? "in passes of " + o.prefillChunk() + " positions" : "one pass");
        out.printf(Locale.ROOT, "generation: %d decode steps in %.2f s = %.2f tokens/s (%.1f ms/token)%n",
                result.decodeSteps(), result.decodeTime().toNanos() / 1e9, decodeRate, 1000 / decodeRate);
        out.printf(Locale.ROOT, "bandwidth bound: %s of weights + %s of KV cache read per token / %.1f GB/s = %.2f"
                        + " tokens/s; reached %.0f %% (%.1f GB/s effective)%n", gb(bytesPerToken), gb(kvRead),
                readGBs, bound, 100 * decodeRate / bound, decodeRate * (bytesPerToken + kvRead) / 1e9);
        out.printf(Locale.ROOT, "peak memory during prompt and generation: resident %s (VmHWM: weights, KV"
                        + " cache, committed heap), Java heap high-water %s (uncollected garbage included)%n",
                peakRss.map(LlmBench::gb).orElse("unknown"), gb(peakHeap));
        paired(lm, gen, rnd.ints(o.promptTokens(), 3, c.vocabSize()).toArray(), o.newTokens(), bytesPerToken,
                c, out);
        if (o.batch() > 1) {
            batched(lm, o, rnd, decodeRate, bytesPerToken, c, out);
        }
        if (o.lookup() > 0) {
            lookup(lm, gen, o, rnd, c, out);
        }
        if (layers < full.numHiddenLayers()) {
            long fullBytes = weightBytesPerToken(full, o.quantization());
            double scale = (double) fullBytes / bytesPerToken;
            double fullParams = full.linearParameters();
            double params = c.linearParameters();
            out.printf(Locale.ROOT, "full model, extrapolated from %d layers (same effective bandwidth per byte, same"
                            + " prompt FLOP rate): %s per token, bound %.2f tokens/s, decode ~%.2f tokens/s, prompt ~%.1f"
                            + " tokens/s, weights %s in memory%n", layers, gb(fullBytes),
                    readGBs * 1e9 / fullBytes, decodeRate / scale, promptRate * params / fullParams, gb(fullNeed));
        }
        out.flush();
    }

    /**
     * {@code o.batch()} sequences of random prompts decoded together, one {@link LlamaForCausalLM#decodeStep} per
     * token of all of them (after as many warm-up steps), against the single sequence's rate: what concurrent chats
     * on one model gain when their steps share the weight reads.
     */
    private static void batched(LlamaForCausalLM lm, Options o, SplittableRandom rnd, double singleRate,
                                long bytesPerToken, LlamaConfig c, java.io.PrintWriter out) {
        int s = o.batch();
        List<KvCache> caches = new ArrayList<>();
        long[] next = new long[s];
        for (int i = 0; i < s; i++) {
            KvCache cache = lm.newCache(1, o.promptTokens() + 2 * o.newTokens() + 1);
            long[] prompt = rnd.longs(o.promptTokens(), 3, c.vocabSize()).toArray();
            float[] logits = lm.forwardIds(lm.ops().fromArray(prompt, 1, prompt.length), cache, true).toFloatArray();
            next[i] = LogitsProcessing.argmax(logits);
            caches.add(cache);
        }
        long t0 = 0;
        for (int step = 0; step < 2 * o.newTokens(); step++) {
            if (step == o.newTokens()) {
                t0 = System.nanoTime();
            }
            float[] all = lm.decodeStep(next, caches).toFloatArray();
            int vocab = all.length / s;
            for (int i = 0; i < s; i++) {
                next[i] = LogitsProcessing.argmax(java.util.Arrays.copyOfRange(all, i * vocab, (i + 1) * vocab));
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        double stepsPerSecond = o.newTokens() / seconds;
        out.printf(Locale.ROOT, "batched decode: %d sequences x %d steps (after as many warm-up steps) in %.2f s ="
                        + " %.2f tokens/s in all, %.2f per sequence (%.1f ms a step); %.2fx one sequence's %.2f"
                        + " tokens/s; weights read at %.1f GB/s effective%n", s, o.newTokens(), seconds,
                stepsPerSecond * s, stepsPerSecond, 1000 / stepsPerSecond, stepsPerSecond * s / singleRate, singleRate,
                stepsPerSecond * bytesPerToken / 1e9);
        out.flush();

        // the server's paths: a thread per generation, their steps meeting in a DecodeBatcher (concurrent chats),
        // and the n choices of one request (the prompt computed once, its KV cache copied for each)
        DecodeBatcher batcher = new DecodeBatcher(lm, s);
        TextGeneration gen = new TextGeneration(lm, null, batcher);
        SamplingParams params = SamplingParams.greedy(o.newTokens(), List.of()).withIgnoreEos(true);
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < s; i++) {
            prompts.add(rnd.ints(o.promptTokens(), 3, c.vocabSize()).toArray());
        }
        long c0 = System.nanoTime();
        Choices.run(s, s, Cancel.NEVER, (i, stop) -> gen.generate(prompts.get(i), params,
                TextGeneration.TokenListener.NONE, stop));
        double chats = (System.nanoTime() - c0) / 1e9;
        DecodeBatcher.Stats shared = batcher.stats();
        int[] prompt = prompts.getFirst();
        Tensor embeds = TextGeneration.embedIds(lm, prompt);
        long n0 = System.nanoTime();
        TextGeneration.Prompt computed = gen.prefill(embeds, TextGeneration.cacheCapacity(prompt.length, params),
                null, null, Cancel.NEVER);
        Choices.run(s, s, Cancel.NEVER, (i, stop) -> gen.generate(embeds, prompt,
                params.withSampling(1.0, 0, 1.0, i), TextGeneration.TokenListener.NONE, stop, null, null, prompt,
                computed, null));
        double choices = (System.nanoTime() - n0) / 1e9;
        DecodeBatcher.Stats all = batcher.stats();
        out.printf(Locale.ROOT, "through the DecodeBatcher, %d concurrent generations (a thread each, as concurrent"
                        + " chats): %d tokens each in %.2f s, their %d-token prompts included = %.2f tokens/s in all;"
                        + " %d steps in %d batches%n", s, o.newTokens(), chats, o.promptTokens(),
                s * o.newTokens() / chats, shared.steps(), shared.batches());
        out.printf(Locale.ROOT, "%d choices of one %d-token prompt (OpenAI's n: the prompt computed once): %.2f s ="
                        + " %.2f tokens/s in all; %d steps in %d batches%n", s, o.promptTokens(), choices,
                s * o.newTokens() / choices, all.steps() - shared.steps(), all.batches() - shared.batches());
        out.flush();
    }

    /**
     * What prompt lookup costs and gains here: a pass over the last token and k drafts (k = 1, 2, 4, ... up to
     * {@code o.lookup()}) against a pass over one token, timed alternately after the same prompt (the drafts'
     * positions dropped after each), which gives how many drafts a pass must keep on average to pay for itself;
     * then one generation with and one without prompt lookup of the same prompt, a random block said twice. Random
     * weights rarely repeat a prompt, so the kept drafts there say little about a real model's.
     */
    private static void lookup(LlamaForCausalLM lm, TextGeneration gen, Options o, SplittableRandom rnd, LlamaConfig c,
                               java.io.PrintWriter out) {
        int[] prompt = rnd.ints(o.promptTokens(), 3, c.vocabSize()).toArray();
        int k = o.lookup();
        KvCache cache = lm.newCache(1, prompt.length + k + 1);
        lm.forwardIds(lm.ops().fromArray(prompt, 1, prompt.length), cache, true);
        int reps = 6;
        List<Integer> sizes = new ArrayList<>();
        for (int d = 1; d < k; d *= 2) {
            sizes.add(d);
        }
        sizes.add(k);
        double single = Double.MAX_VALUE;
        double[] best = new double[sizes.size()];
        java.util.Arrays.fill(best, Double.MAX_VALUE);
        for (int r = 0; r < reps; r++) {
            single = Math.min(single, timedPass(lm, cache, rnd.longs(1, 3, c.vocabSize()).toArray()));
            for (int i = 0; i < sizes.size(); i++) {
                long[] ids = rnd.longs(sizes.get(i) + 1, 3, c.vocabSize()).toArray();
                best[i] = Math.min(best[i], timedPass(lm, cache, ids));
            }
        }
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < sizes.size(); i++) {
            line.append(String.format(Locale.ROOT, "%s%d drafts %.1f ms (%.2f steps, %.2fx with all kept)",
                    i == 0 ? "" : ", ", sizes.get(i), best[i] * 1e3, best[i] / single,
                    (sizes.get(i) + 1) * single / best[i]));
        }
        out.printf(Locale.ROOT, "prompt lookup, a pass over the last token and k drafts (best of %d, after a %d-token"
                        + " prompt): one token %.1f ms; %s; a pass pays for itself when it keeps more drafts than its"
                        + " cost in steps minus one%n", reps, prompt.length, single * 1e3, line);
        out.flush();

        int half = Math.max(1, o.promptTokens() / 2);
        int[] block = rnd.ints(half, 3, c.vocabSize()).toArray();
        int[] twice = new int[2 * half];
        System.arraycopy(block, 0, twice, 0, half);
        System.arraycopy(block, 0, twice, half, half);
        SamplingParams greedy = SamplingParams.greedy(o.newTokens(), List.of()).withIgnoreEos(true);
        var plain = gen.generate(twice, greedy, TextGeneration.TokenListener.NONE, Cancel.NEVER);
        var looked = gen.generate(twice, greedy.withLookup(new PromptLookup(k, PromptLookup.DEFAULT_MAX_NGRAM)),
                TextGeneration.TokenListener.NONE, Cancel.NEVER);
        if (!java.util.Arrays.equals(plain.tokenIds(), looked.tokenIds())) {
            out.printf(Locale.ROOT, "prompt lookup: note: the answers differ (a near-tie rounded differently in a"
                    + " pass over several positions)%n");
        }
        var d = looked.drafts();
        out.printf(Locale.ROOT, "prompt lookup of up to %d drafts, a %d-token block said twice: %d tokens in %d passes"
                        + " (%d of %d drafted tokens kept) at %.2f tokens/s; one pass per token %.2f tokens/s%n", k,
                half, looked.decodeSteps(), d.passes(), d.accepted(), d.proposed(), looked.decodeTokensPerSecond(),
                plain.decodeTokensPerSecond());
        out.flush();
    }

    /** Seconds of one forward pass over {@code ids} after the cache's positions, which it leaves as they were. */
    private static double timedPass(LlamaForCausalLM lm, KvCache cache, long[] ids) {
        int before = cache.length();
        long t0 = System.nanoTime();
        lm.forwardIds(lm.ops().fromArray(ids, 1, ids.length), cache, false).toFloatArray();
        double seconds = (System.nanoTime() - t0) / 1e9;
        cache.truncate(before);
        return seconds;
    }

    /**
     * The bound measured next to each step instead of before and after the run: before every decode step the
     * weights are read three times with a plain sum on the same number of threads, as one, two and four streams per
     * thread (the fastest read counts, STREAM's rule; which pattern is fastest differs between machines), so that
     * read and step see the same machine; on a shared machine the best bandwidth seen before or
     * after a run can come from a quieter moment than the run itself had.
     */
    private static void paired(LlamaForCausalLM lm, TextGeneration gen, int[] prompt, int newTokens,
                               long bytesPerToken, LlamaConfig c, java.io.PrintWriter out)
            throws InterruptedException {
        Optional<List<MemorySegment>> weights = weightSegments(lm);
        if (weights.isEmpty()) {
            out.printf(Locale.ROOT, "paired bound: not measured (the weights are not in host memory)%n");
            return;
        }
        try (MemoryBandwidth.Reader reader = new MemoryBandwidth.Reader(weights.get(), threads())) {
            long[] decodeNs = {0};
            double[] readS = {0, 0};      // paired reads so far, the read waiting for its step
            int[] steps = {0};
            long[] stepStart = {0};
            gen.generate(prompt, SamplingParams.greedy(newTokens, List.of()), (id, delta) -> {
                if (id < 0) {
                    return;
                }
                long now = System.nanoTime();
                if (stepStart[0] != 0) {
                    decodeNs[0] += now - stepStart[0];
                    readS[0] += readS[1];
                    steps[0]++;
                }
                try {
                    readS[1] = reader.readFastest();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while reading the weights", e);
                }
                stepStart[0] = System.nanoTime();
            }, Cancel.NEVER);
            if (steps[0] == 0) {
                out.printf(Locale.ROOT, "paired bound: no decode step to pair (generation stopped after the prompt)%n");
                return;
            }
            long kvRead = kvBytesReadPerToken(c, lm.kvCacheType(), prompt.length, newTokens);
            double readGBs = reader.bytes() * (double) steps[0] / readS[0] / 1e9;
            double bound = readGBs * 1e9 / (bytesPerToken + kvRead);
            double rate = steps[0] / (decodeNs[0] / 1e9);
            out.printf(Locale.ROOT, "paired bound: %d decode steps, each right after the fastest of three plain reads"
                            + " (1, 2, 4 streams per thread) of the same %s of weights on %d threads: read %.1f GB/s ="
                            + " %.2f tokens/s; decode %.2f tokens/s (%.1f ms/token); reached %.0f %%%n", steps[0],
                    gb(reader.bytes()), threads(), readGBs, bound, rate, 1000 / rate, 100 * rate / bound);
        }
    }

    /**
     * The memory of every Linear weight in the order a decoding step reads it (lm_head last), when it is host
     * memory: Q8_0 or Q4_0 quants and scales, or the F16/BF16/F32 elements.
     */
    static Optional<List<MemorySegment>> weightSegments(LlamaForCausalLM lm) {
        List<MemorySegment> out = new java.util.ArrayList<>();
        for (var linear : lm.linears()) {
            Tensor t = linear.weight().get();
            if (t.storage() instanceof Q8Storage q) {
                out.add(q.quants().asSlice(t.offset(), t.numel()));
                out.add(q.scales().asSlice(t.offset() / Q8Storage.BLOCK * 2, t.numel() / Q8Storage.BLOCK * 2));
            } else if (t.storage() instanceof Q4Storage q) {
                out.add(q.quants().asSlice(t.offset() / 2, t.numel() / 2));
                out.add(q.scales().asSlice(t.offset() / Q4Storage.BLOCK * 2, t.numel() / Q4Storage.BLOCK * 2));
            } else if (t.storage() instanceof koala4j.tensor.HostStorage h) {
                long size = t.dtype().byteSize();
                out.add(h.segment().asSlice(t.offset() * size, t.numel() * size));
            } else {
                return Optional.empty();
            }
        }
        return Optional.of(out);
    }

    /** Keys and values one decode step reads, on average over a run (the cache about half way filled). */
    private static long kvBytesReadPerToken(LlamaConfig c, DType kvCache, int promptTokens, int newTokens) {
        return KvCache.bytesPerPosition(c, kvCache) * (promptTokens + newTokens / 2);
    }

    /** Decode steps before the timed run: at least 16, and at least 512 decoder-layer steps in all. */
    static int warmUpTokens(int layers) {
        return Math.max(16, (512 + layers - 1) / Math.max(1, layers));
    }

    private static int threads() {
        String env = System.getProperty("koala4j.threads", System.getenv("KOALA4J_THREADS"));
        if (env != null && !env.isBlank()) {
            return Integer.parseInt(env.trim());
        }
        return Runtime.getRuntime().availableProcessors();
    }

    static String gb(long bytes) {
        return String.format(Locale.ROOT, "%.2f GB", bytes / 1e9);
    }

    private static Optional<Long> memAvailable() {
        return procField(Path.of("/proc/meminfo"), "MemAvailable:");
    }

    private static Optional<Long> peakRss() {
        return procField(Path.of("/proc/self/status"), "VmHWM:");
    }

    /** A "Name:   123 kB" line of a Linux /proc file, in bytes. */
    private static Optional<Long> procField(Path file, String name) {
        try {
            for (String line : Files.readAllLines(file)) {
                if (line.startsWith(name)) {
                    String[] parts = line.substring(name.length()).trim().split("\\s+");
                    return Optional.of(Long.parseLong(parts[0]) * 1024);
                }
            }
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
        return Optional.empty();
    }

    /** Collects the garbage, then restarts the heap pools' peaks and (on Linux) the VmHWM high-water mark. */
    private static void resetPeaks() {
        System.gc();
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            pool.resetPeakUsage();
        }
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException | RuntimeException e) {
            // not Linux, or not allowed: VmHWM then includes the bandwidth buffers
        }
    }

    private static long peakHeap() {
        long sum = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP && pool.getPeakUsage() != null) {
                sum += pool.getPeakUsage().getUsed();
            }
        }
        return sum;
    }

    /**
     * Random weights for every key of a LLaMA, made when asked for: Linear weights (*_proj.weight, lm_head.weight)
     * uniform in ±0.035 (std 0.02) as F16, or straight in Q8_0 (random quants, scales near 0.035/127) or Q4_0
     * (random nibbles, scales near 0.035/8); norm weights
     * 1; the embedding table F16. Off-heap, freed by the garbage collector with the tensors. Each key draws from its
     * own seeded stream, in 1M-element chunks filled in parallel.
     */
    static final class RandomWeights implements WeightSource {
        private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final int CHUNK = 1 << 20;
        private static final float RANGE = (float) (0.02 * Math.sqrt(3));

        private final Ops ops;
        private final Set<String> keys;
        private final Quantization quantization;
        private final long seed;
        private final LlamaForCausalLM shapes;

        RandomWeights(Ops ops, Set<String> keys, Quantization quantization, long seed, LlamaForCausalLM shapes) {
            this.ops = ops;
            this.keys = keys;
            this.quantization = quantization;
            this.seed = seed;
            this.shapes = shapes;
        }

        @Override
        public Optional<Tensor> tensor(String key) {
            var p = shapes.namedParameters().get(key);
            if (p == null) {
                return Optional.empty();
            }
            int[] shape = p.shape();
            long n = Tensor.numel(shape);
            long keySeed = seed * 0x9E3779B97F4A7C15L ^ key.hashCode();
            boolean linear = key.endsWith("_proj.weight") || key.equals("lm_head.weight");
            if (linear && quantization == Quantization.Q8_0) {
                Q8Storage q = Q8.allocate(n);
                fill(n, keySeed, (rnd, from, count) -> {
                    byte[] quants = new byte[count];
                    rnd.nextBytes(quants);
                    for (int i = 0; i < count; i++) {
                        quants[i] = quants[i] == Byte.MIN_VALUE ? -127 : quants[i];   // Q8_0 quants are in ±127
                    }
                    MemorySegment.copy(quants, 0, q.quants(), ValueLayout.JAVA_BYTE, from, count);
                    short[] scales = new short[count / Q8Storage.BLOCK];
                    for (int b = 0; b < scales.length; b++) {
                        scales[b] = Float.floatToFloat16(RANGE / 127 * (0.75f + 0.5f * rnd.nextFloat()));
                    }
                    MemorySegment.copy(scales, 0, q.scales(), F16, from / Q8Storage.BLOCK * 2, scales.length);
                });
                return Optional.of(q.tensor(ops, shape));
            }
            if (linear && quantization == Quantization.Q4_0) {
                Q4Storage q = Q4.allocate(n);
                fill(n, keySeed, (rnd, from, count) -> {
                    byte[] quants = new byte[count / 2];
                    rnd.nextBytes(quants);
                    MemorySegment.copy(quants, 0, q.quants(), ValueLayout.JAVA_BYTE, from / 2, quants.length);
                    short[] scales = new short[count / Q4Storage.BLOCK];
                    for (int b = 0; b < scales.length; b++) {
                        scales[b] = Float.floatToFloat16(RANGE / 8 * (0.75f + 0.5f * rnd.nextFloat()));
                    }
                    MemorySegment.copy(scales, 0, q.scales(), F16, from / Q4Storage.BLOCK * 2, scales.length);
                });
                return Optional.of(q.tensor(ops, shape));
            }
            MemorySegment seg = Arena.ofAuto().allocate(n * 2, 64);
            boolean norm = key.endsWith("norm.weight");
            fill(n, keySeed, (rnd, from, count) -> {
                short[] values = new short[count];
                for (int i = 0; i < count; i++) {
                    values[i] = Float.floatToFloat16(norm ? 1f : (rnd.nextFloat() * 2 - 1) * RANGE);
                }
                MemorySegment.copy(values, 0, seg, F16, from * 2, count);
            });
            // read-only, as the weights of a checkpoint are mapped
            return Optional.of(ops.wrap(seg.asReadOnly(), DType.F16, shape));
        }

        @FunctionalInterface
        private interface Filler {
            void fill(SplittableRandom rnd, long from, int count);
        }

        private static void fill(long n, long seed, Filler filler) {
            int chunks = (int) ((n + CHUNK - 1) / CHUNK);
            IntStream.range(0, chunks).parallel().forEach(c -> {
                long from = (long) c * CHUNK;
                filler.fill(new SplittableRandom(seed + c), from, (int) Math.min(CHUNK, n - from));
            });
        }

        @Override
        public Set<String> keys() {
            return keys;
        }

        @Override
        public String describe() {
            return "random weights (seed " + seed + ")";
        }
    }
}
