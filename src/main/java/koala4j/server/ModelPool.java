package koala4j.server;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import koala4j.pipelines.TextToImage;

/**
 * Local pipelines, loaded on first use, shared by every request, evicted least-recently-used when loading another
 * would exceed the memory budget. A model's size is the bytes of its weight files (per folder its safetensors, else
 * its PyTorch .bin files; weights stay in their mmap'ed files; activations come and go per request). Only models no request is using are evicted; when every
 * resident model is in use, the new one loads anyway and the budget is restored as they are released.
 */
final class ModelPool implements AutoCloseable {

    @FunctionalInterface
    interface Loader {
        TextToImage load(String id, Path folder);
    }

    private static final class Entry {
        final String id;
        final long bytes;
        final CompletableFuture<TextToImage> pipeline = new CompletableFuture<>();
        int users;

        Entry(String id, long bytes) {
            this.id = id;
            this.bytes = bytes;
        }
    }

    /** A model in use; closing it lets the pool evict the model again. */
    final class Lease implements AutoCloseable {
        private final Entry entry;
        private final TextToImage pipeline;
        private boolean closed;

        Lease(Entry entry, TextToImage pipeline) {
            this.entry = entry;
            this.pipeline = pipeline;
        }

        TextToImage pipeline() {
            return pipeline;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                release(entry);
            }
        }
    }

    private final long budgetBytes;
    private final Loader loader;
    private final Metrics metrics;
    /** Access order: the first entry is the least recently used. */
    private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);

    ModelPool(long budgetBytes, Loader loader, Metrics metrics) {
        this.budgetBytes = budgetBytes;
        this.loader = loader;
        this.metrics = metrics;
        metrics.modelGauges(this::loadedCount, this::residentBytes);
    }

    /** The pipeline of {@code id} from {@code folder}, loading it (once, whoever asks first) if it is not resident. */
    Lease acquire(String id, Path folder) {
        Entry entry;
        boolean load = false;
        List<TextToImage> evicted;
        synchronized (this) {
            entry = entries.get(id);
            if (entry == null) {
                entry = new Entry(id, weightBytes(folder));
                evicted = evictFor(entry.bytes);
                entries.put(id, entry);
                load = true;
            } else {
                evicted = List.of();
            }
            entry.users++;
        }
        evicted.forEach(TextToImage::close);
        if (load) {
            try {
                entry.pipeline.complete(loader.load(id, folder));
                metrics.modelLoaded();
            } catch (RuntimeException | Error e) {
                synchronized (this) {
                    entries.remove(id, entry);
                }
                entry.pipeline.completeExceptionally(e);
            }
        }
        try {
            return new Lease(entry, entry.pipeline.join());
        } catch (CompletionException e) {
            release(entry);
            throw e.getCause() instanceof RuntimeException r ? r : e;
        }
    }

    private void release(Entry entry) {
        List<TextToImage> evicted;
        synchronized (this) {
            entry.users--;
            evicted = evictFor(0);
        }
        evicted.forEach(TextToImage::close);
    }

    /** Removes idle models, least recently used first, until {@code incoming} more bytes fit; returns them to close. */
    private List<TextToImage> evictFor(long incoming) {
        List<TextToImage> out = new ArrayList<>();
        long resident = residentBytesLocked();
        var it = entries.values().iterator();
        while (resident + incoming > budgetBytes && it.hasNext()) {
            Entry e = it.next();
            if (e.users == 0 && e.pipeline.isDone() && !e.pipeline.isCompletedExceptionally()) {
                it.remove();
                resident -= e.bytes;
                out.add(e.pipeline.join());
                metrics.modelEvicted();
            }
        }
        return out;
    }

    synchronized List<String> residentIds() {
        return List.copyOf(entries.keySet());
    }

    private synchronized long loadedCount() {
        return entries.values().stream().filter(e -> e.pipeline.isDone() && !e.pipeline.isCompletedExceptionally()).count();
    }

    private synchronized long residentBytes() {
        return residentBytesLocked();
    }

    private long residentBytesLocked() {
        return entries.values().stream().mapToLong(e -> e.bytes).sum();
    }

    /** Bytes of the weights under a pipeline folder ({@link koala4j.pipelines.PipelineFiles#checkpointBytes}). */
    static long weightBytes(Path folder) {
        return koala4j.pipelines.PipelineFiles.checkpointBytes(folder);
    }

    @Override
    public void close() {
        List<Entry> all;
        synchronized (this) {
            all = new ArrayList<>(entries.values());
            entries.clear();
        }
        for (Entry e : all) {
            if (e.pipeline.isDone() && !e.pipeline.isCompletedExceptionally()) {
                e.pipeline.join().close();
            }
        }
    }
}
