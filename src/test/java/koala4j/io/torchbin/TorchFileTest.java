package koala4j.io.torchbin;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import koala4j.io.safetensors.SafetensorsWriter;
import koala4j.io.safetensors.TensorEntry;
import koala4j.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One torch.save file: golden/torchbin/mixed.bin and proto4.bin (torch 2.13, see make.py there) read exactly, and the
 * formats and layouts that are refused, each with one {@link TorchbinException} naming the file.
 */
class TorchFileTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path dir;

    /** make.py's values(n): arange(n) * 0.25 - 1, exact in every float dtype. */
    private static float[] values(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i * 0.25f - 1f;
        return v;
    }

    static float[] floats(TensorEntry e) {
        MemorySegment d = e.data();
        float[] out = new float[(int) e.numel()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (e.dtype()) {
                case F32 -> d.get(F32, 4L * i);
                case F16 -> DType.f16ToF32(d.get(I16, 2L * i));
                case BF16 -> DType.bf16ToF32(d.get(I16, 2L * i));
                default -> throw new IllegalArgumentException(e.toString());
            };
        }
        return out;
    }

    static long[] longs(TensorEntry e) {
        long[] out = new long[(int) e.numel()];
        for (int i = 0; i < out.length; i++) {
            out[i] = e.dtype() == DType.I64 ? e.data().get(I64, 8L * i) : e.data().get(I32, 4L * i);
        }
        return out;
    }

    private static void check(TorchFile f, String name, DType dtype, long[] shape, float[] expected) {
        TensorEntry e = f.get(name).orElseThrow();
        assertEquals(name, e.name());
        assertEquals(dtype, e.dtype(), name);
        assertArrayEquals(shape, e.shape(), name);
        assertArrayEquals(expected, floats(e), name);
    }

    @Test
    void readsEveryDtypeViewAndConversionOfMixedBin() {
        Path file = resource("golden/torchbin/mixed.bin");
        try (TorchFile f = TorchFile.open(file)) {
            assertEquals(List.of("f32", "f16", "bf16", "i64", "i32", "f32.row1", "f32.t", "f32.even_cols", "tied.a", "tied.b",
                    "scalar", "empty", "param", "expanded", "f64", "i16", "i8", "u8", "bool", "complex"), List.copyOf(f.names()));
            float[] v12 = values(12);
            check(f, "f32", DType.F32, new long[] {3, 4}, v12);
            check(f, "f16", DType.F16, new long[] {3, 4}, v12);
            check(f, "bf16", DType.BF16, new long[] {3, 4}, v12);
            assertArrayEquals(new long[] {-3, -2, -1, 0, 1, 2}, longs(f.get("i64").orElseThrow()));
            assertEquals(DType.I32, f.get("i32").orElseThrow().dtype());
            assertArrayEquals(new long[] {0, 7, 14, 21, 28}, longs(f.get("i32").orElseThrow()));
            // three views of f32's storage: a row at offset 4, a transpose and a strided slice (both copied dense)
            check(f, "f32.row1", DType.F32, new long[] {4}, new float[] {v12[4], v12[5], v12[6], v12[7]});
            float[] transposed = new float[12];
            for (int i = 0; i < 4; i++) for (int j = 0; j < 3; j++) transposed[i * 3 + j] = v12[j * 4 + i];
            check(f, "f32.t", DType.F32, new long[] {4, 3}, transposed);
            check(f, "f32.even_cols", DType.F32, new long[] {3, 2}, new float[] {v12[0], v12[2], v12[4], v12[6], v12[8], v12[10]});
            float[] tied = values(6);
            for (int i = 0; i < 6; i++) tied[i] += 100;
            check(f, "tied.a", DType.F32, new long[] {2, 3}, tied);
            check(f, "tied.b", DType.F32, new long[] {2, 3}, tied);
            check(f, "scalar", DType.F32, new long[] {}, new float[] {3.25f});
            check(f, "empty", DType.F32, new long[] {0, 3}, new float[0]);
            check(f, "param", DType.F32, new long[] {2, 2}, new float[] {1.5f, 1.5f, 1.5f, 1.5f});
            float[] v3 = values(3);
            check(f, "expanded", DType.F32, new long[] {4, 3}, new float[] {v3[0], v3[1], v3[2], v3[0], v3[1], v3[2],
                    v3[0], v3[1], v3[2], v3[0], v3[1], v3[2]});
            // float64 -> float32 rounded to nearest; int16/int8/uint8/bool -> int32 exactly
            check(f, "f64", DType.F32, new long[] {4}, new float[] {0f, (float) (1.0 / 3), (float) (2.0 / 3), 1f});
            assertEquals(DType.I32, f.get("i16").orElseThrow().dtype());
            assertArrayEquals(new long[] {-32768, 5, 32767}, longs(f.get("i16").orElseThrow()));
            assertArrayEquals(new long[] {-128, -1, 0, 127}, longs(f.get("i8").orElseThrow()));
            assertArrayEquals(new long[] {0, 1, 200, 255}, longs(f.get("u8").orElseThrow()));
            assertArrayEquals(new long[] {1, 0, 1}, longs(f.get("bool").orElseThrow()));
            TorchbinException complex = assertThrows(TorchbinException.class, () -> f.get("complex"));
            assertEquals(file + ": tensor \"complex\": dtype complex64 (torch.ComplexFloatStorage) is not read by koala4j, expected"
                    + " float32, float16, bfloat16, int64 or int32 (float64, int16, int8, uint8 and bool are converted)", complex.getMessage());
            assertTrue(f.get("absent").isEmpty());
        }
    }

    @Test
    void contiguousTensorsAreViewsOfTheMappingAndTiedOnesShareBytes() {
        try (TorchFile f = TorchFile.open(resource("golden/torchbin/mixed.bin"))) {
            TensorEntry a = f.get("tied.a").orElseThrow();
            TensorEntry b = f.get("tied.b").orElseThrow();
            assertTrue(a.data().isMapped() && a.data().isReadOnly());
            assertEquals(a.data().address(), b.data().address(), "one storage, one region");
            TensorEntry whole = f.get("f32").orElseThrow();
            TensorEntry row = f.get("f32.row1").orElseThrow();
            assertEquals(whole.data().address() + 16, row.data().address(), "row 1 starts 4 floats into f32's storage");
            TensorEntry copy = f.get("f32.t").orElseThrow();
            assertTrue(!copy.data().isMapped(), "a transpose is gathered into a copy");
            assertEquals(copy.data().address(), f.get("f32.t").orElseThrow().data().address(), "copied once");
        }
    }

    @Test
    void closingInvalidatesViewsAndCopies() {
        TorchFile f = TorchFile.open(resource("golden/torchbin/mixed.bin"));
        TensorEntry view = f.get("f32").orElseThrow();
        TensorEntry copy = f.get("f32.t").orElseThrow();
        f.close();
        f.close();
        assertThrows(IllegalStateException.class, () -> view.data().get(ValueLayout.JAVA_BYTE, 0));
        assertThrows(IllegalStateException.class, () -> copy.data().get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void readsPickleProtocol4() {
        try (TorchFile f = TorchFile.open(resource("golden/torchbin/proto4.bin"))) {
            assertEquals(Set.of("w", "b"), f.names());
            check(f, "w", DType.F32, new long[] {2, 3}, values(6));
            assertArrayEquals(new long[] {0, 1, 2}, longs(f.get("b").orElseThrow()));
        }
    }

    @Test
    void refusesTheLegacyFormatSafetensorsAndOtherFiles() throws IOException {
        Path legacy = resource("golden/torchbin/legacy.bin");
        TorchbinException e = assertThrows(TorchbinException.class, () -> TorchFile.open(legacy));
        assertTrue(e.getMessage().startsWith(legacy + ": is in the legacy torch.save format"), e.getMessage());
        assertTrue(e.getMessage().contains("re-save it with torch >= 1.6"), e.getMessage());

        Path safetensors = dir.resolve("model.bin");
        SafetensorsWriter.write(safetensors, List.of(SafetensorsWriter.f32("w", new long[] {1}, new float[] {1})), java.util.Map.of());
        e = assertThrows(TorchbinException.class, () -> TorchFile.open(safetensors));
        assertEquals(safetensors + ": is a safetensors file, not a torch.save archive; open it as safetensors", e.getMessage());

        Path text = Files.writeString(dir.resolve("notes.bin"), "hello");
        e = assertThrows(TorchbinException.class, () -> TorchFile.open(text));
        assertEquals(text + ": starts with bytes 68 65 6c 6c, expected a zip archive (\"PK\\3\\4\") as torch.save (torch >= 1.6) writes", e.getMessage());

        Path empty = Files.write(dir.resolve("empty.bin"), new byte[0]);
        e = assertThrows(TorchbinException.class, () -> TorchFile.open(empty));
        assertTrue(e.getMessage().contains("nothing (empty file)"), e.getMessage());

        e = assertThrows(TorchbinException.class, () -> TorchFile.open(dir));
        assertTrue(e.getMessage().contains("is a folder"), e.getMessage());
        e = assertThrows(TorchbinException.class, () -> TorchFile.open(dir.resolve("missing.bin")));
        assertTrue(e.getMessage().endsWith("no such file"), e.getMessage());
    }

    private TorchbinException refused(byte[] image) throws IOException {
        Path file = Files.write(dir.resolve("case.bin"), image);
        TorchbinException e = assertThrows(TorchbinException.class, () -> TorchFile.open(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        assertEquals(file, e.file());
        return e;
    }

    private static byte[] oneTensor(List<TorchZip.Record> storages) {
        byte[] pickle = TorchZip.stateDict(List.of(TorchZip.Tensor.contiguous("w", "FloatStorage", "0", 2, 2)));
        return TorchZip.archive("case", pickle, storages);
    }

    @Test
    void readsArchivesWrittenByAnotherZipWriterAndZip64() throws IOException {
        byte[] data = TorchZip.floats(1, 2, 3, 4);
        byte[] pickle = TorchZip.stateDict(List.of(TorchZip.Tensor.contiguous("w", "FloatStorage", "0", 2, 2)));
        for (boolean zip64 : new boolean[] {false, true}) {
            byte[] image = TorchZip.zip(List.of(new TorchZip.Record("a/data.pkl", pickle, true),
                    new TorchZip.Record("a/data/0", data)), zip64);
            Path file = Files.write(dir.resolve("zip64-" + zip64 + ".bin"), image);
            try (TorchFile f = TorchFile.open(file)) {
                check(f, "w", DType.F32, new long[] {2, 2}, new float[] {1, 2, 3, 4});
            }
        }
    }

    @Test
    void refusesBrokenArchives() throws IOException {
        byte[] data = TorchZip.floats(1, 2, 3, 4);
        assertTrue(refused(oneTensor(List.of(new TorchZip.Record("0", data, true)))).getMessage()
                .contains("storage record \"case/data/0\" is compressed (method 8), expected it stored"));
        assertTrue(refused(oneTensor(List.of(new TorchZip.Record("1", data)))).getMessage()
                .contains("storage \"0\" has no record \"case/data/0\""));
        assertTrue(refused(oneTensor(List.of(new TorchZip.Record("0", new byte[12])))).getMessage()
                .contains("storage \"0\" has a record of 12 bytes, expected 16 (4 float32 elements)"));
        byte[] good = oneTensor(List.of(new TorchZip.Record("0", data)));
        try (TorchFile f = TorchFile.parse(Path.of("mem.bin"), MemorySegment.ofArray(good), null)) {
            check(f, "w", DType.F32, new long[] {2, 2}, new float[] {1, 2, 3, 4});
        }
        for (int cut : new int[] {good.length - 1, good.length - 22, good.length / 2, 30, 4}) {
            refused(java.util.Arrays.copyOf(good, cut));
        }
        String big = new String(good, StandardCharsets.ISO_8859_1).replace("little", "big\0\0\0");
        // the byteorder record's CRC no longer matches: damaged is reported before the content is looked at
        assertTrue(refused(big.getBytes(StandardCharsets.ISO_8859_1)).getMessage().contains("CRC-32"));
        byte[] bigEndian = TorchZip.zip(List.of(
                new TorchZip.Record("case/data.pkl", TorchZip.stateDict(List.of(TorchZip.Tensor.contiguous("w", "FloatStorage", "0", 2, 2)))),
                new TorchZip.Record("case/byteorder", "big".getBytes(StandardCharsets.US_ASCII)),
                new TorchZip.Record("case/data/0", data)), false);
        assertTrue(refused(bigEndian).getMessage().endsWith("byteorder record is \"big\", expected \"little\" (big-endian storages are not read)"));
        byte[] script = TorchZip.zip(List.of(new TorchZip.Record("m/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'})), false);
        assertTrue(refused(script).getMessage().endsWith("is a TorchScript archive (torch.jit.save), expected a torch.save checkpoint"));
        byte[] flat = TorchZip.zip(List.of(new TorchZip.Record("data.pkl", new byte[] {'.'})), false);
        assertTrue(refused(flat).getMessage().contains("first record \"data.pkl\" is not inside a folder"));
    }

    @Test
    void refusesViewsOutsideTheirStorage() throws IOException {
        byte[] data = TorchZip.floats(1, 2, 3, 4);
        long[][] cases = {{1, 4}, {0, 5}, {3, 2}};   // offset, size of a 1-d view of a 4-element storage
        for (long[] c : cases) {
            byte[] pickle = TorchZip.stateDict(List.of(new TorchZip.Tensor("w", "FloatStorage", "0", 4, c[0], new long[] {c[1]}, new long[] {1})));
            TorchbinException e = refused(TorchZip.archive("case", pickle, List.of(new TorchZip.Record("0", data))));
            assertTrue(e.getMessage().contains("tensor \"w\": view (offset " + c[0]) && e.getMessage().contains("of storage \"0\", which has 4"),
                    e.getMessage());
        }
        // a 2-d view whose stride reaches past the end; and sizes whose product overflows
        byte[] pickle = TorchZip.stateDict(List.of(new TorchZip.Tensor("w", "FloatStorage", "0", 4, 0, new long[] {2, 2}, new long[] {3, 1})));
        refused(TorchZip.archive("case", pickle, List.of(new TorchZip.Record("0", data))));
        pickle = TorchZip.stateDict(List.of(new TorchZip.Tensor("w", "FloatStorage", "0", 4, 0, new long[] {1L << 40, 1L << 40}, new long[] {0, 0})));
        assertTrue(refused(TorchZip.archive("case", pickle, List.of(new TorchZip.Record("0", data)))).getMessage().contains("overflows 64 bits"));
        // broadcasting a tiny storage to 2^31 elements would be an 8 GB copy: refused when opened, nothing allocated
        pickle = TorchZip.stateDict(List.of(new TorchZip.Tensor("w", "FloatStorage", "0", 4, 0, new long[] {1L << 31}, new long[] {0})));
        assertTrue(refused(TorchZip.archive("case", pickle, List.of(new TorchZip.Record("0", data)))).getMessage()
                .contains("repeats elements of a 4-element storage"));
    }
}
