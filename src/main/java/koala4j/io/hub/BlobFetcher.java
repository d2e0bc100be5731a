package koala4j.io.hub;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpHeaders;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Fetches one file of a repo into {@code blobs/<etag>}, following huggingface_hub's {@code hf_hub_download} and
 * {@code http_get} (file_download.py) with one change: there is no HEAD request first. The GET's own headers name the
 * blob: on the hub's origin, X-Linked-Etag (LFS files, sent on the 302 to the CDN) else ETag, and X-Repo-Commit the
 * commit; a CDN's ETag is ignored. Knowing the blob before the CDN is contacted is what lets the CDN request carry
 * {@code Range: bytes=<n>-} to resume {@code blobs/<etag>.incomplete}; a file served directly costs one extra
 * request when, and only when, there is something to resume.
 *
 * <p>A body cut short or stalled (no byte for {@code timeout}) keeps its bytes in the .incomplete file and is
 * retried from there up to {@link #ATTEMPTS} times in all, as http_get does; a 200 answer to a Range request (a server
 * that ignores Range) restarts the file from byte 0. The finished size must equal the announced one.
 */
final class BlobFetcher {

    static final int ATTEMPTS = 5;

    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)");

    private final HubHttp http;
    private final CacheStore store;
    private final Duration timeout;

    BlobFetcher(HubHttp http, CacheStore store, Duration timeout) {
        this.http = http;
        this.store = store;
        this.timeout = timeout;
    }

    /** The blob and the commit the hub said it belongs to (absent when the server sent no X-Repo-Commit). */
    record Fetched(Path blob, Optional<String> commit) {
    }

    /** What the hub's own responses said about the file; later hub hops override earlier ones. */
    private record Metadata(Optional<String> linkedEtag, Optional<String> etag, Optional<String> commit,
            OptionalLong linkedSize) {
        static final Metadata NONE = new Metadata(Optional.empty(), Optional.empty(), Optional.empty(),
                OptionalLong.empty());

        Metadata update(HttpHeaders h, String where) {
            Optional<String> linked = h.firstValue("X-Linked-Etag").map(v -> RepoPath.etag(v, where));
            Optional<String> plain = h.firstValue("ETag").map(v -> RepoPath.etag(v, where));
            Optional<String> c = h.firstValue("X-Repo-Commit").map(v -> RepoPath.commit(v.strip(), where));
            OptionalLong size = h.firstValueAsLong("X-Linked-Size");
            return new Metadata(linked.or(() -> linkedEtag), plain.or(() -> etag), c.or(() -> commit),
                    size.isPresent() ? size : linkedSize);
        }

        Optional<String> blobName() {
            return linkedEtag.or(() -> etag);
        }
    }

    /** A body that ended early or stalled; its bytes are kept and the next attempt resumes. */
    private static final class Cut extends Exception {
        /** The blob being written, so the next attempt can ask for the rest at once; null until known. */
        final String etag;

        Cut(String message, Throwable cause, String etag) {
            super(message, cause);
            this.etag = etag;
        }
    }

    Fetched fetch(String repoId, URI url, String file, HubClient.Progress progress) {
        Cut last = null;
        for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
            try {
                return attempt(repoId, url, file, progress, last == null ? null : last.etag);
            } catch (Cut cut) {
                last = cut;
                if (attempt < ATTEMPTS) {
                    pause(attempt);
                }
            }
        }
        throw new HubException("downloading " + file + " of " + repoId + " from " + url + " failed " + ATTEMPTS
                + " times, last: " + last.getMessage() + "; the bytes received are kept under "
                + store.blob(repoId, "x").getParent() + " and the next run resumes them", last);
    }

    /** One try; {@code knownEtag} is the blob a previous try of this call was writing, or null. */
    private Fetched attempt(String repoId, URI url, String file, HubClient.Progress progress, String knownEtag)
            throws Cut {
        String what = "file " + file + " of " + repoId;
        URI uri = url;
        Metadata meta = Metadata.NONE;
        // A retry asks for the rest at once. Should the server now name another blob (a branch moved), the 206 will
        // not match that blob's partial file and the file restarts from 0 (see the Content-Range check below).
        long rangeStart = knownEtag == null ? 0 : size(CacheStore.partial(store.blob(repoId, knownEtag)));
        boolean resumeTried = rangeStart > 0;
        for (int hop = 0; hop <= HubHttp.MAX_REDIRECTS; hop++) {
            HttpResponse<InputStream> response = http.get(uri, rangeStart);
            try (InputStream body = response.body()) {
                int status = response.statusCode();
                if (http.isHub(uri)) {
                    meta = meta.update(response.headers(), uri.toString());
                }
                if (HubHttp.isRedirect(status)) {
                    uri = HubHttp.redirectTarget(uri, response);
                    if (meta.blobName().isPresent()) {
                        Path blob = store.blob(repoId, meta.blobName().get());
                        if (Files.isRegularFile(blob)) {
                            return new Fetched(blob, meta.commit());
                        }
                        rangeStart = size(CacheStore.partial(blob));
                    }
                    continue;
                }
                if (status == 416) {
                    // Range not satisfiable: our partial file is not a prefix of this blob; start over.
                    meta.blobName().ifPresent(e -> deletePartial(store.blob(repoId, e)));
                    rangeStart = 0;
                    resumeTried = true;
                    continue;
                }
                if (status != 200 && status != 206) {
                    throw http.error(response, uri, what);
                }
                String etag = meta.blobName().orElseThrow(() -> new HubException(url + " sent neither X-Linked-Etag nor"
                        + " ETag for " + what + ", so the blob cannot be named; expected one of them from the hub"
                        + " at " + http.endpoint()));
                Path blob = store.blob(repoId, etag);
                if (Files.isRegularFile(blob)) {
                    return new Fetched(blob, meta.commit());
                }
                try (CacheStore.BlobLock _ = store.lock(repoId, etag)) {
                    if (Files.isRegularFile(blob)) {
                        return new Fetched(blob, meta.commit());   // another process finished it while we waited
                    }
                    Path part = CacheStore.partial(blob);
                    long have = size(part);
                    if (status == 200 && have > 0 && rangeStart == 0 && !resumeTried) {
                        resumeTried = true;                          // learnt the blob only now: ask again for the rest
                        rangeStart = have;
                        continue;
                    }
                    long start = 0;
                    long total = response.headers().firstValueAsLong("Content-Length").orElse(-1);
                    if (status == 206) {
                        Matcher m = CONTENT_RANGE.matcher(response.headers().firstValue("Content-Range").orElse(""));
                        if (!m.matches() || Long.parseLong(m.group(1)) != have) {
                            deletePartial(blob);                     // not the range we hold: start over
                            rangeStart = 0;
                            resumeTried = true;
                            continue;
                        }
                        start = have;
                        total = m.group(3).equals("*") ? (total < 0 ? -1 : start + total) : Long.parseLong(m.group(3));
                    }
                    if (total < 0 && meta.linkedSize().isPresent()) {
                        total = meta.linkedSize().getAsLong();
                    }
                    try {
                        write(body, part, start, total, file, progress, uri);
                    } catch (Cut cut) {
                        throw new Cut(cut.getMessage(), cut.getCause(), etag);
                    }
                    CacheStore.move(part, blob);
                    progress.done(file);
                    return new Fetched(blob, meta.commit());
                }
            } catch (IOException e) {
                throw new HubException("cannot store " + what + " under " + store.blob(repoId, "x").getParent() + ": "
                        + e.getMessage(), e);
            }
        }
        throw new HubException("more than " + HubHttp.MAX_REDIRECTS + " redirects for " + what + " starting at " + url);
    }

    /** Streams {@code body} into {@code part} from byte {@code start}; {@code total} is the expected final size or -1. */
    private void write(InputStream body, Path part, long start, long total, String file, HubClient.Progress progress,
            URI uri) throws Cut, IOException {
        progress.start(file, total);
        if (start > 0) {
            progress.advance(start);
        }
        Files.createDirectories(part.getParent());
        long size;
        try (FileChannel out = FileChannel.open(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                HubHttp.Watchdog watchdog = new HubHttp.Watchdog(body, timeout)) {
            out.truncate(start);
            out.position(start);
            byte[] buffer = new byte[1 << 20];
            try {
                int n;
                while ((n = body.read(buffer)) >= 0) {
                    ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
                    while (chunk.hasRemaining()) {
                        out.write(chunk);
                    }
                    watchdog.alive();
                    progress.advance(n);
                }
            } catch (IOException e) {
                String why = watchdog.fired() ? "no data for " + timeout.toSeconds() + " s" : e.toString();
                throw new Cut(uri + " stopped after " + out.size() + " of " + (total < 0 ? "?" : total) + " bytes ("
                        + why + ")", e, null);
            }
            size = out.size();
        }
        if (total >= 0 && size < total) {
            throw new Cut(uri + " ended after " + size + " of " + total + " bytes", null, null);
        }
        if (total >= 0 && size > total) {
            Files.deleteIfExists(part);
            throw new HubException(uri + " sent " + size + " bytes for " + file + ", expected " + total
                    + " (Content-Length); the partial file was deleted");
        }
    }

    private static long size(Path file) {
        try {
            return Files.isRegularFile(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    private static void deletePartial(Path blob) {
        try {
            Files.deleteIfExists(CacheStore.partial(blob));
        } catch (IOException e) {
            throw new HubException("cannot delete " + CacheStore.partial(blob) + ": " + e.getMessage(), e);
        }
    }

    private static void pause(int attempt) {
        try {
            Thread.sleep(100L * attempt);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubException("interrupted while waiting to resume a download", e);
        }
    }
}
