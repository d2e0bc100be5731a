package koala4j.io.hub;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes into the hub cache the way huggingface_hub's {@code hf_hub_download} does (file_download.py):
 * {@code blobs/<etag>} holds the bytes, {@code snapshots/<commit>/<path>} is a relative symlink to it,
 * {@code refs/<revision>} holds the commit, and {@code <cache>/.locks/models--org--name/<etag>.lock} serialises
 * writers of one blob across processes.
 *
 * <p>One addition of ours: {@code models--org--name/.koala4j/<commit>.files} keeps the repo's file list at that
 * commit (commits are immutable, so it never goes stale). It is what lets a later call decide, without asking the
 * hub, that every file matching its patterns is already present. huggingface_hub's cache scan ignores it.
 */
final class CacheStore {

    /** In-process guard per lock file: a FileLock only excludes other processes, and throws on overlap in this one. */
    private static final ConcurrentHashMap<Path, ReentrantLock> LOCAL_LOCKS = new ConcurrentHashMap<>();

    private final HubCache cache;

    CacheStore(HubCache cache) {
        this.cache = cache;
    }

    Path snapshotFolder(String repoId, String commit) {
        return cache.repoFolder(repoId).resolve("snapshots").resolve(commit);
    }

    Path blob(String repoId, String etag) {
        return cache.repoFolder(repoId).resolve("blobs").resolve(etag);
    }

    static Path partial(Path blob) {
        return blob.resolveSibling(blob.getFileName() + ".incomplete");
    }

    /** Writes {@code refs/<revision>} = commit (no newline, as huggingface_hub writes it) by rename, so readers never see half. */
    void writeRef(String repoId, String revision, String commit) {
        Path ref = cache.repoFolder(repoId).resolve("refs").resolve(revision);
        try {
            if (Files.isRegularFile(ref) && Files.readString(ref).trim().equals(commit)) {
                return;
            }
            writeAtomically(ref, commit);
        } catch (IOException e) {
            throw new HubException("cannot write " + ref + " (commit " + commit + "): " + e.getMessage(), e);
        }
    }

    void writeFileList(String repoId, String commit, List<String> files) {
        Path list = fileList(repoId, commit);
        try {
            writeAtomically(list, String.join("\n", files) + "\n");
        } catch (IOException e) {
            throw new HubException("cannot write the file list " + list + ": " + e.getMessage(), e);
        }
    }

    /** The file list saved for this commit, each name re-checked; empty when none was saved or it is unreadable. */
    Optional<List<String>> readFileList(String repoId, String commit) {
        Path list = fileList(repoId, commit);
        if (!Files.isRegularFile(list)) {
            return Optional.empty();
        }
        try {
            List<String> files = new ArrayList<>();
            for (String line : Files.readAllLines(list, StandardCharsets.UTF_8)) {
                if (!line.isEmpty()) {
                    files.add(RepoPath.check(line, list.toString()));
                }
            }
            return Optional.of(files);
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private Path fileList(String repoId, String commit) {
        return cache.repoFolder(repoId).resolve(".koala4j").resolve(commit + ".files");
    }

    /**
     * Points {@code target} (in a snapshot folder) at {@code blob}: a relative symlink as huggingface_hub's
     * {@code _create_symlink} makes, else a hard link, else a copy (file systems without symlinks, e.g. Windows without
     * developer mode). A hard link comes before the copy because weights are gigabytes.
     */
    static void link(Path target, Path blob, boolean symlinks) {
        try {
            Files.createDirectories(target.getParent());
            Files.deleteIfExists(target);   // a dangling link whose blob was deleted by a cache cleaner
            if (symlinks) {
                try {
                    Files.createSymbolicLink(target, target.getParent().relativize(blob));
                    return;
                } catch (UnsupportedOperationException | FileSystemException e) {
                    // fall through to the hard link
                }
            }
            try {
                Files.createLink(target, blob);
                return;
            } catch (UnsupportedOperationException | FileSystemException e) {
                // fall through to the copy
            }
            Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
            Files.copy(blob, tmp, StandardCopyOption.REPLACE_EXISTING);
            move(tmp, target);
        } catch (IOException e) {
            throw new HubException("cannot place " + blob + " at " + target + ": " + e.getMessage(), e);
        }
    }

    /** Holds the lock for writing one blob; closing releases it. */
    BlobLock lock(String repoId, String etag) {
        Path file = cache.root().resolve(".locks").resolve(HubCache.folderName(repoId)).resolve(etag + ".lock");
        ReentrantLock local = LOCAL_LOCKS.computeIfAbsent(file.toAbsolutePath().normalize(), k -> new ReentrantLock());
        local.lock();
        try {
            Files.createDirectories(file.getParent());
            FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            try {
                return new BlobLock(local, channel, channel.lock());
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            local.unlock();
            throw new HubException("cannot lock " + file + " for downloading blob " + etag + ": " + e.getMessage(), e);
        }
    }

    record BlobLock(ReentrantLock local, FileChannel channel, FileLock lock) implements AutoCloseable {
        @Override
        public void close() {
            try {
                lock.release();
                channel.close();
            } catch (IOException e) {
                // the OS drops the lock with the channel anyway; nothing useful to report
            } finally {
                local.unlock();
            }
        }
    }

    static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static void writeAtomically(Path file, String text) throws IOException {
        Files.createDirectories(file.getParent());
        Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            move(tmp, file);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
