package koala4j.tokenizers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Jinja2's built-in filters and tests that chat templates use, and the Python str/dict methods they call
 * ({@code message['role'].upper()}, {@code content.strip()}, {@code messages[0].get('role')}, ...), with Python's
 * semantics (str.strip strips whitespace, str.title, str.split). Unknown names are errors naming the template line.
 */
final class JinjaFilters {

    private static final Set<String> STRING_METHODS = Set.of("upper", "lower", "strip", "lstrip", "rstrip", "startswith",
            "endswith", "split", "replace", "title", "capitalize", "join", "count", "find", "splitlines", "format");
    private static final Set<String> DICT_METHODS = Set.of("items", "keys", "values", "get");

    private JinjaFilters() {
    }

    static boolean hasMethod(Object target, String name) {
        return target instanceof String && STRING_METHODS.contains(name)
                || target instanceof Map<?, ?> && DICT_METHODS.contains(name);
    }

    static Object method(JinjaRuntime rt, Object self, String name, List<Object> args, int line) {
        if (self instanceof Map<?, ?> map) {
            return switch (name) {
                case "items" -> {
                    List<Object> items = new ArrayList<>();
                    map.forEach((k, v) -> items.add(new ArrayList<>(java.util.Arrays.asList(k, v))));
                    yield items;
                }
                case "keys" -> new ArrayList<Object>(map.keySet());
                case "values" -> new ArrayList<Object>(map.values());
                case "get" -> map.containsKey(args.get(0)) ? map.get(args.get(0)) : args.size() > 1 ? args.get(1) : null;
                default -> throw rt.error(line, "dict has no method " + name);
            };
        }
        String s = (String) self;
        return switch (name) {
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "strip" -> args.isEmpty() || args.get(0) == null ? BasicTokenizer.pythonStrip(s) : stripChars(s, str(args.get(0)), true, true);
            case "lstrip" -> args.isEmpty() || args.get(0) == null ? BasicTokenizer.pythonLstrip(s) : stripChars(s, str(args.get(0)), true, false);
            case "rstrip" -> args.isEmpty() || args.get(0) == null ? BasicTokenizer.pythonRstrip(s) : stripChars(s, str(args.get(0)), false, true);
            case "startswith" -> s.startsWith(str(args.get(0)));
            case "endswith" -> s.endsWith(str(args.get(0)));
            case "split" -> split(s, args.isEmpty() || args.get(0) == null ? null : str(args.get(0)),
                    args.size() > 1 ? rt.toLong(args.get(1)) : -1);
            case "replace" -> s.replace(str(args.get(0)), str(args.get(1)));
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
            case "join" -> {
                List<String> parts = new ArrayList<>();
                rt.iterate(args.get(0), line).forEach(x -> parts.add(str(x)));
                yield String.join(s, parts);
            }
            case "count" -> (long) (s.isEmpty() ? 0 : (s.length() - s.replace(str(args.get(0)), "").length())
                    / Math.max(1, str(args.get(0)).length()));
            case "find" -> (long) s.indexOf(str(args.get(0)));
            case "splitlines" -> new ArrayList<Object>(List.of(s.split("\r\n|\n|\r", -1)));
            default -> throw rt.error(line, "str.%s is not supported".formatted(name));
        };
    }

    static Object filter(JinjaRuntime rt, String name, Object value, List<Object> args, Map<String, Object> kwargs,
                         int line) {
        return switch (name) {
            case "trim" -> BasicTokenizer.pythonStrip(str(value));
            case "length", "count" -> (long) switch (value) {
                case String s -> s.codePointCount(0, s.length());
                case List<?> l -> l.size();
                case Map<?, ?> m -> m.size();
                case JinjaRuntime.Undefined u -> 0;
                default -> throw rt.error(line, "object of type '%s' has no len()".formatted(JinjaRuntime.typeName(value)));
            };
            case "upper" -> str(value).toUpperCase(Locale.ROOT);
            case "lower" -> str(value).toLowerCase(Locale.ROOT);
            case "title" -> title(str(value));
            case "capitalize" -> method(rt, str(value), "capitalize", List.of(), line);
            case "string" -> str(value);
            case "safe", "e", "escape" -> name.equals("safe") ? value : str(value); // no autoescape in chat templates
            case "int" -> value instanceof String s ? parseLong(s) : value instanceof Double d ? (long) d.doubleValue()
                    : value instanceof Long ? value : value instanceof Boolean b ? (b ? 1L : 0L) : 0L;
            case "float" -> value instanceof String s ? parseDouble(s) : JinjaRuntime.isNumber(value) ? JinjaRuntime.toDouble(value) : 0.0;
            case "abs" -> value instanceof Long l ? (Object) Math.abs(l) : (Object) Math.abs(JinjaRuntime.toDouble(value));
            case "default", "d" -> {
                boolean useForFalsy = args.size() > 1 && JinjaRuntime.truthy(args.get(1))
                        || JinjaRuntime.truthy(kwargs.get("boolean"));
                Object fallback = args.isEmpty() ? "" : args.get(0);
                yield value instanceof JinjaRuntime.Undefined || useForFalsy && !JinjaRuntime.truthy(value) ? fallback : value;
            }
            case "first" -> {
                List<Object> items = rt.iterate(value, line);
                yield items.isEmpty() ? new JinjaRuntime.Undefined("first") : items.get(0);
            }
            case "last" -> {
                List<Object> items = rt.iterate(value, line);
                yield items.isEmpty() ? new JinjaRuntime.Undefined("last") : items.get(items.size() - 1);
            }
            case "list" -> rt.iterate(value, line);
            case "reverse" -> {
                if (value instanceof String s) {
                    yield new StringBuilder(s).reverse().toString();
                }
                List<Object> items = rt.iterate(value, line);
                java.util.Collections.reverse(items);
                yield items;
            }
            case "join" -> {
                String sep = args.isEmpty() ? str(kwargs.getOrDefault("d", "")) : str(args.get(0));
                Object attribute = kwargs.containsKey("attribute") ? kwargs.get("attribute") : args.size() > 1 ? args.get(1) : null;
                List<String> parts = new ArrayList<>();
                for (Object item : rt.iterate(value, line)) {
                    parts.add(str(attribute == null ? item : rt.item(item, attribute, line)));
                }
                yield String.join(sep, parts);
            }
            case "replace" -> str(value).replace(str(args.get(0)), str(args.get(1)));
            case "items" -> value instanceof Map<?, ?> ? method(rt, value, "items", List.of(), line) : List.of();
            case "tojson" -> {
                Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : args.isEmpty() ? null : args.get(0);
                yield JinjaRuntime.toJson(value, indent == null ? null : (int) rt.toLong(indent));
            }
            case "selectattr", "rejectattr" -> {
                boolean select = name.equals("selectattr");
                String attribute = str(args.get(0));
                List<Object> out = new ArrayList<>();
                for (Object item : rt.iterate(value, line)) {
                    Object attr = rt.item(item, attribute, line);
                    boolean ok = args.size() < 2 ? JinjaRuntime.truthy(attr)
                            : test(rt, str(args.get(1)), attr, args.subList(2, args.size()), line);
                    if (ok == select) {
                        out.add(item);
                    }
                }
                yield out;
            }
            case "select", "reject" -> {
                boolean select = name.equals("select");
                List<Object> out = new ArrayList<>();
                for (Object item : rt.iterate(value, line)) {
                    boolean ok = args.isEmpty() ? JinjaRuntime.truthy(item)
                            : test(rt, str(args.get(0)), item, args.subList(1, args.size()), line);
                    if (ok == select) {
                        out.add(item);
                    }
                }
                yield out;
            }
            case "map" -> {
                List<Object> out = new ArrayList<>();
                for (Object item : rt.iterate(value, line)) {
                    if (kwargs.containsKey("attribute")) {
                        Object attr = rt.item(item, kwargs.get("attribute"), line);
                        out.add(attr instanceof JinjaRuntime.Undefined && kwargs.containsKey("default") ? kwargs.get("default") : attr);
                    } else if (!args.isEmpty()) {
                        out.add(filter(rt, str(args.get(0)), item, args.subList(1, args.size()), Map.of(), line));
                    } else {
                        out.add(item);
                    }
                }
                yield out;
            }
            case "unique" -> {
                List<Object> out = new ArrayList<>();
                for (Object item : rt.iterate(value, line)) {
                    if (out.stream().noneMatch(x -> JinjaRuntime.equal(x, item))) {
                        out.add(item);
                    }
                }
                yield out;
            }
            case "dictsort" -> {
                List<Object> items = new ArrayList<>();
                if (value instanceof Map<?, ?> m) {
                    new java.util.TreeMap<String, Object>(stringKeys(m)).forEach((k, v) -> items.add(new ArrayList<>(
                            java.util.Arrays.asList(k, v))));
                }
                yield items;
            }
            case "round" -> {
                double x = JinjaRuntime.toDouble(value);
                long digits = args.isEmpty() ? 0 : rt.toLong(args.get(0));
                double scale = Math.pow(10, digits);
                yield Math.rint(x * scale) / scale;
            }
            case "indent" -> {
                long width = args.isEmpty() ? 4 : rt.toLong(args.get(0));
                String pad = " ".repeat((int) width);
                yield str(value).replace("\n", "\n" + pad);
            }
            case "wordcount" -> (long) split(str(value), null, -1).size();
            default -> throw rt.error(line, "no filter named '%s'".formatted(name));
        };
    }

    private static Map<String, Object> stringKeys(Map<?, ?> m) {
        Map<String, Object> out = new LinkedHashMap<>();
        m.forEach((k, v) -> out.put(str(k), v));
        return out;
    }

    static boolean test(JinjaRuntime rt, String name, Object value, List<Object> args, int line) {
        return switch (name) {
            case "defined" -> !(value instanceof JinjaRuntime.Undefined);
            case "undefined" -> value instanceof JinjaRuntime.Undefined;
            case "none" -> value == null;
            case "string" -> value instanceof String;
            case "number" -> value instanceof Long || value instanceof Double;
            case "integer" -> value instanceof Long;
            case "float" -> value instanceof Double;
            case "boolean" -> value instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(value);
            case "false" -> Boolean.FALSE.equals(value);
            case "mapping" -> value instanceof Map<?, ?> || value instanceof JinjaRuntime.Namespace;
            case "sequence" -> value instanceof List<?> || value instanceof String || value instanceof Map<?, ?>;
            case "iterable" -> value instanceof List<?> || value instanceof String || value instanceof Map<?, ?>;
            case "callable" -> false;
            case "odd" -> rt.toLong(value) % 2 != 0;
            case "even" -> rt.toLong(value) % 2 == 0;
            case "divisibleby" -> rt.toLong(value) % rt.toLong(args.get(0)) == 0;
            case "equalto", "eq", "==" -> JinjaRuntime.equal(value, args.get(0));
            case "ne", "!=" -> !JinjaRuntime.equal(value, args.get(0));
            case "lt", "lessthan", "<" -> rt.compare(value, args.get(0), line) < 0;
            case "le", "<=" -> rt.compare(value, args.get(0), line) <= 0;
            case "gt", "greaterthan", ">" -> rt.compare(value, args.get(0), line) > 0;
            case "ge", ">=" -> rt.compare(value, args.get(0), line) >= 0;
            case "in" -> rt.contains(args.get(0), value, line);
            case "sameas" -> value == args.get(0) || value != null && value.equals(args.get(0));
            case "lower" -> value instanceof String s && s.equals(s.toLowerCase(Locale.ROOT));
            case "upper" -> value instanceof String s && s.equals(s.toUpperCase(Locale.ROOT));
            default -> throw rt.error(line, "no test named '%s'".formatted(name));
        };
    }

    private static String str(Object v) {
        return JinjaRuntime.str(v);
    }

    private static Object parseLong(String s) {
        try {
            return Long.parseLong(s.strip());
        } catch (NumberFormatException e) {
            return 0L;
        }
    }

    private static Object parseDouble(String s) {
        try {
            return Double.parseDouble(s.strip());
        } catch (NumberFormatException e) {
            return 0.0;
        }
    }

    private static String stripChars(String s, String chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        while (left && start < end && chars.indexOf(s.charAt(start)) >= 0) {
            start++;
        }
        while (right && end > start && chars.indexOf(s.charAt(end - 1)) >= 0) {
            end--;
        }
        return s.substring(start, end);
    }

    /** Python str.split(sep, maxsplit). */
    static List<Object> split(String s, String sep, long maxSplit) {
        List<Object> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && BasicTokenizer.isPythonSpace(s.charAt(i))) {
                    i++;
                }
                if (i >= n) {
                    break;
                }
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(BasicTokenizer.pythonRstrip(s.substring(i)));
                    break;
                }
                int start = i;
                while (i < n && !BasicTokenizer.isPythonSpace(s.charAt(i))) {
                    i++;
                }
                out.add(s.substring(start, i));
            }
            return out;
        }
        int from = 0;
        while (maxSplit < 0 || out.size() < maxSplit) {
            int at = s.indexOf(sep, from);
            if (at < 0) {
                break;
            }
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    /** Python str.title(): a letter after a non-letter is upper-cased, the others lower-cased. */
    private static String title(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean prevLetter = false;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            boolean letter = Character.isLetter(cp);
            sb.appendCodePoint(letter ? (prevLetter ? Character.toLowerCase(cp) : Character.toTitleCase(cp)) : cp);
            prevLetter = letter;
        }
        return sb.toString();
    }
}
