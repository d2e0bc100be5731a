package koala4j.io.torchbin;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;

/**
 * The Python values the restricted unpickler builds: {@code str} is {@link String}, {@code int} is {@link Long} (or
 * {@link BigInteger} past 64 bits), {@code float} is {@link Double}, {@code bool} is {@link Boolean}, {@code None}
 * is {@link #NONE}; containers are the classes below. Containers compare by identity and never print their contents,
 * so a hostile pickle's self-referencing list or dict cannot make hashing, equality or an error message recurse.
 */
final class Py {
    /** Python's {@code None}. */
    static final Object NONE = new Object() {
        @Override
        public String toString() {
            return "None";
        }
    };

    private Py() {}

    static final class List {
        final ArrayList<Object> items = new ArrayList<>();
    }

    static final class Tuple {
        final Object[] items;

        Tuple(Object... items) {
            this.items = items;
        }

        int size() {
            return items.length;
        }

        Object get(int i) {
            return items[i];
        }
    }

    /** A {@code dict} or {@code collections.OrderedDict}; keys are scalars only (see {@link #isKey}). */
    static final class Dict {
        final LinkedHashMap<Object, Object> items = new LinkedHashMap<>();
        final boolean ordered;
        /** What BUILD set on an OrderedDict ({@code state_dict()._metadata}); kept, never interpreted. */
        Dict attributes;

        Dict(boolean ordered) {
            this.ordered = ordered;
        }
    }

    /** Scalars hash by value without recursion; tuples, lists and dicts as keys are refused (state dicts never use them). */
    static boolean isKey(Object o) {
        return o instanceof String || o instanceof Long || o instanceof BigInteger || o instanceof Double
                || o instanceof Boolean || o == NONE;
    }

    /** The Python type name, for error messages. */
    static String typeName(Object o) {
        if (o instanceof String) return "str";
        if (o instanceof Long || o instanceof BigInteger) return "int";
        if (o instanceof Double) return "float";
        if (o instanceof Boolean) return "bool";
        if (o == NONE) return "None";
        if (o instanceof List) return "list";
        if (o instanceof Tuple) return "tuple";
        if (o instanceof Dict d) return d.ordered ? "OrderedDict" : "dict";
        if (o instanceof TorchGlobals.Described d) return d.describe();
        return o.getClass().getSimpleName();
    }

    /** A short, safe rendering of a scalar (strings quoted and cut short), else its type name. */
    static String show(Object o) {
        if (o instanceof String s) return TorchbinException.quoted(s);
        if (o instanceof Long || o instanceof Boolean || o instanceof Double || o == NONE) return String.valueOf(o);
        if (o instanceof BigInteger b) {
            String s = b.toString();
            return s.length() <= 40 ? s : s.substring(0, 20) + "…(" + b.bitLength() + " bits)";
        }
        return "a " + typeName(o);
    }
}
