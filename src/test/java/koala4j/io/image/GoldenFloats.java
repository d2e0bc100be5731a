package koala4j.io.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Test-only reader for the F32 tensors of a golden {@code expected.safetensors} (8-byte little-endian header length,
 * JSON header, raw little-endian data). The real, validated reader lives in koala4j.io.safetensors.
 */
final class GoldenFloats {

    record Tensor(int[] shape, float[] data) {
    }

    private final JsonNode header;
    private final ByteBuffer data;
    private final Path file;

    private GoldenFloats(Path file, JsonNode header, ByteBuffer data) {
        this.file = file;
        this.header = header;
        this.data = data;
    }

    static GoldenFloats open(Path file) {
        try {
            byte[] all = Files.readAllBytes(file);
            ByteBuffer buf = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
            int headerLength = Math.toIntExact(buf.getLong(0));
            JsonNode header = new ObjectMapper().readTree(new String(all, 8, headerLength, StandardCharsets.UTF_8));
            ByteBuffer data = ByteBuffer.wrap(all, 8 + headerLength, all.length - 8 - headerLength).slice()
                    .order(ByteOrder.LITTLE_ENDIAN);
            return new GoldenFloats(file, header, data);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    Tensor tensor(String key) {
        JsonNode t = header.get(key);
        if (t == null) {
            throw new IllegalArgumentException(file + ": no tensor \"" + key + "\"");
        }
        if (!"F32".equals(t.get("dtype").asText())) {
            throw new IllegalArgumentException(file + ": tensor " + key + " is " + t.get("dtype") + ", expected F32");
        }
        int[] shape = new int[t.get("shape").size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = t.get("shape").get(i).asInt();
        }
        int begin = t.get("data_offsets").get(0).asInt();
        int end = t.get("data_offsets").get(1).asInt();
        int n = Arrays.stream(shape).reduce(1, Math::multiplyExact);
        if (end - begin != n * 4) {
            throw new IllegalArgumentException(file + ": tensor " + key + " has " + (end - begin) + " bytes for shape "
                    + Arrays.toString(shape));
        }
        float[] values = new float[n];
        data.slice(begin, end - begin).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
        return new Tensor(shape, values);
    }

    static Path resource(String relative) {
        try {
            var url = GoldenFloats.class.getClassLoader().getResource(relative);
            if (url == null) {
                throw new IllegalArgumentException("test resource not found: " + relative);
            }
            return Path.of(url.toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] bytes(String relative) {
        try (InputStream in = Files.newInputStream(resource(relative))) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
