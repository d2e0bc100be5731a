package koala4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import koala4j.io.safetensors.SafetensorsFile;
import koala4j.io.safetensors.TensorEntry;
import koala4j.io.torchbin.WeightFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Lists the tensors of a safetensors or torch.save (.bin) file, a model folder (sharded or not) or a whole diffusers
 * pipeline folder (each component's tensors prefixed with its subfolder), then the parameter count.
 */
@Command(mixinStandardHelpOptions = true, name = "inspect", description = "List tensors (name, dtype, shape) and count parameters.")
final class InspectCommand implements Callable<Integer> {

    @Parameters(paramLabel = "FILE_OR_FOLDER", description = "A .safetensors or .bin file, a model folder or a pipeline folder.")
    Path target;

    @Option(names = "--variant", description = "Weight variant to read in folders, e.g. fp16.")
    String variant;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        if (!Files.exists(target)) {
            throw new IllegalArgumentException(target + ": no such file or folder");
        }
        long parameters = 0;
        if (Files.isRegularFile(target) && target.getFileName().toString().endsWith(".safetensors")) {
            try (SafetensorsFile file = SafetensorsFile.open(target)) {
                parameters += print(out, "", file.entries());
            }
        } else if (Files.isRegularFile(target)) {
            try (WeightFiles file = WeightFiles.open(target, variant)) {
                parameters += print(out, "", entries(file));
            }
        } else if (Files.isRegularFile(target.resolve("model_index.json"))) {
            List<Path> components = components(target);
            if (components.isEmpty()) {
                throw new IllegalArgumentException(target + ": model_index.json found but no subfolder holds weights");
            }
            for (Path component : components) {
                try (WeightFiles ckpt = WeightFiles.open(component, variant)) {
                    parameters += print(out, component.getFileName() + "/", entries(ckpt));
                }
            }
        } else {
            try (WeightFiles ckpt = WeightFiles.open(target, variant)) {
                parameters += print(out, "", entries(ckpt));
            }
        }
        out.println("parameters: " + parameters);
        return 0;
    }

    private static List<TensorEntry> entries(WeightFiles ckpt) {
        return ckpt.names().stream().sorted().map(ckpt::require).toList();
    }

    private static List<Path> components(Path pipeline) throws IOException {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(pipeline)) {
            for (Path dir : dirs.filter(Files::isDirectory).sorted().toList()) {
                try (Stream<Path> files = Files.list(dir)) {
                    if (files.anyMatch(f -> f.getFileName().toString().endsWith(".safetensors")
                            || f.getFileName().toString().endsWith(".safetensors.index.json")
                            || f.getFileName().toString().endsWith(".bin") || f.getFileName().toString().endsWith(".bin.index.json"))) {
                        out.add(dir);
                    }
                }
            }
        }
        return out;
    }

    private static long print(PrintWriter out, String prefix, List<TensorEntry> entries) {
        long count = 0;
        for (TensorEntry e : entries) {
            out.println(prefix + e.name() + "\t" + e.dtype() + "\t"
                    + Arrays.stream(e.shape()).mapToObj(Long::toString).collect(Collectors.joining(", ", "[", "]")));
            count += e.numel();
        }
        return count;
    }
}
