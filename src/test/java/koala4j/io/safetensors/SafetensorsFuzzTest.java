package koala4j.io.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import koala4j.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded fuzzing of the header check. Every image is either opened, and then must be self-consistent (see
 * {@link Images#assertConsistent}), or refused with a {@link SafetensorsException}: never another exception type,
 * never an OutOfMemoryError, never a hang (the timeout runs the test on its own thread so a hang fails it).
 * Every 25th image also goes through a real file and {@link SafetensorsFile#open} (mmap), which must agree with the
 * in-memory outcome. The seed is fixed so a failure reproduces; the message names the case number and kind.
 */
class SafetensorsFuzzTest {
    private static final long SEED = 0x5AFE_7E45_0001L;
    private static final int CASES = 4000;
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final DType[] DTYPES = {DType.F32, DType.F16, DType.BF16, DType.I32, DType.I64};

    private enum Kind { VALID, TRUNCATED, EXTENDED, BIT_FLIP, LENGTH_FIELD, HOSTILE_HEADER, RANDOM_JSON, DEEP_NESTING, GARBAGE }

    private record Case(Kind kind, byte[] image) {}

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void everyImageOpensConsistentlyOrFailsWithSafetensorsException(@TempDir Path dir) throws IOException {
        Random rnd = new Random(SEED);
        Map<Kind, int[]> outcomes = new TreeMap<>();   // kind -> {opened, refused}
        for (int i = 0; i < CASES; i++) {
            Case c = generate(rnd);
            String inMemory = outcome(i, c, () -> Images.parse(c.image()), MemorySegment.ofArray(c.image()));
            outcomes.computeIfAbsent(c.kind(), k -> new int[2])[inMemory.startsWith("opened") ? 0 : 1]++;
            if (i % 25 == 0) {
                Path file = dir.resolve("case" + i + ".safetensors");
                Files.write(file, c.image());
                String mapped = outcome(i, c, () -> SafetensorsFile.open(file), null);
                assertEquals(inMemory, mapped.replace(file.toString(), "mem.safetensors"), "case " + i + " " + c.kind() + ": mmap and memory disagree");
                Files.delete(file);
            }
        }
        // The generator must actually exercise both outcomes, and the cases with a known answer must get it.
        assertEquals(0, outcomes.get(Kind.VALID)[1], "every valid image opens");
        assertEquals(0, outcomes.get(Kind.TRUNCATED)[0], "every truncated image is refused");
        assertEquals(0, outcomes.get(Kind.EXTENDED)[0], "every image with trailing bytes is refused");
        assertEquals(0, outcomes.get(Kind.DEEP_NESTING)[0], "every over-deep header is refused");
        assertTrue(outcomes.get(Kind.BIT_FLIP)[1] > 0 && outcomes.get(Kind.HOSTILE_HEADER)[0] > 0,
                () -> "outcomes per kind: " + describe(outcomes));
    }

    private interface Opener {
        SafetensorsFile open();
    }

    /** "opened: <summary>" or "refused: <message>"; anything else fails the test, naming the case. */
    private static String outcome(int i, Case c, Opener opener, MemorySegment whole) {
        try (SafetensorsFile f = opener.open()) {
            if (whole != null) Images.assertConsistent(f, whole);
            StringBuilder summary = new StringBuilder("opened:");
            for (TensorEntry e : f.entries()) summary.append(' ').append(e).append(" @").append(e.data().byteSize());
            return summary.append(' ').append(f.metadata()).toString();
        } catch (SafetensorsException e) {
            assertTrue(e.getMessage().contains(".safetensors: ") && e.getMessage().length() < 2000,
                    () -> "case " + i + " " + c.kind() + ": poor message " + e.getMessage());
            return "refused: " + e.getMessage();
        } catch (Throwable t) {
            fail("case " + i + " " + c.kind() + " (" + c.image().length + " bytes, starts "
                    + new String(c.image(), 0, Math.min(120, c.image().length), StandardCharsets.ISO_8859_1) + ") threw " + t, t);
            throw new AssertionError(t);
        }
    }

    private static String describe(Map<Kind, int[]> outcomes) {
        StringBuilder s = new StringBuilder();
        outcomes.forEach((k, v) -> s.append(k).append(" opened ").append(v[0]).append(" refused ").append(v[1]).append("; "));
        return s.toString();
    }

    // ------------------------------------------------------------------------------------------------ generators

    private static Case generate(Random rnd) {
        Kind kind = Kind.values()[rnd.nextInt(Kind.values().length)];
        byte[] valid = validImage(rnd);
        long n = MemorySegment.ofArray(valid).get(U64_LE, 0);
        return new Case(kind, switch (kind) {
            case VALID -> valid;
            case TRUNCATED -> Arrays.copyOf(valid, rnd.nextInt(valid.length));
            case EXTENDED -> {
                byte[] longer = Arrays.copyOf(valid, valid.length + 1 + rnd.nextInt(16));
                for (int i = valid.length; i < longer.length; i++) longer[i] = (byte) rnd.nextInt();
                yield longer;
            }
            case BIT_FLIP -> {
                byte[] flipped = valid.clone();
                int flips = 1 + rnd.nextInt(4);
                for (int f = 0; f < flips; f++) {
                    // mostly in the length field and header, where the parsing happens
                    int at = rnd.nextInt(4) == 0 ? rnd.nextInt(flipped.length) : rnd.nextInt((int) Math.min(flipped.length, 8 + n));
                    flipped[at] ^= (byte) (1 << rnd.nextInt(8));
                }
                yield flipped;
            }
            case LENGTH_FIELD -> {
                long[] hostile = {0, 1, 2, 7, 8, n - 1, n + 1, valid.length - 8, valid.length - 7, 1L << 63, -1L, 1L << 40,
                        1L << 32, 1L << 31, 100_000_000L, 100_000_001L, rnd.nextLong()};
                byte[] changed = valid.clone();
                MemorySegment.ofArray(changed).set(U64_LE, 0, hostile[rnd.nextInt(hostile.length)]);
                yield changed;
            }
            case HOSTILE_HEADER -> hostileHeader(rnd);
            case RANDOM_JSON -> withData(randomJson(rnd, 0), rnd.nextInt(4) == 0 ? 0 : rnd.nextInt(64));
            case DEEP_NESTING -> {
                int depth = 65 + rnd.nextInt(20_000);
                String open = rnd.nextBoolean() ? "[" : "{\"a\":";
                String close = open.equals("[") ? "]" : "}";
                yield withData("{\"w\":" + open.repeat(depth) + "1" + close.repeat(depth) + "}", 0);
            }
            case GARBAGE -> {
                byte[] junk = new byte[rnd.nextInt(200)];
                rnd.nextBytes(junk);
                if (junk.length >= 8 && rnd.nextBoolean()) {
                    MemorySegment.ofArray(junk).set(U64_LE, 0, rnd.nextInt(junk.length - 7));   // a plausible length
                }
                yield junk;
            }
        });
    }

    /** A file the reference would write: random dtypes, ranks 0..4 (sizes 0..5), optional metadata. */
    private static byte[] validImage(Random rnd) {
        List<TensorEntry> tensors = new ArrayList<>();
        int count = rnd.nextInt(6);
        for (int t = 0; t < count; t++) {
            DType dtype = DTYPES[rnd.nextInt(DTYPES.length)];
            long[] shape = new long[rnd.nextInt(5)];
            long numel = 1;
            for (int d = 0; d < shape.length; d++) {
                shape[d] = rnd.nextInt(6);
                numel *= shape[d];
            }
            byte[] data = new byte[(int) numel * dtype.byteSize()];
            rnd.nextBytes(data);
            tensors.add(new TensorEntry("layer." + t + (rnd.nextInt(8) == 0 ? ".ü/~" : ".weight"), dtype, shape, MemorySegment.ofArray(data)));
        }
        Map<String, String> metadata = rnd.nextBoolean() ? Map.of("format", "pt") : Map.of();
        return SafetensorsWriter.toBytes(tensors, metadata);
    }

    private static final String[] BAD_DTYPES = {"\"F64\"", "\"f32\"", "\"\"", "\"Q8\"", "\"BOOL\"", "3", "null", "[]", "{}", "true",
            "\"" + "F".repeat(5000) + "\""};
    private static final String[] BAD_SHAPES = {"[-1]", "[1.5]", "[\"2\"]", "[null]", "[[1]]", "[1099511627776,1099511627776]",
            "[4611686018427387904,4]", "[9223372036854775807]", "[9223372036854775808]", "[1e400]", "[-0]", "[1,1,1,1,1,1,1,1,1]",
            "3", "null", "\"x\"", "{}", "[" + "1,".repeat(10_000) + "1]", "[2305843009213693952]", "[-9223372036854775808]"};
    private static final String[] BAD_OFFSETS = {"[]", "[0]", "[0,4,8]", "[-1,3]", "[5,2]", "[0,9223372036854775807]", "[\"0\",\"4\"]",
            "[0.0,4.0]", "null", "7", "[0,1e30]", "[18446744073709551615,18446744073709551616]", "{\"begin\":0}", "[9223372036854775807,0]"};
    private static final String[] BAD_METADATA = {"{\"a\":1}", "[]", "\"x\"", "null", "{\"a\":{\"b\":\"c\"}}", "{\"a\":null}", "{}"};

    /** A header built field by field, each field valid or hostile, with a data section that often fits the valid part. */
    private static byte[] hostileHeader(Random rnd) {
        StringBuilder h = new StringBuilder("{");
        long offset = 0;
        int entries = 1 + rnd.nextInt(4);
        for (int e = 0; e < entries; e++) {
            if (e > 0) h.append(',');
            String name = switch (rnd.nextInt(10)) {
                case 0 -> "";
                case 1 -> "x".repeat(10_000);
                case 2 -> "a/b~c";
                case 3 -> "w0";   // a duplicate when drawn twice
                default -> "w" + e;
            };
            if (rnd.nextInt(12) == 0) {
                h.append("\"__metadata__\":").append(BAD_METADATA[rnd.nextInt(BAD_METADATA.length)]);
                continue;
            }
            h.append('"').append(name).append("\":");
            if (rnd.nextInt(15) == 0) {
                h.append(new String[] {"3", "\"x\"", "[]", "null", "true"}[rnd.nextInt(5)]);
                continue;
            }
            DType dtype = DTYPES[rnd.nextInt(DTYPES.length)];
            boolean validDtype = rnd.nextInt(5) > 0;
            boolean validShape = rnd.nextInt(4) > 0;
            long[] shape = new long[rnd.nextInt(4)];
            long size = dtype.byteSize();
            for (int d = 0; d < shape.length; d++) {
                shape[d] = rnd.nextInt(4);
                size *= shape[d];
            }
            List<String> fields = new ArrayList<>(List.of(
                    "\"dtype\":" + (validDtype ? "\"" + dtype + "\"" : BAD_DTYPES[rnd.nextInt(BAD_DTYPES.length)]),
                    "\"shape\":" + (validShape ? Arrays.toString(shape).replace(" ", "") : BAD_SHAPES[rnd.nextInt(BAD_SHAPES.length)]),
                    "\"data_offsets\":" + switch (rnd.nextInt(6)) {
                        case 0 -> BAD_OFFSETS[rnd.nextInt(BAD_OFFSETS.length)];
                        case 1 -> "[" + rnd.nextInt(64) + "," + rnd.nextInt(64) + "]";
                        default -> "[" + offset + "," + (offset + size) + "]";
                    }));
            offset += size;
            if (rnd.nextInt(6) == 0) fields.remove(rnd.nextInt(fields.size()));
            if (rnd.nextInt(6) == 0) fields.add("\"extra\":{\"nested\":[1,2,3]}");
            java.util.Collections.shuffle(fields, rnd);
            h.append('{').append(String.join(",", fields)).append('}');
        }
        h.append('}');
        String header = switch (rnd.nextInt(10)) {
            case 0 -> h + " trailing";
            case 1 -> "\uFEFF" + h;
            case 2 -> "\r\n\t " + h;   // leading whitespace is valid JSON
            default -> h.toString();
        };
        long data = rnd.nextInt(3) > 0 ? offset : rnd.nextInt(96);
        return rnd.nextInt(10) == 0 ? nulPadded(header, data) : withData(header, data);
    }

    private static byte[] withData(String header, long dataBytes) {
        return Images.image(header, dataBytes);
    }

    private static byte[] nulPadded(String header, long dataBytes) {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        return Images.image((json.length + 7) & ~7, Arrays.copyOf(json, (json.length + 7) & ~7), dataBytes);
    }

    /** A random JSON value of bounded depth and breadth: mostly wrong shapes for a header, occasionally a right one. */
    private static String randomJson(Random rnd, int depth) {
        int pick = depth >= 5 ? 4 + rnd.nextInt(6) : rnd.nextInt(10);
        return switch (pick) {
            case 0, 1 -> {
                StringBuilder o = new StringBuilder("{");
                int keys = rnd.nextInt(4);
                for (int k = 0; k < keys; k++) {
                    if (k > 0) o.append(',');
                    String key = new String[] {"dtype", "shape", "data_offsets", "__metadata__", "w", "k" + k}[rnd.nextInt(6)];
                    o.append('"').append(key).append("\":").append(randomJson(rnd, depth + 1));
                }
                yield o.append('}').toString();
            }
            case 2, 3 -> {
                StringBuilder a = new StringBuilder("[");
                int items = rnd.nextInt(4);
                for (int k = 0; k < items; k++) a.append(k > 0 ? "," : "").append(randomJson(rnd, depth + 1));
                yield a.append(']').toString();
            }
            case 4 -> Long.toString(rnd.nextLong() >> rnd.nextInt(64));
            case 5 -> Double.toString(rnd.nextGaussian() * Math.pow(10, rnd.nextInt(40) - 20));
            case 6 -> "\"" + DTYPES[rnd.nextInt(DTYPES.length)] + "\"";
            case 7 -> new String[] {"null", "true", "false", "NaN", "-Infinity"}[rnd.nextInt(5)];
            case 8 -> "\"s\\u00e9\\n" + rnd.nextInt() + "\"";
            default -> "[" + rnd.nextInt(8) + "," + rnd.nextInt(8) + "]";
        };
    }
}
