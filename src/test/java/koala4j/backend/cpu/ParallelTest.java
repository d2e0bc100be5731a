package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.Test;

/**
 * {@link Parallel}: every index runs exactly once whatever the size and grain, the caller and the helpers share the
 * chunks (also after the helpers have parked), a body's exception reaches the caller and leaves the pool usable,
 * nested calls run inline, and concurrent callers (which fall back to the fork-join pool) all get whole results.
 */
class ParallelTest {

    @Test
    void everyIndexRunsExactlyOnce() {
        for (int n : new int[] {1, 2, 7, 8, 9, 63, 1000, 100_003}) {
            for (int grain : new int[] {1, 3, 64, 1 << 20}) {
                AtomicIntegerArray seen = new AtomicIntegerArray(n);
                Parallel.forRange(n, grain, (from, to) -> {
                    assertTrue(from < to, "empty chunk " + from + ".." + to);
                    for (int i = from; i < to; i++) {
                        seen.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, seen.get(i), "n=" + n + " grain=" + grain + " index " + i);
                }
            }
        }
        Parallel.forRange(0, 1, (from, to) -> {
            throw new AssertionError("called for n = 0");
        });
    }

    @Test
    void callerAndHelpersShareTheChunksAlsoAfterTheHelpersParked() throws InterruptedException {
        assumeTrue(Parallel.threads() > 1, "one worker thread configured");
        for (int round = 0; round < 2; round++) {
            Set<Thread> ran = ConcurrentHashMap.newKeySet();
            Parallel.forEach(Parallel.threads() * 4, (from, to) -> {
                ran.add(Thread.currentThread());
                // hold each chunk until a second thread has shown up (or 5 s), so the test does not race the wake-up
                long deadline = System.nanoTime() + 5_000_000_000L;
                while (ran.size() < 2 && System.nanoTime() < deadline) {
                    sleep(1);
                }
            });
            assertTrue(ran.contains(Thread.currentThread()), "the caller took no chunk");
            assertTrue(ran.size() >= 2, "only " + ran + " ran chunks");
            Thread.sleep(Parallel.SPIN_NANOS / 1_000_000 * 20);   // well past the polling time: the helpers park
        }
    }

    @Test
    void aBodysExceptionReachesTheCallerAndThePoolStaysUsable() {
        IllegalStateException boom = new IllegalStateException("index 5 is bad");
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> Parallel.forEach(16, (from, to) -> {
            if (from <= 5 && 5 < to) {
                throw boom;
            }
        }));
        assertSame(boom, thrown);
        AssertionError error = assertThrows(AssertionError.class, () -> Parallel.forEach(4, (from, to) -> {
            throw new AssertionError("chunk " + from);
        }));
        assertTrue(error.getMessage().startsWith("chunk "), error.getMessage());
        AtomicLong sum = new AtomicLong();
        Parallel.forRange(1000, 1, (from, to) -> {
            for (int i = from; i < to; i++) {
                sum.addAndGet(i);
            }
        });
        assertEquals(999L * 1000 / 2, sum.get());
    }

    @Test
    void nestedCallsRunInlineOnTheSameThread() {
        AtomicIntegerArray seen = new AtomicIntegerArray(8 * 100);
        Parallel.forEach(8, (from, to) -> {
            for (int outer = from; outer < to; outer++) {
                int base = outer * 100;
                Thread me = Thread.currentThread();
                Parallel.forRange(100, 1, (a, b) -> {
                    assertSame(me, Thread.currentThread(), "nested chunk moved to another thread");
                    assertEquals(0, a);
                    assertEquals(100, b);
                    for (int i = a; i < b; i++) {
                        seen.incrementAndGet(base + i);
                    }
                });
            }
        });
        for (int i = 0; i < seen.length(); i++) {
            assertEquals(1, seen.get(i), "index " + i);
        }
    }

    @Test
    void concurrentCallersAllGetWholeResults() throws Exception {
        int callers = 4;
        ExecutorService pool = Executors.newFixedThreadPool(callers);
        try {
            List<Future<Long>> results = new ArrayList<>();
            for (int c = 0; c < callers; c++) {
                results.add(pool.submit(() -> {
                    long total = 0;
                    for (int round = 0; round < 200; round++) {
                        AtomicLong sum = new AtomicLong();
                        Parallel.forRange(10_000, 16, (from, to) -> {
                            long s = 0;
                            for (int i = from; i < to; i++) {
                                s += i;
                            }
                            sum.addAndGet(s);
                        });
                        total += sum.get();
                    }
                    return total;
                }));
            }
            for (Future<Long> f : results) {
                assertEquals(200L * (9_999L * 10_000 / 2), f.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
