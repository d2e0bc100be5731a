package koala4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

import koala4j.io.hub.HubCache;
import koala4j.pipelines.ModelCatalog;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** Known model ids, which of them are in the local hub cache, and model folders found under {@code --dir}. */
@Command(mixinStandardHelpOptions = true, name = "models", description = "List known model ids, the local Hugging Face cache and local model folders.")
final class ModelsCommand implements Callable<Integer> {

    @Option(names = "--dir", description = "Also list model folders (with model_index.json or config.json) under DIR.")
    List<Path> dirs = List.of();

    @Spec
    CommandSpec spec;

    @ParentCommand
    Main parent;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        HubCache cache = HubCache.fromEnvironment(parent.env);
        List<HubCache.CachedRepo> cached = cache.list();
        out.println("Known models (hub id, family, task; * = in the local cache " + cache.root() + "):");
        for (ModelCatalog.Entry e : ModelCatalog.entries()) {
            boolean local = cached.stream().anyMatch(c -> c.repoId().equalsIgnoreCase(e.id()) && c.mainSnapshot().isPresent());
            out.printf("  %s %-42s %-16s %-14s %s%n", local ? "*" : " ", e.id(), e.family(),
                    e.task().name().toLowerCase(java.util.Locale.ROOT), e.description());
        }
        out.println("Local hub cache: " + (cached.isEmpty() ? "(empty)" : cached.size() + " repos"));
        for (HubCache.CachedRepo repo : cached) {
            out.println("  " + repo.repoId() + "\t" + repo.mainSnapshot().map(Path::toString).orElse("(no snapshot for refs/main)"));
        }
        for (Path dir : dirs) {
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException("--dir " + dir + ": not a folder");
            }
            out.println("Model folders under " + dir + ":");
            try (Stream<Path> walk = Files.walk(dir, 3)) {
                walk.filter(p -> p.getFileName().toString().equals("model_index.json")
                                || p.getFileName().toString().equals("config.json") && !insidePipeline(p))
                        .sorted()
                        .forEach(p -> out.println("  " + p.getParent() + "\t"
                                + (p.getFileName().toString().equals("model_index.json") ? "pipeline" : "model")));
            }
        }
        return 0;
    }

    /** A component's config.json inside a pipeline folder is listed with its pipeline, not on its own. */
    private static boolean insidePipeline(Path config) {
        Path grandparent = config.getParent() == null ? null : config.getParent().getParent();
        return grandparent != null && Files.exists(grandparent.resolve("model_index.json"));
    }
}
