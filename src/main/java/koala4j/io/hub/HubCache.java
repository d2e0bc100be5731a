package koala4j.io.hub;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The Hugging Face hub cache layout, as huggingface_hub writes it:
 * {@code <cache>/models--org--name/refs/main} holds a revision, whose files are under
 * {@code <cache>/models--org--name/snapshots/<revision>/}. The cache root follows huggingface_hub's rules:
 * HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub.
 */
public final class HubCache {

    /** A repo id as the hub spells it: {@code org/name}, letters, digits, '-', '_' and '.'. */
    private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*");

    /** One path segment of a revision or commit name. */
    private static final Pattern SEGMENT = Pattern.compile("[0-9A-Za-z_.-]+");

    private final Path root;

    public HubCache(Path root) {
        this.root = root;
    }

    /** The cache named by the environment (see class comment). */
    public static HubCache fromEnvironment(Map<String, String> env) {
        String hubCache = env.get("HF_HUB_CACHE");
        if (hubCache != null && !hubCache.isBlank()) {
            return new HubCache(Path.of(hubCache));
        }
        String home = env.get("HF_HOME");
        if (home != null && !home.isBlank()) {
            return new HubCache(Path.of(home, "hub"));
        }
        String xdg = env.get("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return new HubCache(base.resolve("huggingface").resolve("hub"));
    }

    public Path root() {
        return root;
    }

    public static boolean isRepoId(String text) {
        return text != null && REPO_ID.matcher(text).matches() && !text.contains("..");
    }

    /** {@code models--org--name}. */
    public static String folderName(String repoId) {
        if (!isRepoId(repoId)) {
            throw new IllegalArgumentException("'" + repoId + "' is not a hub repo id (expected org/name)");
        }
        return "models--" + repoId.replace("/", "--");
    }

    /** {@code <root>/models--org--name}: where this repo's refs, blobs and snapshots live (it may not exist yet). */
    public Path repoFolder(String repoId) {
        return root.resolve(folderName(repoId));
    }

    /**
     * {@code revision}, defaulting to "main", if it can name a refs file: a branch or tag name, a commit hash, or a
     * nested ref such as {@code refs/pr/1} (huggingface_hub stores it at {@code refs/refs/pr/1}). Segments are
     * letters, digits, '_', '-' and '.', never "." or "..".
     */
    public static String checkRevision(String revision) {
        String rev = revision == null ? "main" : revision;
        boolean ok = !rev.isEmpty();
        for (String segment : rev.split("/", -1)) {
            ok &= SEGMENT.matcher(segment).matches() && !segment.equals(".") && !segment.equals("..");
        }
        if (!ok) {
            throw new IllegalArgumentException("revision '" + rev + "' is not a branch name, tag, ref or commit hash");
        }
        return rev;
    }

    /**
     * The commit that {@code revision} names in this cache: the content of {@code refs/<revision>}, or the revision
     * itself when it is a single segment (a commit hash has no refs file). Empty when the refs file is unreadable or
     * holds something that cannot name a snapshot folder.
     */
    public Optional<String> commit(String repoId, String revision) {
        String rev = checkRevision(revision);
        Path ref = repoFolder(repoId).resolve("refs").resolve(rev);
        String commit;
        try {
            commit = Files.isRegularFile(ref) ? Files.readString(ref).trim() : rev;
        } catch (IOException e) {
            return Optional.empty();
        }
        boolean usable = SEGMENT.matcher(commit).matches() && !commit.equals(".") && !commit.equals("..");
        return usable ? Optional.of(commit) : Optional.empty();
    }

    /** The snapshot folder of {@code repoId} at {@code revision} (a branch name with a refs file, or a commit hash). */
    public Optional<Path> snapshot(String repoId, String revision) {
        return commit(repoId, revision)
                .map(c -> repoFolder(repoId).resolve("snapshots").resolve(c))
                .filter(Files::isDirectory);
    }

    /** A repo found in the cache, with the snapshot {@code refs/main} points at (if any). */
    public record CachedRepo(String repoId, Path folder, Optional<Path> mainSnapshot) {
    }

    /** Every model repo in the cache, sorted by id; an absent cache gives an empty list. */
    public List<CachedRepo> list() {
        List<CachedRepo> out = new ArrayList<>();
        if (!Files.isDirectory(root)) {
            return out;
        }
        try (Stream<Path> entries = Files.list(root)) {
            for (Path dir : entries.sorted().toList()) {
                String name = dir.getFileName().toString();
                if (!name.startsWith("models--") || !Files.isDirectory(dir)) {
                    continue;
                }
                String[] parts = name.substring("models--".length()).split("--", 2);
                if (parts.length != 2) {
                    continue;
                }
                String id = parts[0] + "/" + parts[1];
                out.add(new CachedRepo(id, dir, isRepoId(id) ? snapshot(id, "main") : Optional.empty()));
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list the hub cache " + root + ": " + e.getMessage(), e);
        }
        return out;
    }
}
