package koala4j.server;

import java.nio.file.Path;
import java.util.List;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model loaded on its first request and then shared by the requests that {@link #lease} it. A model that cannot be
 * loaded is the server's problem: the client gets 503, the reason (with server paths) goes to the log, and the next
 * request tries again. Under a {@link ChatModelLimit} an idle model may be unloaded (closed) to make room for
 * another (before that one loads); its next request loads it again.
 */
final class LazyModel<T extends AutoCloseable> {

    private static final Logger LOG = LoggerFactory.getLogger(LazyModel.class);

    private final String id;
    private final Path folder;
    private final Supplier<T> loader;
    private final ChatModelLimit limit;
    private final java.util.function.LongSupplier estimate;
    private volatile long bytes = -1;
    private volatile T value;
    /** Requests holding a lease; guarded by {@code state}, which is never held while a model loads. */
    private int users;
    private final Object state = new Object();

    LazyModel(String id, Path folder, Supplier<T> loader, ChatModelLimit limit) {
        this(id, folder, loader, limit, () -> 0);
    }

    /** {@code estimate}: the bytes the loaded model holds, as a memory budget counts it (asked once, when needed). */
    LazyModel(String id, Path folder, Supplier<T> loader, ChatModelLimit limit,
              java.util.function.LongSupplier estimate) {
        this.id = id;
        this.folder = folder;
        this.loader = loader;
        this.limit = limit;
        this.estimate = estimate;
    }

    /** The bytes the model holds once loaded, estimated before it loads (0 when unknown). */
    long bytes() {
        long b = bytes;
        if (b < 0) {
            try {
                b = Math.max(0, estimate.getAsLong());
            } catch (RuntimeException e) {
                LOG.warn("chat model {}: no size estimate ({}); counted as 0 bytes", id, e.getMessage());
                b = 0;
            }
            bytes = b;
        }
        return b;
    }

    /** The model if it is loaded, else null (without loading it). */
    T peek() {
        return value;
    }

    /** The model, loaded if it is not, held until the lease is closed (it is not unloaded meanwhile). */
    Lease lease() {
        T v;
        synchronized (state) {
            users++;
            v = value;
        }
        try {
            if (v == null) {
                unload(limit.room(this));              // before it loads, so that the budget is never exceeded
                v = get();
            }
        } catch (RuntimeException | Error e) {
            release();
            throw e;
        }
        unload(limit.used(this));
        return new Lease(v);
    }

    /** A model in use; closing it lets a limit unload the model again. */
    final class Lease implements AutoCloseable {
        private final T model;
        private boolean closed;

        private Lease(T model) {
            this.model = model;
        }

        T model() {
            return model;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                release();
            }
        }
    }

    boolean idle() {
        synchronized (state) {
            return users == 0;
        }
    }

    private void release() {
        synchronized (state) {
            users--;
        }
        unload(limit.surplus());
    }

    private static void unload(List<LazyModel<?>> models) {
        for (LazyModel<?> m : models) {
            m.unloadIfIdle();
        }
    }

    /** Closes the model unless a request took it meanwhile. */
    private void unloadIfIdle() {
        T v;
        synchronized (state) {
            v = value;
            if (users > 0 || v == null) {
                return;
            }
            value = null;
        }
        try {
            v.close();
            LOG.info("chat model {} unloaded ({})", id, limit.describe());
        } catch (Exception e) {
            LOG.warn("chat model {} did not close cleanly: {}", id, e.toString());
        }
    }

    /** Loads the model once, whoever asks first (the others wait for it). */
    private synchronized T get() {
        T v = value;
        if (v == null) {
            v = load();
            value = v;
        }
        return v;
    }

    private T load() {
        try {
            return loader.get();
        } catch (RuntimeException e) {
            LOG.error("chat model {} ({}) could not be loaded: {}", id, folder, e.getMessage());
            ApiError unavailable = ApiError.unavailable("model", "the model '" + id + "' could not be loaded (the reason"
                    + " is in the server's log)");
            unavailable.initCause(e);                              // for serve --chat-preload's one-line error
            throw unavailable;
        }
    }
}
