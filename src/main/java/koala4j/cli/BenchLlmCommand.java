package koala4j.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

import koala4j.backend.Backend;
import koala4j.backend.Backends;
import koala4j.models.llama.KvCache;
import koala4j.pipelines.LlmBench;
import koala4j.tensor.quant.Quantization;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code koala4j bench llm}: prompt and decode speed of a LLaVA language model at its real shape with random weights
 * made in memory (no files), against the machine's memory bandwidth. See {@link LlmBench}.
 */
@Command(name = "llm", mixinStandardHelpOptions = true, description = "Prompt and generation speed of a LLaVA language model (random weights in memory)"
        + " against the memory-bandwidth bound.")
final class BenchLlmCommand implements Callable<Integer> {

    @Option(names = "--config", required = true, description = "ko-llava-13b or llava-1.5-7b.")
    String config;

    @Option(names = "--quant", defaultValue = "none", description = "none (F16 weights), q8 (Q8_0) or q4 (Q4_0). Default: none.")
    String quant;

    @Option(names = "--kv-cache", defaultValue = "f32", description = "KV cache element type: f32, f16, q8_0 or q4_0. "
            + "Default: f32.")
    String kvCache;

    @Option(names = "--prompt-tokens", defaultValue = "64", description = "Prompt length. Default: 64.")
    int promptTokens;

    @Option(names = "--new-tokens", defaultValue = "16", description = "Tokens to generate. Default: 16.")
    int newTokens;

    @Option(names = "--layers", defaultValue = "0",
            description = "Build only this many decoder layers (when the model does not fit) and extrapolate. Default: all.")
    int layers;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights and prompt. Default: 0.")
    long seed;

    @Option(names = "--bandwidth-mb", defaultValue = "1024",
            description = "Buffer size of the bandwidth measurement in MB. Default: 1024.")
    long bandwidthMb;

    @Option(names = "--batch", defaultValue = "1",
            description = "Also decode this many sequences together (concurrent chats' shared steps). Default: 1.")
    int batch;

    @Option(names = "--prefill-chunk", defaultValue = "512",
            description = "The most prompt positions computed in one pass (llama-bench's -ub). Default: 512.")
    int prefillChunk;

    @Option(names = "--prompt-lookup", defaultValue = "0", description = "Also time passes over the last token and up "
            + "to this many drafted tokens, and a generation with prompt lookup (0: off, default).")
    int promptLookup;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda. Default: auto.")
    String device;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Backend backend = Backends.select(device);
        LlmBench.run(new LlmBench.Options(config, Quantization.parse(quant), promptTokens, newTokens, layers, seed,
                bandwidthMb * 1_000_000L, KvCache.parseType("--kv-cache", kvCache), batch, prefillChunk, promptLookup),
                backend.ops(),
                backend.name() + " (" + backend.reason() + ")", out);
        return 0;
    }
}
