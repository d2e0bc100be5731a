package koala4j.bench;

import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import koala4j.backend.cpu.FloatSource;
import koala4j.backend.cpu.Gemm;

/**
 * Throughput of {@link Gemm} on square single-precision matrices, all {@code koala4j.threads} threads. Reports ops/s;
 * one op of {@link #gemm} is {@code 2 * size^3} floating-point operations ({@link #flops}), so
 * GFLOP/s = ops/s * 2 * size^3 / 1e9 (1024: 2.147 GFLOP per op; 2048: 17.18 GFLOP per op). {@link #gemv} is one
 * decode step of a 4096 x 4096 F32 nn.Linear: 2 * 4096^2 = 33.6 MFLOP and 64 MiB of weight per op. Run with
 * {@code java -cp target/classes:target/test-classes:<test classpath> org.openjdk.jmh.Main GemmBench}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GemmBench {

    static final int GEMV_SIZE = 4096;

    /** Square operands. */
    @State(Scope.Benchmark)
    public static class Square {
        @Param({"1024", "2048"})
        int size;

        float[] a;
        float[] b;
        float[] c;

        @Setup
        public void setup() {
            a = random(size * size, 1);
            b = random(size * size, 2);
            c = new float[size * size];
        }
    }

    /** One token through a 4096 x 4096 nn.Linear weight stored [out, in] (op(B) = W^T). */
    @State(Scope.Benchmark)
    public static class Decode {
        Gemm.MatrixRef x;
        Gemm.MatrixRef weightT;
        float[] y;

        @Setup
        public void setup() {
            x = Gemm.MatrixRef.rowMajor(random(GEMV_SIZE, 3), 0, GEMV_SIZE);
            weightT = new Gemm.MatrixRef(FloatSource.of(random(GEMV_SIZE * GEMV_SIZE, 4)), 0, GEMV_SIZE, true, 0);
            y = new float[GEMV_SIZE];
        }
    }

    /** Floating-point operations in one {@link #gemm} call. */
    public static double flops(int size) {
        return 2.0 * size * size * size;
    }

    @Benchmark
    public float[] gemm(Square s) {
        Gemm.gemm(s.size, s.size, s.size, s.a, s.b, s.c, Gemm.Epilogue.NONE);
        return s.c;
    }

    @Benchmark
    public float[] gemv(Decode d) {
        Gemm.gemm(1, 1, GEMV_SIZE, GEMV_SIZE, d.x, d.weightT, d.y, 0, GEMV_SIZE, 0, Gemm.Epilogue.NONE);
        return d.y;
    }

    static float[] random(int n, long seed) {
        Random rnd = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = rnd.nextFloat() * 2 - 1;
        }
        return v;
    }
}
