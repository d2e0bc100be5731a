package koala4j.io.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A stand-in for huggingface.co on 127.0.0.1 serving one model repo through the real endpoints, plus a second server
 * (another origin) playing the CDN that LFS files redirect to:
 * <ul>
 *   <li>{@code GET /api/models/{repo}/revision/{rev}} → {@code {"id", "sha", "siblings":[{"rfilename"}]}};</li>
 *   <li>{@code GET /{repo}/resolve/{rev}/{path}} → a small file: 200 with ETag = git blob sha1 and X-Repo-Commit;
 *       an LFS file: 302 to the CDN with X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit and a pointer ETag;</li>
 *   <li>CDN {@code GET /blobs/{sha256}} → the bytes, with an ETag of its own that clients must ignore.</li>
 * </ul>
 * Both honour {@code Range: bytes=n-} with 206 unless told to ignore it. Every request is logged.
 */
public final class FakeHub implements AutoCloseable {

    static final String REPO = "koala-test/tiny-pipe";
    public static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";

    public record Request(String server, String path, String range, String authorization) {
    }

    public final List<Request> requests = new CopyOnWriteArrayList<>();
    final Map<String, byte[]> files = new LinkedHashMap<>();
    final Set<String> lfs = ConcurrentHashMap.newKeySet();
    /** Paths whose next response sends only half its body and then drops the connection. */
    final Set<String> cutOnce = ConcurrentHashMap.newKeySet();
    /** Paths whose every response sends half its body and then drops the connection. */
    final Set<String> cutAlways = ConcurrentHashMap.newKeySet();
    /** Paths whose next response sends half its body and then goes silent for {@link #stallMillis}. */
    final Set<String> stallOnce = ConcurrentHashMap.newKeySet();
    volatile long stallMillis = 3000;
    static final long CUT_GRACE_MILLIS = 100;
    volatile boolean ignoreRange;
    /** When set, the hub answers 401 without an Authorization header and 403 with a different token. */
    volatile String requiredToken;
    /** When set, the listing names these files instead of the real ones. */
    volatile List<String> listingOverride;
    /** When set, small files are served with this ETag header instead of their git sha1. */
    volatile String etagOverride;

    private final HttpServer hub;
    private final HttpServer cdn;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();

    public FakeHub() throws IOException {
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        hub = HttpServer.create(loopback, 0);
        cdn = HttpServer.create(loopback, 0);
        hub.createContext("/", this::hub);
        cdn.createContext("/", this::cdn);
        hub.setExecutor(executor);
        cdn.setExecutor(executor);
        hub.start();
        cdn.start();
    }

    /** The default repo: a pipeline-shaped tree with two LFS weight files. */
    static FakeHub withTinyPipeline() throws IOException {
        FakeHub f = new FakeHub();
        f.add("model_index.json", "{\"_class_name\": \"StableDiffusionXLPipeline\"}", false);
        f.add("unet/config.json", "{\"in_channels\": 4}", false);
        f.add("unet/diffusion_pytorch_model.safetensors", bytes(40_000, 1), true);
        f.add("vae/config.json", "{\"latent_channels\": 4}", false);
        f.add("vae/diffusion_pytorch_model.safetensors", bytes(30_000, 2), true);
        f.add("text_encoder/config.json", "{\"hidden_size\": 32}", false);
        f.add("text_encoder/model.safetensors", bytes(20_000, 3), true);
        f.add("README.md", "# tiny", false);
        f.add(".gitattributes", "*.safetensors filter=lfs", false);
        return f;
    }

    void add(String path, String text, boolean isLfs) {
        add(path, text.getBytes(StandardCharsets.UTF_8), isLfs);
    }

    public void add(String path, byte[] content, boolean isLfs) {
        files.put(path, content);
        if (isLfs) {
            lfs.add(path);
        }
    }

    static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + seed * 17 + (i >> 7));
        }
        return b;
    }

    public URI endpoint() {
        return URI.create("http://127.0.0.1:" + hub.getAddress().getPort());
    }

    /** The blob name the client must use: sha256 for LFS files, the git blob sha1 otherwise. */
    String etag(String path) {
        byte[] content = files.get(path);
        if (lfs.contains(path)) {
            return hex("SHA-256", content);
        }
        byte[] header = ("blob " + content.length + "\0").getBytes(StandardCharsets.UTF_8);
        byte[] all = new byte[header.length + content.length];
        System.arraycopy(header, 0, all, 0, header.length);
        System.arraycopy(content, 0, all, header.length, content.length);
        return hex("SHA-1", all);
    }

    List<Request> requestsTo(String server) {
        return requests.stream().filter(r -> r.server().equals(server)).toList();
    }

    List<Request> resolveRequests() {
        return requests.stream().filter(r -> r.path().contains("/resolve/")).toList();
    }

    private static final Pattern LISTING = Pattern.compile("/api/models/([^/]+/[^/]+)/revision/(.+)");
    private static final Pattern RESOLVE = Pattern.compile("/([^/]+/[^/]+)/resolve/([^/]+)/(.+)");

    private void hub(HttpExchange ex) throws IOException {
        String rawPath = ex.getRequestURI().getRawPath();
        log("hub", ex, rawPath);
        try {
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            if (requiredToken != null && auth == null) {
                error(ex, 401, "RepoNotFound", "Invalid credentials in Authorization header");
                return;
            }
            if (requiredToken != null && !auth.equals("Bearer " + requiredToken)) {
                error(ex, 403, "GatedRepo", "Access to model " + REPO + " is restricted.");
                return;
            }
            Matcher listing = LISTING.matcher(rawPath);
            Matcher resolve = RESOLVE.matcher(rawPath);
            if (listing.matches()) {
                if (!listing.group(1).equals(REPO)) {
                    error(ex, 404, "RepoNotFound", "Repository not found");
                } else if (!isKnownRevision(decode(listing.group(2)))) {
                    error(ex, 404, "RevisionNotFound", "Invalid rev id: " + decode(listing.group(2)));
                } else {
                    send(ex, 200, listingJson().getBytes(StandardCharsets.UTF_8), "application/json");
                }
            } else if (resolve.matches()) {
                String path = decode(resolve.group(3));
                if (!resolve.group(1).equals(REPO)) {
                    error(ex, 404, "RepoNotFound", "Repository not found");
                } else if (!isKnownRevision(decode(resolve.group(2)))) {
                    error(ex, 404, "RevisionNotFound", "Invalid rev id");
                } else if (!files.containsKey(path)) {
                    error(ex, 404, "EntryNotFound", path + " does not exist on \"main\"");
                } else if (lfs.contains(path)) {
                    ex.getResponseHeaders().set("X-Repo-Commit", COMMIT);
                    ex.getResponseHeaders().set("X-Linked-Etag", "\"" + etag(path) + "\"");
                    ex.getResponseHeaders().set("X-Linked-Size", Integer.toString(files.get(path).length));
                    ex.getResponseHeaders().set("ETag", "\"pointer-" + etag(path).substring(0, 12) + "\"");
                    ex.getResponseHeaders().set("Location", "http://127.0.0.1:" + cdn.getAddress().getPort()
                            + "/blobs/" + etag(path) + "?name=" + path.replace('/', '_'));
                    ex.sendResponseHeaders(302, -1);
                } else {
                    ex.getResponseHeaders().set("X-Repo-Commit", COMMIT);
                    ex.getResponseHeaders().set("ETag", etagOverride != null ? etagOverride : "\"" + etag(path) + "\"");
                    serveBytes(ex, path);
                }
            } else {
                error(ex, 404, "", "no route " + rawPath);
            }
        } finally {
            closeQuietly(ex);
        }
    }

    private void cdn(HttpExchange ex) throws IOException {
        String rawPath = ex.getRequestURI().getRawPath();
        log("cdn", ex, rawPath);
        try {
            String sha = rawPath.substring(rawPath.lastIndexOf('/') + 1);
            String path = files.keySet().stream().filter(p -> lfs.contains(p) && etag(p).equals(sha)).findFirst()
                    .orElse(null);
            if (path == null) {
                error(ex, 404, "", "no blob " + sha);
                return;
            }
            ex.getResponseHeaders().set("ETag", "\"cdn-etag-must-be-ignored\"");
            serveBytes(ex, path);
        } finally {
            closeQuietly(ex);
        }
    }

    /** Closing a fixed-length body with bytes missing throws, which is the point of a cut response. */
    private static void closeQuietly(HttpExchange ex) {
        try {
            ex.close();
        } catch (RuntimeException e) {
            // expected after cutOnce/stallOnce
        }
    }

    /** 200 or 206 per the Range header, cut short or stalled when the test asked for it. */
    private void serveBytes(HttpExchange ex, String path) throws IOException {
        byte[] content = files.get(path);
        String range = ex.getRequestHeaders().getFirst("Range");
        int from = 0;
        int status = 200;
        if (range != null && !ignoreRange) {
            Matcher m = Pattern.compile("bytes=(\\d+)-").matcher(range);
            if (!m.matches()) {
                error(ex, 400, "", "unsupported range " + range);
                return;
            }
            from = Integer.parseInt(m.group(1));
            if (from >= content.length) {
                ex.getResponseHeaders().set("Content-Range", "bytes */" + content.length);
                ex.sendResponseHeaders(416, -1);
                return;
            }
            status = 206;
            ex.getResponseHeaders().set("Content-Range",
                    "bytes " + from + "-" + (content.length - 1) + "/" + content.length);
        }
        int length = content.length - from;
        ex.sendResponseHeaders(status, length);
        OutputStream body = ex.getResponseBody();
        if (cutOnce.remove(path) || cutAlways.contains(path)) {
            body.write(content, from, length / 2);
            body.flush();
            // let the client take in what was written first: dropped at once, the JDK client sometimes reported the
            // cut before handing over the last bytes (about one run in eight: a resume from 16271 instead of 20000)
            pause(CUT_GRACE_MILLIS);
            return;           // closing the exchange with bytes missing drops the connection
        }
        if (stallOnce.remove(path)) {
            body.write(content, from, length / 2);
            body.flush();
            pause(stallMillis);
            return;
        }
        body.write(content, from, length);
    }

    private static void pause(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private String listingJson() {
        List<String> names = listingOverride != null ? listingOverride : List.copyOf(files.keySet());
        StringBuilder json = new StringBuilder("{\"id\": \"" + REPO + "\", \"sha\": \"" + COMMIT + "\", \"siblings\": [");
        for (int i = 0; i < names.size(); i++) {
            json.append(i == 0 ? "" : ", ").append("{\"rfilename\": \"")
                    .append(names.get(i).replace("\\", "\\\\").replace("\"", "\\\"")).append("\"}");
        }
        return json.append("]}").toString();
    }

    private static boolean isKnownRevision(String rev) {
        return rev.equals("main") || rev.equals(COMMIT);
    }

    private static void error(HttpExchange ex, int status, String code, String message) throws IOException {
        if (!code.isEmpty()) {
            ex.getResponseHeaders().set("X-Error-Code", code);
        }
        ex.getResponseHeaders().set("X-Error-Message", message);
        send(ex, status, ("{\"error\": \"" + message.replace("\"", "'") + "\"}").getBytes(StandardCharsets.UTF_8),
                "application/json");
    }

    private static void send(HttpExchange ex, int status, byte[] body, String type) throws IOException {
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, body.length);
        ex.getResponseBody().write(body);
    }

    private void log(String server, HttpExchange ex, String rawPath) {
        requests.add(new Request(server, rawPath, ex.getRequestHeaders().getFirst("Range"),
                ex.getRequestHeaders().getFirst("Authorization")));
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    private static String hex(String algorithm, byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance(algorithm).digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(algorithm + " missing from the JDK", e);
        }
    }

    @Override
    public void close() {
        hub.stop(0);
        cdn.stop(0);
        executor.shutdownNow();
    }
}
