package koala4j.server;

import java.nio.file.Path;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model loaded on its first request and then shared. A model that cannot be loaded is the server's problem:
 * the client gets 503, the reason (with server paths) goes to the log, and the next request tries again.
 */
final class LazyModel<T> {

    private static final Logger LOG = LoggerFactory.getLogger(LazyModel.class);

    private final String id;
    private final Path folder;
    private final Supplier<T> loader;
    private volatile T value;

    LazyModel(String id, Path folder, Supplier<T> loader) {
        this.id = id;
        this.folder = folder;
        this.loader = loader;
    }

    /** The model if it is loaded, else null (without loading it). */
    T peek() {
        return value;
    }

    T get() {
        T v = value;
        if (v == null) {
            synchronized (this) {
                v = value;
                if (v == null) {
                    v = load();
                    value = v;
                }
            }
        }
        return v;
    }

    private T load() {
        try {
            return loader.get();
        } catch (RuntimeException e) {
            LOG.error("chat model {} ({}) could not be loaded: {}", id, folder, e.getMessage());
            throw ApiError.unavailable("model", "the model '" + id + "' could not be loaded (the reason is in the"
                    + " server's log)");
        }
    }
}
