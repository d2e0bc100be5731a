package koala4j.bench;

import java.util.Random;
import java.util.concurrent.TimeUnit;

import koala4j.backend.cpu.Attention;
import koala4j.backend.cpu.Attention.Operand;
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

/**
 * JMH timing of {@link Attention#attention} at the KOALA/SDXL self-attention shapes, batch 1, non-causal, no mask:
 * 4096 tokens x 10 heads of 64 (1024px, first level) and 1024 tokens x 20 heads of 64 (second level).
 * GFLOP/s = 4 * heads * N * N * 64 / time. Threads follow KOALA4J_THREADS (default: all cores).
 *
 * <pre>
 * mvn -q -o -B test-compile dependency:build-classpath -Dmdep.outputFile=target/cp.txt
 * java -cp "target/test-classes:target/classes:$(cat target/cp.txt)" --add-modules jdk.incubator.vector \
 *     org.openjdk.jmh.Main AttentionBench
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class AttentionBench {

    /** tokens x heads; the head dim is 64 throughout. */
    @Param({"4096x10", "1024x20"})
    public String shape;

    private int n;
    private int heads;
    private final int d = 64;
    private Operand q;
    private Operand k;
    private Operand v;
    private float[] out;

    @Setup
    public void setup() {
        String[] parts = shape.split("x");
        n = Integer.parseInt(parts[0]);
        heads = Integer.parseInt(parts[1]);
        var rnd = new Random(0);
        q = operand(rnd);
        k = operand(rnd);
        v = operand(rnd);
        out = new float[heads * n * d];
    }

    private Operand operand(Random rnd) {
        float[] x = new float[heads * n * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return new Operand(x, 0, (long) heads * n * d, (long) n * d, d);
    }

    @Benchmark
    public float[] attention() {
        Attention.attention(1, heads, heads, n, n, d, d, q, k, v, null, false, 0.125f, out, 0);
        return out;
    }
}
