package koala4j.pipelines;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A STREAM-like measurement of main-memory bandwidth in plain Java, with the same number of threads the CPU kernels
 * use: "read" sums a long array (every byte read once, nothing written: what decoding does to weights; as one, two
 * and four interleaved streams per thread, see {@link Reader#readOnce}) and "triad"
 * computes a[i] = b[i] + s*c[i] over float arrays (STREAM counts 12 bytes per element: two reads, one write). The
 * buffers are {@code bytes} in all, which should be many times the last-level cache. Each kernel runs
 * {@code repeats} times after a warm-up; the best run counts (STREAM's rule). Not thread-safe; one run at a time.
 */
public final class MemoryBandwidth {

    /** Best read and triad bandwidth in GB/s (10^9 bytes per second), the buffer size and the threads used. */
    public record Result(double readGBs, double triadGBs, long bufferBytes, int threads) {
    }

    private MemoryBandwidth() {
    }

    public static Result measure(long bytes, int threads, int repeats) throws InterruptedException {
        int t = Math.max(1, threads);
        // per thread: one buffer of longs for reading, three float[] for the triad (each a share of the total)
        int longsPerThread = (int) Math.min(Integer.MAX_VALUE - 8, bytes / 2 / 8 / t);
        int floatsPerThread = (int) Math.min(Integer.MAX_VALUE - 8, bytes / 2 / 12 / t);
        // native memory, as the weights are: a heap segment through the same sum makes C2's code for both slow
        // (measured: the paired read fell from 94 to 14 GB/s on 16 threads after the loop had summed a long[])
        MemorySegment[] read = new MemorySegment[t];
        float[][][] triad = new float[t][][];
        ExecutorService pool = newPool(t);
        // freed on return, not whenever a later collection finds the segments unreachable (a model may need the RAM)
        Arena arena = Arena.ofShared();
        try {
            // first touch on the thread that uses the memory
            run(pool, t, i -> {
                read[i] = arena.allocate((long) longsPerThread * 8, 64);
                for (long j = 0; j < longsPerThread; j++) {
                    read[i].setAtIndex(ValueLayout.JAVA_LONG, j, j);
                }
                triad[i] = new float[][] {new float[floatsPerThread], new float[floatsPerThread], new float[floatsPerThread]};
                java.util.Arrays.fill(triad[i][1], 1f);
                java.util.Arrays.fill(triad[i][2], 2f);
                return 0L;
            });
            long readBytes = (long) longsPerThread * 8 * t;
            long triadBytes = (long) floatsPerThread * 12 * t;
            double bestRead = 0;
            double bestTriad = 0;
            long sink = 0;
            for (int r = 0; r <= repeats; r++) {
                for (int streams : STREAMS) {
                    long t0 = System.nanoTime();
                    sink += run(pool, t, i -> sum(read[i], streams));
                    if (r > 0) {
                        bestRead = Math.max(bestRead, readBytes / ((System.nanoTime() - t0) / 1e9) / 1e9);
                    }
                }
                long t1 = System.nanoTime();
                run(pool, t, i -> {
                    triad(triad[i][0], triad[i][1], triad[i][2], 0.5f);
                    return 0L;
                });
                long t2 = System.nanoTime();
                if (r > 0) {
                    bestTriad = Math.max(bestTriad, triadBytes / ((t2 - t1) / 1e9) / 1e9);
                }
            }
            if (sink == 42) {
                System.out.print("");   // keeps the sums alive
            }
            return new Result(bestRead, bestTriad, readBytes + triadBytes, t);
        } finally {
            pool.shutdownNow();
            awaitIdle(pool);
            arena.close();
        }
    }

    /** Waits for the pool's threads to stop touching the memory, so that it can be freed. */
    private static void awaitIdle(ExecutorService pool) {
        try {
            if (!pool.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES)) {
                throw new IllegalStateException("bandwidth measurement threads did not stop within a minute");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the bandwidth threads", e);
        }
    }

    private static ExecutorService newPool(int threads) {
        return Executors.newFixedThreadPool(threads, r -> {
            Thread th = new Thread(r, "koala4j-bandwidth");
            th.setDaemon(true);
            return th;
        });
    }

    @FunctionalInterface
    private interface Work {
        long run(int thread) throws Exception;
    }

    private static long run(ExecutorService pool, int threads, Work work) throws InterruptedException {
        List<Future<Long>> futures = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            int index = i;
            futures.add(pool.submit(() -> work.run(index)));
        }
        long total = 0;
        for (Future<Long> f : futures) {
            try {
                total += f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                throw new IllegalStateException("bandwidth measurement failed", e.getCause());
            }
        }
        return total;
    }

    /** The read patterns {@link #measure} tries and the paired bound tries: 1, 2 and 4 streams per thread. */
    public static final List<Integer> STREAMS = List.of(1, 2, 4);

    private static void checkStreams(int streams) {
        if (streams != 1 && streams != 2 && streams != 4) {
            throw new IllegalArgumentException("streams " + streams + ": expected 1, 2 or 4");
        }
    }

    /** The sum of s as native-order longs (wrapping) and its odd bytes, read as {@code streams} streams. */
    static long sum(MemorySegment s, int streams) {
        return switch (streams) {
            case 1 -> sum(s);
            case 2 -> sumTwoStreams(s);
            default -> sumFourStreams(s);
        };
    }

    /**
     * Reads given memory (a model's weights) once per call, every byte, on a fixed set of threads that take 4 MB
     * pieces in order: the time a decoding step would take if it did nothing but read its weights, measured on the
     * same bytes and threads right next to the step. Close it to stop the threads. Not thread-safe.
     */
    public static final class Reader implements AutoCloseable {
        private static final long PIECE = 4L << 20;

        private final ExecutorService pool;
        private final int threads;
        private final List<MemorySegment> pieces = new ArrayList<>();
        private final long bytes;
        /** Kept so that the sums are used and the reads cannot be dropped. */
        private long lastSum;

        /** {@code segments} in the order a decoding step reads them. */
        public Reader(List<MemorySegment> segments, int threads) {
            this.threads = Math.max(1, threads);
            long total = 0;
            for (MemorySegment s : segments) {
                for (long at = 0; at < s.byteSize(); at += PIECE) {
                    pieces.add(s.asSlice(at, Math.min(PIECE, s.byteSize() - at)));
                }
                total += s.byteSize();
            }
            bytes = total;
            pool = newPool(this.threads);
        }

        /** Bytes one {@link #readOnce} reads. */
        public long bytes() {
            return bytes;
        }

        /**
         * Reads every byte once; returns the seconds it took. Each 4 MB piece is read as {@code streams} (1, 2 or 4)
         * interleaved sequential streams, its parts side by side (the matrix-vector kernels read four rows a quarter
         * of their range apart). Machines differ in which is fastest, and one stream per thread is not: on this
         * 2-core Zen 5 VM one stream read 52-54 GB/s, two 66-73, four 64-68 (alternating, same minute); on a
         * 16-core Xeon host one stream per thread read 55 GB/s on 8 threads while the Q8_0 kernel streamed 69.
         */
        public double readOnce(int streams) throws InterruptedException {
            checkStreams(streams);
            AtomicInteger next = new AtomicInteger();
            long t0 = System.nanoTime();
            lastSum = run(pool, threads, i -> {
                long s = 0;
                for (int p; (p = next.getAndIncrement()) < pieces.size(); ) {
                    s += sum(pieces.get(p), streams);
                }
                return s;
            });
            return (System.nanoTime() - t0) / 1e9;
        }

        /** The seconds of the fastest of one read in each pattern of {@link #STREAMS}. */
        public double readFastest() throws InterruptedException {
            double fastest = Double.MAX_VALUE;
            for (int streams : STREAMS) {
                fastest = Math.min(fastest, readOnce(streams));
            }
            return fastest;
        }

        /** The last read's sum of the memory as native-order longs (and the odd bytes at each piece's end). */
        long lastSum() {
            return lastSum;
        }

        @Override
        public void close() {
            pool.shutdownNow();
        }
    }

    /** A plain sum of longs and then the odd bytes (C2 vectorises it). */
    private static long sum(MemorySegment s) {
        long longs = s.byteSize() / 8;
        long a = 0;
        for (long i = 0; i < longs; i++) {
            a += s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
        }
        for (long i = longs * 8; i < s.byteSize(); i++) {
            a += s.get(ValueLayout.JAVA_BYTE, i);
        }
        return a;
    }

    /** The same sum as {@link #sum(MemorySegment)} (longs wrap around), its two halves read side by side. */
    private static long sumTwoStreams(MemorySegment s) {
        long half = s.byteSize() / 16;
        long a = 0;
        long b = 0;
        for (long i = 0; i < half; i++) {
            a += s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
            b += s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, half + i);
        }
        return a + b + sum(s.asSlice(half * 16));
    }

    /** The same sum as {@link #sum(MemorySegment)}, its four quarters read side by side. */
    private static long sumFourStreams(MemorySegment s) {
        long quarter = s.byteSize() / 32;
        long a = 0;
        long b = 0;
        long c = 0;
        long d = 0;
        for (long i = 0; i < quarter; i++) {
            a += s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
            b += s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, quarter + i);
            c += s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, 2 * quarter + i);
            d += s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, 3 * quarter + i);
        }
        return a + b + c + d + sum(s.asSlice(quarter * 32));
    }

    private static void triad(float[] a, float[] b, float[] c, float s) {
        for (int i = 0; i < a.length; i++) {
            a[i] = b[i] + s * c[i];
        }
    }
}
