package koala4j.cli;

import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code koala4j bench}: throughput benchmarks, one subcommand per model family ({@code t5}; others add theirs). */
@Command(name = "bench", description = "Measure throughput and memory of a model family with random weights.",
        subcommands = {BenchT5Command.class})
final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }
}
