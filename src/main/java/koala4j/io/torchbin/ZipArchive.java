package koala4j.io.torchbin;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * The directory of a zip archive held in a {@link MemorySegment} (a mapped file), read the way PyTorch's
 * {@code PyTorchStreamReader} (caffe2/serialize/inline_container.cc, on miniz) reads it: end-of-central-directory
 * record, the zip64 one when present (archives over 4 GB, or over 65535 entries), then every central-directory
 * entry, each checked against its local header so that {@link Entry#dataOffset()} is where its bytes start.
 *
 * <p>APPNOTE.TXT (PKWARE) layouts, little-endian: EOCD {@code PK\5\6} (22 bytes + comment); zip64 locator
 * {@code PK\6\7} (20 bytes, just before the EOCD) pointing at the zip64 EOCD {@code PK\6\6}; central entry
 * {@code PK\1\2} (46 bytes + name + extra + comment, zip64 extra field id 1 holding the 8-byte values whose 4-byte
 * fields read 0xFFFFFFFF); local header {@code PK\3\4} (30 bytes + name + extra, then the data).
 *
 * <p>Every offset and size is checked against the segment before use, so a truncated or hostile archive is one
 * {@link TorchbinException} naming the file, never an out-of-bounds access. Thread-safety: immutable.
 */
final class ZipArchive {
    static final int STORED = 0;
    static final int DEFLATED = 8;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int EOCD_SIG = 0x06054b50;
    private static final int ZIP64_LOCATOR_SIG = 0x07064b50;
    private static final int ZIP64_EOCD_SIG = 0x06064b50;
    private static final int CENTRAL_SIG = 0x02014b50;
    private static final int LOCAL_SIG = 0x04034b50;
    private static final long U32_MAX = 0xFFFFFFFFL;

    /** One record: its name, compression method, sizes, CRC-32 and where its data starts in the archive. */
    record Entry(String name, int method, long compressedSize, long size, int crc, long dataOffset) {
    }

    private final Path file;
    private final MemorySegment whole;
    private final List<Entry> entries;
    private final Map<String, Entry> byName;

    private ZipArchive(Path file, MemorySegment whole, List<Entry> entries, Map<String, Entry> byName) {
        this.file = file;
        this.whole = whole;
        this.entries = Collections.unmodifiableList(entries);
        this.byName = Collections.unmodifiableMap(byName);
    }

    /** Entries in central-directory order. */
    List<Entry> entries() {
        return entries;
    }

    /** The entry, or {@code null}. */
    Entry get(String name) {
        return byName.get(name);
    }

    /** The bytes of a STORED entry, as a view of the archive (no copy). */
    MemorySegment stored(Entry e) {
        if (e.method() != STORED) {
            throw new IllegalArgumentException(e.name() + " is not stored");
        }
        return whole.asSlice(e.dataOffset(), e.size());
    }

    /**
     * The bytes of a small entry (stored or deflated), at most {@code limit} of them, with its CRC-32 checked: used
     * for {@code data.pkl} and the few-byte records, never for storages.
     */
    byte[] read(Entry e, int limit) {
        if (e.size() > limit) {
            throw fail("record %s is %d bytes, expected at most %d".formatted(quoted(e.name()), e.size(), limit));
        }
        byte[] out;
        if (e.method() == STORED) {
            out = whole.asSlice(e.dataOffset(), e.size()).toArray(ValueLayout.JAVA_BYTE);
        } else if (e.method() == DEFLATED) {
            out = inflate(e);
        } else {
            throw fail("record %s uses compression method %d, expected 0 (stored) or 8 (deflated)"
                    .formatted(quoted(e.name()), e.method()));
        }
        CRC32 crc = new CRC32();
        crc.update(out);
        if ((int) crc.getValue() != e.crc()) {
            throw fail("record %s has CRC-32 %08x, but the directory says %08x (the file is damaged)"
                    .formatted(quoted(e.name()), (int) crc.getValue(), e.crc()));
        }
        return out;
    }

    private byte[] inflate(Entry e) {
        byte[] in = whole.asSlice(e.dataOffset(), e.compressedSize()).toArray(ValueLayout.JAVA_BYTE);
        byte[] out = new byte[(int) e.size()];
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in);
            int n = 0;
            while (n < out.length && !inflater.finished()) {
                int got = inflater.inflate(out, n, out.length - n);
                if (got == 0 && (inflater.needsInput() || inflater.needsDictionary())) break;
                n += got;
            }
            boolean longer = n == out.length && !inflater.finished() && inflater.inflate(new byte[1]) > 0;
            if (n != out.length || longer) {
                throw fail("record %s inflates to %s bytes, but the directory says %d".formatted(quoted(e.name()),
                        n != out.length ? Integer.toString(n) : "more than " + out.length, e.size()));
            }
            return out;
        } catch (DataFormatException bad) {
            throw fail("record %s is not valid deflate data (%s)".formatted(quoted(e.name()), bad.getMessage()));
        } finally {
            inflater.end();
        }
    }

    // ------------------------------------------------------------------------------------------------ reading

    /** Reads and checks the directory of {@code whole}; see the class comment. */
    static ZipArchive read(Path file, MemorySegment whole) {
        long eocd = findEndOfCentralDirectory(file, whole);
        if (u16(whole, eocd + 4) != 0 || u16(whole, eocd + 6) != 0) {
            throw new TorchbinException(file, null, "zip archive spans several disks, expected one file");
        }
        long count = u16(whole, eocd + 10);
        long cdSize = u32(whole, eocd + 12);
        long cdOffset = u32(whole, eocd + 16);
        long cdLimit = eocd;   // the central directory ends before this
        if (eocd >= 20 && whole.get(U32, eocd - 20) == ZIP64_LOCATOR_SIG) {
            long zip64 = whole.get(U64, eocd - 20 + 8);
            if (zip64 < 0 || zip64 > eocd - 20 - 56 || whole.get(U32, zip64) != ZIP64_EOCD_SIG) {
                throw new TorchbinException(file, null, "zip64 end record offset %s is not a zip64 end record (the file is truncated or damaged)"
                        .formatted(Long.toUnsignedString(zip64)));
            }
            count = whole.get(U64, zip64 + 32);
            cdSize = whole.get(U64, zip64 + 40);
            cdOffset = whole.get(U64, zip64 + 48);
            cdLimit = zip64;
        }
        if (cdOffset < 0 || cdSize < 0 || cdOffset > cdLimit || cdSize > cdLimit - cdOffset) {
            throw new TorchbinException(file, null, "central directory at %s (%s bytes) lies outside the %d bytes before its end record (the file is truncated or damaged)"
                    .formatted(Long.toUnsignedString(cdOffset), Long.toUnsignedString(cdSize), cdLimit));
        }
        if (count < 0 || count > cdSize / 46) {
            throw new TorchbinException(file, null, "zip directory claims %s entries, but %d bytes hold at most %d"
                    .formatted(Long.toUnsignedString(count), cdSize, cdSize / 46));
        }
        List<Entry> entries = new ArrayList<>();
        Map<String, Entry> byName = new HashMap<>();
        long at = cdOffset;
        long end = cdOffset + cdSize;
        for (long i = 0; i < count; i++) {
            if (end - at < 46 || whole.get(U32, at) != CENTRAL_SIG) {
                throw new TorchbinException(file, null, "zip directory entry %d at offset %d is not a central directory header".formatted(i, at));
            }
            int flags = u16(whole, at + 8);
            int method = u16(whole, at + 10);
            int crc = whole.get(U32, at + 16);
            long compressed = u32(whole, at + 20);
            long uncompressed = u32(whole, at + 24);
            int nameLength = u16(whole, at + 28);
            int extraLength = u16(whole, at + 30);
            int commentLength = u16(whole, at + 32);
            long localOffset = u32(whole, at + 42);
            long next = at + 46 + nameLength + extraLength + commentLength;
            if (next > end) {
                throw new TorchbinException(file, null, "zip directory entry %d runs past the end of the directory".formatted(i));
            }
            byte[] nameBytes = whole.asSlice(at + 46, nameLength).toArray(ValueLayout.JAVA_BYTE);
            String name = new String(nameBytes, StandardCharsets.UTF_8);
            // zip64 extended information: the 8-byte values, in this order, of the fields that read 0xFFFFFFFF
            long extra = at + 46 + nameLength;
            long extraEnd = extra + extraLength;
            while (extraEnd - extra >= 4) {
                int id = u16(whole, extra);
                int length = u16(whole, extra + 2);
                long body = extra + 4;
                if (length > extraEnd - body) break;
                if (id == 0x0001) {
                    long p = body;
                    if (uncompressed == U32_MAX) {
                        uncompressed = zip64Field(file, whole, name, p, body + length, "size");
                        p += 8;
                    }
                    if (compressed == U32_MAX) {
                        compressed = zip64Field(file, whole, name, p, body + length, "compressed size");
                        p += 8;
                    }
                    if (localOffset == U32_MAX) {
                        localOffset = zip64Field(file, whole, name, p, body + length, "header offset");
                    }
                }
                extra = body + length;
            }
            if ((flags & 1) != 0) {
                throw new TorchbinException(file, null, "record %s is encrypted, expected a plain torch.save archive".formatted(quoted(name)));
            }
            if (method == STORED && compressed != uncompressed) {
                throw new TorchbinException(file, null, "stored record %s has compressed size %s and size %s, expected them equal"
                        .formatted(quoted(name), Long.toUnsignedString(compressed), Long.toUnsignedString(uncompressed)));
            }
            long dataOffset = localData(file, whole, name, nameBytes, localOffset, compressed, cdOffset);
            Entry e = new Entry(name, method, compressed, uncompressed, crc, dataOffset);
            if (byName.putIfAbsent(name, e) != null) {
                throw new TorchbinException(file, null, "zip archive holds two records named %s, expected one".formatted(quoted(name)));
            }
            entries.add(e);
            at = next;
        }
        return new ZipArchive(file, whole, entries, byName);
    }

    private static long findEndOfCentralDirectory(Path file, MemorySegment whole) {
        long size = whole.byteSize();
        if (size < 22) {
            throw new TorchbinException(file, null, "file is %d bytes, too short for a zip archive (at least 22)".formatted(size));
        }
        // The record is the last thing in the file but for a comment of up to 65535 bytes.
        long lowest = Math.max(0, size - 22 - 65535);
        for (long at = size - 22; at >= lowest; at--) {
            if (whole.get(U32, at) == EOCD_SIG && at + 22 + u16(whole, at + 20) <= size) {
                return at;
            }
        }
        throw new TorchbinException(file, null, "no zip end-of-central-directory record (the file is truncated or not a zip archive)");
    }

    private static long zip64Field(Path file, MemorySegment whole, String name, long at, long limit, String what) {
        if (limit - at < 8) {
            throw new TorchbinException(file, null, "record %s: zip64 extra field lacks its %s".formatted(quoted(name), what));
        }
        long value = whole.get(U64, at);
        if (value < 0) {
            throw new TorchbinException(file, null, "record %s: zip64 %s %s exceeds 2^63-1".formatted(quoted(name), what,
                    Long.toUnsignedString(value)));
        }
        return value;
    }

    /** Checks the local header at {@code offset} names the same record and returns where its data begins. */
    private static long localData(Path file, MemorySegment whole, String name, byte[] nameBytes, long offset,
                                  long compressed, long cdOffset) {
        if (offset > cdOffset - 30 || whole.get(U32, offset) != LOCAL_SIG) {
            throw new TorchbinException(file, null, "record %s: no local header at offset %d (the file is truncated or damaged)"
                    .formatted(quoted(name), offset));
        }
        int nameLength = u16(whole, offset + 26);
        int extraLength = u16(whole, offset + 28);
        long data = offset + 30 + nameLength + extraLength;
        if (nameLength != nameBytes.length || data > cdOffset
                || MemorySegment.mismatch(whole, offset + 30, offset + 30 + nameLength,
                        MemorySegment.ofArray(nameBytes), 0, nameBytes.length) != -1) {
            throw new TorchbinException(file, null, "record %s: its local header names another record (the file is damaged)"
                    .formatted(quoted(name)));
        }
        if (compressed > cdOffset - data) {
            throw new TorchbinException(file, null, "record %s: %d bytes at offset %d run past the central directory at %d (the file is truncated or damaged)"
                    .formatted(quoted(name), compressed, data, cdOffset));
        }
        return data;
    }

    private static int u16(MemorySegment s, long at) {
        return Short.toUnsignedInt(s.get(U16, at));
    }

    private static long u32(MemorySegment s, long at) {
        return Integer.toUnsignedLong(s.get(U32, at));
    }

    private static String quoted(String s) {
        return TorchbinException.quoted(s);
    }

    private TorchbinException fail(String detail) {
        return new TorchbinException(file, null, detail);
    }
}
