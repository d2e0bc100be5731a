package koala4j.server;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The bounded job queue. At most {@code capacity} jobs are admitted and unfinished (waiting or running) at once; one
 * more is refused with 429 and a Retry-After estimated from recent job times. Each admitted job runs on its own
 * virtual thread, which waits (first come, first served) for a slot of its lane: {@code localWorkers} slots for
 * local models, which are CPU-bound (the kernels already use every core, so one job at a time is the default),
 * and {@code remoteWorkers} for remote providers, whose jobs mostly wait on the network and must not queue behind
 * local ones; with {@code chatWorkers}, chat jobs have a lane of their own (their decoding steps are batched by the
 * model, {@link koala4j.pipelines.DecodeBatcher}). A job that passes its deadline (admission + timeout) stops, waiting or running.
 */
final class JobQueue implements AutoCloseable {

    /** The work of one job. {@link #admitted} runs before the job starts (e.g. to store it); if it throws, the job
     * is not admitted. {@link #ended} runs when the job ends without a result. */
    interface Work<T> {
        default void admitted(Job<T> job) {
        }

        T run(Job<T> job) throws Exception;

        default void ended(Job<T> job, Job.State state, ApiError error) {
        }
    }

    private static final int RETAINED_FINISHED = 2000;

    private final int capacity;
    private final int localWorkers;
    private final Duration timeout;
    private final Metrics metrics;
    private final Semaphore localLane;
    private final Semaphore remoteLane;
    /** Chat jobs' own lane, or null: they take the local one. */
    private final Semaphore chatLane;
    private final AtomicInteger admitted = new AtomicInteger();
    private final AtomicInteger waiting = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private final Map<String, Job<?>> jobs = new ConcurrentHashMap<>();
    private final ConcurrentLinkedQueue<String> finished = new ConcurrentLinkedQueue<>();
    private final ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
    /** Exponentially weighted mean of recent job seconds, for Retry-After. */
    private volatile double meanJobSeconds = 1.0;

    JobQueue(int capacity, int localWorkers, int remoteWorkers, Duration timeout, Metrics metrics) {
        this(capacity, localWorkers, remoteWorkers, 0, timeout, metrics);
    }

    /** {@code chatWorkers}: slots of a lane for chat jobs (0: chat jobs take the local lane). */
    JobQueue(int capacity, int localWorkers, int remoteWorkers, int chatWorkers, Duration timeout, Metrics metrics) {
        if (capacity < 1 || localWorkers < 1 || remoteWorkers < 1) {
            throw new IllegalArgumentException("queue capacity " + capacity + ", workers " + localWorkers + ", remote workers "
                    + remoteWorkers + ": each must be at least 1");
        }
        this.capacity = capacity;
        this.localWorkers = localWorkers;
        this.timeout = timeout;
        this.metrics = metrics;
        this.localLane = new Semaphore(localWorkers, true);
        this.remoteLane = new Semaphore(remoteWorkers, true);
        this.chatLane = chatWorkers > 0 ? new Semaphore(chatWorkers, true) : null;
        metrics.gauges(waiting::get, running::get);
    }

    /**
     * Admits and starts a job, or throws 429 when {@code capacity} jobs are unfinished. {@code summary} renders the
     * result for job status and the done event.
     */
    <T> Job<T> submit(String id, String kind, String model, boolean anonymous, boolean remote, Work<T> work,
                      Function<T, JsonNode> summary) {
        if (admitted.incrementAndGet() > capacity) {
            admitted.decrementAndGet();
            metrics.rejected();
            int retry = retryAfterSeconds();
            throw ApiError.busy("the job queue is full (" + capacity + " jobs); retry after " + retry + " s", retry);
        }
        Job<T> job = new Job<>(id, kind, model, anonymous, timeout.toNanos(), summary);
        try {
            work.admitted(job);
        } catch (RuntimeException e) {
            admitted.decrementAndGet();
            throw e;
        }
        jobs.put(id, job);
        waiting.incrementAndGet();
        Semaphore lane = remote ? remoteLane : kind.equals("chat") && chatLane != null ? chatLane : localLane;
        threads.execute(() -> run(job, work, lane));
        return job;
    }

    private <T> void run(Job<T> job, Work<T> work, Semaphore lane) {
        boolean acquired = false;
        boolean counted = false;
        try {
            job.waitingOn(Thread.currentThread());
            long remaining = job.deadlineNanos - System.nanoTime();
            try {
                acquired = !job.cancel.requested() && lane.tryAcquire(Math.max(0, remaining), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                acquired = false;
            }
            waiting.decrementAndGet();
            counted = true;
            if (!acquired || !job.start()) {
                throw new CancellationException("ended before it started");
            }
            running.incrementAndGet();
            try {
                T value = work.run(job);
                job.succeed(value);
            } finally {
                running.decrementAndGet();
            }
        } catch (CancellationException e) {
            if (job.cancelReason() != null) {
                end(job, work, Job.State.CANCELLED, new ApiError(499, "cancelled", null, "cancelled",
                        "job " + job.id + " cancelled: " + job.cancelReason(), null));
            } else {
                end(job, work, Job.State.TIMEOUT, ApiError.timeout("job " + job.id + " passed its time limit of "
                        + timeout.toSeconds() + " s"));
            }
        } catch (ApiError e) {
            end(job, work, Job.State.FAILED, e);
        } catch (IllegalArgumentException e) {
            end(job, work, Job.State.FAILED, ApiError.invalid(null, e.getMessage()));
        } catch (Throwable e) {
            end(job, work, Job.State.FAILED, ApiError.internal(job.kind + " job " + job.id + " failed: "
                    + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage())));
        } finally {
            if (!counted) {
                waiting.decrementAndGet();
            }
            if (acquired) {
                lane.release();
            }
            double seconds = (System.nanoTime() - job.admittedNanos) / 1e9;
            if (job.state() == Job.State.DONE) {
                meanJobSeconds = 0.8 * meanJobSeconds + 0.2 * seconds;
            }
            metrics.jobEnded(job.state().label(), seconds);
            admitted.decrementAndGet();
            retire(job);
        }
    }

    private <T> void end(Job<T> job, Work<T> work, Job.State state, ApiError error) {
        try {
            work.ended(job, state, error);
        } finally {
            job.fail(state, error);
        }
    }

    private void retire(Job<?> job) {
        finished.add(job.id);
        while (finished.size() > RETAINED_FINISHED) {
            String old = finished.poll();
            if (old != null) {
                jobs.remove(old);
            }
        }
    }

    private int retryAfterSeconds() {
        double estimate = meanJobSeconds * Math.max(1, waiting.get()) / localWorkers;
        return (int) Math.max(1, Math.min(3600, Math.ceil(estimate)));
    }

    Optional<Job<?>> find(String id) {
        return Optional.ofNullable(jobs.get(id));
    }

    int waiting() {
        return waiting.get();
    }

    int running() {
        return running.get();
    }

    int capacity() {
        return capacity;
    }

    @Override
    public void close() {
        for (Job<?> job : jobs.values()) {
            job.cancel("the server is stopping");
        }
        threads.shutdown();
        try {
            threads.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
