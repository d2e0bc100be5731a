package koala4j.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import koala4j.backend.cpu.Conv2d;
import koala4j.backend.cpu.FloatSource;
import koala4j.backend.cpu.Gemm;
import koala4j.backend.cpu.Parallel;
import koala4j.tensor.Activation;
import koala4j.tensor.DType;

/**
 * Quick wall-clock timing of the GEMM and conv kernels (warm-up, then best of 5 with System.nanoTime), for tuning
 * without the JMH harness:
 * {@code java -cp target/classes:target/test-classes --add-modules jdk.incubator.vector koala4j.bench.KernelTimer [filter]}.
 * Threads follow {@code -Dkoala4j.threads} / KOALA4J_THREADS. Peaks printed for reference use the base clock
 * (2.6 GHz): AVX2 view 2 FMA x 8 lanes x 2 flops per cycle per core, AVX-512 view twice that.
 */
public final class KernelTimer {

    private static final double CLOCK_GHZ = 2.6;

    private KernelTimer() {
    }

    public static void main(String[] args) {
        String filter = args.length > 0 ? args[0] : "";
        int threads = Parallel.threads();
        double avx2Peak = threads * 2 * 8 * 2 * CLOCK_GHZ;
        System.out.printf("threads=%d, peak at %.1f GHz: %.1f GFLOP/s (AVX2 view), %.1f GFLOP/s (AVX-512)%n",
                threads, CLOCK_GHZ, avx2Peak, 2 * avx2Peak);
        for (int size : new int[] {1024, 2048}) {
            if (("gemm" + size).contains(filter)) {
                gemm(size, avx2Peak);
            }
        }
        int[][] convs = {{320, 128}, {640, 64}, {1280, 32}};
        for (int[] s : convs) {
            if (("conv" + s[0]).contains(filter)) {
                conv(s[0], s[1], avx2Peak);
            }
        }
        if ("linear".contains(filter)) {
            // F.linear as the UNet's attention projections at 64x64 latents use it: x [4096, 640] . W^T, W [640, 640]
            linear(4096, 640, 640, null, avx2Peak);
            linear(4096, 640, 640, DType.F16, avx2Peak);
            linear(77, 2048, 2048, DType.BF16, avx2Peak);
        }
        if ("convother".contains(filter)) {
            conv("conv3x3/2 320->320 @128x128", 320, 320, 128, 3, 2, 1, 1, avx2Peak);
            conv("conv1x1 640->320 @64x64", 640, 320, 64, 1, 1, 0, 1, avx2Peak);
            conv("depthwise3x3 320 @64x64", 320, 320, 64, 3, 1, 1, 320, avx2Peak);
            conv("conv3x3 VAE 128->128 @513x513", 128, 128, 513, 3, 1, 1, 1, avx2Peak);
        }
        if ("attention".contains(filter)) {
            attention(10, 4096, 64, avx2Peak);
        }
        if ("gemv".contains(filter)) {
            gemv(4096, 4096, avx2Peak);
        }
    }

    private static void gemm(int size, double peak) {
        float[] a = random(size * size, 1);
        float[] b = random(size * size, 2);
        float[] c = new float[size * size];
        double flops = 2.0 * size * size * size;
        report("gemm " + size + "^3", flops, peak, () -> Gemm.gemm(size, size, size, a, b, c, Gemm.Epilogue.NONE));
    }

    private static void linear(int m, int n, int k, DType weightType, double peak) {
        float[] x = random(m * k, 1);
        float[] w = random(n * k, 2);
        float[] y = new float[m * n];
        FloatSource weight = FloatSource.of(w);
        if (weightType != null) {
            MemorySegment seg = Arena.ofAuto().allocate((long) n * k * 2);
            for (int i = 0; i < w.length; i++) {
                seg.setAtIndex(FloatSource.I16_LE, i,
                        weightType == DType.F16 ? DType.f32ToF16(w[i]) : DType.f32ToBf16(w[i]));
            }
            weight = FloatSource.of(seg, weightType);
        }
        Gemm.MatrixRef a = Gemm.MatrixRef.rowMajor(x, 0, k);
        Gemm.MatrixRef wt = new Gemm.MatrixRef(weight, 0, k, true, 0);
        report("linear [%d,%d].W^T[%d,%d] %s".formatted(m, k, n, k, weightType == null ? "F32" : weightType),
                2.0 * m * n * k, peak, () -> Gemm.gemm(1, m, n, k, a, wt, y, 0, n, 0, Gemm.Epilogue.NONE));
    }

    /** The two batched products of self-attention at 64x64 latents: S = Q K^T and O = P V, per head. */
    private static void attention(int heads, int tokens, int headDim, double peak) {
        float[] q = random(heads * tokens * headDim, 1);
        float[] k = random(heads * tokens * headDim, 2);
        float[] p = random(heads * tokens * tokens, 3);
        float[] o = new float[heads * tokens * headDim];
        long qkStride = (long) tokens * headDim;
        Gemm.MatrixRef qRef = new Gemm.MatrixRef(FloatSource.of(q), 0, headDim, false, qkStride);
        Gemm.MatrixRef kT = new Gemm.MatrixRef(FloatSource.of(k), 0, headDim, true, qkStride);
        Gemm.MatrixRef pRef = new Gemm.MatrixRef(FloatSource.of(p), 0, tokens, false, (long) tokens * tokens);
        Gemm.MatrixRef v = new Gemm.MatrixRef(FloatSource.of(k), 0, headDim, false, qkStride);
        double flops = 2.0 * heads * tokens * tokens * headDim;
        report("attn Q.K^T %dx[%d,%d].[%d,%d]".formatted(heads, tokens, headDim, headDim, tokens), flops, peak,
                () -> Gemm.gemm(heads, tokens, tokens, headDim, qRef, kT, p, 0, tokens, (long) tokens * tokens,
                        new Gemm.Epilogue(0.125f, null, false, Activation.NONE, false)));
        report("attn P.V %dx[%d,%d].[%d,%d]".formatted(heads, tokens, tokens, tokens, headDim), flops, peak,
                () -> Gemm.gemm(heads, tokens, headDim, tokens, pRef, v, o, 0, headDim, qkStride, Gemm.Epilogue.NONE));
    }

    private static void gemv(int n, int k, double peak) {
        float[] x = random(k, 1);
        float[] w = random(n * k, 2);
        float[] y = new float[n];
        Gemm.MatrixRef a = Gemm.MatrixRef.rowMajor(x, 0, k);
        Gemm.MatrixRef wt = new Gemm.MatrixRef(FloatSource.of(w), 0, k, true, 0);
        double flops = 2.0 * n * k;
        report("gemv 1x" + k + " . W^T[" + n + "x" + k + "] (GB/s = 2x GFLOP/s)", flops, peak,
                () -> Gemm.gemm(1, 1, n, k, a, wt, y, 0, n, 0, Gemm.Epilogue.NONE));
    }

    private static void conv(String name, int cin, int cout, int size, int k, int stride, int pad, int groups,
                             double peak) {
        float[] x = random(cin * size * size, 3);
        float[] w = random(cout * cin / groups * k * k, 4);
        int out = (size + 2 * pad - k) / stride + 1;
        float[] y = new float[cout * out * out];
        FloatSource weight = FloatSource.of(w);
        double flops = 2.0 * cout * (cin / groups) * k * k * out * out;
        report(name, flops, peak, () -> Conv2d.conv2d(x, 0, 1, cin, size, size, weight, cout, k, k, null, stride,
                stride, pad, pad, groups, Activation.NONE, y, 0));
    }

    private static void conv(int channels, int size, double peak) {
        float[] x = random(channels * size * size, 3);
        float[] w = random(channels * channels * 9, 4);
        float[] bias = random(channels, 5);
        float[] out = new float[channels * size * size];
        FloatSource weight = FloatSource.of(w);
        double flops = 2.0 * channels * channels * 9 * size * size;
        report("conv3x3 " + channels + "->" + channels + " @" + size + "x" + size, flops, peak,
                () -> Conv2d.conv2d(x, 0, 1, channels, size, size, weight, channels, 3, 3, bias, 1, 1, 1, 1, 1,
                        Activation.NONE, out, 0));
    }

    private static void report(String name, double flops, double peak, Runnable op) {
        long warmEnd = System.nanoTime() + 2_000_000_000L;
        int warm = 0;
        while (warm < 3 || System.nanoTime() < warmEnd) {
            op.run();
            warm++;
        }
        long best = Long.MAX_VALUE;
        long bestCpu = Long.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            long c0 = cpuTime();
            long t0 = System.nanoTime();
            op.run();
            best = Math.min(best, System.nanoTime() - t0);
            bestCpu = Math.min(bestCpu, cpuTime() - c0);
        }
        double gflops = flops / best;
        // On a shared machine the wall clock also counts time our threads sat descheduled; flops per CPU-second
        // times the thread count is what the same code gives on cores of its own.
        double perCpu = flops / bestCpu * Parallel.threads();
        System.out.printf("%-40s %8.2f ms %7.1f GFLOP/s (%5.1f%% AVX2-view, %5.1f%% AVX-512 peak) | CPU-time: %7.1f GFLOP/s (%5.1f%%, %5.1f%%)%n",
                name, best / 1e6, gflops, 100 * gflops / peak, 50 * gflops / peak, perCpu, 100 * perCpu / peak,
                50 * perCpu / peak);
    }

    /** CPU time of all live threads of this JVM, in ns (per-thread clocks are precise, the process clock is not). */
    private static long cpuTime() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long sum = 0;
        for (long id : mx.getAllThreadIds()) {
            sum += Math.max(0, mx.getThreadCpuTime(id));
        }
        return sum;
    }

    private static float[] random(int n, long seed) {
        Random rnd = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = rnd.nextFloat() * 2 - 1;
        }
        return x;
    }
}
