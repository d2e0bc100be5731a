package koala4j.io.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import koala4j.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path dir;

    private static short[] halves(float... values) {
        short[] bits = new short[values.length];
        for (int i = 0; i < values.length; i++) bits[i] = DType.f32ToF16(values[i]);
        return bits;
    }

    private static short[] bfloats(float... values) {
        short[] bits = new short[values.length];
        for (int i = 0; i < values.length; i++) bits[i] = DType.f32ToBf16(values[i]);
        return bits;
    }

    @Test
    void everyDtypeRoundTripsIncludingScalarsAndEmptyTensors() {
        List<TensorEntry> written = List.of(
                SafetensorsWriter.f32("w.f32", new long[] {2, 3}, new float[] {1, -2, 3.5f, Float.NaN, -0f, 1e-30f}),
                SafetensorsWriter.f16("w.f16", new long[] {3}, halves(1, -65504, 0.5f)),
                SafetensorsWriter.bf16("w.bf16", new long[] {1, 2}, bfloats(3.0f, -1e30f)),
                SafetensorsWriter.i32("ids32", new long[] {3}, new int[] {Integer.MIN_VALUE, 0, Integer.MAX_VALUE}),
                SafetensorsWriter.i64("ids64", new long[] {2}, new long[] {Long.MIN_VALUE, 49407}),
                SafetensorsWriter.f32("scalar", new long[] {}, new float[] {42}),
                SafetensorsWriter.f32("empty", new long[] {0}, new float[] {}),
                SafetensorsWriter.i64("empty.3d", new long[] {2, 0, 3}, new long[] {}),
                SafetensorsWriter.i32("scalar.int", new long[] {}, new int[] {-7}));
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", "pt");
        metadata.put("note", "ü \"quoted\" \\ 한");
        Path file = dir.resolve("all.safetensors");
        SafetensorsWriter.write(file, written, metadata);

        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(file, f.file());
            assertEquals(metadata, f.metadata());
            assertEquals(written.stream().map(TensorEntry::name).toList(), f.entries().stream().map(TensorEntry::name).toList(),
                    "file order is the order written");
            for (TensorEntry w : written) {
                TensorEntry r = f.require(w.name());
                assertEquals(w.dtype(), r.dtype());
                assertArrayEquals(w.shape(), r.shape());
                assertEquals(w.numel(), r.numel());
                assertEquals(-1, w.data().mismatch(r.data()), w.name() + " bytes differ");
                assertTrue(r.data().isReadOnly());
            }
            MemorySegment f32 = f.require("w.f32").data();
            assertEquals(3.5f, f32.get(F32, 8));
            assertTrue(Float.isNaN(f32.get(F32, 12)));
            assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(f32.get(F32, 16)));
            assertEquals(-65504f, DType.f16ToF32(f.require("w.f16").data().get(I16, 2)));
            assertEquals(DType.bf16ToF32(DType.f32ToBf16(-1e30f)), DType.bf16ToF32(f.require("w.bf16").data().get(I16, 2)));
            assertEquals(Integer.MAX_VALUE, f.require("ids32").data().get(I32, 8));
            assertEquals(Long.MIN_VALUE, f.require("ids64").data().get(I64, 0));
            assertEquals(49407L, f.require("ids64").data().get(I64, 8));
            assertEquals(42f, f.require("scalar").data().get(F32, 0));
            assertEquals(1, f.require("scalar").numel());
            assertEquals(0, f.require("scalar").rank());
            assertEquals(0, f.require("empty.3d").numel());
            assertEquals(0, f.require("empty.3d").data().byteSize());
            assertEquals(-7, f.require("scalar.int").data().get(I32, 0));
        }
    }

    @Test
    void layoutMatchesTheReferenceWriter() throws Exception {
        // Expected bytes from huggingface/safetensors tensor.rs tests (test_serialization, test_empty,
        // test_serialization_forced_alignement): compact JSON, header padded with spaces to a multiple of 8.
        float[] values = {0, 1, 2, 3, 4, 5};
        byte[] one = SafetensorsWriter.toBytes(List.of(SafetensorsWriter.f32("attn.0", new long[] {1, 2, 3}, values)), null);
        assertArrayEquals(reference(64, "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", values), one);

        byte[] aligned = SafetensorsWriter.toBytes(List.of(SafetensorsWriter.f32("attn0", new long[] {1, 1, 2, 3}, values)), null);
        assertArrayEquals(reference(72, "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ", values), aligned);

        assertArrayEquals(reference(8, "{}      "), SafetensorsWriter.toBytes(List.of(), Map.of()));
        assertArrayEquals(reference(40, "{\"__metadata__\":{\"framework\":\"pt\"}}     "),
                SafetensorsWriter.toBytes(List.of(), Map.of("framework", "pt")));

        Path file = dir.resolve("ref.safetensors");
        SafetensorsWriter.write(file, List.of(SafetensorsWriter.f32("attn.0", new long[] {1, 2, 3}, values)), null);
        assertArrayEquals(one, Files.readAllBytes(file), "write() and toBytes() lay the file out the same");
        // data in a float[] (a heap segment that has no ByteBuffer view) is written the same
        SafetensorsWriter.write(file, List.of(new TensorEntry("attn.0", DType.F32, new long[] {1, 2, 3},
                MemorySegment.ofArray(values.clone()))), null);
        assertArrayEquals(one, Files.readAllBytes(file), "a float[] segment");
    }

    private static byte[] reference(long n, String header, float... data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        assertEquals(n, h.length);
        MemorySegment out = MemorySegment.ofArray(new byte[8 + h.length + 4 * data.length]);
        out.set(I64, 0, n);
        MemorySegment.copy(MemorySegment.ofArray(h), 0, out, 8, h.length);
        for (int i = 0; i < data.length; i++) out.set(F32, 8 + h.length + 4L * i, data[i]);
        return out.toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void anEmptyFileWithMetadataOnlyRoundTrips() {
        Path file = dir.resolve("empty.safetensors");
        SafetensorsWriter.write(file, List.of(), Map.of("k", "v"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of(), f.entries());
            assertEquals(Map.of("k", "v"), f.metadata());
        }
    }

    @Test
    void lookupsNameTheFileAndTensor() {
        Path file = dir.resolve("one.safetensors");
        SafetensorsWriter.write(file, List.of(SafetensorsWriter.f32("a", new long[] {1}, new float[] {1})), null);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertTrue(f.get("a").isPresent());
            assertTrue(f.get("b").isEmpty());
            assertEquals(Map.of(), f.metadata());
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> f.require("b"));
            assertEquals(file + ": tensor \"b\": not in this file, expected one of its 1 tensors", e.getMessage());
            assertEquals(file, e.file());
            assertEquals("b", e.tensor());
        }
    }

    @Test
    void closingInvalidatesTheData() {
        Path file = dir.resolve("c.safetensors");
        SafetensorsWriter.write(file, List.of(SafetensorsWriter.f32("a", new long[] {2}, new float[] {1, 2})), null);
        SafetensorsFile f = SafetensorsFile.open(file);
        MemorySegment data = f.require("a").data();
        assertEquals(2f, data.get(F32, 4));
        f.close();
        f.close();   // idempotent
        assertThrows(IllegalStateException.class, () -> data.get(F32, 4));
    }

    @Test
    void writerReplacesAtomicallyAndLeavesNoTemporaryFiles() throws Exception {
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter.write(file, List.of(SafetensorsWriter.f32("old", new long[] {1}, new float[] {1})), null);
        byte[] before = Files.readAllBytes(file);

        // A tensor whose memory is gone fails half-way through writing: the old file must survive untouched.
        MemorySegment freed;
        try (Arena arena = Arena.ofConfined()) {
            freed = arena.allocate(8);
        }
        TensorEntry dead = new TensorEntry("dead", DType.F32, new long[] {2}, freed);
        assertThrows(IllegalStateException.class, () -> SafetensorsWriter.write(file,
                List.of(SafetensorsWriter.f32("new", new long[] {1}, new float[] {2}), dead), null));
        assertArrayEquals(before, Files.readAllBytes(file));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList(), "no temporary file left behind");
        }

        SafetensorsWriter.write(file, List.of(SafetensorsWriter.f32("new", new long[] {1}, new float[] {2})), null);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("new"), f.entries().stream().map(TensorEntry::name).toList());
        }
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(1, files.count());
        }
    }

    @Test
    void writerRefusesWhatCannotBeReadBack() {
        Path file = dir.resolve("bad.safetensors");
        TensorEntry a = SafetensorsWriter.f32("a", new long[] {1}, new float[] {1});
        SafetensorsException twice = assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file, List.of(a, a), null));
        assertEquals(file + ": tensor \"a\": appears twice, expected unique tensor names", twice.getMessage());
        SafetensorsException reserved = assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file,
                List.of(SafetensorsWriter.f32("__metadata__", new long[] {1}, new float[] {1})), null));
        assertEquals("__metadata__", reserved.tensor());
        SafetensorsException surrogate = assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file,
                List.of(SafetensorsWriter.f32("x\uD800", new long[] {1}, new float[] {1})), null));
        assertTrue(surrogate.getMessage().contains("unpaired surrogate"), surrogate.getMessage());
        assertFalse(Files.exists(file));
    }

    @Test
    void entriesCheckTheirOwnSize() {
        IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.f32("w", new long[] {2, 2}, new float[3]));
        assertEquals("tensor \"w\": 3 values, expected 4 for shape [2, 2]", count.getMessage());
        IllegalArgumentException bytes = assertThrows(IllegalArgumentException.class,
                () -> new TensorEntry("w", DType.I64, new long[] {2}, MemorySegment.ofArray(new byte[8])));
        assertEquals("tensor \"w\": data is 8 bytes, expected 16 (I64 [2])", bytes.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new TensorEntry("w", DType.F32, new long[] {-1}, MemorySegment.ofArray(new byte[0])));
        assertThrows(IllegalArgumentException.class,
                () -> new TensorEntry("w", DType.F32, new long[] {1L << 40, 1L << 40}, MemorySegment.ofArray(new byte[0])));

        long[] shape = {2};
        TensorEntry e = SafetensorsWriter.i64("w", shape, new long[] {1, 2});
        shape[0] = 5;
        e.shape()[0] = 7;
        assertArrayEquals(new long[] {2}, e.shape(), "the entry keeps its own copy of the shape");
        assertEquals("w I64 [2]", e.toString());
        assertEquals(e, new TensorEntry("w", DType.I64, new long[] {2}, e.data()));
    }

    @Test
    void foldersAndMissingFilesAreNamed() {
        SafetensorsException folder = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(dir));
        assertEquals(dir + ": is a folder, expected a .safetensors file (use ShardedCheckpoint for folders)", folder.getMessage());
        Path missing = dir.resolve("nope.safetensors");
        SafetensorsException none = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(missing));
        assertEquals(missing + ": no such file", none.getMessage());
        assertNull(none.tensor());
    }

    @Test
    void largeTensorsAreWrittenInChunks() {
        // 20 MiB > the writer's 8 MiB chunk: the pieces must join up exactly.
        float[] values = new float[5 << 20];
        for (int i = 0; i < values.length; i++) values[i] = i;
        Path file = dir.resolve("big.safetensors");
        SafetensorsWriter.write(file, List.of(SafetensorsWriter.f32("big", new long[] {values.length}, values)), null);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            MemorySegment data = f.require("big").data();
            float[] back = data.toArray(F32);
            assertTrue(Arrays.equals(values, back));
        }
    }
}
