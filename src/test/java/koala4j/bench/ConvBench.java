package koala4j.bench;

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

import koala4j.backend.cpu.Conv2d;
import koala4j.backend.cpu.FloatSource;
import koala4j.tensor.Activation;

/**
 * Throughput of {@link Conv2d} on the 3x3 convs of KOALA-700M's UNet at 128x128 latents (batch 1, stride 1,
 * padding 1, with bias): 320->320 at 128x128, 640->640 at 64x64, 1280->1280 at 32x32. Reports ops/s; one op is
 * {@code 2 * C^2 * 9 * H * W} floating-point operations ({@link #flops}), 30.2 GFLOP for each of the three shapes,
 * so GFLOP/s = ops/s * 30.2. Run with
 * {@code java -cp target/classes:target/test-classes:<test classpath> org.openjdk.jmh.Main ConvBench}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class ConvBench {

    /** channels x spatial size. */
    @Param({"320x128", "640x64", "1280x32"})
    String shape;

    private int channels;
    private int size;
    private float[] x;
    private FloatSource weight;
    private float[] bias;
    private float[] out;

    /** Floating-point operations in one 3x3 conv of this many channels on a size x size image. */
    public static double flops(int channels, int size) {
        return 2.0 * channels * channels * 9 * size * size;
    }

    @Setup
    public void setup() {
        String[] parts = shape.split("x");
        channels = Integer.parseInt(parts[0]);
        size = Integer.parseInt(parts[1]);
        x = GemmBench.random(channels * size * size, 1);
        weight = FloatSource.of(GemmBench.random(channels * channels * 9, 2));
        bias = GemmBench.random(channels, 3);
        out = new float[channels * size * size];
    }

    @Benchmark
    public float[] conv3x3() {
        Conv2d.conv2d(x, 0, 1, channels, size, size, weight, channels, 3, 3, bias, 1, 1, 1, 1, 1, Activation.NONE, out,
                0);
        return out;
    }
}
