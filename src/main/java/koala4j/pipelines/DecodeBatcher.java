package koala4j.pipelines;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaForCausalLM;

/**
 * Continuous batching of concurrent generations on one model: every generation thread hands its decoding step (its
 * new token and its own KV cache) to {@link #step}; the steps that are waiting when the model is free run as one
 * {@link LlamaForCausalLM#decodeStep}, so each weight is read once for all of them instead of once per
 * conversation. Generations inside their decoding loop hold a {@link Seat}: when the model is free and some seated
 * generations have not asked for their next step yet (they are choosing their last token), the waiting steps wait
 * for them at most half a batch's time (the last batch's, at least {@code patience}), since a step that misses a
 * batch waits a whole one for the next; without that, two groups that once missed each other would take turns
 * for good, each batch half full (4 generations: 2 steps a batch instead of 4). A step of no seated generation, or
 * a lone seated one, runs at once (alone it is {@link LlamaForCausalLM#forwardIds}, exactly the unbatched path).
 * Generations join and leave between steps (prompts are computed by their own threads, outside the batcher).
 * Thread-safe.
 */
public final class DecodeBatcher {

    /** Steps per batch at most (the Q8_0 kernels share a weight row between 4 input rows at a time). */
    public static final int DEFAULT_MAX_BATCH = 8;

    /** The shortest wait for seated stragglers: scheduling noise, not a model's step, sets it for tiny models. */
    public static final Duration DEFAULT_PATIENCE = Duration.ofMillis(1);

    private final LlamaForCausalLM model;
    private final int maxBatch;
    private final long patienceNanos;
    private int seated;
    private long lastBatchNanos;
    /** While seated steps are missing: when the free model stops waiting for them; 0 when not gathering. */
    private long gatherUntil;
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
        this(model, maxBatch, DEFAULT_PATIENCE);
    }

    /** With {@code patience}, the shortest wait of a free model for seated generations' missing steps. */
    public DecodeBatcher(LlamaForCausalLM model, int maxBatch, Duration patience) {
        if (maxBatch < 1) {
            throw new IllegalArgumentException("decode batch of at most " + maxBatch + " steps: expected at least 1");
        }
        if (patience.isNegative()) {
            throw new IllegalArgumentException("decode batch patience " + patience + ": expected zero or more");
        }
        this.model = model;
        this.maxBatch = maxBatch;
        this.patienceNanos = patience.toNanos();
    }

    /**
     * A generation's place among those that decode now, from its first decoding step to its last: the batcher waits
     * (briefly) for the next step of every seated generation before it runs a batch. Close it when the loop ends.
     */
    public final class Seat implements AutoCloseable {
        private boolean open = true;

        private Seat() {
        }

        @Override
        public void close() {
            synchronized (DecodeBatcher.this) {
                if (open) {
                    open = false;
                    seated--;
                    DecodeBatcher.this.notifyAll();
                }
            }
        }
    }

    /** Takes a seat for a generation about to decode; see {@link Seat}. */
    public synchronized Seat seat() {
        seated++;
        return new Seat();
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
            notifyAll();
            while (true) {
                if (mine.done) {
                    return result(mine);
                }
                long gathering = running ? 0 : gather();
                if (!running && gathering == 0) {
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
                    if (running) {
                        wait();
                    } else {
                        TimeUnit.NANOSECONDS.timedWait(this, gathering);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    waiting.remove(mine);
                    throw new IllegalStateException("interrupted while waiting for a decoding step", e);
                }
            }
        }
        RuntimeException failure = null;
        float[][] rows = new float[batch.size()][];
        long t0 = System.nanoTime();
        try {
            rows = compute(batch);
        } catch (RuntimeException e) {
            failure = e;
        }
        long took = System.nanoTime() - t0;
        synchronized (this) {
            lastBatchNanos = took;
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

    /**
     * Nanoseconds the free model should still wait for seated generations' steps, 0 to run the waiting ones now:
     * when every seated generation (up to a batch) is waiting, or the wait for the missing ones is over.
     */
    private long gather() {
        if (waiting.size() >= Math.min(seated, maxBatch)) {
            gatherUntil = 0;
            return 0;
        }
        long now = System.nanoTime();
        if (gatherUntil == 0) {
            gatherUntil = now + Math.max(patienceNanos, lastBatchNanos / 2);
        }
        long left = gatherUntil - now;
        if (left <= 0) {
            gatherUntil = 0;
        }
        return Math.max(left, 0);
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
