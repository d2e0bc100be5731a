package koala4j.io.torchbin;

import java.lang.foreign.MemorySegment;
import java.math.BigInteger;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The torch side of unpickling a {@code torch.save} state dict: the allow-list of globals and what calling them
 * builds, after {@code torch/serialization.py} ({@code _load}: {@code persistent_load}, the {@code find_class} that
 * maps every {@code *Storage} name to a storage type) and {@code torch/_utils.py} ({@code _rebuild_tensor},
 * {@code _rebuild_tensor_v2}, {@code _rebuild_parameter}, {@code _rebuild_parameter_with_state}) and
 * {@code torch/_tensor.py} ({@code _rebuild_from_type_v2}).
 *
 * <p>Nothing is imported or executed: an allowed global becomes an inert token; calling it ({@code REDUCE}) builds a
 * {@link Tensor} description (storage, offset, size, stride) or an empty {@code OrderedDict}; every other global is
 * refused when its {@code GLOBAL} opcode is read. Storages are looked up by key through {@code storages}, which
 * answers with the record's bytes; the first persistent id of a key fixes its type and size, as
 * {@code loaded_storages} does in torch, and a later one that disagrees is refused (torch.save never writes one).
 */
final class TorchGlobals implements Unpickler.Resolver {

    /** A value that names itself in error messages. */
    interface Described {
        String describe();
    }

    /** The callables and classes that may be named. */
    enum Global implements Described {
        ORDERED_DICT("collections", "OrderedDict"),
        REBUILD_TENSOR("torch._utils", "_rebuild_tensor"),
        REBUILD_TENSOR_V2("torch._utils", "_rebuild_tensor_v2"),
        REBUILD_PARAMETER("torch._utils", "_rebuild_parameter"),
        REBUILD_PARAMETER_WITH_STATE("torch._utils", "_rebuild_parameter_with_state"),
        REBUILD_FROM_TYPE_V2("torch._tensor", "_rebuild_from_type_v2"),
        TENSOR("torch._tensor", "Tensor"),
        PARAMETER("torch.nn.parameter", "Parameter"),
        DEVICE("torch", "device"),
        SIZE("torch", "Size");

        final String module;
        final String name;

        Global(String module, String name) {
            this.module = module;
            this.name = name;
        }

        @Override
        public String describe() {
            return module + "." + name;
        }
    }

    /** One storage: its record's bytes, read-only, as many elements of {@code type} as the persistent id says. */
    record Storage(String key, TorchStorage type, long numel, MemorySegment bytes) implements Described {
        @Override
        public String describe() {
            return "storage";
        }
    }

    /** A tensor as {@code _rebuild_tensor_v2} describes it: a strided view of a storage, offsets in elements. */
    record Tensor(Storage storage, long offset, long[] size, long[] stride) implements Described {
        @Override
        public String describe() {
            return "tensor";
        }
    }

    static final String ALLOWED = "collections.OrderedDict, torch._utils._rebuild_tensor(_v2), "
            + "torch._utils._rebuild_parameter(_with_state), torch._tensor._rebuild_from_type_v2, torch.Tensor, "
            + "torch.nn.Parameter, torch.device, torch.Size and the torch.*Storage classes";

    private final Function<String, MemorySegment> storages;
    private final Map<String, Storage> loaded = new HashMap<>();

    /** {@code storages}: key → the record {@code <archive>/data/<key>}, or a {@link Unpickler.Refusal} saying why not. */
    TorchGlobals(Function<String, MemorySegment> storages) {
        this.storages = storages;
    }

    @Override
    public Object global(String module, String name) {
        // torch.load's find_class: any name containing "Storage" is a storage type, whatever the module
        // (torch.cuda.FloatStorage in checkpoints saved on a GPU)
        if (name.contains("Storage") && (module.equals("torch") || module.equals("torch.cuda"))) {
            TorchStorage type = TorchStorage.byClassName(name);
            if (type != null) return type;
        }
        if (module.equals("torch.tensor")) module = "torch._tensor";   // torch.load's load_module_mapping
        if (module.equals("torch") && name.equals("Tensor")) return Global.TENSOR;
        for (Global g : Global.values()) {
            if (g.module.equals(module) && g.name.equals(name)) return g;
        }
        throw new Unpickler.Refusal("GLOBAL %s.%s is not allowed: koala4j reads tensors only, never imports or calls"
                .formatted(cut(module), cut(name)) + " other names (allowed: " + ALLOWED + ")");
    }

    @Override
    public Object reduce(Object callable, Py.Tuple args) {
        if (!(callable instanceof Global g)) {
            throw new Unpickler.Refusal("REDUCE calls %s, expected an allowed function".formatted(Py.show(callable)));
        }
        return switch (g) {
            case ORDERED_DICT -> {
                arity(g, args, 0, 0);
                yield new Py.Dict(true);
            }
            case REBUILD_TENSOR -> {
                arity(g, args, 4, 4);
                yield tensor(g, args);
            }
            case REBUILD_TENSOR_V2 -> {
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                arity(g, args, 6, 7);
                if (!(args.get(4) instanceof Boolean)) {
                    throw new Unpickler.Refusal("%s: requires_grad is a %s, expected a bool".formatted(g.describe(), Py.typeName(args.get(4))));
                }
                if (args.size() == 7 && !isEmpty(args.get(6))) {
                    // set_tensor_metadata flags (conj/neg bits of complex views): not representable here
                    throw new Unpickler.Refusal("%s: tensor metadata is a non-empty %s, expected None or an empty dict"
                            .formatted(g.describe(), Py.typeName(args.get(6))));
                }
                yield tensor(g, args);
            }
            case REBUILD_PARAMETER, REBUILD_PARAMETER_WITH_STATE -> {
                // (data, requires_grad, backward_hooks[, state]): the Parameter is its data for reading
                int n = g == Global.REBUILD_PARAMETER ? 3 : 4;
                arity(g, args, n, n);
                yield requireTensor(g, args.get(0), "data");
            }
            case REBUILD_FROM_TYPE_V2 -> {
                // (func, new_type, args, state): a Tensor or Parameter rebuilt by func(*args); python state ignored
                arity(g, args, 4, 4);
                Object func = args.get(0);
                if (!(func instanceof Global f) || !(f == Global.REBUILD_TENSOR || f == Global.REBUILD_TENSOR_V2
                        || f == Global.REBUILD_PARAMETER || f == Global.REBUILD_PARAMETER_WITH_STATE)) {
                    throw new Unpickler.Refusal("%s: func is a %s, expected a torch._utils rebuild function"
                            .formatted(g.describe(), Py.typeName(func)));
                }
                if (args.get(1) != Global.TENSOR && args.get(1) != Global.PARAMETER) {
                    throw new Unpickler.Refusal("%s: new_type is a %s, expected torch.Tensor or torch.nn.Parameter"
                            .formatted(g.describe(), Py.typeName(args.get(1))));
                }
                if (!(args.get(2) instanceof Py.Tuple inner)) {
                    throw new Unpickler.Refusal("%s: args is a %s, expected a tuple".formatted(g.describe(), Py.typeName(args.get(2))));
                }
                yield requireTensor(g, reduce(func, inner), "func(*args)");
            }
            case SIZE -> {
                arity(g, args, 1, 1);
                if (!(args.get(0) instanceof Py.Tuple t)) {
                    throw new Unpickler.Refusal("torch.Size of a %s, expected a tuple".formatted(Py.typeName(args.get(0))));
                }
                yield t;
            }
            case DEVICE -> {
                arity(g, args, 1, 2);
                if (!(args.get(0) instanceof String type)) {
                    throw new Unpickler.Refusal("torch.device of a %s, expected a str".formatted(Py.typeName(args.get(0))));
                }
                yield args.size() == 2 ? type + ":" + Py.show(args.get(1)) : type;
            }
            case TENSOR, PARAMETER -> throw new Unpickler.Refusal(
                    "REDUCE calls the class %s, expected a rebuild function".formatted(g.describe()));
        };
    }

    @Override
    public void build(Object instance, Object state) {
        // What torch's restricted reader does for an OrderedDict: __dict__.update(state), i.e. state_dict()'s _metadata.
        if (instance instanceof Py.Dict d && d.ordered && state instanceof Py.Dict s) {
            d.attributes = s;
            return;
        }
        throw new Unpickler.Refusal("BUILD of a %s with a %s, expected an OrderedDict with a dict (state_dict()._metadata)"
                .formatted(Py.typeName(instance), Py.typeName(state)));
    }

    @Override
    public Object persistentLoad(Object pid) {
        // torch.save's persistent_id: ('storage', storage_type, key, location, numel)
        if (!(pid instanceof Py.Tuple t) || t.size() != 5 || !"storage".equals(t.get(0))) {
            throw new Unpickler.Refusal("persistent id is %s, expected ('storage', type, key, location, numel)"
                    .formatted(pid instanceof Py.Tuple t
                            ? "a tuple of " + t.size() + (t.size() > 0 ? " starting with " + Py.show(t.get(0)) : "")
                            : "a " + Py.typeName(pid)));
        }
        if (!(t.get(1) instanceof TorchStorage type)) {
            throw new Unpickler.Refusal("persistent id's storage type is a %s, expected a torch.*Storage class".formatted(Py.typeName(t.get(1))));
        }
        if (!(t.get(2) instanceof String key)) {
            throw new Unpickler.Refusal("persistent id's key is a %s, expected a str".formatted(Py.typeName(t.get(2))));
        }
        if (!(t.get(3) instanceof String)) {
            throw new Unpickler.Refusal("persistent id's location is a %s, expected a str such as 'cpu'".formatted(Py.typeName(t.get(3))));
        }
        if (!(t.get(4) instanceof Long numel) || numel < 0) {
            throw new Unpickler.Refusal("storage %s has %s elements, expected a non-negative int".formatted(Py.show(key), Py.show(t.get(4))));
        }
        Storage previous = loaded.get(key);
        if (previous != null) {
            if (previous.type() != type || previous.numel() != numel) {
                throw new Unpickler.Refusal("storage %s is named as %s of %d elements and as %s of %d, expected one type and size"
                        .formatted(Py.show(key), previous.type().describe(), previous.numel(), type.describe(), numel));
            }
            return previous;
        }
        long bytes;
        try {
            bytes = Math.multiplyExact(numel, (long) type.elementSize);
        } catch (ArithmeticException overflow) {
            throw new Unpickler.Refusal("storage %s of %d %s elements has more than 2^63-1 bytes".formatted(Py.show(key), numel, type.torchDtype));
        }
        MemorySegment record = storages.apply(key);
        if (record.byteSize() != bytes) {
            throw new Unpickler.Refusal("storage %s has a record of %d bytes, expected %d (%d %s elements)"
                    .formatted(Py.show(key), record.byteSize(), bytes, numel, type.torchDtype));
        }
        Storage storage = new Storage(key, type, numel, record);
        loaded.put(key, storage);
        return storage;
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /** (storage, storage_offset, size, stride, ...): checked for types here; bounds are checked per tensor later. */
    private static Tensor tensor(Global g, Py.Tuple args) {
        if (!(args.get(0) instanceof Storage storage)) {
            throw new Unpickler.Refusal("%s: storage is a %s, expected a storage (persistent id)".formatted(g.describe(), Py.typeName(args.get(0))));
        }
        long offset = nonNegative(g, "storage_offset", args.get(1));
        long[] size = ints(g, "size", args.get(2));
        long[] stride = ints(g, "stride", args.get(3));
        if (size.length != stride.length) {
            throw new Unpickler.Refusal("%s: size has %d dims and stride %d, expected the same".formatted(g.describe(), size.length, stride.length));
        }
        return new Tensor(storage, offset, size, stride);
    }

    private static Tensor requireTensor(Global g, Object o, String what) {
        if (!(o instanceof Tensor t)) {
            throw new Unpickler.Refusal("%s: %s is a %s, expected a tensor".formatted(g.describe(), what, Py.typeName(o)));
        }
        return t;
    }

    private static long[] ints(Global g, String what, Object o) {
        if (!(o instanceof Py.Tuple t)) {
            throw new Unpickler.Refusal("%s: %s is a %s, expected a tuple of ints".formatted(g.describe(), what, Py.typeName(o)));
        }
        if (t.size() > TorchFile.MAX_DIMS) {
            throw new Unpickler.Refusal("%s: %s has %d dims, expected at most %d".formatted(g.describe(), what, t.size(), TorchFile.MAX_DIMS));
        }
        long[] out = new long[t.size()];
        for (int i = 0; i < out.length; i++) out[i] = nonNegative(g, what + "[" + i + "]", t.get(i));
        return out;
    }

    private static long nonNegative(Global g, String what, Object o) {
        if (!(o instanceof Long v) || v < 0) {
            throw new Unpickler.Refusal("%s: %s is %s, expected a non-negative int below 2^63".formatted(g.describe(), what,
                    o instanceof Long || o instanceof BigInteger ? Py.show(o) : "a " + Py.typeName(o)));
        }
        return v;
    }

    private static void arity(Global g, Py.Tuple args, int min, int max) {
        if (args.size() < min || args.size() > max) {
            throw new Unpickler.Refusal("%s called with %d arguments, expected %s".formatted(g.describe(), args.size(),
                    min == max ? Integer.toString(min) : min + " to " + max));
        }
    }

    private static boolean isEmpty(Object o) {
        return o == Py.NONE || (o instanceof Py.Dict d && d.items.isEmpty());
    }

    private static String cut(String s) {
        return s.length() <= 100 ? s : s.substring(0, 99) + "…";
    }
}
