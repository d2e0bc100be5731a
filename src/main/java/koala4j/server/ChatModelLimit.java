package koala4j.server;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * At most {@code max} chat models loaded at once ({@code serve --chat-max-loaded}, as Ollama's
 * OLLAMA_MAX_LOADED_MODELS): a model that comes into use past the limit makes the least recently used idle ones
 * unload; models answering a request stay, and the surplus goes as they are released. Thread-safe.
 */
public final class ChatModelLimit {

    /** No limit: every model stays loaded once it is (the default). */
    public static final ChatModelLimit NONE = new ChatModelLimit(Integer.MAX_VALUE);

    private final int max;
    /** Loaded models, least recently used first. */
    private final LinkedHashMap<LazyModel<?>, Boolean> loaded = new LinkedHashMap<>(16, 0.75f, true);

    private ChatModelLimit(int max) {
        this.max = max;
    }

    /** At most {@code max} chat models loaded at once; 0: no limit. */
    public static ChatModelLimit of(int max) {
        if (max < 0) {
            throw new IllegalArgumentException("a limit of " + max + " loaded chat models, expected 0 (none) or more");
        }
        return max == 0 ? NONE : new ChatModelLimit(max);
    }

    int max() {
        return max;
    }

    /** {@code model} is loaded and in use: it becomes the most recently used; returns the models to unload. */
    synchronized List<LazyModel<?>> used(LazyModel<?> model) {
        if (max == Integer.MAX_VALUE) {
            return List.of();
        }
        loaded.put(model, Boolean.TRUE);
        return surplus();
    }

    /** The idle models past the limit, least recently used first, no longer counted as loaded. */
    synchronized List<LazyModel<?>> surplus() {
        List<LazyModel<?>> out = new ArrayList<>();
        var it = loaded.keySet().iterator();
        while (loaded.size() - out.size() > max && it.hasNext()) {
            LazyModel<?> m = it.next();
            if (m.idle()) {
                out.add(m);
            }
        }
        out.forEach(loaded::remove);
        return out;
    }
}
