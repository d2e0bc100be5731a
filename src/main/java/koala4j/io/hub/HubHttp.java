package koala4j.io.hub;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;

/**
 * GET requests to the hub and to the CDN it redirects to, with huggingface_hub's rules (utils/_headers.py,
 * utils/_http.py): the token goes only to the endpoint's own origin, since an S3 presigned URL rejects a second
 * credential and the token must not leak to another host; redirects are followed by hand for that reason; an error
 * status becomes a HubException that says what to do, using the hub's X-Error-Code and X-Error-Message headers.
 */
final class HubHttp {

    static final int MAX_REDIRECTS = 10;

    private final HubClient.Options options;
    private final HttpClient client;

    HubHttp(HubClient.Options options) {
        this.options = options;
        this.client = HttpClient.newBuilder()
                .connectTimeout(options.timeout())
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
    }

    /**
     * One GET, no redirect followed; {@code rangeStart > 0} asks for the bytes from there on. The timeout covers the
     * connection and the wait for the response headers; the body has its own inactivity watchdog (see BlobFetcher).
     */
    HttpResponse<InputStream> get(URI uri, long rangeStart) {
        HttpRequest.Builder request = HttpRequest.newBuilder(uri).GET().timeout(options.timeout())
                .header("User-Agent", "koala4j; hf_hub-compatible")
                .header("Accept-Encoding", "identity");      // byte offsets for Range must be offsets into the file
        if (isHub(uri)) {
            options.token().ifPresent(t -> request.header("Authorization", "Bearer " + t));
        }
        if (rangeStart > 0) {
            request.header("Range", "bytes=" + rangeStart + "-");
        }
        try {
            return client.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
        } catch (HttpTimeoutException e) {
            throw new HubException("no answer from " + hostOf(uri) + " within " + options.timeout().toSeconds()
                    + " s for " + uri + " (hub endpoint " + options.endpoint() + "; raise HF_HUB_DOWNLOAD_TIMEOUT, or set"
                    + " HF_HUB_OFFLINE=1 to use only the cache at " + options.cache().root() + ")", e);
        } catch (IOException e) {
            String why = e instanceof ConnectException ? "cannot connect" : "network error";
            throw new HubException(why + " to " + hostOf(uri) + " for " + uri + " (hub endpoint " + options.endpoint()
                    + "): " + e + "; check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache at "
                    + options.cache().root(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubException("interrupted while requesting " + uri, e);
        }
    }

    /** GET that follows redirects and returns the whole body of a 200 as text (the repo listing). */
    String getText(URI uri, String what) {
        URI current = uri;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpResponse<InputStream> response = get(current, 0);
            try (InputStream body = response.body(); Watchdog watchdog = new Watchdog(body, options.timeout())) {
                if (isRedirect(response.statusCode())) {
                    current = redirectTarget(current, response);
                    continue;
                }
                if (response.statusCode() != 200) {
                    throw error(response, current, what);
                }
                ByteArrayOutputStream text = new ByteArrayOutputStream();
                byte[] chunk = new byte[64 << 10];
                for (int n; (n = body.read(chunk)) >= 0; ) {
                    text.write(chunk, 0, n);
                    watchdog.alive();
                }
                return text.toString(StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new HubException("reading " + what + " from " + current + " failed: " + e + " (hub endpoint "
                        + options.endpoint() + ")", e);
            }
        }
        throw new HubException("more than " + MAX_REDIRECTS + " redirects for " + what + " starting at " + uri);
    }

    URI endpoint() {
        return options.endpoint();
    }

    /** Whether {@code uri} is on the endpoint's origin (scheme, host, port): only there do the hub headers count. */
    boolean isHub(URI uri) {
        URI e = options.endpoint();
        return Objects.equals(lower(e.getScheme()), lower(uri.getScheme()))
                && Objects.equals(lower(e.getHost()), lower(uri.getHost()))
                && port(e) == port(uri);
    }

    static boolean isRedirect(int status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    }

    static URI redirectTarget(URI from, HttpResponse<?> response) {
        String location = response.headers().firstValue("Location").orElseThrow(() -> new HubException(
                from + " answered " + response.statusCode() + " without a Location header; expected a redirect target"));
        URI to;
        try {
            to = from.resolve(location);
        } catch (IllegalArgumentException e) {
            throw new HubException(from + " redirected to '" + location + "', which is not a URL", e);
        }
        String scheme = lower(to.getScheme());
        if (!"https".equals(scheme) && !"http".equals(scheme)) {
            throw new HubException(from + " redirected to '" + location + "'; expected an http(s) URL");
        }
        return to;
    }

    /**
     * The error for a status that is neither success nor redirect, as huggingface_hub's {@code hf_raise_for_status}
     * words it. The hub answers 401 (not 404) for a repo that does not exist when the request has no valid token, so
     * as not to reveal private repos; the message therefore covers both readings.
     */
    HubException error(HttpResponse<?> response, URI uri, String what) {
        int status = response.statusCode();
        HttpHeaders h = response.headers();
        String code = h.firstValue("X-Error-Code").orElse("");
        String serverSays = h.firstValue("X-Error-Message").map(m -> " The hub says: " + m).orElse("");
        String repoPage = " (" + uri + ")";
        if (!isHub(uri)) {
            // the CDN a file was redirected to: its 403 means an expired link, not a gated repo
            return new HubException(what + ": " + uri + ", where the hub at " + options.endpoint() + " redirected,"
                    + " answered HTTP " + status + ", expected 200 or 206; try again");
        }
        return switch (status) {
            case 401 -> new HubException("401 Unauthorized for " + what + repoPage + ": the repo does not exist, or it is"
                    + " private or gated and needs a token. " + (options.token().isPresent()
                            ? "The token that was sent (HF_TOKEN or HF_HOME/token) was refused; check that it is valid."
                            : "No token is set: set HF_TOKEN (or put one in HF_HOME/token), and for a gated repo accept"
                                    + " its terms on the hub first.") + serverSays);
            case 403 -> new HubException("403 Forbidden for " + what + repoPage + ": the repo is gated or private and this"
                    + " token may not read it. Accept the model's terms on its hub page with the account whose token is"
                    + " in HF_TOKEN (or HF_HOME/token), or use a token with read access." + serverSays);
            case 404 -> new HubException(switch (code) {
                case "EntryNotFound" -> what + " was not found (404): the repo has no such file at that revision";
                case "RevisionNotFound" -> what + " was not found (404): the repo has no such revision";
                case "RepoNotFound" -> what + " was not found (404): no such repo on " + options.endpoint();
                default -> what + " was not found (404): the repo or file does not exist on " + options.endpoint();
            } + repoPage + serverSays);
            default -> new HubException(what + ": " + uri + " answered HTTP " + status + ", expected 200" + serverSays);
        };
    }

    private static String hostOf(URI uri) {
        return uri.getScheme() + "://" + uri.getAuthority();
    }

    private static String lower(String s) {
        return s == null ? null : s.toLowerCase(Locale.ROOT);
    }

    private static int port(URI uri) {
        if (uri.getPort() >= 0) {
            return uri.getPort();
        }
        return "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
    }

    /** Closes a body that has gone quiet for {@code timeout}, since java.net.http has no read timeout for bodies. */
    static final class Watchdog implements AutoCloseable {
        private final Thread thread;
        private volatile long lastData = System.nanoTime();
        private volatile boolean fired;

        Watchdog(InputStream body, Duration timeout) {
            long limit = timeout.toNanos();
            long tick = Math.max(1, Math.min(1000, timeout.toMillis() / 4));
            thread = Thread.ofVirtual().name("hub-watchdog").start(() -> {
                try {
                    while (System.nanoTime() - lastData < limit) {
                        Thread.sleep(tick);
                    }
                    fired = true;
                    body.close();                    // unblocks the reader with an IOException
                } catch (InterruptedException | IOException e) {
                    // interrupted: the download ended first, which is the normal way out
                }
            });
        }

        void alive() {
            lastData = System.nanoTime();
        }

        boolean fired() {
            return fired;
        }

        @Override
        public void close() {
            thread.interrupt();
        }
    }
}
