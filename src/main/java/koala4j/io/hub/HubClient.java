package koala4j.io.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Resolves a Hugging Face repo to a snapshot folder in the standard cache, downloading what is missing: what
 * huggingface_hub's {@code snapshot_download} (_snapshot_download.py) and {@code hf_hub_download} (file_download.py)
 * do, for model repos. The cache layout is theirs (see {@link CacheStore}), so folders written here are read by
 * diffusers and transformers and the other way round.
 *
 * <p>One policy differs: once {@code refs/<revision>} points at a snapshot holding every wanted file, that snapshot is
 * used without contacting the hub, where huggingface_hub asks the hub each time whether the branch moved. Pipelines
 * then start offline-fast; to pick up a newer commit, delete the refs file or pass a commit hash.
 *
 * <p>Several threads or processes may fetch into one cache: each blob is written under a lock. One client may be
 * shared between threads when its Progress may be (ConsoleProgress may not). Downloads within one call run one file
 * at a time.
 */
public final class HubClient {

    /**
     * @param endpoint HF_ENDPOINT, else https://huggingface.co (no trailing '/')
     * @param token    HF_TOKEN, else the token file (HF_TOKEN_PATH, else HF_HOME/token)
     * @param offline  HF_HUB_OFFLINE: never touch the network
     * @param cache    where snapshots live (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub)
     * @param timeout  HF_HUB_DOWNLOAD_TIMEOUT: connect, wait for headers, and longest silence within a body
     */
    public record Options(URI endpoint, Optional<String> token, boolean offline, HubCache cache, Duration timeout) {

        /** huggingface_hub's defaults (constants.py): ENDPOINT and HF_HUB_DOWNLOAD_TIMEOUT = 10 s. */
        public static final URI DEFAULT_ENDPOINT = URI.create("https://huggingface.co");
        public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

        public Options {
            Objects.requireNonNull(endpoint, "endpoint");
            Objects.requireNonNull(token, "token");
            Objects.requireNonNull(cache, "cache");
            Objects.requireNonNull(timeout, "timeout");
            String scheme = endpoint.getScheme() == null ? "" : endpoint.getScheme().toLowerCase(Locale.ROOT);
            if (!scheme.equals("http") && !scheme.equals("https") || endpoint.getHost() == null) {
                throw new IllegalArgumentException("hub endpoint '" + endpoint + "' is not an http(s) URL with a host;"
                        + " expected e.g. https://huggingface.co");
            }
            String text = endpoint.toString();
            if (text.endsWith("/")) {
                endpoint = URI.create(text.replaceAll("/+$", ""));
            }
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("hub timeout " + timeout + " must be positive");
            }
            token = token.map(String::strip).filter(t -> !t.isEmpty());
        }

        /** The options huggingface_hub would use in an environment with these variables (constants.py). */
        public static Options fromEnvironment(Map<String, String> env) {
            String endpointVar = nonBlank(env.get("HF_ENDPOINT"));
            URI endpoint;
            try {
                endpoint = endpointVar == null ? DEFAULT_ENDPOINT : URI.create(endpointVar.strip());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("HF_ENDPOINT='" + endpointVar + "' is not a URL", e);
            }
            Duration timeout = DEFAULT_TIMEOUT;
            String timeoutVar = nonBlank(env.get("HF_HUB_DOWNLOAD_TIMEOUT"));
            if (timeoutVar != null) {
                try {
                    timeout = Duration.ofMillis(Math.round(Double.parseDouble(timeoutVar.strip()) * 1000));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("HF_HUB_DOWNLOAD_TIMEOUT='" + timeoutVar
                            + "' is not a number of seconds", e);
                }
            }
            String offlineVar = nonBlank(env.get("HF_HUB_OFFLINE"));
            if (offlineVar == null) {
                offlineVar = nonBlank(env.get("TRANSFORMERS_OFFLINE"));    // huggingface_hub honours it as a fallback
            }
            boolean offline = offlineVar != null
                    && Set.of("1", "ON", "YES", "TRUE").contains(offlineVar.strip().toUpperCase(Locale.ROOT));
            return new Options(endpoint, token(env), offline, HubCache.fromEnvironment(env), timeout);
        }

        /** huggingface_hub's {@code get_token} order: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file. */
        private static Optional<String> token(Map<String, String> env) {
            for (String name : List.of("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")) {
                String value = nonBlank(env.get(name));
                if (value != null) {
                    return Optional.of(value.strip());
                }
            }
            String tokenPath = nonBlank(env.get("HF_TOKEN_PATH"));
            Path file = tokenPath != null ? Path.of(tokenPath) : hfHome(env).resolve("token");
            try {
                return Files.isRegularFile(file)
                        ? Optional.of(Files.readString(file, StandardCharsets.UTF_8).strip()).filter(t -> !t.isEmpty())
                        : Optional.empty();
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read the hub token file " + file + ": " + e.getMessage(), e);
            }
        }

        private static Path hfHome(Map<String, String> env) {
            String home = nonBlank(env.get("HF_HOME"));
            if (home != null) {
                return Path.of(home);
            }
            String xdg = nonBlank(env.get("XDG_CACHE_HOME"));
            return (xdg != null ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache")).resolve("huggingface");
        }

        private static String nonBlank(String s) {
            return s == null || s.isBlank() ? null : s;
        }
    }

    /** Download progress of one file at a time; {@link #advance} gets byte counts since the last call. */
    public interface Progress {
        void start(String file, long totalBytes);   // totalBytes: -1 when unknown

        void advance(long bytes);

        void done(String file);

        Progress NONE = new Progress() {
            @Override
            public void start(String file, long totalBytes) {
            }

            @Override
            public void advance(long bytes) {
            }

            @Override
            public void done(String file) {
            }
        };
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Options options;
    private final Progress progress;
    private final CacheStore store;
    private final HubHttp http;
    private final BlobFetcher fetcher;
    private final boolean symlinks;

    public HubClient(Options options, Progress progress) {
        this(options, progress, true);
    }

    /** {@code symlinks=false} places snapshot files as hard links or copies (tests the fallback on any platform). */
    HubClient(Options options, Progress progress, boolean symlinks) {
        this.options = Objects.requireNonNull(options, "options");
        this.progress = Objects.requireNonNull(progress, "progress");
        this.store = new CacheStore(options.cache());
        this.http = new HubHttp(options);
        this.fetcher = new BlobFetcher(http, store, options.timeout());
        this.symlinks = symlinks;
    }

    public Options options() {
        return options;
    }

    /**
     * Folder with the listed files of repoId at revision (default "main"), downloading what is missing. Patterns are
     * globs like "unet/*.safetensors", "*.json", "tokenizer/*" with fnmatch rules ('*' crosses '/'); {@code null} or
     * an empty list means every file.
     */
    public Path snapshot(String repoId, String revision, List<String> allowPatterns) {
        String rev = checkArguments(repoId, revision);
        Glob wanted = Glob.anyOf(allowPatterns);
        Optional<String> cachedCommit = options.cache().commit(repoId, rev);
        if (cachedCommit.isPresent()) {
            Path folder = store.snapshotFolder(repoId, cachedCommit.get());
            Optional<List<String>> files = store.readFileList(repoId, cachedCommit.get());
            if (Files.isDirectory(folder)) {
                if (files.isPresent() && missing(folder, files.get(), wanted).isEmpty()) {
                    return folder;
                }
                if (files.isPresent() && !options.offline()) {
                    // the commit's file list is known (and immutable): fetch what is missing without listing again
                    for (String file : missing(folder, files.get(), wanted)) {
                        place(repoId, cachedCommit.get(), file, folder);
                    }
                    return folder;
                }
                if (options.offline()) {
                    if (files.isEmpty()) {
                        return folder;                   // written by another tool: its contents are all we have
                    }
                    throw new HubException(repoId + " at revision " + rev + " is in the cache at " + folder
                            + " but lacks " + missing(folder, files.get(), wanted) + ", and HF_HUB_OFFLINE is set so"
                            + " nothing is downloaded; unset HF_HUB_OFFLINE to fetch them");
                }
            }
        }
        if (options.offline()) {
            throw notCached(repoId, rev, "model");
        }
        // 1. which commit, and which files it has (HfApi.repo_info -> GET /api/models/{repo_id}/revision/{revision})
        URI listingUrl = URI.create(options.endpoint() + "/api/models/" + repoId + "/revision/" + encode(rev, false));
        String where = listingUrl.toString();
        JsonNode listing;
        try {
            listing = JSON.readTree(http.getText(listingUrl, "repo " + repoId + " at revision " + rev));
        } catch (IOException e) {
            throw new HubException(where + " did not answer JSON: " + e.getMessage(), e);
        }
        String commit = RepoPath.commit(listing.path("sha").isTextual() ? listing.path("sha").asText() : null,
                where + " (field \"sha\")");
        JsonNode siblings = listing.path("siblings");
        if (!siblings.isArray()) {
            throw new HubException(where + " has no \"siblings\" array; found " + siblings.getNodeType());
        }
        List<String> files = new ArrayList<>();
        for (JsonNode sibling : siblings) {
            JsonNode name = sibling.path("rfilename");
            if (!name.isTextual()) {
                throw new HubException(where + " lists a sibling without a text \"rfilename\": " + sibling);
            }
            // Every name is checked, wanted or not: a server that sends one path escaping the repo is not trusted.
            files.add(RepoPath.check(name.asText(), where));
        }
        // 2. record what we learnt, then fetch the wanted files by commit so a moving branch cannot mix revisions
        Path folder = store.snapshotFolder(repoId, commit);
        try {
            Files.createDirectories(folder);
        } catch (IOException e) {
            throw new HubException("cannot create the snapshot folder " + folder + ": " + e.getMessage(), e);
        }
        store.writeFileList(repoId, commit, files);
        if (!rev.equals(commit)) {
            store.writeRef(repoId, rev, commit);
        }
        for (String file : files) {
            if (wanted.matches(file)) {
                place(repoId, commit, file, folder);
            }
        }
        return folder;
    }

    /** One file; returns its path in the snapshot folder. */
    public Path file(String repoId, String revision, String path) {
        String rev = checkArguments(repoId, revision);
        RepoPath.check(path, "the caller");
        Optional<Path> cached = options.cache().commit(repoId, rev)
                .map(c -> RepoPath.inside(store.snapshotFolder(repoId, c), path, "the caller"))
                .filter(Files::isRegularFile);
        if (cached.isPresent()) {
            return cached.get();
        }
        if (options.offline()) {
            throw notCached(repoId, rev, "file " + path + " of");
        }
        BlobFetcher.Fetched fetched = fetcher.fetch(repoId, resolveUrl(repoId, rev, path), path, progress);
        String commit = fetched.commit().orElseGet(() -> {
            if (RepoPath.COMMIT.matcher(rev).matches()) {
                return rev;
            }
            throw new HubException(resolveUrl(repoId, rev, path) + " sent no X-Repo-Commit header, so " + path
                    + " cannot be placed in a snapshot folder; expected the commit that revision " + rev + " names");
        });
        Path target = RepoPath.inside(store.snapshotFolder(repoId, commit), path, "the caller");
        CacheStore.link(target, fetched.blob(), symlinks);
        if (!rev.equals(commit)) {
            store.writeRef(repoId, rev, commit);
        }
        return target;
    }

    private void place(String repoId, String commit, String file, Path folder) {
        Path target = RepoPath.inside(folder, file, "the listing of " + repoId);
        if (Files.isRegularFile(target)) {                      // follows the link: a dangling one is refetched
            return;
        }
        BlobFetcher.Fetched fetched = fetcher.fetch(repoId, resolveUrl(repoId, commit, file), file, progress);
        CacheStore.link(target, fetched.blob(), symlinks);
    }

    private static List<String> missing(Path folder, List<String> files, Glob wanted) {
        return files.stream().filter(wanted::matches).filter(f -> !Files.isRegularFile(folder.resolve(f))).toList();
    }

    private HubException notCached(String repoId, String rev, String what) {
        return new HubException(what + " " + repoId + " at revision " + rev + " is not in the cache, and HF_HUB_OFFLINE"
                + " is set so the hub is not asked (looked in " + options.cache().repoFolder(repoId) + "); unset"
                + " HF_HUB_OFFLINE to download it, or pass a local folder");
    }

    private static String checkArguments(String repoId, String revision) {
        if (!HubCache.isRepoId(repoId)) {
            throw new HubException("'" + repoId + "' is not a hub repo id; expected org/name (letters, digits, '-',"
                    + " '_', '.')");
        }
        try {
            return HubCache.checkRevision(revision);
        } catch (IllegalArgumentException e) {
            throw new HubException(e.getMessage(), e);
        }
    }

    /** {@code {endpoint}/{repo_id}/resolve/{revision}/{path}} as huggingface_hub's {@code hf_hub_url} quotes it. */
    private URI resolveUrl(String repoId, String revision, String path) {
        return URI.create(options.endpoint() + "/" + repoId + "/resolve/" + encode(revision, false) + "/"
                + encode(path, true));
    }

    /** Python's {@code urllib.parse.quote}: UTF-8 percent-encoding of all but unreserved characters (and '/' if kept). */
    static String encode(String text, boolean keepSlash) {
        StringBuilder out = new StringBuilder();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            boolean plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
                    || c == '-' || c == '_' || c == '.' || c == '~' || keepSlash && c == '/';
            if (plain) {
                out.append((char) c);
            } else {
                out.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
            }
        }
        return out.toString();
    }
}
