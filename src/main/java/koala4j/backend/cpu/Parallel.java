package koala4j.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Splits loops over the CPU backend's worker threads. The pool size comes from the backend's configuration
 * ({@code KOALA4J_THREADS}, else all cores) and is fixed for the life of the backend.
 *
 * <p>The calling thread works too: it publishes a job, takes chunks from a shared counter alongside
 * {@code threads() - 1} helper threads, and waits only for the chunks still in progress when the counter runs out.
 * An idle helper polls for the next job for {@link #SPIN_NANOS} before it parks (unless there are more threads than
 * cores), as llama.cpp's thread pool does:
 * decoding issues a few hundred products of about a millisecond each per token, and waking parked threads for each
 * one (three wake-ups per call with a fork-join pool whose caller only waits) cost about 140 µs a call on this
 * project's 2-core VM, which held 26 MB Q8_0 products to 25-31 GB/s where one long product streams at 40-44.
 *
 * <p>One caller at a time uses the helpers; a call made while another thread's job runs goes to a fork-join pool of
 * the same size instead, and a call from inside a job's body runs inline (no nested fan-out). Thread-safe.
 */
public final class Parallel {

    /** A body that handles indices {@code [from, to)}. */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    /** How long an idle helper (or a caller waiting for the last chunks) polls before it parks. */
    static final long SPIN_NANOS = 1_000_000;

    private static final int THREADS = configuredThreads();
    /** No polling when there are more threads than cores: a polling thread would hold a core a worker needs. */
    private static final long SPIN = THREADS <= Runtime.getRuntime().availableProcessors() ? SPIN_NANOS : 0;
    /** Numbers the threads: a fork-join worker's pool index is not assigned yet when the factory names it. */
    private static final AtomicInteger WORKERS = new AtomicInteger();
    /** Held by the one caller whose job the helpers run. */
    private static final ReentrantLock GATE = new ReentrantLock();
    private static final Helper[] HELPERS = startHelpers();
    /** The job in progress, or null. */
    private static volatile Job current;
    /** For callers that find the helpers busy; started on first use. */
    private static volatile ForkJoinPool fallback;

    private Parallel() {
    }

    static int configuredThreads() {
        String env = System.getProperty("koala4j.threads", System.getenv("KOALA4J_THREADS"));
        if (env != null && !env.isBlank()) {
            try {
                int n = Integer.parseInt(env.trim());
                if (n >= 1) {
                    return n;
                }
            } catch (NumberFormatException ignored) {
                // fall through to the message below
            }
            throw new IllegalArgumentException("KOALA4J_THREADS=" + env + ": expected a whole number >= 1");
        }
        return Runtime.getRuntime().availableProcessors();
    }

    public static int threads() {
        return THREADS;
    }

    /**
     * Runs {@code body} over {@code [0, n)} in chunks of at least {@code grain} indices, on all worker threads.
     * Runs inline when the work is one chunk or when already inside a parallel body (no nested fan-out). An
     * exception thrown by the body reaches the caller once every chunk already started has finished; chunks not
     * started by then are skipped.
     */
    public static void forRange(int n, int grain, Range body) {
        if (n <= 0) {
            return;
        }
        int g = Math.max(1, grain);
        int chunks = Math.min(THREADS * 4, (n + g - 1) / g);
        if (chunks <= 1 || THREADS == 1 || insideBody()) {
            body.run(0, n);
            return;
        }
        if (!GATE.tryLock()) {
            fallbackPool().invoke(new Chunk(body, n, chunks, 0, chunks));
            return;
        }
        try {
            Job job = new Job(body, n, chunks);
            current = job;
            for (Helper h : HELPERS) {
                if (h.parked) {
                    LockSupport.unpark(h);
                }
            }
            job.work();
            job.awaitAll();
            current = null;   // lets the body's captures go
            job.rethrow();
        } finally {
            GATE.unlock();
        }
    }

    /** Runs {@code body} for each index in {@code [0, n)}, one task per index (for coarse work items). */
    public static void forEach(int n, Range body) {
        forRange(n, 1, body);
    }

    private static boolean insideBody() {
        return Thread.currentThread() instanceof Helper || GATE.isHeldByCurrentThread()
                || ForkJoinTask.inForkJoinPool();
    }

    private static Helper[] startHelpers() {
        Helper[] helpers = new Helper[Math.max(0, THREADS - 1)];
        for (int i = 0; i < helpers.length; i++) {
            helpers[i] = new Helper("koala4j-cpu-" + WORKERS.getAndIncrement());
            helpers[i].start();
        }
        return helpers;
    }

    private static ForkJoinPool fallbackPool() {
        ForkJoinPool pool = fallback;
        if (pool == null) {
            synchronized (Parallel.class) {
                pool = fallback;
                if (pool == null) {
                    pool = new ForkJoinPool(THREADS, p -> {
                        var worker = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
                        worker.setName("koala4j-cpu-" + WORKERS.getAndIncrement());
                        worker.setDaemon(true);
                        return worker;
                    }, null, false);
                    fallback = pool;
                }
            }
        }
        return pool;
    }

    /** One forRange call: chunks handed out by a counter to the caller and the helpers. */
    private static final class Job {
        private static final AtomicInteger EPOCHS = new AtomicInteger();

        final int epoch = EPOCHS.incrementAndGet();
        private final Range body;
        private final int n;
        private final int chunks;
        private final AtomicInteger next = new AtomicInteger();
        private final AtomicInteger finished = new AtomicInteger();
        private final AtomicReference<Throwable> error = new AtomicReference<>();
        /** Set by a caller that stopped polling and parked until the last chunk finishes. */
        private volatile Thread waiter;

        Job(Range body, int n, int chunks) {
            this.body = body;
            this.n = n;
            this.chunks = chunks;
        }

        void work() {
            for (int c; (c = next.getAndIncrement()) < chunks; ) {
                try {
                    if (error.get() == null) {
                        body.run((int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks));
                    }
                } catch (Throwable t) {
                    error.compareAndSet(null, t);
                } finally {
                    if (finished.incrementAndGet() == chunks) {
                        Thread w = waiter;
                        if (w != null) {
                            LockSupport.unpark(w);
                        }
                    }
                }
            }
        }

        void awaitAll() {
            long start = System.nanoTime();
            while (finished.get() < chunks) {
                if (System.nanoTime() - start < SPIN) {
                    Thread.onSpinWait();
                } else {
                    waiter = Thread.currentThread();
                    if (finished.get() < chunks) {
                        LockSupport.park(this);
                    }
                }
            }
        }

        void rethrow() {
            Throwable t = error.get();
            if (t instanceof RuntimeException e) {
                throw e;
            }
            if (t instanceof Error e) {
                throw e;
            }
            if (t != null) {
                throw new IllegalStateException(t);
            }
        }
    }

    /** Runs each published job's chunks; polls for the next job, then parks. */
    private static final class Helper extends Thread {
        volatile boolean parked;

        Helper(String name) {
            super(name);
            setDaemon(true);
        }

        @Override
        public void run() {
            int seen = 0;
            long idleSince = System.nanoTime();
            while (true) {
                Job job = current;
                if (job != null && job.epoch != seen) {
                    seen = job.epoch;
                    job.work();
                    idleSince = System.nanoTime();
                } else if (System.nanoTime() - idleSince < SPIN) {
                    Thread.onSpinWait();
                } else {
                    parked = true;
                    job = current;
                    if (job == null || job.epoch == seen) {
                        LockSupport.park(this);
                    }
                    parked = false;
                    idleSince = System.nanoTime();
                }
            }
        }
    }

    private static final class Chunk extends RecursiveAction {
        private final Range body;
        private final int n;
        private final int chunks;
        private final int lo;
        private final int hi;

        Chunk(Range body, int n, int chunks, int lo, int hi) {
            this.body = body;
            this.n = n;
            this.chunks = chunks;
            this.lo = lo;
            this.hi = hi;
        }

        @Override
        protected void compute() {
            if (hi - lo == 1) {
                int from = (int) ((long) n * lo / chunks);
                int to = (int) ((long) n * hi / chunks);
                body.run(from, to);
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Chunk(body, n, chunks, lo, mid), new Chunk(body, n, chunks, mid, hi));
        }
    }
}
