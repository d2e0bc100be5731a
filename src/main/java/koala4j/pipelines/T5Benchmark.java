package koala4j.pipelines;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import koala4j.models.t5.DecoderState;
import koala4j.models.t5.RandomT5Weights;
import koala4j.models.t5.T5Config;
import koala4j.models.t5.T5ForConditionalGeneration;
import koala4j.models.t5.T5ForConditionalGeneration.EncoderOutput;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * Throughput of the KEByT5 shapes with seeded random weights made in memory: encoder tokens (bytes) per second
 * over one input, and greedy decoder bytes per second with the KV cache (no eos stop, so every run decodes the
 * same number of steps), plus peak memory.
 *
 * <p>Shapes: ETRI's model cards state that KEByT5-small and -base have exactly the architecture and size of
 * google/byt5-small and -base ("동일한 신경망 구조와 크기"); KEByT5-large (1.23B) matches google/byt5-large's
 * parameter count. The ByT5 configs (google/byt5-*, config.json): d_kv 64, vocab 384, gated-gelu, untied lm_head,
 * 32 buckets / max distance 128.
 */
public final class T5Benchmark {

    public static final List<String> PRESETS = List.of("kebyt5-small", "kebyt5-base", "kebyt5-large");

    /** One measured run. */
    public record Result(String preset, long parameters, int inputBytes, int newTokens, double encodeSeconds,
                         double decodeSeconds, long peakRssBytes, long peakHeapBytes) {

        public double encoderTokensPerSecond() {
            return inputBytes / encodeSeconds;
        }

        public double decoderBytesPerSecond() {
            return newTokens / decodeSeconds;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%s: %.0fM parameters; encoder %d tokens in %.3f s = %.1f tokens/s; "
                            + "decoder %d bytes in %.3f s = %.2f bytes/s (greedy, KV cache); peak RSS %.2f GiB, peak heap %.2f GiB",
                    preset, parameters / 1e6, inputBytes, encodeSeconds, encoderTokensPerSecond(), newTokens, decodeSeconds,
                    decoderBytesPerSecond(), peakRssBytes / (double) (1L << 30), peakHeapBytes / (double) (1L << 30));
        }
    }

    private T5Benchmark() {
    }

    /** kebyt5-small: 1472/3584, 12/4 layers, 6 heads; base: 1536/3968, 18/6, 12; large: 1536/3840, 36/12, 16. */
    public static T5Config preset(String name) {
        return switch (name) {
            case "kebyt5-small" -> T5Config.byt5Shape(1472, 3584, 12, 4, 6);
            case "kebyt5-base" -> T5Config.byt5Shape(1536, 3968, 18, 6, 12);
            case "kebyt5-large" -> T5Config.byt5Shape(1536, 3840, 36, 12, 16);
            default -> throw new IllegalArgumentException("--config " + name + ": expected one of " + String.join(", ", PRESETS));
        };
    }

    /** Builds the model with random weights, warms up once (same input length, 4 steps), then times one encode and one greedy decode. */
    public static Result run(String preset, Ops ops, int inputBytes, int newTokens, long seed, Consumer<String> log) {
        if (inputBytes < 1 || newTokens < 1) {
            throw new IllegalArgumentException("input bytes " + inputBytes + " and new tokens " + newTokens + " must be positive");
        }
        T5Config config = preset(preset);
        T5ForConditionalGeneration model = new T5ForConditionalGeneration(config);
        long started = System.nanoTime();
        model.loadWeights(new RandomT5Weights(model, seed, ops));
        log.accept(String.format(Locale.ROOT, "%s: %.0fM random parameters in %.1f s", preset, model.parameterCount() / 1e6,
                (System.nanoTime() - started) / 1e9));
        SplittableRandom bytes = new SplittableRandom(seed);
        decode(model, encode(model, ops, inputBytes, bytes), 4);                           // JIT warm-up, same shapes
        started = System.nanoTime();
        EncoderOutput encoded = encode(model, ops, inputBytes, bytes);
        double encodeSeconds = (System.nanoTime() - started) / 1e9;
        started = System.nanoTime();
        decode(model, encoded, newTokens);
        double decodeSeconds = (System.nanoTime() - started) / 1e9;
        return new Result(preset, model.parameterCount(), inputBytes, newTokens, encodeSeconds, decodeSeconds, peakRss(),
                peakHeap());
    }

    private static EncoderOutput encode(T5ForConditionalGeneration model, Ops ops, int length, SplittableRandom bytes) {
        long[] ids = new long[length];
        for (int i = 0; i < length - 1; i++) {
            ids[i] = 3 + bytes.nextInt(256);
        }
        ids[length - 1] = 1;                                                              // eos
        EncoderOutput out = model.encode(ops.fromArray(ids, 1, length), null);
        out.lastHiddenState().toFloatArray();                                             // force the result
        return out;
    }

    private static void decode(T5ForConditionalGeneration model, EncoderOutput encoded, int steps) {
        DecoderState state = model.startDecoding(encoded, 1, steps);
        long[] token = {model.config().decoderStartTokenId()};
        for (int i = 0; i < steps; i++) {
            Tensor logits = model.decodeStep(state, token);
            token[0] = LogitsProcessing.argmax(logits.to(DType.F32).toFloatArray());
        }
    }

    /** VmHWM of /proc/self/status (Linux); -1 elsewhere. */
    private static long peakRss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    private static long peakHeap() {
        long total = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                total += pool.getPeakUsage().getUsed();
            }
        }
        return total;
    }
}
