package koala4j.server;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;

/**
 * At most {@code max} chat models loaded at once ({@code serve --chat-max-loaded}, as Ollama's
 * OLLAMA_MAX_LOADED_MODELS) and at most {@code budget} bytes of their weights ({@code serve --chat-memory-budget},
 * each model counted by its estimate, {@link LazyModel#bytes}): before a model loads, the least recently used idle
 * ones unload until it fits; models answering a request stay (a model that does not fit beside them loads anyway),
 * and the surplus goes as they are released. Thread-safe.
 */
public final class ChatModelLimit {

    /** No limit: every model stays loaded once it is (the default). */
    public static final ChatModelLimit NONE = new ChatModelLimit(Integer.MAX_VALUE, Long.MAX_VALUE);

    private final int max;
    private final long budget;
    /** Loaded models and their bytes, least recently used first. */
    private final LinkedHashMap<LazyModel<?>, Long> loaded = new LinkedHashMap<>(16, 0.75f, true);

    private ChatModelLimit(int max, long budget) {
        this.max = max;
        this.budget = budget;
    }

    /** At most {@code max} chat models loaded at once; 0: no limit. */
    public static ChatModelLimit of(int max) {
        return of(max, 0);
    }

    /** At most {@code max} chat models (0: any number) and {@code budgetBytes} of their weights (0: any size). */
    public static ChatModelLimit of(int max, long budgetBytes) {
        if (max < 0) {
            throw new IllegalArgumentException("a limit of " + max + " loaded chat models, expected 0 (none) or more");
        }
        if (budgetBytes < 0) {
            throw new IllegalArgumentException("a chat memory budget of " + budgetBytes + " bytes, expected 0 (none) "
                    + "or more");
        }
        return max == 0 && budgetBytes == 0 ? NONE : new ChatModelLimit(max == 0 ? Integer.MAX_VALUE : max,
                budgetBytes == 0 ? Long.MAX_VALUE : budgetBytes);
    }

    int max() {
        return max;
    }

    /** The limit as serve's options state it, for logs. */
    String describe() {
        List<String> parts = new ArrayList<>();
        if (max != Integer.MAX_VALUE) {
            parts.add("--chat-max-loaded " + max);
        }
        if (budget != Long.MAX_VALUE) {
            parts.add(String.format(Locale.ROOT, "--chat-memory-budget %.2f GB", budget / 1e9));
        }
        return "serve " + String.join(" ", parts);
    }

    /**
     * {@code model} (not loaded, so not counted) is about to load: the idle models to unload first (least recently
     * used first, no longer counted) so that it fits beside the others, as far as idle ones can make room.
     */
    synchronized List<LazyModel<?>> room(LazyModel<?> model) {
        if (this == NONE) {
            return List.of();
        }
        long need = model.bytes();
        List<LazyModel<?>> out = new ArrayList<>();
        var it = loaded.keySet().iterator();
        while ((count(out) + 1 > max || bytes(out) + need > budget) && it.hasNext()) {
            LazyModel<?> m = it.next();
            if (m.idle()) {
                out.add(m);
            }
        }
        out.forEach(loaded::remove);
        return out;
    }

    /** {@code model} is loaded and in use: it becomes the most recently used; returns the models to unload. */
    synchronized List<LazyModel<?>> used(LazyModel<?> model) {
        if (this == NONE) {
            return List.of();
        }
        loaded.put(model, model.bytes());
        return surplus();
    }

    /** The idle models past the limits, least recently used first, no longer counted as loaded. */
    synchronized List<LazyModel<?>> surplus() {
        List<LazyModel<?>> out = new ArrayList<>();
        var it = loaded.keySet().iterator();
        while ((count(out) > max || bytes(out) > budget) && it.hasNext()) {
            LazyModel<?> m = it.next();
            if (m.idle()) {
                out.add(m);
            }
        }
        out.forEach(loaded::remove);
        return out;
    }

    /** Loaded models but {@code leaving}. */
    private int count(List<LazyModel<?>> leaving) {
        return loaded.size() - leaving.size();
    }

    /** Bytes of the loaded models but {@code leaving}. */
    private long bytes(List<LazyModel<?>> leaving) {
        long sum = 0;
        for (var e : loaded.entrySet()) {
            sum += leaving.contains(e.getKey()) ? 0 : e.getValue();
        }
        return sum;
    }
}
