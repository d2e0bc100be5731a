package koala4j.tokenizers;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Renders a parsed chat template with Python/Jinja2 value semantics: values are {@code String}, {@code Long},
 * {@code Double}, {@code Boolean}, {@code null} (None), {@code List} and {@code Map} (dicts, insertion-ordered), plus
 * jinja's Undefined (prints as "", is false, iterates as empty, fails on attribute access), {@code namespace()}
 * objects and the {@code loop} variable. Globals are transformers' ({@code raise_exception}, {@code strftime_now})
 * and jinja's ({@code namespace}, {@code range}). Not thread-safe: one instance per render.
 */
final class JinjaRuntime {

    /** jinja2.Undefined. */
    record Undefined(String name) {
    }

    /** jinja2 namespace(): the one mutable object, so that loops can carry state out. */
    static final class Namespace {
        final Map<String, Object> attributes = new LinkedHashMap<>();
    }

    private record Method(Object self, String name) {
    }

    private record Global(String name) {
    }

    private static final class BreakSignal extends RuntimeException {
        BreakSignal() {
            super(null, null, false, false);
        }
    }

    private static final class ContinueSignal extends RuntimeException {
        ContinueSignal() {
            super(null, null, false, false);
        }
    }

    private final String source;
    private final List<Map<String, Object>> scopes = new ArrayList<>();
    private final StringBuilder out = new StringBuilder();

    JinjaRuntime(String source, Map<String, Object> context) {
        this.source = source;
        Map<String, Object> globals = new HashMap<>();
        for (String g : List.of("raise_exception", "namespace", "range", "strftime_now", "dict")) {
            globals.put(g, new Global(g));
        }
        scopes.add(globals);
        Map<String, Object> variables = new HashMap<>();
        context.forEach((k, v) -> variables.put(k, normalize(v)));
        scopes.add(variables);
    }

    /** Java values as the Python ones they stand for: integers as Long, floats as Double, collections as lists. */
    static Object normalize(Object v) {
        return switch (v) {
            case Integer i -> (long) i;
            case Short s -> (long) s;
            case Byte b -> (long) b;
            case Float f -> (double) f;
            case Map<?, ?> m -> {
                Map<Object, Object> out = new LinkedHashMap<>();
                m.forEach((k, x) -> out.put(normalize(k), normalize(x)));
                yield out;
            }
            case Collection<?> c -> {
                List<Object> out = new ArrayList<>();
                c.forEach(x -> out.add(normalize(x)));
                yield out;
            }
            case null, default -> v;
        };
    }

    String render(List<JinjaParser.Node> body) {
        try {
            execute(body);
        } catch (BreakSignal | ContinueSignal e) {
            throw new ChatTemplateException(source, 0, "break or continue outside a for loop");
        }
        return out.toString();
    }

    private ChatTemplateException fail(int line, String message) {
        return new ChatTemplateException(source, line, message);
    }

    // ---------------------------------------------------------------------------------------------------- statements

    private void execute(List<JinjaParser.Node> body) {
        for (JinjaParser.Node node : body) {
            switch (node) {
                case JinjaParser.Text t -> out.append(t.text());
                case JinjaParser.Output o -> out.append(str(eval(o.expr())));
                case JinjaParser.If i -> {
                    boolean done = false;
                    for (int k = 0; k < i.conditions().size() && !done; k++) {
                        if (truthy(eval(i.conditions().get(k)))) {
                            execute(i.bodies().get(k));
                            done = true;
                        }
                    }
                    if (!done) {
                        execute(i.orElse());
                    }
                }
                case JinjaParser.For f -> loop(f);
                case JinjaParser.Set s -> assign(s);
                case JinjaParser.SetBlock s -> {
                    int mark = out.length();
                    execute(s.body());
                    String captured = out.substring(mark);
                    out.setLength(mark);
                    scopes.get(scopes.size() - 1).put(s.target(), captured);
                }
                case JinjaParser.Break b -> throw new BreakSignal();
                case JinjaParser.Continue c -> throw new ContinueSignal();
                case JinjaParser.Block b -> execute(b.body());
            }
        }
    }

    private void assign(JinjaParser.Set s) {
        Object value = eval(s.value());
        if (s.attribute() != null) {
            Object target = lookup(s.targets().get(0));
            if (!(target instanceof Namespace ns)) {
                throw fail(s.line(), "cannot assign attribute on non-namespace object '%s'".formatted(s.targets().get(0)));
            }
            ns.attributes.put(s.attribute(), value);
            return;
        }
        Map<String, Object> scope = scopes.get(scopes.size() - 1);
        if (s.targets().size() == 1) {
            scope.put(s.targets().get(0), value);
            return;
        }
        List<Object> items = iterate(value, s.line());
        if (items.size() != s.targets().size()) {
            throw fail(s.line(), "cannot unpack %d values into %d names".formatted(items.size(), s.targets().size()));
        }
        for (int k = 0; k < items.size(); k++) {
            scope.put(s.targets().get(k), items.get(k));
        }
    }

    private void loop(JinjaParser.For f) {
        List<Object> all = iterate(eval(f.iterable()), f.line());
        List<Object> items = new ArrayList<>();
        if (f.filter() == null) {
            items = all;
        } else {
            for (Object item : all) {
                Map<String, Object> scope = new HashMap<>();
                bind(f, item, scope);
                scopes.add(scope);
                try {
                    if (truthy(eval(f.filter()))) {
                        items.add(item);
                    }
                } finally {
                    scopes.remove(scopes.size() - 1);
                }
            }
        }
        if (items.isEmpty()) {
            execute(f.orElse());
            return;
        }
        int n = items.size();
        for (int k = 0; k < n; k++) {
            Map<String, Object> scope = new HashMap<>();
            Map<String, Object> loop = new LinkedHashMap<>();
            loop.put("index", (long) k + 1);
            loop.put("index0", (long) k);
            loop.put("revindex", (long) (n - k));
            loop.put("revindex0", (long) (n - k - 1));
            loop.put("first", k == 0);
            loop.put("last", k == n - 1);
            loop.put("length", (long) n);
            loop.put("previtem", k > 0 ? items.get(k - 1) : new Undefined("loop.previtem"));
            loop.put("nextitem", k < n - 1 ? items.get(k + 1) : new Undefined("loop.nextitem"));
            scope.put("loop", loop);
            bind(f, items.get(k), scope);
            scopes.add(scope);
            try {
                execute(f.body());
            } catch (ContinueSignal e) {
                // next iteration
            } catch (BreakSignal e) {
                break;
            } finally {
                scopes.remove(scopes.size() - 1);
            }
        }
    }

    private void bind(JinjaParser.For f, Object item, Map<String, Object> scope) {
        if (f.targets().size() == 1) {
            scope.put(f.targets().get(0), item);
            return;
        }
        List<Object> parts = iterate(item, f.line());
        if (parts.size() != f.targets().size()) {
            throw fail(f.line(), "cannot unpack %d values into %d loop variables".formatted(parts.size(), f.targets().size()));
        }
        for (int k = 0; k < parts.size(); k++) {
            scope.put(f.targets().get(k), parts.get(k));
        }
    }

    private Object lookup(String name) {
        for (int k = scopes.size() - 1; k >= 0; k--) {
            Map<String, Object> scope = scopes.get(k);
            if (scope.containsKey(name)) {
                return scope.get(name);
            }
        }
        return new Undefined(name);
    }

    // ---------------------------------------------------------------------------------------------------- expressions

    private Object eval(JinjaParser.Expr expr) {
        return switch (expr) {
            case JinjaParser.Literal l -> l.value();
            case JinjaParser.Name n -> lookup(n.name());
            case JinjaParser.ListExpr l -> {
                List<Object> items = new ArrayList<>();
                l.items().forEach(e -> items.add(eval(e)));
                yield items;
            }
            case JinjaParser.DictExpr d -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                for (int k = 0; k < d.keys().size(); k++) {
                    map.put(eval(d.keys().get(k)), eval(d.values().get(k)));
                }
                yield map;
            }
            case JinjaParser.Attr a -> attribute(eval(a.target()), a.name(), a.line());
            case JinjaParser.Item i -> item(eval(i.target()), eval(i.key()), i.line());
            case JinjaParser.Slice s -> slice(eval(s.target()), s.start() == null ? null : eval(s.start()),
                    s.stop() == null ? null : eval(s.stop()), s.step() == null ? null : eval(s.step()), s.line());
            case JinjaParser.Call c -> call(c);
            case JinjaParser.Filter f -> JinjaFilters.filter(this, f.name(), eval(f.target()), evalAll(f.args()),
                    kwargs(f.kwNames(), f.kwValues()), f.line());
            case JinjaParser.Test t -> t.negated() != JinjaFilters.test(this, t.name(), eval(t.target()),
                    evalAll(t.args()), t.line());
            case JinjaParser.Unary u -> switch (u.op()) {
                case "not" -> !truthy(eval(u.operand()));
                case "-" -> negate(eval(u.operand()), u.line());
                default -> eval(u.operand());
            };
            case JinjaParser.Binary b -> binary(b);
            case JinjaParser.Conditional c -> truthy(eval(c.condition())) ? eval(c.then())
                    : c.orElse() == null ? new Undefined("conditional") : eval(c.orElse());
        };
    }

    List<Object> evalAll(List<JinjaParser.Expr> exprs) {
        List<Object> values = new ArrayList<>(exprs.size());
        exprs.forEach(e -> values.add(eval(e)));
        return values;
    }

    private Map<String, Object> kwargs(List<String> names, List<JinjaParser.Expr> values) {
        Map<String, Object> map = new LinkedHashMap<>();
        for (int k = 0; k < names.size(); k++) {
            map.put(names.get(k), eval(values.get(k)));
        }
        return map;
    }

    private Object binary(JinjaParser.Binary b) {
        switch (b.op()) {
            case "and" -> {
                Object left = eval(b.left());
                return truthy(left) ? eval(b.right()) : left;
            }
            case "or" -> {
                Object left = eval(b.left());
                return truthy(left) ? left : eval(b.right());
            }
            default -> {
            }
        }
        Object left = eval(b.left());
        Object right = eval(b.right());
        return switch (b.op()) {
            case "==" -> equal(left, right);
            case "!=" -> !equal(left, right);
            case "<" -> compare(left, right, b.line()) < 0;
            case "<=" -> compare(left, right, b.line()) <= 0;
            case ">" -> compare(left, right, b.line()) > 0;
            case ">=" -> compare(left, right, b.line()) >= 0;
            case "in" -> contains(right, left, b.line());
            case "not in" -> !contains(right, left, b.line());
            case "~" -> str(left) + str(right);
            case "+" -> add(left, right, b.line());
            default -> arithmetic(b.op(), left, right, b.line());
        };
    }

    private Object add(Object left, Object right, int line) {
        if (left instanceof String a && right instanceof String c) {
            return a + c;
        }
        if (left instanceof List<?> a && right instanceof List<?> c) {
            List<Object> joined = new ArrayList<>(a);
            joined.addAll(c);
            return joined;
        }
        if (isNumber(left) && isNumber(right)) {
            return arithmetic("+", left, right, line);
        }
        throw fail(line, "unsupported operand types for +: '%s' and '%s'".formatted(typeName(left), typeName(right)));
    }

    private Object arithmetic(String op, Object left, Object right, int line) {
        if (op.equals("*") && left instanceof String s && right instanceof Long n) {
            return n <= 0 ? "" : s.repeat(n.intValue());
        }
        if (op.equals("%") && left instanceof String) {
            throw fail(line, "printf-style string formatting with % is not supported");
        }
        if (!isNumber(left) || !isNumber(right)) {
            throw fail(line, "unsupported operand types for %s: '%s' and '%s'".formatted(op, typeName(left), typeName(right)));
        }
        boolean integers = !(left instanceof Double) && !(right instanceof Double);
        double x = toDouble(left);
        double y = toDouble(right);
        if ((op.equals("/") || op.equals("//") || op.equals("%")) && y == 0) {
            throw fail(line, "division by zero");
        }
        if (integers) {
            long a = toLong(left);
            long c = toLong(right);
            // each branch boxed on its own: a switch mixing long and double would widen every result to double
            return switch (op) {
                case "+" -> (Object) (a + c);
                case "-" -> (Object) (a - c);
                case "*" -> (Object) (a * c);
                case "/" -> (Object) ((double) a / c);
                case "//" -> (Object) Math.floorDiv(a, c);
                case "%" -> (Object) Math.floorMod(a, c);
                case "**" -> c >= 0 ? (Object) (long) Math.pow(a, c) : (Object) Math.pow(a, c);
                default -> throw fail(line, "unknown operator " + op);
            };
        }
        return switch (op) {
            case "+" -> x + y;
            case "-" -> x - y;
            case "*" -> x * y;
            case "/" -> x / y;
            case "//" -> Math.floor(x / y);
            case "%" -> x - Math.floor(x / y) * y;
            case "**" -> Math.pow(x, y);
            default -> throw fail(line, "unknown operator " + op);
        };
    }

    private Object negate(Object value, int line) {
        if (value instanceof Long l) {
            return -l;
        }
        if (value instanceof Double d) {
            return -d;
        }
        throw fail(line, "bad operand type for unary -: '%s'".formatted(typeName(value)));
    }

    private Object call(JinjaParser.Call c) {
        Object callee = eval(c.callee());
        List<Object> args = evalAll(c.args());
        Map<String, Object> kwargs = kwargs(c.kwNames(), c.kwValues());
        if (callee instanceof Global g) {
            return switch (g.name()) {
                case "raise_exception" -> throw fail(c.line(), "template raised an exception: "
                        + (args.isEmpty() ? "" : str(args.get(0))));
                case "namespace", "dict" -> {
                    Namespace ns = new Namespace();
                    for (Object arg : args) {
                        if (arg instanceof Map<?, ?> m) {
                            m.forEach((k, v) -> ns.attributes.put(str(k), v));
                        }
                    }
                    ns.attributes.putAll(kwargs);
                    if (g.name().equals("dict")) {
                        yield new LinkedHashMap<Object, Object>(ns.attributes);
                    }
                    yield ns;
                }
                case "range" -> {
                    long start = args.size() > 1 ? toLong(args.get(0)) : 0;
                    long stop = toLong(args.get(args.size() > 1 ? 1 : 0));
                    long step = args.size() > 2 ? toLong(args.get(2)) : 1;
                    if (step == 0 || Math.abs((stop - start) / step) > 100_000) {
                        throw fail(c.line(), "range(%d, %d, %d) is empty-stepped or too long".formatted(start, stop, step));
                    }
                    List<Object> values = new ArrayList<>();
                    for (long v = start; step > 0 ? v < stop : v > stop; v += step) {
                        values.add(v);
                    }
                    yield values;
                }
                case "strftime_now" -> strftime(str(args.get(0)), LocalDateTime.now());
                default -> throw fail(c.line(), "unknown function " + g.name());
            };
        }
        if (callee instanceof Method m) {
            return JinjaFilters.method(this, m.self(), m.name(), args, c.line());
        }
        if (callee instanceof Undefined u) {
            throw fail(c.line(), "'%s' is undefined".formatted(u.name()));
        }
        throw fail(c.line(), "'%s' object is not callable".formatted(typeName(callee)));
    }

    // ---------------------------------------------------------------------------------------------------- access

    Object attribute(Object target, String name, int line) {
        if (target instanceof Undefined u) {
            throw fail(line, "'%s' is undefined".formatted(u.name()));
        }
        if (target instanceof Namespace ns) {
            return ns.attributes.containsKey(name) ? ns.attributes.get(name) : new Undefined(name);
        }
        if (JinjaFilters.hasMethod(target, name)) {
            return new Method(target, name);                     // getattr first, as jinja's Environment.getattr
        }
        if (target instanceof Map<?, ?> map && map.containsKey(name)) {
            return map.get(name);                                // then the item
        }
        return new Undefined(name);
    }

    Object item(Object target, Object key, int line) {
        if (target instanceof Undefined u) {
            throw fail(line, "'%s' is undefined".formatted(u.name()));
        }
        if (target instanceof Map<?, ?> map) {
            Object k = key instanceof Long l && !map.containsKey(l) ? l : key;
            return map.containsKey(k) ? map.get(k) : new Undefined(str(key));
        }
        if (target instanceof Namespace ns && key instanceof String s) {
            return ns.attributes.containsKey(s) ? ns.attributes.get(s) : new Undefined(s);
        }
        if (key instanceof Long index && (target instanceof List<?> || target instanceof String)) {
            int size = target instanceof List<?> l ? l.size() : ((String) target).length();
            long i = index < 0 ? index + size : index;
            if (i < 0 || i >= size) {
                return new Undefined(str(key));
            }
            return target instanceof List<?> l ? l.get((int) i) : String.valueOf(((String) target).charAt((int) i));
        }
        if (key instanceof String s) {
            return attribute(target, s, line);
        }
        return new Undefined(str(key));
    }

    private Object slice(Object target, Object start, Object stop, Object step, int line) {
        List<Object> items;
        if (target instanceof String s) {
            items = new ArrayList<>();
            s.codePoints().forEach(cp -> items.add(new String(Character.toChars(cp))));
        } else if (target instanceof List<?> l) {
            items = new ArrayList<>(l);
        } else {
            throw fail(line, "'%s' object is not subscriptable with a slice".formatted(typeName(target)));
        }
        int n = items.size();
        long st = step == null ? 1 : toLong(step);
        if (st == 0) {
            throw fail(line, "slice step cannot be zero");
        }
        long a = start == null ? (st > 0 ? 0 : n - 1) : clampIndex(toLong(start), n, st);
        long b = stop == null ? (st > 0 ? n : -1) : clampIndex(toLong(stop), n, st);
        List<Object> result = new ArrayList<>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) {
            result.add(items.get((int) i));
        }
        if (target instanceof String) {
            StringBuilder sb = new StringBuilder();
            result.forEach(sb::append);
            return sb.toString();
        }
        return result;
    }

    private static long clampIndex(long i, int n, long step) {
        if (i < 0) {
            i += n;
            if (i < 0) {
                return step > 0 ? 0 : -1;
            }
        }
        if (i >= n) {
            return step > 0 ? n : n - 1;
        }
        return i;
    }

    // ---------------------------------------------------------------------------------------------------- python semantics

    static boolean truthy(Object v) {
        return switch (v) {
            case null -> false;
            case Undefined u -> false;
            case Boolean b -> b;
            case Long l -> l != 0;
            case Double d -> d != 0;
            case String s -> !s.isEmpty();
            case Collection<?> c -> !c.isEmpty();
            case Map<?, ?> m -> !m.isEmpty();
            default -> true;
        };
    }

    /** Python's str(). */
    static String str(Object v) {
        return switch (v) {
            case null -> "None";
            case Undefined u -> "";
            case String s -> s;
            case Boolean b -> b ? "True" : "False";
            case Long l -> l.toString();
            case Double d -> pythonFloat(d);
            case List<?> l -> repr(l);
            case Map<?, ?> m -> repr(m);
            case Namespace ns -> "<Namespace " + repr(ns.attributes) + ">";
            default -> String.valueOf(v);
        };
    }

    static String repr(Object v) {
        if (v instanceof String s) {
            String quote = s.contains("'") && !s.contains("\"") ? "\"" : "'";
            StringBuilder sb = new StringBuilder(quote);
            for (char c : s.toCharArray()) {
                switch (c) {
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\t' -> sb.append("\\t");
                    case '\r' -> sb.append("\\r");
                    default -> sb.append(String.valueOf(c).equals(quote) ? "\\" + c : String.valueOf(c));
                }
            }
            return sb.append(quote).toString();
        }
        if (v instanceof List<?> l) {
            List<String> parts = new ArrayList<>();
            l.forEach(x -> parts.add(repr(x)));
            return "[" + String.join(", ", parts) + "]";
        }
        if (v instanceof Map<?, ?> m) {
            List<String> parts = new ArrayList<>();
            m.forEach((k, x) -> parts.add(repr(k) + ": " + repr(x)));
            return "{" + String.join(", ", parts) + "}";
        }
        return str(v);
    }

    static String pythonFloat(double d) {
        if (Double.isNaN(d)) {
            return "nan";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "inf" : "-inf";
        }
        if (d == Math.rint(d) && Math.abs(d) < 1e16) {
            return (long) d + ".0";
        }
        return Double.toString(d);
    }

    static boolean equal(Object a, Object b) {
        if (a instanceof Undefined || b instanceof Undefined) {
            return a instanceof Undefined && b instanceof Undefined;
        }
        if (isNumber(a) && isNumber(b)) {
            return toDouble(a) == toDouble(b);
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (int i = 0; i < x.size(); i++) {
                if (!equal(x.get(i), y.get(i))) {
                    return false;
                }
            }
            return true;
        }
        return a == null ? b == null : a.equals(b);
    }

    int compare(Object a, Object b, int line) {
        if (isNumber(a) && isNumber(b)) {
            return Double.compare(toDouble(a), toDouble(b));
        }
        if (a instanceof String x && b instanceof String y) {
            return x.compareTo(y);
        }
        throw fail(line, "'<' not supported between instances of '%s' and '%s'".formatted(typeName(a), typeName(b)));
    }

    boolean contains(Object container, Object element, int line) {
        return switch (container) {
            case String s when element instanceof String e -> s.contains(e);
            case String s -> throw fail(line, "'in <string>' requires string as left operand, not " + typeName(element));
            case List<?> l -> l.stream().anyMatch(x -> equal(x, element));
            case Map<?, ?> m -> m.containsKey(element);
            case Namespace ns -> ns.attributes.containsKey(str(element));
            case Undefined u -> throw fail(line, "'%s' is undefined".formatted(u.name()));
            default -> throw fail(line, "argument of type '%s' is not iterable".formatted(typeName(container)));
        };
    }

    List<Object> iterate(Object value, int line) {
        return switch (value) {
            case Undefined u -> List.of();
            case List<?> l -> new ArrayList<>(l);
            case Map<?, ?> m -> new ArrayList<>(m.keySet());
            case String s -> {
                List<Object> chars = new ArrayList<>();
                s.codePoints().forEach(cp -> chars.add(new String(Character.toChars(cp))));
                yield chars;
            }
            case null -> throw fail(line, "'NoneType' object is not iterable");
            default -> throw fail(line, "'%s' object is not iterable".formatted(typeName(value)));
        };
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static double toDouble(Object v) {
        return v instanceof Boolean b ? (b ? 1 : 0) : ((Number) v).doubleValue();
    }

    long toLong(Object v) {
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        if (v instanceof Long l) {
            return l;
        }
        if (v instanceof Double d) {
            return d.longValue();
        }
        throw fail(0, "expected an integer, found '%s'".formatted(typeName(v)));
    }

    static String typeName(Object v) {
        return switch (v) {
            case null -> "NoneType";
            case String s -> "str";
            case Long l -> "int";
            case Double d -> "float";
            case Boolean b -> "bool";
            case List<?> l -> "list";
            case Map<?, ?> m -> "dict";
            case Undefined u -> "Undefined";
            case Namespace n -> "Namespace";
            default -> v.getClass().getSimpleName();
        };
    }

    ChatTemplateException error(int line, String message) {
        return fail(line, message);
    }

    // ---------------------------------------------------------------------------------------------------- json, time

    private static final ObjectMapper JSON = new ObjectMapper().disable(SerializationFeature.FAIL_ON_EMPTY_BEANS);

    /** transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent) with Python's separators. */
    static String toJson(Object value, Integer indent) {
        StringBuilder sb = new StringBuilder();
        writeJson(sb, value, indent, 0);
        return sb.toString();
    }

    private static void writeJson(StringBuilder sb, Object v, Integer indent, int level) {
        switch (v) {
            case null -> sb.append("null");
            case Undefined u -> sb.append("null");
            case Boolean b -> sb.append(b ? "true" : "false");
            case Long l -> sb.append(l);
            case Double d -> sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity")
                    : pythonFloat(d));
            case String s -> {
                try {
                    sb.append(JSON.writeValueAsString(s));
                } catch (JsonProcessingException e) {
                    throw new IllegalStateException(e);
                }
            }
            case List<?> l -> {
                if (l.isEmpty()) {
                    sb.append("[]");
                    return;
                }
                sb.append('[');
                for (int i = 0; i < l.size(); i++) {
                    sb.append(i == 0 ? "" : indent == null ? ", " : ",");
                    newline(sb, indent, level + 1);
                    writeJson(sb, l.get(i), indent, level + 1);
                }
                newline(sb, indent, level);
                sb.append(']');
            }
            case Map<?, ?> m -> {
                if (m.isEmpty()) {
                    sb.append("{}");
                    return;
                }
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    sb.append(first ? "" : indent == null ? ", " : ",");
                    first = false;
                    newline(sb, indent, level + 1);
                    writeJson(sb, str(e.getKey()), indent, level + 1);
                    sb.append(": ");
                    writeJson(sb, e.getValue(), indent, level + 1);
                }
                newline(sb, indent, level);
                sb.append('}');
            }
            case Namespace ns -> writeJson(sb, ns.attributes, indent, level);
            default -> writeJson(sb, str(v), indent, level);
        }
    }

    private static void newline(StringBuilder sb, Integer indent, int level) {
        if (indent != null) {
            sb.append('\n').append(" ".repeat(indent * level));
        }
    }

    /** Python's strftime for the directives chat templates use (%d %m %Y %y %B %b %A %a %H %I %M %S %p %j %%). */
    static String strftime(String format, LocalDateTime t) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 >= format.length()) {
                sb.append(c);
                continue;
            }
            char d = format.charAt(++i);
            switch (d) {
                case 'd' -> sb.append("%02d".formatted(t.getDayOfMonth()));
                case 'm' -> sb.append("%02d".formatted(t.getMonthValue()));
                case 'Y' -> sb.append(t.getYear());
                case 'y' -> sb.append("%02d".formatted(t.getYear() % 100));
                case 'B' -> sb.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'b' -> sb.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'H' -> sb.append("%02d".formatted(t.getHour()));
                case 'I' -> sb.append("%02d".formatted(t.getHour() % 12 == 0 ? 12 : t.getHour() % 12));
                case 'M' -> sb.append("%02d".formatted(t.getMinute()));
                case 'S' -> sb.append("%02d".formatted(t.getSecond()));
                case 'p' -> sb.append(t.getHour() < 12 ? "AM" : "PM");
                case 'j' -> sb.append("%03d".formatted(t.getDayOfYear()));
                case '%' -> sb.append('%');
                default -> sb.append('%').append(d);
            }
        }
        return sb.toString();
    }
}
