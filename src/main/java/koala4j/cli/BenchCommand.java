package koala4j.cli;

import picocli.CommandLine.Command;

/** {@code koala4j bench}: measurements of this machine and the engine on the models the project runs. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks (speed, memory, bandwidth).",
        subcommands = {BenchLlmCommand.class})
final class BenchCommand {
}
