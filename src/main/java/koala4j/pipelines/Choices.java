package koala4j.pipelines;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Several answers generated at once, each on a thread of its own (their decoding steps meet in the
 * {@link DecodeBatcher}). When one fails the others stop at their next token, and the first failure is thrown:
 * the real cause rather than the cancellations it led to.
 */
final class Choices {

    @FunctionalInterface
    interface Work<T> {
        /** Choice {@code index}; {@code stop} is requested when the caller's cancel is, or another choice failed. */
        T run(int index, Cancel stop);
    }

    private Choices() {
    }

    /** Runs choices 0 to {@code count - 1} on at most {@code threads} threads; their results in choice order. */
    static <T> List<T> run(int count, int threads, Cancel cancel, Work<T> work) {
        AtomicBoolean failed = new AtomicBoolean();
        Cancel stop = () -> failed.get() || cancel.requested();
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(count, threads),
                Thread.ofPlatform().daemon().name("koala4j-choice-", 0).factory());
        try {
            List<Future<T>> runs = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                int index = i;
                runs.add(pool.submit(() -> {
                    try {
                        stop.check();
                        return work.run(index, stop);
                    } catch (Throwable t) {
                        failed.set(true);
                        throw t;
                    }
                }));
            }
            List<T> results = new ArrayList<>(count);
            Throwable first = null;
            boolean interrupted = false;
            // every choice is waited for, even after an interrupt: they use the caller's prompt cache until they end
            for (Future<T> run : runs) {
                while (true) {
                    try {
                        results.add(run.get());
                        break;
                    } catch (ExecutionException e) {
                        if (first == null || first instanceof CancellationException
                                && !(e.getCause() instanceof CancellationException)) {
                            first = e.getCause();
                        }
                        break;
                    } catch (InterruptedException e) {
                        interrupted = true;
                        failed.set(true);
                    }
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
                throw new CancellationException("interrupted while generating " + count + " choices");
            }
            switch (first) {
                case null -> {
                    return results;
                }
                case RuntimeException r -> throw r;
                case Error e -> throw e;
                default -> throw new IllegalStateException("a choice failed", first);
            }
        } finally {
            pool.shutdown();
        }
    }
}
