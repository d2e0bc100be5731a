package koala4j.io.safetensors;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.tensor.DType;

/**
 * A safetensors file mapped into memory, with its header validated in full before {@link #open} returns, as the
 * reference reader does ({@code SafeTensors::read_metadata} + {@code Metadata::validate} in huggingface/safetensors
 * {@code safetensors/src/tensor.rs}).
 *
 * <p>Format: 8 bytes little-endian u64 header length {@code n}; {@code n} bytes of UTF-8 JSON mapping each tensor
 * name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the data section), plus an
 * optional {@code "__metadata__"} string→string map; then the data section.
 *
 * <p>What is checked, each failure being one {@link SafetensorsException} naming the file, the tensor when there is
 * one, the value found and what was expected: the file has at least 8 bytes; {@code 0 < n <= 100_000_000} (the
 * reference's {@code MAX_HEADER_SIZE}) and {@code n <= size - 8}; the header is UTF-8 JSON (nesting at most
 * {@value Json#MAX_DEPTH}, no duplicate names, nothing after the object) whose top level is an object; each entry is
 * an object with a dtype among F32, F16, BF16, I32, I64, a shape of at most {@value #MAX_DIMS} non-negative integers
 * whose element and byte counts fit in a {@code long}, and {@code data_offsets} of two integers with
 * {@code begin <= end <= data size} and {@code end - begin == numel * dtype size}. Like the reference, the tensors
 * sorted by offset must tile the data section exactly: each begins where the previous one ended and the last ends
 * at the end of the file (no gap, no overlap, no trailing bytes; {@code InvalidOffset} / {@code
 * MetadataIncompleteBuffer} there). Unknown keys inside an entry are ignored, as serde does.
 *
 * <p>Ownership: the mapping lives in a shared {@link Arena} that this object owns; {@link #close()} unmaps it, after
 * which every {@link TensorEntry#data()} segment from this file is invalid (access throws
 * {@link IllegalStateException}, never reads freed memory). Offsets are {@code long} throughout, so files over 2 GB
 * map as one segment. The file must not be truncated while mapped (the OS would fault on access). Thread-safety:
 * immutable after {@link #open}; the data may be read from any thread.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** huggingface/safetensors {@code MAX_HEADER_SIZE}: headers larger than this are refused unread. */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    static final int MAX_DIMS = 8;
    static final String METADATA_KEY = "__metadata__";

    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path file;
    private final Arena arena;   // null for an in-memory segment (tests)
    private final List<TensorEntry> entries;
    private final Map<String, TensorEntry> byName;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path file, Arena arena, List<TensorEntry> entries, Map<String, String> metadata) {
        this.file = file;
        this.arena = arena;
        this.entries = List.copyOf(entries);
        Map<String, TensorEntry> names = new LinkedHashMap<>();
        for (TensorEntry e : entries) names.put(e.name(), e);
        this.byName = Collections.unmodifiableMap(names);
        this.metadata = metadata;
    }

    /** Maps {@code file} read-only and validates its whole header; see the class comment for what is checked. */
    public static SafetensorsFile open(Path file) {
        Objects.requireNonNull(file, "file");
        if (!Files.isRegularFile(file)) {
            throw new SafetensorsException(file, null, Files.isDirectory(file)
                    ? "is a folder, expected a .safetensors file (use ShardedCheckpoint for folders)"
                    : "no such file");
        }
        Arena arena = Arena.ofShared();
        boolean ok = false;
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < 8) {
                throw new SafetensorsException(file, null,
                        "file is %d bytes, expected at least 8 (the header length)".formatted(size));
            }
            MemorySegment whole = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            SafetensorsFile opened = parse(file, whole, arena);
            ok = true;
            return opened;
        } catch (IOException e) {
            throw new SafetensorsException(file, null, "cannot read (" + e + ")", e);
        } finally {
            if (!ok) arena.close();
        }
    }

    /** Validates and indexes an in-memory image of a file; package-private so the fuzz test can skip the disk. */
    static SafetensorsFile parse(Path file, MemorySegment whole, Arena arena) {
        long size = whole.byteSize();
        if (size < 8) {
            throw new SafetensorsException(file, null,
                    "file is %d bytes, expected at least 8 (the header length)".formatted(size));
        }
        long n = whole.get(U64_LE, 0);
        if (n == 0) {
            throw new SafetensorsException(file, null, "header length is 0, expected at least 2 (\"{}\")");
        }
        if (Long.compareUnsigned(n, MAX_HEADER_BYTES) > 0) {
            throw new SafetensorsException(file, null, "header length is %s bytes, expected at most %d"
                    .formatted(Long.toUnsignedString(n), MAX_HEADER_BYTES));
        }
        if (n > size - 8) {
            throw new SafetensorsException(file, null, "header length is %d bytes, but the file has only %d after the 8-byte length"
                    .formatted(n, size - 8));
        }
        Json header;
        try {
            header = Json.parse(whole.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE), file);
        } catch (JsonException e) {
            throw new SafetensorsException(file, null, "header: " + e.detail(), e);
        }
        long dataStart = 8 + n;
        long dataSize = size - dataStart;

        Map<String, String> metadata = Map.of();
        List<Span> spans = new ArrayList<>();
        for (String name : header.keys()) {
            if (name.equals(METADATA_KEY)) {
                metadata = readMetadata(file, header);
            } else {
                spans.add(readSpan(file, header, name, dataSize));
            }
        }
        checkTiling(file, spans, dataSize);

        MemorySegment data = whole.asSlice(dataStart, dataSize).asReadOnly();
        List<TensorEntry> entries = new ArrayList<>(spans.size());
        for (Span s : spans) {
            entries.add(new TensorEntry(s.name, s.dtype, s.shape, data.asSlice(s.begin, s.end - s.begin)));
        }
        return new SafetensorsFile(file, arena, entries, metadata);
    }

    public Path file() {
        return file;
    }

    /** All tensors, ordered by their offset in the file. */
    public List<TensorEntry> entries() {
        return entries;
    }

    /** Names in file order. */
    public Set<String> names() {
        return byName.keySet();
    }

    public Optional<TensorEntry> get(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** The tensor, or an error naming the file and the missing tensor. */
    public TensorEntry require(String name) {
        TensorEntry e = byName.get(name);
        if (e == null) {
            throw new SafetensorsException(file, name, "not in this file, expected one of its %d tensors"
                    .formatted(byName.size()));
        }
        return e;
    }

    /** The header's {@code __metadata__} map (e.g. {@code {"format": "pt"}}); empty when absent. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Unmaps the file: every {@link TensorEntry#data()} segment obtained from it becomes invalid. Idempotent. */
    @Override
    public void close() {
        if (arena != null && arena.scope().isAlive()) {
            try {
                arena.close();
            } catch (IllegalStateException alreadyClosed) {
                // another thread closed it between the check and the call
            }
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + file + ", " + entries.size() + " tensors]";
    }

    // ------------------------------------------------------------------------------------------------ validation

    private record Span(String name, DType dtype, long[] shape, long begin, long end) {}

    private static Map<String, String> readMetadata(Path file, Json header) {
        if (header.isNull(METADATA_KEY)) return Map.of();   // serde reads null as None
        try {
            return header.stringMap(METADATA_KEY);
        } catch (JsonException e) {
            throw new SafetensorsException(file, null, e.detail(), e);
        }
    }

    private static Span readSpan(Path file, Json header, String name, long dataSize) {
        String dtypeName;
        List<Long> shapeList;
        List<Long> offsets;
        try {
            Json entry = header.object(name);
            dtypeName = entry.string("dtype");
            shapeList = entry.longList("shape");
            offsets = entry.longList("data_offsets");
        } catch (JsonException e) {
            throw new SafetensorsException(file, name, e.detail(), e);
        }
        DType dtype = Dtypes.fromName(dtypeName);
        if (dtype == null) {
            throw new SafetensorsException(file, name, "dtype %s%s, expected one of %s".formatted(
                    SafetensorsException.quoted(dtypeName),
                    Dtypes.isKnownUnsupported(dtypeName) ? " (a safetensors dtype koala4j does not read)" : "",
                    Dtypes.SUPPORTED));
        }
        if (shapeList.size() > MAX_DIMS) {
            throw new SafetensorsException(file, name, "shape has %d dimensions, expected at most %d"
                    .formatted(shapeList.size(), MAX_DIMS));
        }
        long[] shape = new long[shapeList.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeList.get(i);
            if (shape[i] < 0) {
                throw new SafetensorsException(file, name, "shape %s has %d at dim %d, expected a non-negative size"
                        .formatted(shapeList, shape[i], i));
            }
        }
        long numel;
        long bytes;
        try {
            // Like the reference's checked_mul fold: an overflowing prefix is an error even if a later dim is 0.
            numel = 1;
            for (long d : shape) numel = Math.multiplyExact(numel, d);
            bytes = Math.multiplyExact(numel, (long) dtype.byteSize());
        } catch (ArithmeticException overflow) {
            throw new SafetensorsException(file, name, "shape %s of %s has more than 2^63-1 bytes, expected a size that fits in a long"
                    .formatted(shapeList, dtypeName));
        }
        if (offsets.size() != 2) {
            throw new SafetensorsException(file, name, "data_offsets %s has %d values, expected 2 ([begin, end])"
                    .formatted(abbreviate(offsets), offsets.size()));
        }
        long begin = offsets.get(0);
        long end = offsets.get(1);
        if (begin < 0 || end < 0) {
            throw new SafetensorsException(file, name, "data_offsets %s, expected non-negative offsets".formatted(offsets));
        }
        if (begin > end) {
            throw new SafetensorsException(file, name, "data_offsets %s, expected begin <= end".formatted(offsets));
        }
        if (end > dataSize) {
            throw new SafetensorsException(file, name, "data_offsets %s end beyond the data section, expected end <= %d"
                    .formatted(offsets, dataSize));
        }
        if (end - begin != bytes) {
            throw new SafetensorsException(file, name, "data_offsets %s span %d bytes, expected %d (%d elements of %s, shape %s)"
                    .formatted(offsets, end - begin, bytes, numel, dtypeName, shapeList));
        }
        return new Span(name, dtype, shape, begin, end);
    }

    /** The reference's rule: sorted by offsets, each tensor starts where the previous ended; the last ends the file. */
    private static void checkTiling(Path file, List<Span> spans, long dataSize) {
        spans.sort(Comparator.comparingLong(Span::begin).thenComparingLong(Span::end));
        long covered = 0;
        Span previous = null;
        for (Span s : spans) {
            if (s.begin > covered) {
                throw new SafetensorsException(file, s.name, "data_offsets [%d, %d] leave bytes [%d, %d) of the data section unused (after %s), expected tensors to follow each other without gaps"
                        .formatted(s.begin, s.end, covered, s.begin,
                                previous == null ? "its start" : "tensor " + SafetensorsException.quoted(previous.name)));
            }
            if (s.begin < covered) {
                throw new SafetensorsException(file, s.name, "data_offsets [%d, %d] overlap tensor %s at [%d, %d], expected disjoint ranges"
                        .formatted(s.begin, s.end, SafetensorsException.quoted(previous.name), previous.begin, previous.end));
            }
            covered = s.end;
            previous = s;
        }
        if (covered != dataSize) {
            throw new SafetensorsException(file, null, "data section is %d bytes but its tensors cover only the first %d, expected the last tensor to end the file"
                    .formatted(dataSize, covered));
        }
    }

    private static String abbreviate(List<Long> values) {
        return values.size() <= 4 ? values.toString()
                : Arrays.toString(values.subList(0, 4).toArray()).replace("]", ", …]");
    }
}
