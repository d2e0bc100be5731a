package koala4j.io.torchbin;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * Test-side writers for torch.save archives: a zip writer (stored or deflated records, optionally with every zip64
 * field in use, as miniz writes archives over 4 GB) and a pickle writer that emits the opcodes torch.save's
 * protocol-2 pickler does for a state dict. Used to build hostile variants of otherwise valid files.
 */
final class TorchZip {

    private TorchZip() {}

    /** One zip record. */
    record Record(String name, byte[] data, boolean deflate) {
        Record(String name, byte[] data) {
            this(name, data, false);
        }
    }

    /** One tensor of a state dict: {@code _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())}. */
    record Tensor(String name, String storageClass, String key, long storageNumel, long offset, long[] size, long[] stride) {
        static Tensor contiguous(String name, String storageClass, String key, long... size) {
            long[] stride = new long[size.length];
            long s = 1;
            for (int i = size.length - 1; i >= 0; i--) {
                stride[i] = s;
                s *= size[i];
            }
            return new Tensor(name, storageClass, key, s, 0, size, stride);
        }
    }

    /** A whole archive: {@code <archive>/data.pkl}, {@code byteorder}, the storages, {@code version}. */
    static byte[] archive(String archive, byte[] pickle, List<Record> storages) {
        List<Record> records = new ArrayList<>();
        records.add(new Record(archive + "/data.pkl", pickle));
        records.add(new Record(archive + "/byteorder", "little".getBytes(StandardCharsets.US_ASCII)));
        for (Record r : storages) records.add(new Record(archive + "/data/" + r.name(), r.data(), r.deflate()));
        records.add(new Record(archive + "/version", "3\n".getBytes(StandardCharsets.US_ASCII)));
        return zip(records, false);
    }

    // ------------------------------------------------------------------------------------------------ zip

    static byte[] zip(List<Record> records, boolean zip64) {
        Bytes out = new Bytes();
        List<long[]> central = new ArrayList<>();   // offset, crc, compressed size, size, method
        List<byte[]> bodies = new ArrayList<>();
        for (Record r : records) {
            byte[] body = r.deflate() ? deflate(r.data()) : r.data();
            bodies.add(body);
            CRC32 crc = new CRC32();
            crc.update(r.data());
            byte[] name = r.name().getBytes(StandardCharsets.UTF_8);
            int method = r.deflate() ? 8 : 0;
            central.add(new long[] {out.size(), crc.getValue(), body.length, r.data().length, method});
            out.u32(0x04034b50).u16(zip64 ? 45 : 20).u16(0).u16(method).u16(0).u16(0).u32((int) crc.getValue());
            if (zip64) {
                out.u32(-1).u32(-1).u16(name.length).u16(20).bytes(name);
                out.u16(1).u16(16).u64(r.data().length).u64(body.length);
            } else {
                out.u32(body.length).u32(r.data().length).u16(name.length).u16(0).bytes(name);
            }
            out.bytes(body);
        }
        long cdStart = out.size();
        for (int i = 0; i < records.size(); i++) {
            long[] c = central.get(i);
            byte[] name = records.get(i).name().getBytes(StandardCharsets.UTF_8);
            out.u32(0x02014b50).u16(45).u16(zip64 ? 45 : 20).u16(0).u16((int) c[4]).u16(0).u16(0).u32((int) c[1]);
            if (zip64) {
                out.u32(-1).u32(-1).u16(name.length).u16(28).u16(0).u16(0).u16(0).u32(0).u32(-1).bytes(name);
                out.u16(1).u16(24).u64(c[3]).u64(c[2]).u64(c[0]);
            } else {
                out.u32((int) c[2]).u32((int) c[3]).u16(name.length).u16(0).u16(0).u16(0).u16(0).u32(0).u32((int) c[0]).bytes(name);
            }
        }
        long cdSize = out.size() - cdStart;
        if (zip64) {
            long eocd64 = out.size();
            out.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(records.size()).u64(records.size())
                    .u64(cdSize).u64(cdStart);
            out.u32(0x07064b50).u32(0).u64(eocd64).u32(1);
            out.u32(0x06054b50).u16(0).u16(0).u16(0xFFFF).u16(0xFFFF).u32(-1).u32(-1).u16(0);
        } else {
            out.u32(0x06054b50).u16(0).u16(0).u16(records.size()).u16(records.size()).u32((int) cdSize).u32((int) cdStart).u16(0);
        }
        return out.toByteArray();
    }

    private static byte[] deflate(byte[] data) {
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        d.setInput(data);
        d.finish();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[4096];
        while (!d.finished()) out.write(buffer, 0, d.deflate(buffer));
        d.end();
        return out.toByteArray();
    }

    // ------------------------------------------------------------------------------------------------ pickle

    /** The protocol-2 pickle of an OrderedDict of these tensors, in torch.save's opcode order (memo included). */
    static byte[] stateDict(List<Tensor> tensors) {
        Pickle p = new Pickle().proto(2).global("collections", "OrderedDict").put(0).op(')').op('R').put(1).op('(');
        int memo = 2;
        for (Tensor t : tensors) {
            p.unicode(t.name()).put(memo++);
            p.global("torch._utils", "_rebuild_tensor_v2").put(memo++);
            p.op('(').op('(').unicode("storage").global("torch", t.storageClass()).unicode(t.key()).unicode("cpu")
                    .integer(t.storageNumel()).op('t').put(memo++).op('Q');
            p.integer(t.offset()).tuple(t.size()).put(memo++).tuple(t.stride()).put(memo++);
            p.op(0x89).get(0).op(')').op('R').put(memo++).op('t').put(memo++).op('R').put(memo++);
        }
        return p.op('u').op('.').toByteArray();
    }

    /** A little pickle assembler. */
    static final class Pickle {
        private final Bytes out = new Bytes();

        Pickle op(int opcode) {
            out.u8(opcode);
            return this;
        }

        Pickle proto(int version) {
            return op(0x80).op(version);
        }

        Pickle global(String module, String name) {
            out.u8('c').bytes((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
            return this;
        }

        Pickle unicode(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            out.u8('X').u32(b.length).bytes(b);
            return this;
        }

        Pickle integer(long v) {
            if (v >= 0 && v < 256) {
                out.u8('K').u8((int) v);
            } else if (v >= 0 && v < 65536) {
                out.u8('M').u16((int) v);
            } else if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
                out.u8('J').u32((int) v);
            } else {
                out.u8(0x8a).u8(8).u64(v);
            }
            return this;
        }

        Pickle tuple(long[] values) {
            if (values.length == 0) return op(')');
            if (values.length > 3) op('(');
            for (long v : values) integer(v);
            return op(values.length > 3 ? 't' : 0x84 + values.length);
        }

        Pickle put(int index) {
            return index < 256 ? op('q').op(index) : raw(new Bytes().u8('r').u32(index).toByteArray());
        }

        Pickle get(int index) {
            return index < 256 ? op('h').op(index) : raw(new Bytes().u8('j').u32(index).toByteArray());
        }

        Pickle raw(byte[] bytes) {
            out.bytes(bytes);
            return this;
        }

        byte[] toByteArray() {
            return out.toByteArray();
        }
    }

    /** Little-endian byte output. */
    static final class Bytes {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Bytes u8(int v) {
            out.write(v);
            return this;
        }

        Bytes u16(int v) {
            return u8(v).u8(v >>> 8);
        }

        Bytes u32(int v) {
            return u16(v).u16(v >>> 16);
        }

        Bytes u64(long v) {
            return u32((int) v).u32((int) (v >>> 32));
        }

        Bytes bytes(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        long size() {
            return out.size();
        }

        byte[] toByteArray() {
            return out.toByteArray();
        }
    }

    /** Little-endian float32 bytes. */
    static byte[] floats(float... values) {
        Bytes b = new Bytes();
        for (float v : values) b.u32(Float.floatToRawIntBits(v));
        return b.toByteArray();
    }
}
