package koala4j.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Test-only reader for the golden {@code io.safetensors} files (F32 and I64 tensors): the whole file is read into memory.
 * Layout: 8-byte little-endian header length, a JSON header mapping each name to {@code dtype}, {@code shape} and
 * {@code data_offsets} (relative to the end of the header), plus {@code __metadata__}; then the raw little-endian data.
 * The production reader lives in io.safetensors; this one exists so golden tests do not depend on it.
 */
public final class GoldenFile {
    private record Entry(String dtype, long[] shape, int begin, int end) {}

    private final Path file;
    private final ByteBuffer data;
    private final Map<String, Entry> entries;

    private GoldenFile(Path file, ByteBuffer data, Map<String, Entry> entries) {
        this.file = file;
        this.data = data;
        this.entries = entries;
    }

    /** Reads and checks the header of {@code file}; fails on a header that does not describe the bytes that follow it. */
    public static GoldenFile open(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read golden file " + file, e);
        }
        ByteBuffer all = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 8) {
            throw new IllegalStateException(file + ": " + bytes.length + " bytes, expected at least 8 (header length)");
        }
        long headerLength = all.getLong(0);
        if (headerLength < 2 || headerLength > bytes.length - 8L) {
            throw new IllegalStateException(file + ": header length " + headerLength + ", expected 2 to " + (bytes.length - 8));
        }
        int dataStart = 8 + (int) headerLength;
        JsonNode header;
        try {
            header = new ObjectMapper().readTree(new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new IllegalStateException(file + ": header is not JSON", e);
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> field : header.properties()) {
            String name = field.getKey();
            if (name.equals("__metadata__")) {
                continue;
            }
            JsonNode node = field.getValue();
            String dtype = node.path("dtype").asText();
            long[] shape = new long[node.path("shape").size()];
            long numel = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = node.path("shape").get(i).asLong();
                numel *= shape[i];
            }
            long begin = node.path("data_offsets").path(0).asLong(-1);
            long end = node.path("data_offsets").path(1).asLong(-1);
            int elementSize = switch (dtype) {
                case "F32" -> 4;
                case "I64" -> 8;
                default -> throw new IllegalStateException(file + ": tensor " + name + " has dtype " + dtype
                        + ", expected F32 or I64 (the only golden dtypes)");
            };
            if (begin < 0 || end < begin || dataStart + end > bytes.length || end - begin != numel * elementSize) {
                throw new IllegalStateException(file + ": tensor " + name + " has data_offsets [" + begin + ", " + end
                        + "], expected " + numel * elementSize + " bytes inside the " + (bytes.length - dataStart)
                        + " data bytes");
            }
            entries.put(name, new Entry(dtype, shape, dataStart + (int) begin, dataStart + (int) end));
        }
        return new GoldenFile(file, all, entries);
    }

    /** Tensor names in header order, without {@code __metadata__}. */
    public Set<String> names() {
        return Collections.unmodifiableSet(entries.keySet());
    }

    public long[] shape(String name) {
        return entry(name).shape().clone();
    }

    /** The values of an F32 tensor, row-major. */
    public float[] floats(String name) {
        Entry e = entry(name, "F32");
        float[] out = new float[(e.end() - e.begin()) / 4];
        data.slice(e.begin(), e.end() - e.begin()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** The values of an I64 tensor, row-major. */
    public long[] longs(String name) {
        Entry e = entry(name, "I64");
        long[] out = new long[(e.end() - e.begin()) / 8];
        data.slice(e.begin(), e.end() - e.begin()).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
        return out;
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new IllegalArgumentException(file + ": no tensor " + name + ", expected one of " + entries.keySet());
        }
        return e;
    }

    private Entry entry(String name, String dtype) {
        Entry e = entry(name);
        if (!e.dtype().equals(dtype)) {
            throw new IllegalArgumentException(file + ": tensor " + name + " has dtype " + e.dtype() + ", expected " + dtype);
        }
        return e;
    }
}
