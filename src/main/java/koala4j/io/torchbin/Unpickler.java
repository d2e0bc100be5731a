package koala4j.io.torchbin;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;

/**
 * A pickle reader that executes nothing: the opcodes of torch's own restricted reader
 * ({@code torch/_weights_only_unpickler.py}, what {@code torch.load(weights_only=True)} runs), plus the protocol-4
 * framing ones ({@code FRAME}, {@code SHORT_BINUNICODE}, {@code MEMOIZE}, {@code STACK_GLOBAL}) that
 * {@code torch.save(..., pickle_protocol=4)} writes. Semantics follow CPython's {@code pickle._Unpickler}
 * ({@code Lib/pickle.py}; opcode table in {@code Lib/pickletools.py}).
 *
 * <p>Names ({@code GLOBAL}) are never imported: each is handed to a {@link Resolver}, which answers with an inert
 * token for a name on its allow-list and refuses every other one, at the opcode itself, before anything later in the
 * stream is read. {@code REDUCE}, {@code BUILD} and {@code BINPERSID} likewise go to the resolver, which only knows
 * its tokens. Opcodes that instantiate classes ({@code INST}, {@code OBJ}, {@code NEWOBJ}, {@code NEWOBJ_EX}),
 * extension registries and the text-protocol forms are refused by name.
 *
 * <p>Cost: every opcode consumes at least one input byte and creates at most one value, and sizes are checked
 * against the bytes left before anything is allocated, so time and memory are linear in the pickle's size whatever it
 * holds (memo cycles included: nothing walks a container). Not thread-safe; one instance reads one pickle.
 */
final class Unpickler {

    /** What the torch layer decides: which globals exist, what calling them builds, what a persistent id loads. */
    interface Resolver {
        /** A token for an allowed {@code module.name}; throws {@link Refusal} for anything else. */
        Object global(String module, String name);

        /** {@code callable(*args)} for a token from {@link #global}; throws {@link Refusal} otherwise. */
        Object reduce(Object callable, Py.Tuple args);

        /** {@code BUILD}: sets {@code state} on {@code instance}, or throws {@link Refusal}. */
        void build(Object instance, Object state);

        /** {@code BINPERSID}: the object a persistent id names, or throws {@link Refusal}. */
        Object persistentLoad(Object pid);
    }

    /** A refusal by the resolver; the unpickler adds the file, record and byte position. */
    static final class Refusal extends RuntimeException {
        Refusal(String message) {
            super(message, null, false, false);
        }
    }

    private final Path file;
    private final String record;
    private final byte[] data;
    private final Resolver resolver;
    private int pos;
    private int opcodeAt;
    private ArrayList<Object> stack = new ArrayList<>();
    private final ArrayDeque<ArrayList<Object>> metastack = new ArrayDeque<>();
    private final HashMap<Long, Object> memo = new HashMap<>();

    Unpickler(Path file, String record, byte[] data, Resolver resolver) {
        this.file = file;
        this.record = record;
        this.data = data;
        this.resolver = resolver;
    }

    /** Runs the opcodes up to {@code STOP} and returns the value it pops. */
    Object load() {
        while (true) {
            opcodeAt = pos;
            if (pos >= data.length) {
                throw fail("ends at byte %d without a STOP opcode (truncated)".formatted(data.length));
            }
            int op = data[pos++] & 0xFF;
            try {
                switch (op) {
                    case 0x80 -> {                                           // PROTO
                        int protocol = u8();
                        if (protocol < 2 || protocol > 5) {
                            throw fail("pickle protocol %d, expected 2 to 5 (torch.save writes 2)".formatted(protocol));
                        }
                    }
                    case 0x95 -> {                                           // FRAME: a length hint, nothing else
                        long length = i64();
                        if (length < 0 || length > data.length - pos) {
                            throw fail("FRAME of %s bytes, but only %d remain".formatted(Long.toUnsignedString(length), data.length - pos));
                        }
                    }
                    case 0x2e -> {                                           // STOP
                        return pop("STOP");
                    }
                    case 0x28 -> {                                           // MARK
                        metastack.push(stack);
                        stack = new ArrayList<>();
                    }
                    case 0x29 -> push(new Py.Tuple());                       // EMPTY_TUPLE
                    case 0x5d -> push(new Py.List());                        // EMPTY_LIST
                    case 0x7d -> push(new Py.Dict(false));                   // EMPTY_DICT
                    case 0x4e -> push(Py.NONE);                              // NONE
                    case 0x88 -> push(Boolean.TRUE);                         // NEWTRUE
                    case 0x89 -> push(Boolean.FALSE);                        // NEWFALSE
                    case 0x4a -> push((long) i32());                         // BININT: signed 4 bytes
                    case 0x4b -> push((long) u8());                          // BININT1: unsigned 1 byte
                    case 0x4d -> push((long) u16());                         // BININT2: unsigned 2 bytes
                    case 0x8a -> push(long1());                              // LONG1
                    case 0x47 -> push(Double.longBitsToDouble(i64BigEndian()));  // BINFLOAT: big-endian double
                    case 0x58 -> push(utf8(u32()));                          // BINUNICODE
                    case 0x8c -> push(utf8(u8()));                           // SHORT_BINUNICODE
                    case 0x55 -> push(ascii(u8()));                          // SHORT_BINSTRING (torch.load decodes ASCII)
                    case 0x85 -> tuple(1);                                   // TUPLE1
                    case 0x86 -> tuple(2);                                   // TUPLE2
                    case 0x87 -> tuple(3);                                   // TUPLE3
                    case 0x74 -> push(new Py.Tuple(popMark("TUPLE").toArray()));   // TUPLE
                    case 0x71 -> memo.put((long) u8(), top("BINPUT"));       // BINPUT
                    case 0x72 -> memo.put(u32(), top("LONG_BINPUT"));        // LONG_BINPUT
                    case 0x94 -> memo.put((long) memo.size(), top("MEMOIZE"));   // MEMOIZE
                    case 0x68 -> push(memoGet(u8()));                        // BINGET
                    case 0x6a -> push(memoGet(u32()));                       // LONG_BINGET
                    case 0x61 -> {                                           // APPEND
                        Object item = pop("APPEND");
                        list("APPEND").items.add(item);
                    }
                    case 0x65 -> {                                           // APPENDS
                        ArrayList<Object> items = popMark("APPENDS");
                        list("APPENDS").items.addAll(items);
                    }
                    case 0x73 -> {                                           // SETITEM
                        Object value = pop("SETITEM");
                        Object key = pop("SETITEM");
                        put(dict("SETITEM"), key, value);
                    }
                    case 0x75 -> {                                           // SETITEMS
                        ArrayList<Object> items = popMark("SETITEMS");
                        if (items.size() % 2 != 0) {
                            throw fail("SETITEMS with %d values, expected key/value pairs".formatted(items.size()));
                        }
                        Py.Dict target = dict("SETITEMS");
                        for (int i = 0; i < items.size(); i += 2) put(target, items.get(i), items.get(i + 1));
                    }
                    case 0x63 -> {                                           // GLOBAL "module\nname\n"
                        String module = line();
                        String name = line();
                        push(resolver.global(module, name));
                    }
                    case 0x93 -> {                                           // STACK_GLOBAL
                        Object name = pop("STACK_GLOBAL");
                        Object module = pop("STACK_GLOBAL");
                        if (!(module instanceof String m) || !(name instanceof String n)) {
                            throw fail("STACK_GLOBAL of %s and %s, expected two str".formatted(Py.typeName(module), Py.typeName(name)));
                        }
                        push(resolver.global(m, n));
                    }
                    case 0x52 -> {                                           // REDUCE
                        Object args = pop("REDUCE");
                        Object callable = pop("REDUCE");
                        if (!(args instanceof Py.Tuple t)) {
                            throw fail("REDUCE with arguments that are a %s, expected a tuple".formatted(Py.typeName(args)));
                        }
                        push(resolver.reduce(callable, t));
                    }
                    case 0x62 -> {                                           // BUILD
                        Object state = pop("BUILD");
                        resolver.build(top("BUILD"), state);
                    }
                    case 0x51 -> push(resolver.persistentLoad(pop("BINPERSID")));   // BINPERSID
                    default -> throw fail(refusedOpcode(op));
                }
            } catch (Refusal r) {
                throw fail(r.getMessage());
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ stack

    private void push(Object o) {
        stack.add(o);
    }

    private Object pop(String opcode) {
        if (stack.isEmpty()) throw fail(opcode + " on an empty stack");
        return stack.removeLast();
    }

    private Object top(String opcode) {
        if (stack.isEmpty()) throw fail(opcode + " on an empty stack");
        return stack.getLast();
    }

    private ArrayList<Object> popMark(String opcode) {
        if (metastack.isEmpty()) throw fail(opcode + " without a MARK");
        ArrayList<Object> items = stack;
        stack = metastack.pop();
        return items;
    }

    private void tuple(int n) {
        if (stack.size() < n) throw fail("TUPLE%d with %d value(s) on the stack".formatted(n, stack.size()));
        Object[] items = new Object[n];
        for (int i = n - 1; i >= 0; i--) items[i] = stack.removeLast();
        push(new Py.Tuple(items));
    }

    private Object memoGet(long index) {
        Object o = memo.get(index);
        if (o == null) throw fail("memo entry %d is read before it was written".formatted(index));
        return o;
    }

    private Py.List list(String opcode) {
        Object target = top(opcode);
        if (!(target instanceof Py.List l)) {
            throw fail("%s to a %s, expected a list".formatted(opcode, Py.typeName(target)));
        }
        return l;
    }

    private Py.Dict dict(String opcode) {
        Object target = top(opcode);
        if (!(target instanceof Py.Dict d)) {
            throw fail("%s on a %s, expected a dict or OrderedDict".formatted(opcode, Py.typeName(target)));
        }
        return d;
    }

    private void put(Py.Dict target, Object key, Object value) {
        if (!Py.isKey(key)) {
            throw fail("dict key is a %s, expected a str, int, float, bool or None".formatted(Py.typeName(key)));
        }
        target.items.put(key, value);
    }

    // ------------------------------------------------------------------------------------------------ input

    private void need(long n) {
        if (n > data.length - pos) {
            throw fail("needs %d more bytes, but the pickle ends after %d (truncated)".formatted(n, data.length - pos));
        }
    }

    private int u8() {
        need(1);
        return data[pos++] & 0xFF;
    }

    private int u16() {
        need(2);
        int v = (data[pos] & 0xFF) | (data[pos + 1] & 0xFF) << 8;
        pos += 2;
        return v;
    }

    private int i32() {
        need(4);
        int v = (data[pos] & 0xFF) | (data[pos + 1] & 0xFF) << 8 | (data[pos + 2] & 0xFF) << 16 | data[pos + 3] << 24;
        pos += 4;
        return v;
    }

    private long u32() {
        return Integer.toUnsignedLong(i32());
    }

    private long i64() {
        long low = u32();
        return low | ((long) i32()) << 32;
    }

    private long i64BigEndian() {
        need(8);
        long v = 0;
        for (int i = 0; i < 8; i++) v = v << 8 | (data[pos++] & 0xFF);
        return v;
    }

    /** LONG1: a length byte, then that many bytes of little-endian two's complement (0 bytes is 0). */
    private Object long1() {
        int n = u8();
        need(n);
        byte[] bigEndian = new byte[n];
        for (int i = 0; i < n; i++) bigEndian[i] = data[pos + n - 1 - i];
        pos += n;
        if (n == 0) return 0L;
        BigInteger value = new BigInteger(bigEndian);
        return value.bitLength() < 64 ? (Object) value.longValue() : value;
    }

    private String utf8(long n) {
        need(n);
        ByteBuffer bytes = ByteBuffer.wrap(data, pos, (int) n);
        pos += (int) n;
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes);
            return chars.toString();
        } catch (CharacterCodingException e) {
            throw fail("string of %d bytes is not valid UTF-8".formatted(n));
        }
    }

    private String ascii(int n) {
        need(n);
        for (int i = pos; i < pos + n; i++) {
            if (data[i] < 0) throw fail("SHORT_BINSTRING is not ASCII");
        }
        String s = new String(data, pos, n, StandardCharsets.US_ASCII);
        pos += n;
        return s;
    }

    /** A GLOBAL operand: bytes up to a newline, UTF-8. */
    private String line() {
        int start = pos;
        while (pos < data.length && data[pos] != '\n') pos++;
        if (pos >= data.length) {
            pos = start;
            throw fail("GLOBAL name without its ending newline (truncated)");
        }
        int length = pos - start;
        pos = start;
        String s = utf8(length);
        pos++;   // the newline
        return s;
    }

    // ------------------------------------------------------------------------------------------------ errors

    private static String refusedOpcode(int op) {
        String name = switch (op) {
            case 0x69 -> "INST";
            case 0x6f -> "OBJ";
            case 0x81 -> "NEWOBJ";
            case 0x92 -> "NEWOBJ_EX";
            default -> null;
        };
        if (name != null) {
            return "opcode %s (0x%02x) instantiates a class, which is never allowed".formatted(name, op);
        }
        name = switch (op) {
            case 0x30 -> "POP";
            case 0x31 -> "POP_MARK";
            case 0x32 -> "DUP";
            case 0x46 -> "FLOAT";
            case 0x49 -> "INT";
            case 0x4c -> "LONG";
            case 0x50 -> "PERSID";
            case 0x53 -> "STRING";
            case 0x54 -> "BINSTRING";
            case 0x56 -> "UNICODE";
            case 0x42 -> "BINBYTES";
            case 0x43 -> "SHORT_BINBYTES";
            case 0x64 -> "DICT";
            case 0x67 -> "GET";
            case 0x6c -> "LIST";
            case 0x70 -> "PUT";
            case 0x82 -> "EXT1";
            case 0x83 -> "EXT2";
            case 0x84 -> "EXT4";
            case 0x8b -> "LONG4";
            case 0x8d -> "BINUNICODE8";
            case 0x8e -> "BINBYTES8";
            case 0x8f -> "EMPTY_SET";
            case 0x90 -> "ADDITEMS";
            case 0x91 -> "FROZENSET";
            case 0x96 -> "BYTEARRAY8";
            case 0x97 -> "NEXT_BUFFER";
            case 0x98 -> "READONLY_BUFFER";
            default -> null;
        };
        return name != null
                ? "opcode %s (0x%02x) is not one torch.save writes for a state dict; refused".formatted(name, op)
                : "byte 0x%02x is not a pickle opcode".formatted(op);
    }

    private TorchbinException fail(String detail) {
        return new TorchbinException(file, null, "%s at byte %d: %s".formatted(record, opcodeAt, detail));
    }
}
