package koala4j.pipelines;

import java.util.ArrayList;
import java.util.List;

import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaForCausalLM;

/**
 * Continuous batching of concurrent generations on one model: every generation thread hands its decoding step (its
 * new token and its own KV cache) to {@link #step}; the steps that are waiting when the model is free run as one
 * {@link LlamaForCausalLM#decodeStep}, so each weight is read once for all of them instead of once per
 * conversation. No step waits for company: a step that finds the model free runs at once (alone, it is
 * {@link LlamaForCausalLM#forwardIds}, exactly the unbatched path); the steps that arrive while a batch computes
 * form the next one. Generations join and leave between steps (prompts are computed by their own threads, outside
 * the batcher). Thread-safe.
 */
public final class DecodeBatcher {

    /** Steps per batch at most (the Q8_0 kernels share a weight row between 4 input rows at a time). */
    public static final int DEFAULT_MAX_BATCH = 8;

    private final LlamaForCausalLM model;
    private final int maxBatch;
    private final List<Request> waiting = new ArrayList<>();
    private boolean running;
    private long batches;
    private long steps;
    private int largest;

    private static final class Request {
        final long id;
        final KvCache cache;
        float[] logits;
        RuntimeException error;
        boolean done;

        Request(long id, KvCache cache) {
            this.id = id;
            this.cache = cache;
        }
    }

    public DecodeBatcher(LlamaForCausalLM model, int maxBatch) {
        if (maxBatch < 1) {
            throw new IllegalArgumentException("decode batch of at most " + maxBatch + " steps: expected at least 1");
        }
        this.model = model;
        this.maxBatch = maxBatch;
    }

    /**
     * The logits [V] after {@code id} at position {@code cache.length()} of {@code cache} (a one-sequence cache,
     * advanced by one), computed with whatever other steps are waiting.
     */
    public float[] step(long id, KvCache cache) {
        // checked here, so that a step that cannot run fails alone instead of failing the batch it would join
        if (cache.batch() != 1 || cache.length() >= cache.capacity()) {
            throw new IllegalArgumentException("a decoding step for a KV cache of " + cache.batch() + " sequences at "
                    + cache.length() + " of " + cache.capacity() + " positions: expected one sequence with room");
        }
        Request mine = new Request(id, cache);
        List<Request> batch;
        synchronized (this) {
            waiting.add(mine);
            while (true) {
                if (mine.done) {
                    return result(mine);
                }
                if (!running) {
                    running = true;
                    batch = new ArrayList<>();
                    batch.add(mine);
                    waiting.remove(mine);
                    while (batch.size() < maxBatch && !waiting.isEmpty()) {
                        batch.add(waiting.removeFirst());
                    }
                    break;
                }
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    waiting.remove(mine);
                    throw new IllegalStateException("interrupted while waiting for a decoding step", e);
                }
            }
        }
        RuntimeException failure = null;
        float[][] rows = new float[batch.size()][];
        try {
            rows = compute(batch);
        } catch (RuntimeException e) {
            failure = e;
        }
        synchronized (this) {
            for (int i = 0; i < batch.size(); i++) {
                Request r = batch.get(i);
                r.logits = rows[i];
                r.error = failure;
                r.done = true;
            }
            batches++;
            steps += batch.size();
            largest = Math.max(largest, batch.size());
            running = false;
            notifyAll();
        }
        return result(mine);
    }

    private float[][] compute(List<Request> batch) {
        int s = batch.size();
        if (s == 1) {
            Request r = batch.getFirst();
            return new float[][] {model.forwardIds(model.ops().fromArray(new long[] {r.id}, 1, 1), r.cache, true)
                    .toFloatArray()};
        }
        long[] ids = new long[s];
        List<KvCache> caches = new ArrayList<>(s);
        for (int i = 0; i < s; i++) {
            ids[i] = batch.get(i).id;
            caches.add(batch.get(i).cache);
        }
        float[] all = model.decodeStep(ids, caches).toFloatArray();                          // [S, 1, V]
        int vocab = all.length / s;
        float[][] rows = new float[s][];
        for (int i = 0; i < s; i++) {
            rows[i] = java.util.Arrays.copyOfRange(all, i * vocab, (i + 1) * vocab);
        }
        return rows;
    }

    private static float[] result(Request r) {
        if (r.error != null) {
            throw r.error;
        }
        return r.logits;
    }

    /** Batches run, steps in them and the largest batch so far: how much sharing happened. */
    public synchronized Stats stats() {
        return new Stats(batches, steps, largest);
    }

    public record Stats(long batches, long steps, int largest) {
    }
}
