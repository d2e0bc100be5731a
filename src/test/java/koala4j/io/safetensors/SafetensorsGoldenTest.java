package koala4j.io.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeSet;
import koala4j.io.json.Json;
import koala4j.tensor.DType;
import org.junit.jupiter.api.Test;

/**
 * Files written by the reference: golden/vae_tiny/vae/diffusion_pytorch_model.safetensors and golden/llama_tiny/io.safetensors, copied
 * from shared/golden (safetensors 0.8.0 via diffusers 0.36.0 / transformers 4.57.6 save_pretrained and the oracle
 * script). The expected counts, shapes and dtypes come from each case's case.json, written by the same oracle; the
 * few values checked were read with Python's struct module, independently of this reader. Values are exact
 * (bit-identical data), sums within 1e-9 of a float64 sum.
 */
class SafetensorsGoldenTest {
    private static Path resource(String name) throws URISyntaxException {
        return Path.of(SafetensorsGoldenTest.class.getResource("/golden/" + name).toURI());
    }

    @Test
    void vaeWeightsMatchTheirManifest() throws Exception {
        Json weights = Json.read(resource("vae_tiny/case.json")).object("weights");
        Path file = resource("vae_tiny/vae/diffusion_pytorch_model.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertEquals(weights.intValue("num_tensors"), f.entries().size());
            assertEquals(weights.longValue("num_params"), f.entries().stream().mapToLong(TensorEntry::numel).sum());
            f.entries().forEach(e -> assertEquals(DType.F32, e.dtype(), e.name()));

            TensorEntry convIn = f.require("decoder.conv_in.weight");
            assertArrayEquals(new long[] {32, 4, 3, 3}, convIn.shape());
            float[] bias = f.require("decoder.conv_in.bias").data()
                    .toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
            assertEquals(32, bias.length);
            assertEquals(-0.1138032078742981f, bias[0]);
            assertEquals(0.15480616688728333f, bias[1]);
            double sum = 0;
            for (float b : bias) sum += b;
            assertEquals(-0.6874945278977975, sum, 1e-9);

            byte[] whole = Files.readAllBytes(file);
            try (SafetensorsFile again = Images.parse(whole)) {
                Images.assertConsistent(again, MemorySegment.ofArray(whole));
            }
        }
    }

    @Test
    void llamaIoTensorsMatchTheirManifestIncludingInt64() throws Exception {
        Json io = Json.read(resource("llama_tiny/case.json")).object("io");
        try (SafetensorsFile f = SafetensorsFile.open(resource("llama_tiny/io.safetensors"))) {
            assertEquals(new TreeSet<>(io.keys()), new TreeSet<>(f.names()));
            for (String name : io.keys()) {
                Json expected = io.object(name);
                TensorEntry e = f.require(name);
                assertArrayEquals(expected.longList("shape").stream().mapToLong(Long::longValue).toArray(), e.shape(), name);
                assertEquals(switch (expected.string("dtype")) {
                    case "float32" -> DType.F32;
                    case "int64" -> DType.I64;
                    default -> throw new AssertionError(expected.string("dtype"));
                }, e.dtype(), name);
            }
            long[] ids = f.require("in.input_ids").data().toArray(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
            assertArrayEquals(new long[] {1, 233, 242, 251, 64, 233, 241, 152, 46, 114, 43, 106}, ids);
        }
    }
}
