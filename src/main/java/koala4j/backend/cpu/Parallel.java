package koala4j.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;

/**
 * Splits loops over the CPU backend's worker threads. The pool size comes from the backend's configuration
 * ({@code KOALA4J_THREADS}, else all cores) and is fixed for the life of the backend.
 */
public final class Parallel {

    /** A body that handles indices {@code [from, to)}. */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    private static final int THREADS = configuredThreads();
    /** Numbers the workers: a worker's pool index is not assigned yet when the factory names it. */
    private static final java.util.concurrent.atomic.AtomicInteger WORKERS = new java.util.concurrent.atomic.AtomicInteger();
    private static final ForkJoinPool POOL = new ForkJoinPool(THREADS,
            pool -> {
                var worker = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
                worker.setName("koala4j-cpu-" + WORKERS.getAndIncrement());
                worker.setDaemon(true);
                return worker;
            }, null, false);

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
     * Runs inline when the work is one chunk or when already on a worker (no nested fan-out).
     */
    public static void forRange(int n, int grain, Range body) {
        if (n <= 0) {
            return;
        }
        int g = Math.max(1, grain);
        int chunks = Math.min(THREADS * 4, (n + g - 1) / g);
        if (chunks <= 1 || THREADS == 1 || ForkJoinTask.inForkJoinPool()) {
            body.run(0, n);
            return;
        }
        POOL.invoke(new Chunk(body, n, chunks, 0, chunks));
    }

    /** Runs {@code body} for each index in {@code [0, n)}, one task per index (for coarse work items). */
    public static void forEach(int n, Range body) {
        forRange(n, 1, body);
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
