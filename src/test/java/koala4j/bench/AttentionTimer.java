package koala4j.bench;

import java.lang.management.ManagementFactory;
import java.util.Random;

import koala4j.backend.cpu.Attention;
import koala4j.backend.cpu.Attention.Operand;
import koala4j.backend.cpu.Parallel;

/**
 * Quick timer for {@link Attention#attention} (no JMH): warm-up, then best of 5. Flops counted as
 * 4 * b * heads * nq * nk * d (two matrix products, softmax not counted), non-causal, no mask.
 *
 * <pre>
 * java -cp target/classes:target/test-classes --add-modules jdk.incubator.vector koala4j.bench.AttentionTimer \
 *     [N H D ...]
 * </pre>
 * With no arguments it times the KOALA/SDXL shapes 4096 x 10 x 64 and 1024 x 20 x 64 (batch 1). Threads follow
 * KOALA4J_THREADS (default: all cores).
 */
public final class AttentionTimer {

    private AttentionTimer() {
    }

    public static void main(String[] args) {
        int[] shapes = args.length >= 3 ? java.util.Arrays.stream(args).mapToInt(Integer::parseInt).toArray()
                : new int[] {4096, 10, 64, 1024, 20, 64};
        System.out.printf("threads=%d%n", Parallel.threads());
        for (int s = 0; s + 2 < shapes.length; s += 3) {
            time(shapes[s], shapes[s + 1], shapes[s + 2]);
        }
    }

    private static void time(int n, int heads, int d) {
        var rnd = new Random(0);
        float[] q = gaussian(rnd, heads * n * d);
        float[] k = gaussian(rnd, heads * n * d);
        float[] v = gaussian(rnd, heads * n * d);
        float[] out = new float[heads * n * d];
        var qo = new Operand(q, 0, (long) heads * n * d, (long) n * d, d);
        var ko = new Operand(k, 0, (long) heads * n * d, (long) n * d, d);
        var vo = new Operand(v, 0, (long) heads * n * d, (long) n * d, d);
        float scale = (float) (1 / Math.sqrt(d));
        double flops = 4.0 * heads * n * (double) n * d;
        // Warm-up: enough calls for C2 to compile the micro-kernels.
        long warmEnd = System.nanoTime() + 3_000_000_000L;
        int warm = 0;
        while (warm < 3 || System.nanoTime() < warmEnd) {
            Attention.attention(1, heads, heads, n, n, d, d, qo, ko, vo, null, false, scale, out, 0);
            warm++;
        }
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        double best = Double.MAX_VALUE;
        double cores = 0;
        for (int r = 0; r < 5; r++) {
            long c0 = os.getProcessCpuTime();
            long t0 = System.nanoTime();
            Attention.attention(1, heads, heads, n, n, d, d, qo, ko, vo, null, false, scale, out, 0);
            long wall = System.nanoTime() - t0;
            if (wall / 1e6 < best) {
                best = wall / 1e6;
                cores = (os.getProcessCpuTime() - c0) / (double) wall;
            }
        }
        // On a shared machine the CPU time per wall time of the best run shows whether it really had all threads.
        System.out.printf("attention N=%d heads=%d d=%d: best %.2f ms, %.1f GFLOP/s"
                + " (%d warm-up calls, %.2f cores busy)%n", n, heads, d, best, flops / best / 1e6, warm, cores);
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
