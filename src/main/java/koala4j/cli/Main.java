package koala4j.cli;

import java.io.PrintWriter;
import java.util.Map;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The {@code koala4j} command. Errors print one line and exit non-zero; {@code --verbose} adds the stack trace. */
@Command(name = "koala4j", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Small, fast generative visual models (KOALA, SDXL family, Ko-LLaVA, KEByT5) on the JVM.",
        subcommands = {GenerateCommand.class, ChatCommand.class, T5Command.class, ServeCommand.class,
                BenchCommand.class, InspectCommand.class, ModelsCommand.class, CommandLine.HelpCommand.class})
public final class Main {

    @Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT,
            description = "Print stack traces with errors.")
    boolean verbose;

    /** The environment commands read (HF_HOME, HF_ENDPOINT, HF_TOKEN, ...); tests pass their own. */
    final Map<String, String> env;

    Main(Map<String, String> env) {
        this.env = Map.copyOf(env);
    }

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the CLI with the given streams; returns the exit code (for tests). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        return run(args, out, err, System.getenv());
    }

    /** As {@link #run(String[], PrintWriter, PrintWriter)} with an explicit environment. */
    public static int run(String[] args, PrintWriter out, PrintWriter err, Map<String, String> env) {
        boolean verbose = java.util.Arrays.asList(args).contains("--verbose");
        CommandLine cli = new CommandLine(new Main(env));
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            if (verbose) {
                ex.printStackTrace(err);
            } else {
                err.println("koala4j: " + oneLine(ex));
            }
            err.flush();
            return 1;
        });
        cli.setParameterExceptionHandler((ex, ignoredArgs) -> {
            err.println("koala4j: " + ex.getMessage());
            err.println("Try '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help' for more information.");
            err.flush();
            return 2;
        });
        int code;
        try {
            code = cli.execute(args);
        } catch (OutOfMemoryError e) {
            // picocli lets Errors through; a user still gets one line and a way out
            err.println("koala4j: out of memory (" + e.getMessage() + "); give the JVM more heap, e.g. "
                    + "KOALA4J_JAVA_OPTS=-Xmx20g, or use smaller sizes");
            err.flush();
            return 1;
        }
        out.flush();
        return code;
    }

    static String oneLine(Throwable ex) {
        String message = ex.getMessage();
        if (message == null || message.isBlank()) {
            message = ex.getClass().getSimpleName();
        }
        return message.replace('\n', ' ');
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"koala4j " + (v == null ? "dev" : v) + " (Java " + Runtime.version() + ", "
                    + System.getProperty("os.arch") + ")"};
        }
    }
}
