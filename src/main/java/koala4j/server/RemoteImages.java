package koala4j.server;

import java.io.IOException;
import java.io.InputStream;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.Locale;
import java.util.Set;

/**
 * Downloads the http(s) {@code image_url} of a chat request when the server allows it
 * ({@link ServerConfig.ImageUrls}). Guarded the way a server exposed to clients must be: http and https only, no
 * redirects (a redirect could lead past the address check), {@link #MAX_BYTES} at most, a timeout, an image media
 * type, and under {@code PUBLIC} every address the host resolves to must be public. The name is resolved for the
 * check and again by the HTTP client, so a DNS answer that changes in between is not caught: use {@code NONE} where
 * that matters. Every refusal is a 400 naming the field.
 */
final class RemoteImages {

    static final int MAX_BYTES = 20 << 20;
    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    private static final Set<String> TYPES = Set.of("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp");
    private static final HttpClient HTTP = HttpClient.newBuilder()
            .followRedirects(HttpClient.Redirect.NEVER)
            .connectTimeout(Duration.ofSeconds(5))
            .build();

    private RemoteImages() {
    }

    static ChatModel.ImagePart fetch(String url, ServerConfig.ImageUrls policy, String field) {
        URI uri;
        try {
            uri = new URI(url);
        } catch (URISyntaxException e) {
            throw ApiError.invalid(field, field + ": not a valid URL (" + e.getReason() + "): " + ImageRequests.quote(url));
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https") || uri.getHost() == null) {
            throw ApiError.invalid(field, field + ": expected an http or https URL with a host, got "
                    + ImageRequests.quote(url));
        }
        if (policy == ServerConfig.ImageUrls.PUBLIC) {
            checkPublic(uri.getHost(), field);
        }
        HttpRequest request = HttpRequest.newBuilder(uri).timeout(TIMEOUT).header("Accept", "image/*").GET().build();
        HttpResponse<InputStream> response;
        try {
            response = HTTP.send(request, HttpResponse.BodyHandlers.ofInputStream());
        } catch (HttpTimeoutException e) {
            throw ApiError.invalid(field, field + ": no answer from " + uri.getHost() + " within " + TIMEOUT.toSeconds()
                    + " s");
        } catch (IOException e) {
            throw ApiError.invalid(field, field + ": could not download " + ImageRequests.quote(url) + " ("
                    + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ApiError.invalid(field, field + ": interrupted while downloading " + ImageRequests.quote(url));
        }
        try (InputStream body = response.body()) {
            int status = response.statusCode();
            if (status != 200) {
                throw ApiError.invalid(field, field + ": " + ImageRequests.quote(url) + " answered HTTP " + status
                        + (status / 100 == 3 ? " (redirects are not followed)" : "") + ", expected 200 with an image");
            }
            String type = response.headers().firstValue("Content-Type").orElse("")
                    .split(";", 2)[0].strip().toLowerCase(Locale.ROOT);
            if (!TYPES.contains(type)) {
                throw ApiError.invalid(field, field + ": " + ImageRequests.quote(url) + " is of type "
                        + ImageRequests.quote(type) + ", expected one of " + TYPES);
            }
            long declared = response.headers().firstValueAsLong("Content-Length").orElse(-1);
            if (declared > MAX_BYTES) {
                throw tooLarge(field, url);
            }
            byte[] bytes = body.readNBytes(MAX_BYTES + 1);
            if (bytes.length > MAX_BYTES) {
                throw tooLarge(field, url);
            }
            return new ChatModel.ImagePart(type, bytes);
        } catch (IOException e) {
            throw ApiError.invalid(field, field + ": the download of " + ImageRequests.quote(url) + " broke off ("
                    + e.getMessage() + ")");
        }
    }

    private static ApiError tooLarge(String field, String url) {
        return ApiError.invalid(field, field + ": " + ImageRequests.quote(url) + " is larger than " + (MAX_BYTES >> 20)
                + " MB");
    }

    private static void checkPublic(String host, String field) {
        InetAddress[] addresses;
        try {
            addresses = InetAddress.getAllByName(host);
        } catch (UnknownHostException e) {
            throw ApiError.invalid(field, field + ": unknown host " + ImageRequests.quote(host));
        }
        for (InetAddress a : addresses) {
            if (!isPublic(a)) {
                throw ApiError.invalid(field, field + ": host " + ImageRequests.quote(host) + " resolves to "
                        + a.getHostAddress() + ", which is not a public address (this server fetches public hosts only:"
                        + " --image-urls public)");
            }
        }
    }

    /** Not loopback, unspecified, link-local, private (RFC 1918, IPv6 unique-local), carrier-grade NAT or multicast. */
    static boolean isPublic(InetAddress a) {
        if (a.isAnyLocalAddress() || a.isLoopbackAddress() || a.isLinkLocalAddress() || a.isSiteLocalAddress()
                || a.isMulticastAddress()) {
            return false;
        }
        byte[] b = a.getAddress();
        if (a instanceof Inet6Address) {
            return (b[0] & 0xFE) != 0xFC;                                   // fc00::/7
        }
        int first = b[0] & 0xFF;
        int second = b[1] & 0xFF;
        return first != 0 && !(first == 100 && second >= 64 && second < 128);   // 0.0.0.0/8, 100.64.0.0/10
    }
}
