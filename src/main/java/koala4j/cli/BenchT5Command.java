package koala4j.cli;

import java.util.concurrent.Callable;

import koala4j.backend.Backend;
import koala4j.backend.Backends;
import koala4j.pipelines.T5Benchmark;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code koala4j bench t5}: encoder tokens/s and greedy decoder bytes/s of the KEByT5 shapes, random weights. */
@Command(mixinStandardHelpOptions = true, name = "t5", description = "KEByT5 small/base/large shapes with seeded random weights: encoder tokens/s, "
        + "decoder bytes/s (greedy, KV cache), peak memory.")
final class BenchT5Command implements Callable<Integer> {

    @Option(names = "--config", required = true, description = "kebyt5-small, kebyt5-base or kebyt5-large.")
    String config;

    @Option(names = "--input-bytes", defaultValue = "256", description = "Encoder input length in bytes (default 256).")
    int inputBytes;

    @Option(names = "--new-tokens", defaultValue = "32", description = "Bytes to decode greedily (default 32).")
    int newTokens;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights and input (default 0).")
    long seed;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda.")
    String device;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        Backend backend = Backends.select(device);
        spec.commandLine().getErr().println("backend " + backend.name() + " (" + backend.reason() + "), "
                + Runtime.getRuntime().availableProcessors() + " cores");
        T5Benchmark.Result r = T5Benchmark.run(config, backend.ops(), inputBytes, newTokens, seed,
                spec.commandLine().getErr()::println);
        spec.commandLine().getOut().println(r);
        return 0;
    }
}
