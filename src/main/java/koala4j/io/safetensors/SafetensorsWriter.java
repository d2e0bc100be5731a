package koala4j.io.safetensors;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import koala4j.io.json.Json;
import koala4j.tensor.DType;

/**
 * Writes safetensors files that the reference reads, laid out as huggingface/safetensors {@code serialize_to_file}
 * does (safetensors/src/tensor.rs): u64 little-endian header length; compact JSON header with {@code __metadata__}
 * first (when given) and then, per tensor, {@code {"dtype", "shape", "data_offsets"}}; the header padded with spaces
 * to a multiple of 8 bytes so that data starts 8-aligned; then the data, contiguous. Unlike the reference, which
 * sorts tensors by dtype then name, tensors are written in the order given.
 *
 * <p>The file appears atomically: everything is written to a hidden temporary file in the same folder, flushed to
 * disk, then renamed over {@code file}. A crash leaves either the old file or the new one, never half of one (at
 * worst a stray {@code .<name>.<random>.tmp} next to it).
 */
public final class SafetensorsWriter {
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long CHUNK = 8L << 20;   // ByteBuffers are int-indexed; large tensors go out in pieces

    private SafetensorsWriter() {}

    /**
     * Writes {@code tensors} (in this order) and {@code metadata} (nullable or empty: no {@code __metadata__}).
     * Names must be unique and not {@code "__metadata__"}.
     */
    public static void write(Path file, List<TensorEntry> tensors, Map<String, String> metadata) {
        Objects.requireNonNull(file, "file");
        byte[] header = header(file, tensors, metadata);
        Path folder = file.toAbsolutePath().getParent();
        Path temp = folder.resolve("." + file.getFileName() + "." + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong()) + ".tmp");
        try {
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                writeTo(channel, header, tensors);
                channel.force(true);
            }
            Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new SafetensorsException(file, null, "cannot write (" + e + ")", e);
        } finally {
            try {
                Files.deleteIfExists(temp);   // only still there when something failed
            } catch (IOException ignored) {
                // the original error, if any, is the one worth reporting
            }
        }
    }

    /** The complete file image in memory; for tests and small files. */
    static byte[] toBytes(List<TensorEntry> tensors, Map<String, String> metadata) {
        Path name = Path.of("<memory>");
        byte[] header = header(name, tensors, metadata);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writeTo(Channels.newChannel(out), header, tensors);
        } catch (IOException e) {
            throw new SafetensorsException(name, null, "cannot write (" + e + ")", e);
        }
        return out.toByteArray();
    }

    // ------------------------------------------------------------------------------------------------ conveniences

    public static TensorEntry f32(String name, long[] shape, float[] values) {
        MemorySegment data = bytes(name, shape, values.length, 4);
        MemorySegment.copy(values, 0, data, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, values.length);
        return new TensorEntry(name, DType.F32, shape, data);
    }

    /** {@code bits}: IEEE half bit patterns (see {@link DType#f32ToF16}). */
    public static TensorEntry f16(String name, long[] shape, short[] bits) {
        return shorts(name, DType.F16, shape, bits);
    }

    /** {@code bits}: bfloat16 bit patterns (see {@link DType#f32ToBf16}). */
    public static TensorEntry bf16(String name, long[] shape, short[] bits) {
        return shorts(name, DType.BF16, shape, bits);
    }

    public static TensorEntry i32(String name, long[] shape, int[] values) {
        MemorySegment data = bytes(name, shape, values.length, 4);
        MemorySegment.copy(values, 0, data, ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, values.length);
        return new TensorEntry(name, DType.I32, shape, data);
    }

    public static TensorEntry i64(String name, long[] shape, long[] values) {
        MemorySegment data = bytes(name, shape, values.length, 8);
        MemorySegment.copy(values, 0, data, ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, values.length);
        return new TensorEntry(name, DType.I64, shape, data);
    }

    private static TensorEntry shorts(String name, DType dtype, long[] shape, short[] bits) {
        MemorySegment data = bytes(name, shape, bits.length, 2);
        MemorySegment.copy(bits, 0, data, ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, bits.length);
        return new TensorEntry(name, dtype, shape, data);
    }

    private static MemorySegment bytes(String name, long[] shape, int count, int elementSize) {
        long numel = TensorEntry.elementCount(name, shape);
        if (numel != count) {
            throw new IllegalArgumentException("tensor \"%s\": %d values, expected %d for shape %s"
                    .formatted(name, count, numel, Arrays.toString(shape)));
        }
        return MemorySegment.ofArray(new byte[Math.multiplyExact(count, elementSize)]);
    }

    // ------------------------------------------------------------------------------------------------ layout

    private static byte[] header(Path file, List<TensorEntry> tensors, Map<String, String> metadata) {
        StringBuilder json = new StringBuilder("{");
        if (metadata != null && !metadata.isEmpty()) {
            json.append(Json.quote(SafetensorsFile.METADATA_KEY)).append(":{");
            boolean first = true;
            for (Map.Entry<String, String> e : metadata.entrySet()) {
                if (e.getKey() == null || e.getValue() == null) {
                    throw new SafetensorsException(file, null, "metadata %s -> %s, expected non-null strings"
                            .formatted(e.getKey(), e.getValue()));
                }
                json.append(first ? "" : ",").append(Json.quote(e.getKey())).append(':').append(Json.quote(e.getValue()));
                first = false;
            }
            json.append('}');
        }
        Set<String> seen = new HashSet<>();
        long offset = 0;
        for (TensorEntry t : tensors) {
            if (t.name().equals(SafetensorsFile.METADATA_KEY)) {
                throw new SafetensorsException(file, t.name(), "name is reserved for the metadata map, expected a tensor name");
            }
            if (!seen.add(t.name())) {
                throw new SafetensorsException(file, t.name(), "appears twice, expected unique tensor names");
            }
            String dtype = Dtypes.nameOf(t.dtype());
            if (dtype == null) {
                throw new SafetensorsException(file, t.name(), "dtype %s, expected one of %s".formatted(t.dtype(), Dtypes.SUPPORTED));
            }
            long end = offset + t.data().byteSize();
            json.append(json.length() > 1 ? "," : "").append(Json.quote(t.name()))
                    .append(":{\"dtype\":\"").append(dtype).append("\",\"shape\":[");
            long[] shape = t.shape();
            for (int i = 0; i < shape.length; i++) json.append(i > 0 ? "," : "").append(shape[i]);
            json.append("],\"data_offsets\":[").append(offset).append(',').append(end).append("]}");
            offset = end;
        }
        json.append('}');
        ByteBuffer utf8;
        try {
            utf8 = StandardCharsets.UTF_8.newEncoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .encode(CharBuffer.wrap(json));
        } catch (CharacterCodingException e) {
            throw new SafetensorsException(file, null, "a tensor name or metadata string holds an unpaired surrogate, expected valid Unicode", e);
        }
        int padded = (utf8.remaining() + 7) & ~7;
        if (padded > SafetensorsFile.MAX_HEADER_BYTES) {
            throw new SafetensorsException(file, null, "header would be %d bytes, expected at most %d"
                    .formatted(padded, SafetensorsFile.MAX_HEADER_BYTES));
        }
        byte[] header = new byte[padded];
        Arrays.fill(header, (byte) ' ');
        utf8.get(header, 0, utf8.remaining());
        return header;
    }

    private static void writeTo(WritableByteChannel channel, byte[] header, List<TensorEntry> tensors) throws IOException {
        MemorySegment length = MemorySegment.ofArray(new byte[8]);
        length.set(U64_LE, 0, header.length);
        writeFully(channel, length.asByteBuffer());
        writeFully(channel, ByteBuffer.wrap(header));
        for (TensorEntry t : tensors) {
            MemorySegment data = t.data();
            // a ByteBuffer views native memory and byte[] only: other heap arrays (float[], short[]) go through a copy
            boolean viewable = data.isNative() || data.heapBase().orElse(null) instanceof byte[];
            for (long at = 0; at < data.byteSize(); at += CHUNK) {
                MemorySegment piece = data.asSlice(at, Math.min(CHUNK, data.byteSize() - at));
                writeFully(channel, viewable ? piece.asByteBuffer()
                        : ByteBuffer.wrap(piece.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)));
            }
        }
    }

    private static void writeFully(WritableByteChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) channel.write(buffer);
    }
}
