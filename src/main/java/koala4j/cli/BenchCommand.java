package koala4j.cli;

import java.util.concurrent.Callable;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code koala4j bench ...}: speed and memory of the real model shapes with random weights (no downloads). */
@Command(mixinStandardHelpOptions = true, name = "bench", description = "Benchmarks with random weights of the real shapes.",
        subcommands = {BenchUnetCommand.class, BenchLlmCommand.class, BenchT5Command.class, CommandLine.HelpCommand.class})
final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }
}
