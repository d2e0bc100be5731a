package koala4j.io.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/** Builds raw safetensors file images byte by byte, and checks what a reader made of one. */
final class Images {
    private Images() {}

    /** {@code header} padded with spaces to a multiple of 8, its true length, then {@code dataBytes} bytes 0, 1, 2, … */
    static byte[] image(String header, long dataBytes) {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) & ~7;
        byte[] h = new byte[padded];
        java.util.Arrays.fill(h, (byte) ' ');
        System.arraycopy(json, 0, h, 0, json.length);
        return image(padded, h, dataBytes);
    }

    /** An 8-byte length field holding {@code n} (any value), then {@code header} as given, then the data. */
    static byte[] image(long n, byte[] header, long dataBytes) {
        byte[] out = new byte[Math.toIntExact(8 + header.length + dataBytes)];
        MemorySegment.ofArray(out).set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, n);
        System.arraycopy(header, 0, out, 8, header.length);
        for (int i = 0; i < dataBytes; i++) out[8 + header.length + i] = (byte) i;
        return out;
    }

    static SafetensorsFile parse(byte[] image) {
        return SafetensorsFile.parse(Path.of("mem.safetensors"), MemorySegment.ofArray(image), null);
    }

    /**
     * What must hold for any file the reader accepted: unique names, sane shapes, each tensor's bytes inside the data
     * section, the tensors tiling it exactly in offset order, and every byte readable.
     */
    static void assertConsistent(SafetensorsFile f, MemorySegment whole) {
        long n = whole.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        long at = 8 + n;
        Set<String> names = new HashSet<>();
        for (TensorEntry e : f.entries()) {
            assertTrue(names.add(e.name()), "duplicate " + e.name());
            assertNotEquals(SafetensorsFile.METADATA_KEY, e.name());
            assertTrue(e.rank() <= SafetensorsFile.MAX_DIMS);
            long numel = 1;
            for (long d : e.shape()) {
                assertTrue(d >= 0);
                numel = Math.multiplyExact(numel, d);
            }
            assertEquals(numel, e.numel());
            assertEquals(Math.multiplyExact(numel, (long) e.dtype().byteSize()), e.data().byteSize());
            assertTrue(e.data().isReadOnly());
            assertEquals(at, e.data().address() - whole.address(), e.name() + " does not follow the previous tensor");
            at += e.data().byteSize();
            if (e.data().byteSize() > 0) {
                e.data().get(ValueLayout.JAVA_BYTE, 0);
                e.data().get(ValueLayout.JAVA_BYTE, e.data().byteSize() - 1);
            }
            assertSame(e, f.require(e.name()));
        }
        assertEquals(whole.byteSize(), at, "tensors do not end the file");
        assertEquals(names, f.names());
        f.metadata().forEach((k, v) -> assertTrue(k != null && v != null));
    }
}
