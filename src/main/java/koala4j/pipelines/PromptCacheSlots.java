package koala4j.pipelines;

import java.util.Arrays;

import koala4j.models.llama.LlamaForCausalLM;

/**
 * Several {@link TextGeneration.PromptCache}s for one model, so that more than one conversation resumes where it
 * left off (llama.cpp's server slots). A reply whose prompt contains a slot's whole previous prompt continues that
 * conversation and takes its slot (the one sharing most, if several). Any other reply takes an empty slot, else the
 * least recently used free one (whose conversation it replaces), and starts from the longest prefix any free slot
 * shares with it (a common system prompt or image), copied into its own slot so that the other conversation keeps
 * its cache. With every slot in use a reply runs without a cache. Each slot holds one KV cache sized for its last
 * reply, so memory grows with the number of slots. Thread-safe.
 */
final class PromptCacheSlots {

    /** A slot taken by one reply until {@link #release}. */
    record Lease(int slot, TextGeneration.PromptCache cache) {
    }

    private final TextGeneration.PromptCache[] caches;
    private final boolean[] busy;
    private final long[] lastUse;
    private long clock;

    PromptCacheSlots(int slots) {
        if (slots < 1) {
            throw new IllegalArgumentException("prompt cache slots " + slots + ": expected at least 1");
        }
        caches = new TextGeneration.PromptCache[slots];
        for (int i = 0; i < slots; i++) {
            caches[i] = new TextGeneration.PromptCache();
        }
        busy = new boolean[slots];
        lastUse = new long[slots];
    }

    /**
     * The slot for a prompt of these embedding rows, or null when all are taken. {@code model} and {@code capacity}
     * (prompt plus new tokens) size the KV cache when another slot's prefix is copied in.
     */
    synchronized Lease acquire(float[][] promptRows, LlamaForCausalLM model, int capacity) {
        int[] shared = new int[caches.length];
        int continued = -1;
        int source = -1;
        for (int i = 0; i < caches.length; i++) {
            if (busy[i]) {
                continue;
            }
            shared[i] = caches[i].sharedPrefix(promptRows, caches[i].reusable(model, promptRows.length));
            if (caches[i].length() > 0 && shared[i] >= caches[i].promptLength()
                    && (continued < 0 || shared[i] > shared[continued])) {
                continued = i;
            }
            if (shared[i] > 0 && (source < 0 || shared[i] > shared[source])) {
                source = i;
            }
        }
        if (continued >= 0) {
            return take(continued);
        }
        int target = -1;
        for (int i = 0; i < caches.length; i++) {
            if (busy[i]) {
                continue;
            }
            boolean empty = caches[i].length() == 0;
            boolean targetEmpty = target >= 0 && caches[target].length() == 0;
            if (target < 0 || empty && !targetEmpty || empty == targetEmpty && lastUse[i] < lastUse[target]) {
                target = i;
            }
        }
        if (target < 0) {
            return null;
        }
        if (source >= 0 && source != target) {
            caches[target].forkFrom(caches[source], shared[source], model, capacity);
        }
        return take(target);
    }

    private Lease take(int slot) {
        busy[slot] = true;
        return new Lease(slot, caches[slot]);
    }

    synchronized void release(Lease lease) {
        busy[lease.slot()] = false;
        lastUse[lease.slot()] = ++clock;
        notifyAll();
    }

    /** Waits for the slots in use, then forgets every cached conversation and frees their KV caches. */
    synchronized void clear() {
        while (anyBusy()) {
            try {
                wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting to clear the prompt caches", e);
            }
        }
        for (TextGeneration.PromptCache cache : caches) {
            cache.clear();
        }
        Arrays.fill(lastUse, 0);
    }

    private boolean anyBusy() {
        for (boolean b : busy) {
            if (b) {
                return true;
            }
        }
        return false;
    }
}
