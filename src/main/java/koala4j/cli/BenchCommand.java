package koala4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code koala4j bench ...}: speed and memory of the real model shapes with random weights (no downloads). */
@Command(name = "bench", description = "Benchmarks with random weights of the real shapes.",
        subcommands = {BenchUnetCommand.class, CommandLine.HelpCommand.class})
final class BenchCommand {
}
