package koala4j.io.torchbin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Hostile pickles in an otherwise valid archive: code-execution globals refused at their opcode (before the rest of
 * the stream is looked at), opcodes that instantiate classes, memo cycles, malformed streams. Each is one
 * {@link TorchbinException} naming the file, the record and the byte.
 */
class UnpicklerTest {
    private static final Path FILE = Path.of("hostile.bin");

    private static byte[] archive(byte[] pickle) {
        return TorchZip.archive("hostile", pickle, List.of(new TorchZip.Record("0", TorchZip.floats(1, 2, 3, 4))));
    }

    private static TorchFile open(byte[] pickle) {
        return TorchFile.parse(FILE, MemorySegment.ofArray(archive(pickle)), null);
    }

    private static String refused(byte[] pickle) {
        TorchbinException e = assertThrows(TorchbinException.class, () -> open(pickle).close());
        assertTrue(e.getMessage().startsWith("hostile.bin: "), e.getMessage());
        return e.getMessage();
    }

    private static void assertRefused(byte[] pickle, String how, String fragment) {
        String message = refused(pickle);
        assertTrue(how.equals("contains") ? message.contains(fragment) : message.endsWith(fragment), message);
    }

    private static TorchZip.Pickle p() {
        return new TorchZip.Pickle().proto(2);
    }

    /** A 2x2 float tensor on storage "0", as torch.save writes it, left on the stack. */
    private static TorchZip.Pickle tensor(TorchZip.Pickle p, String storageClass, String key, long numel) {
        return p.global("torch._utils", "_rebuild_tensor_v2").op('(').op('(').unicode("storage").global("torch", storageClass)
                .unicode(key).unicode("cpu").integer(numel).op('t').op('Q').integer(0).tuple(new long[] {2, 2})
                .tuple(new long[] {2, 1}).op(0x89).global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
    }

    @Test
    void codeExecutionGlobalsAreRefusedAtTheirOpcode() {
        String[][] names = {{"os", "system"}, {"posix", "system"}, {"nt", "system"}, {"builtins", "eval"}, {"builtins", "exec"},
                {"__builtin__", "eval"}, {"subprocess", "Popen"}, {"builtins", "getattr"}, {"torch", "load"},
                {"torch.storage", "_load_from_bytes"}, {"torch._utils", "_rebuild_qtensor"}, {"numpy.core.multiarray", "_reconstruct"},
                {"torch", "UntypedStorage"}};
        for (String[] n : names) {
            // the byte after GLOBAL is not even an opcode: the refusal must come first
            byte[] pickle = p().global(n[0], n[1]).unicode("touch /tmp/koala4j-pwned").op(0x85).op('R').op(0xFF).toByteArray();
            String message = refused(pickle);
            assertTrue(message.contains("hostile/data.pkl at byte 2: GLOBAL " + n[0] + "." + n[1] + " is not allowed"), message);
        }
        // protocol 4's STACK_GLOBAL takes the same path
        String message = refused(new TorchZip.Pickle().proto(4).unicode("os").unicode("system").op(0x93).op(0xFF).toByteArray());
        assertTrue(message.contains("GLOBAL os.system is not allowed"), message);
    }

    @Test
    void opcodesThatInstantiateOrReachOutsideTheStreamAreRefused() {
        assertRefused(p().global("collections", "OrderedDict").op(')').op(0x81).op('.').toByteArray(), "contains", "opcode NEWOBJ (0x81) instantiates a class, which is never allowed");
        assertRefused(p().op('(').raw("ios\nsystem\n".getBytes()).toByteArray(), "contains", "opcode INST (0x69)");
        assertRefused(p().op('(').op('o').toByteArray(), "contains", "opcode OBJ (0x6f)");
        assertRefused(p().op(0x82).op(1).toByteArray(), "contains", "EXT1");
        assertRefused(p().raw("Pos.system\n".getBytes()).toByteArray(), "contains", "PERSID");
        assertRefused(p().op(0x8f).toByteArray(), "contains", "EMPTY_SET");
        assertRefused(new TorchZip.Pickle().proto(99).toByteArray(), "contains", "pickle protocol 99");
        // calling an allowed class is refused too: REDUCE only calls rebuild functions
        assertRefused(p().global("torch", "FloatStorage").op(')').op('R').op('.').toByteArray(), "contains", "REDUCE calls a torch.FloatStorage");
        assertRefused(p().global("torch", "Tensor").op(')').op('R').op('.').toByteArray(), "contains", "REDUCE calls the class torch._tensor.Tensor");
        assertRefused(p().op('}').op('}').op('b').op('.').toByteArray(), "contains", "BUILD of a dict with a dict");
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void memoCyclesAndDeepNestingNeitherHangNorOverflow() {
        // a list appended to itself, a dict holding itself, a tuple of a list that holds the tuple
        assertRefused(p().op(']').put(0).get(0).op('a').op('.').toByteArray(), "endsWith", "holds a list, expected a dict of tensors (a state dict)");
        assertRefused(p().op('}').put(0).unicode("w").get(0).op('s').op('.').toByteArray(), "endsWith", "tensor \"w\": holds a dict, expected a tensor (a state dict maps names to tensors)");
        assertRefused(p().op(']').put(0).get(0).op(0x85).put(1).op('a').op('.').toByteArray(), "endsWith", "holds a list, expected a dict of tensors (a state dict)");
        assertRefused(p().op('}').op(']').unicode("w").op('s').op('.').toByteArray(), "contains", "dict key is a list");
        // 300k nested MARKs and 300k references to one list: linear, no recursion
        TorchZip.Pickle deep = p();
        for (int i = 0; i < 300_000; i++) deep.op('(');
        assertRefused(deep.op('.').toByteArray(), "contains", "STOP on an empty stack");
        TorchZip.Pickle wide = p().op(']').put(0).op('(');
        for (int i = 0; i < 300_000; i++) wide.get(0);
        assertRefused(wide.op('e').op('.').toByteArray(), "endsWith", "holds a list, expected a dict of tensors (a state dict)");
    }

    @Test
    void malformedStreamsNameTheByte() {
        assertRefused(p().toByteArray(), "contains", "at byte 2: ends at byte 2 without a STOP opcode (truncated)");
        assertRefused(p().op('R').toByteArray(), "contains", "at byte 2: REDUCE on an empty stack");
        assertRefused(p().op(']').op('e').toByteArray(), "contains", "APPENDS without a MARK");
        assertRefused(p().get(7).toByteArray(), "contains", "memo entry 7 is read before it was written");
        assertRefused(p().op('X').raw(new byte[] {-1, -1, -1, -1}).toByteArray(), "contains", "needs 4294967295 more bytes");
        assertRefused(p().op('X').raw(new byte[] {2, 0, 0, 0, (byte) 0xC3, 0x28}).op('.').toByteArray(), "contains", "not valid UTF-8");
        assertRefused(p().raw("ctorch\nFloat".getBytes()).toByteArray(), "contains", "GLOBAL name without its ending newline");
        assertRefused(p().op('}').op('(').unicode("w").op('u').op('.').toByteArray(), "contains", "SETITEMS with 1 values");
        assertRefused(p().op(')').op('(').op('u').op('.').toByteArray(), "contains", "SETITEMS on a tuple");
        assertRefused(p().op('}').op(')').op(')').op('s').op('.').toByteArray(), "contains", "dict key is a tuple");
        assertRefused(p().op(0x95).raw(new byte[] {-1, -1, -1, -1, -1, -1, -1, 127}).toByteArray(), "contains", "FRAME of");
        assertRefused(p().op(0x8a).op(200).toByteArray(), "contains", "needs 200 more bytes");
        assertRefused(p().op(0x01).toByteArray(), "contains", "byte 0x01 is not a pickle opcode");
        try (TorchFile empty = open(p().op('}').op('.').toByteArray())) {
            assertEquals(0, empty.names().size());
        }
    }

    @Test
    void torchCallsAreCheckedArgumentByArgument() {
        // huge, negative or non-int sizes; a storage that is not one; mismatched persistent ids
        TorchZip.Pickle p = p().op('}').unicode("w").global("torch._utils", "_rebuild_tensor_v2").op('(').op('(').unicode("storage")
                .global("torch", "FloatStorage").unicode("0").unicode("cpu").integer(4).op('t').op('Q').integer(0);
        byte[] longSize = p.op('(').op(0x8a).op(9).raw(new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 1}).op('t').tuple(new long[] {1})
                .op(0x89).op('}').op('t').op('R').toByteArray();
        assertRefused(longSize, "contains", "size[0] is 18446744073709551616, expected a non-negative int below 2^63");
        byte[] negative = p().op('}').unicode("w").global("torch._utils", "_rebuild_tensor_v2").op('(').op('(').unicode("storage")
                .global("torch", "FloatStorage").unicode("0").unicode("cpu").integer(-4).op('t').op('Q').toByteArray();
        assertRefused(negative, "contains", "storage \"0\" has -4 elements, expected a non-negative int");
        byte[] notStorage = p().unicode("storage").global("collections", "OrderedDict").unicode("0").unicode("cpu").integer(4)
                .op('(').op('t').op('Q').toByteArray();
        assertTrue(refused(notStorage).contains("persistent id is a tuple of 0"), refused(notStorage));
        byte[] wrongType = p().op('(').unicode("storage").global("collections", "OrderedDict").unicode("0").unicode("cpu").integer(4)
                .op('t').op('Q').toByteArray();
        assertRefused(wrongType, "contains", "storage type is a collections.OrderedDict, expected a torch.*Storage class");
        byte[] notTuple = p().unicode("storage").op('Q').toByteArray();
        assertRefused(notTuple, "contains", "persistent id is a str, expected ('storage', type, key, location, numel)");
        byte[] twoTypes = tensor(tensor(p().op('}').op('(').unicode("a"), "FloatStorage", "0", 4).unicode("b"), "IntStorage", "0", 4)
                .op('u').op('.').toByteArray();
        assertRefused(twoTypes, "contains", "storage \"0\" is named as torch.FloatStorage of 4 elements and as torch.IntStorage of 4");
        byte[] grad = p().global("torch._utils", "_rebuild_tensor_v2").op('(').op('(').unicode("storage").global("torch", "FloatStorage")
                .unicode("0").unicode("cpu").integer(4).op('t').op('Q').integer(0).tuple(new long[] {4}).tuple(new long[] {1})
                .integer(1).op('}').op('t').op('R').toByteArray();
        assertRefused(grad, "contains", "requires_grad is a int, expected a bool");
        byte[] arity = p().global("torch._utils", "_rebuild_tensor_v2").op(')').op('R').toByteArray();
        assertRefused(arity, "contains", "torch._utils._rebuild_tensor_v2 called with 0 arguments, expected 6 to 7");
        // and the valid shape of the same calls opens
        byte[] good = tensor(tensor(p().op('}').op('(').unicode("a"), "FloatStorage", "0", 4).unicode("b"), "FloatStorage", "0", 4)
                .op('u').op('.').toByteArray();
        try (TorchFile f = open(good)) {
            assertEquals(List.of("a", "b"), List.copyOf(f.names()));
            assertEquals(f.get("a").orElseThrow().data().address(), f.get("b").orElseThrow().data().address());
        }
    }
}
