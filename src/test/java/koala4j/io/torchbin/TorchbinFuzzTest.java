package koala4j.io.torchbin;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import koala4j.io.safetensors.TensorEntry;
import koala4j.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded fuzzing of the whole reader (zip directory, pickle, views). Every archive either opens, and then each
 * tensor is served (all its bytes readable) or refused, or the file is refused: always with a
 * {@link TorchbinException} naming the file, never another exception, an OutOfMemoryError or a hang (the timeout
 * runs the test on its own thread). Valid archives must give back exactly the values written. Pickle mutations are
 * re-zipped with a correct CRC so that they reach the unpickler rather than the checksum. Every 25th image also goes
 * through a real file and mmap, which must agree with the in-memory outcome.
 */
class TorchbinFuzzTest {
    private static final long SEED = 0x70C4_B1A5_0001L;
    private static final int CASES = 3000;
    private static final String[] STORAGES = {"FloatStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
            "DoubleStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage"};

    private enum Kind { VALID, VALID_ZIP64, TRUNCATED, BIT_FLIP, PICKLE_FLIP, PICKLE_SPLICE, PICKLE_RANDOM, GARBAGE, DIRECTORY_FIELD }

    private record Case(Kind kind, byte[] image) {}

    /** A valid archive and what reading it must give: values as doubles, dtypes, shapes (null when refused on get). */
    private record Generated(byte[] pickle, List<TorchZip.Record> storages, Map<String, double[]> values,
                             Map<String, DType> dtypes, Map<String, long[]> shapes) {}

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void everyArchiveOpensConsistentlyOrFailsWithTorchbinException(@TempDir Path dir) throws IOException {
        Random rnd = new Random(SEED);
        Map<Kind, int[]> outcomes = new TreeMap<>();   // kind -> {opened, refused}
        for (int i = 0; i < CASES; i++) {
            Generated g = generate(rnd);
            Case c = mutate(rnd, g);
            boolean valid = c.kind() == Kind.VALID || c.kind() == Kind.VALID_ZIP64;
            String inMemory = outcome(i, c, valid ? g : null, () -> TorchFile.parse(Path.of("mem.bin"), MemorySegment.ofArray(c.image()), null), "mem.bin");
            outcomes.computeIfAbsent(c.kind(), k -> new int[2])[inMemory.startsWith("opened") ? 0 : 1]++;
            if (i % 25 == 0) {
                Path file = dir.resolve("case" + i + ".bin");
                Files.write(file, c.image());
                String mapped = outcome(i, c, valid ? g : null, () -> TorchFile.open(file), file.toString());
                assertEquals(inMemory, mapped.replace(file.toString(), "mem.bin"), "case " + i + " " + c.kind() + ": mmap and memory disagree");
                Files.delete(file);
            }
        }
        assertEquals(0, outcomes.get(Kind.VALID)[1], "every valid archive opens");
        assertEquals(0, outcomes.get(Kind.VALID_ZIP64)[1], "every valid zip64 archive opens");
        assertEquals(0, outcomes.get(Kind.TRUNCATED)[0], "every truncated archive is refused");
        assertTrue(outcomes.get(Kind.PICKLE_FLIP)[0] > 0 && outcomes.get(Kind.PICKLE_FLIP)[1] > 0
                && outcomes.get(Kind.PICKLE_SPLICE)[1] > 0 && outcomes.get(Kind.BIT_FLIP)[1] > 0, () -> describe(outcomes));
    }

    /** "opened: ..." (each tensor's dtype and shape, or "refused") or "refused: <message>"; anything else fails. */
    private static String outcome(int i, Case c, Generated expected, Supplier<TorchFile> opener, String fileName) {
        try (TorchFile f = opener.get()) {
            StringBuilder summary = new StringBuilder("opened:");
            for (String name : f.names()) {
                summary.append(' ').append(name);
                try {
                    TensorEntry e = f.get(name).orElseThrow();
                    e.data().toArray(ValueLayout.JAVA_BYTE);   // every byte readable
                    summary.append(' ').append(e.dtype()).append(Arrays.toString(e.shape()));
                    if (expected != null) {
                        assertEquals(expected.dtypes().get(name), e.dtype(), "case " + i + " " + name);
                        assertArrayEquals(expected.shapes().get(name), e.shape(), "case " + i + " " + name);
                        assertArrayEquals(expected.values().get(name), read(e), "case " + i + " " + name);
                    }
                } catch (TorchbinException refused) {
                    assertTrue(refused.getMessage().startsWith(fileName + ": ") && refused.getMessage().length() < 2000,
                            () -> "case " + i + " " + c.kind() + ": poor message " + refused.getMessage());
                    if (expected != null) assertEquals(null, expected.dtypes().get(name), "case " + i + " " + name + " refused");
                    summary.append(" refused");
                }
            }
            if (expected != null) assertEquals(expected.values().keySet(), f.names(), "case " + i);
            return summary.toString();
        } catch (TorchbinException e) {
            assertTrue(e.getMessage().startsWith(fileName + ": ") && e.getMessage().length() < 2000,
                    () -> "case " + i + " " + c.kind() + ": poor message " + e.getMessage());
            return "refused: " + e.getMessage();
        } catch (Throwable t) {
            fail("case " + i + " " + c.kind() + " (" + c.image().length + " bytes) threw " + t, t);
            throw new AssertionError(t);
        }
    }

    private static double[] read(TensorEntry e) {
        double[] out = new double[(int) e.numel()];
        if (e.dtype() == DType.I64 || e.dtype() == DType.I32) {
            long[] v = TorchFileTest.longs(e);
            for (int i = 0; i < out.length; i++) out[i] = v[i];
        } else {
            float[] v = TorchFileTest.floats(e);
            for (int i = 0; i < out.length; i++) out[i] = v[i];
        }
        return out;
    }

    private static String describe(Map<Kind, int[]> outcomes) {
        StringBuilder s = new StringBuilder();
        outcomes.forEach((k, v) -> s.append(k).append(" opened ").append(v[0]).append(" refused ").append(v[1]).append("; "));
        return s.toString();
    }

    // ------------------------------------------------------------------------------------------------ generators

    private static Case mutate(Random rnd, Generated g) {
        Kind kind = Kind.values()[rnd.nextInt(Kind.values().length)];
        byte[] valid = TorchZip.archive("archive", g.pickle(), g.storages());
        return new Case(kind, switch (kind) {
            case VALID -> valid;
            case VALID_ZIP64 -> {
                List<TorchZip.Record> records = new ArrayList<>();
                records.add(new TorchZip.Record("archive/data.pkl", g.pickle(), rnd.nextBoolean()));
                for (TorchZip.Record r : g.storages()) records.add(new TorchZip.Record("archive/data/" + r.name(), r.data()));
                yield TorchZip.zip(records, true);
            }
            case TRUNCATED -> Arrays.copyOf(valid, rnd.nextInt(valid.length));
            case BIT_FLIP -> {
                byte[] flipped = valid.clone();
                for (int f = 1 + rnd.nextInt(4); f > 0; f--) flipped[rnd.nextInt(flipped.length)] ^= (byte) (1 << rnd.nextInt(8));
                yield flipped;
            }
            case PICKLE_FLIP -> {
                byte[] pickle = g.pickle().clone();
                for (int f = 1 + rnd.nextInt(3); f > 0; f--) pickle[rnd.nextInt(pickle.length)] ^= (byte) (1 << rnd.nextInt(8));
                yield TorchZip.archive("archive", pickle, g.storages());
            }
            case PICKLE_SPLICE -> {
                // cut out, duplicate or insert a run of bytes: misaligned opcodes, stray MARKs, dangling memo refs
                byte[] p = g.pickle();
                int at = rnd.nextInt(p.length);
                int length = 1 + rnd.nextInt(Math.min(24, p.length - at));
                byte[] spliced = switch (rnd.nextInt(3)) {
                    case 0 -> concat(Arrays.copyOf(p, at), Arrays.copyOfRange(p, at + length, p.length));
                    case 1 -> concat(Arrays.copyOf(p, at + length), Arrays.copyOfRange(p, at, p.length));
                    default -> {
                        byte[] noise = new byte[length];
                        rnd.nextBytes(noise);
                        yield concat(concat(Arrays.copyOf(p, at), noise), Arrays.copyOfRange(p, at, p.length));
                    }
                };
                yield TorchZip.archive("archive", spliced, g.storages());
            }
            case PICKLE_RANDOM -> {
                // random opcodes from the allowed set, with plausible operands
                TorchZip.Pickle p = new TorchZip.Pickle().proto(2);
                int[] ops = {'(', ')', ']', '}', 'N', 0x88, 0x89, 'K', 'a', 'e', 's', 'u', 't', 0x85, 0x86, 0x87, 'R', 'b', 'Q', 'q', 'h', '.'};
                for (int n = rnd.nextInt(60); n > 0; n--) {
                    int op = ops[rnd.nextInt(ops.length)];
                    switch (op) {
                        case 'K', 'q', 'h' -> p.op(op).op(rnd.nextInt(4));
                        default -> p.op(op);
                    }
                    if (rnd.nextInt(8) == 0) p.unicode(rnd.nextBoolean() ? "storage" : "w");
                    if (rnd.nextInt(12) == 0) p.global("torch", STORAGES[rnd.nextInt(STORAGES.length)]);
                    if (rnd.nextInt(12) == 0) p.global("torch._utils", "_rebuild_tensor_v2");
                    if (rnd.nextInt(16) == 0) p.global("collections", "OrderedDict");
                }
                yield TorchZip.archive("archive", p.op('.').toByteArray(), g.storages());
            }
            case GARBAGE -> {
                byte[] junk = new byte[rnd.nextInt(300)];
                rnd.nextBytes(junk);
                if (junk.length >= 4 && rnd.nextBoolean()) {
                    junk[0] = 'P';
                    junk[1] = 'K';
                    junk[2] = 3;
                    junk[3] = 4;
                }
                if (junk.length >= 22 && rnd.nextBoolean()) {   // a plausible end record pointing anywhere
                    MemorySegment.ofArray(junk).set(ValueLayout.JAVA_INT_UNALIGNED, junk.length - 22, 0x06054b50);
                    junk[junk.length - 2] = 0;
                    junk[junk.length - 1] = 0;
                }
                yield junk;
            }
            case DIRECTORY_FIELD -> {
                // overwrite a 2/4/8-byte field of the directory or end records with a hostile value
                byte[] changed = valid.clone();
                int region = Math.min(changed.length, 60 * (g.storages().size() + 3) + 22);
                int at = changed.length - 1 - rnd.nextInt(region);
                long[] hostile = {0, 1, 0xFFFF, 0xFFFFFFFFL, 0x7FFFFFFF, -1L, 1L << 40, rnd.nextLong(), changed.length, changed.length - 22};
                long value = hostile[rnd.nextInt(hostile.length)];
                int width = new int[] {2, 4, 8}[rnd.nextInt(3)];
                for (int b = 0; b < width && at + b < changed.length; b++) changed[at + b] = (byte) (value >>> (8 * b));
                yield changed;
            }
        });
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** Up to five tensors: new storages (some with an offset, some transposed) or views of an earlier storage. */
    private static Generated generate(Random rnd) {
        List<TorchZip.Tensor> tensors = new ArrayList<>();
        List<TorchZip.Record> storages = new ArrayList<>();
        Map<String, double[]> storageValues = new LinkedHashMap<>();
        Map<String, String> storageTypes = new LinkedHashMap<>();
        Map<String, double[]> values = new LinkedHashMap<>();
        Map<String, DType> dtypes = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        int count = rnd.nextInt(6);
        for (int t = 0; t < count; t++) {
            String name = "layer." + t + ".weight";
            TorchZip.Tensor tensor;
            if (!storageValues.isEmpty() && rnd.nextInt(4) == 0) {
                // a view of an earlier storage: the whole of it, or its tail
                String key = List.copyOf(storageValues.keySet()).get(rnd.nextInt(storageValues.size()));
                int numel = storageValues.get(key).length;
                int offset = numel == 0 ? 0 : rnd.nextInt(numel);
                tensor = new TorchZip.Tensor(name, storageTypes.get(key), key, numel, offset, new long[] {numel - offset}, new long[] {1});
            } else {
                String type = STORAGES[rnd.nextInt(STORAGES.length)];
                String key = Integer.toString(storages.size());
                int a = rnd.nextInt(4);
                int b = rnd.nextInt(4);
                int offset = rnd.nextInt(3) == 0 ? rnd.nextInt(3) : 0;
                boolean transposed = rnd.nextInt(3) == 0;
                int numel = offset + a * b;
                double[] stored = new double[numel];
                for (int i = 0; i < numel; i++) stored[i] = sample(rnd, type);
                storages.add(new TorchZip.Record(key, encode(type, stored)));
                storageValues.put(key, stored);
                storageTypes.put(key, type);
                tensor = transposed
                        ? new TorchZip.Tensor(name, type, key, numel, offset, new long[] {b, a}, new long[] {1, b})
                        : new TorchZip.Tensor(name, type, key, numel, offset, new long[] {a, b}, new long[] {b, 1});
            }
            tensors.add(tensor);
            double[] stored = storageValues.get(tensor.key());
            long[] size = tensor.size();
            long[] stride = tensor.stride();
            double[] view = new double[(int) Arrays.stream(size).reduce(1, (x, y) -> x * y)];
            for (int i = 0; i < view.length; i++) {
                long at = tensor.offset();
                long rest = i;
                for (int d = size.length - 1; d >= 0; d--) {
                    at += (rest % size[d]) * stride[d];
                    rest /= size[d];
                }
                view[i] = stored[(int) at];
            }
            values.put(name, view);
            dtypes.put(name, dtypeOf(tensor.storageClass()));
            shapes.put(name, size);
        }
        return new Generated(TorchZip.stateDict(tensors), storages, values, dtypes, shapes);
    }

    private static DType dtypeOf(String storage) {
        return switch (storage) {
            case "FloatStorage", "DoubleStorage" -> DType.F32;
            case "HalfStorage" -> DType.F16;
            case "BFloat16Storage" -> DType.BF16;
            case "LongStorage" -> DType.I64;
            case "IntStorage", "ByteStorage", "BoolStorage" -> DType.I32;
            default -> null;
        };
    }

    /** A value every dtype of the storage holds exactly. */
    private static double sample(Random rnd, String type) {
        return switch (type) {
            case "ByteStorage" -> rnd.nextInt(256);
            case "BoolStorage" -> rnd.nextInt(2);
            default -> rnd.nextInt(33) - 16;
        };
    }

    private static byte[] encode(String type, double[] v) {
        TorchZip.Bytes b = new TorchZip.Bytes();
        for (double x : v) {
            switch (type) {
                case "FloatStorage" -> b.u32(Float.floatToRawIntBits((float) x));
                case "HalfStorage" -> b.u16(Float.floatToFloat16((float) x));
                case "BFloat16Storage" -> b.u16(Float.floatToRawIntBits((float) x) >>> 16);
                case "LongStorage" -> b.u64((long) x);
                case "IntStorage" -> b.u32((int) x);
                case "DoubleStorage" -> b.u64(Double.doubleToRawLongBits(x));
                case "ByteStorage", "BoolStorage" -> b.u8((int) x);
                case "ComplexFloatStorage" -> b.u32(Float.floatToRawIntBits((float) x)).u32(0);
                default -> throw new IllegalArgumentException(type);
            }
        }
        return b.toByteArray();
    }
}
