package koala4j.pipelines;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A JSON Schema {@code pattern} (ECMA-262 syntax) as a Thompson automaton over code points, run by {@link JsonPrefix}
 * on a string value's characters as they are written: a character is kept only while the text can still match, and
 * the string may close only on a match. As JSON Schema says, a pattern matches anywhere in the string unless it is
 * anchored with {@code ^} / {@code $}. The subset: literals and escapes ({@code \d \D \w \W \s \S \t \n \r \f \v \0
 * \xHH \\uHHHH}, escaped metacharacters), {@code .}, classes ({@code [a-z_]}, {@code [^...]}, escapes inside),
 * groups ({@code (...)}, {@code (?:...)}), {@code |}, {@code * + ? {n} {n,} {n,m}} (lazy forms read as greedy: the
 * language is the same), {@code ^} first and {@code $} last. Backreferences, lookaround, word boundaries and flags are
 * errors naming the construct. Immutable once compiled; the state sets are the caller's {@code long[]}s.
 */
final class JsonRegex {

    /** At most this many automaton states (a {n,m} repeats its operand's states). */
    static final int MAX_STATES = 1024;
    /** Groups nested at most this deep (the parser recurses per level). */
    static final int MAX_NESTING = 64;
    private static final int MAX_CODE_POINT = 0x10FFFF;
    private static final int[] ANY = {0, MAX_CODE_POINT};
    private static final int[] DIGIT = {'0', '9'};
    private static final int[] WORD = {'0', '9', 'A', 'Z', '_', '_', 'a', 'z'};
    private static final int[] SPACE = {'\t', '\r', ' ', ' ', 0xA0, 0xA0, 0x1680, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029,
            0x202F, 0x202F, 0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF};
    private static final int[] LINE_TERMINATORS = {'\n', '\n', '\r', '\r', 0x2028, 0x2029};

    final String source;
    // state i: a character class (sorted disjoint inclusive ranges) leading to next[i], or null: epsilon edges only
    private final int[][] classes;
    private final int[] next;
    private final long[][] closure;
    private final long[] live;
    private final long[] start;
    private final int accept;
    final int words;

    private JsonRegex(String source, Builder b) {
        this.source = source;
        int n = b.classes.size();
        classes = b.classes.toArray(int[][]::new);
        next = b.next.stream().mapToInt(Integer::intValue).toArray();
        words = (n + 63) / 64;
        accept = b.accept;
        closure = new long[n][];
        for (int i = 0; i < n; i++) {
            closure[i] = new long[words];
            close(i, closure[i], b.epsilon);
        }
        live = new long[words];
        // states from which accept can be reached, by a fixed point over all edges
        live[accept >>> 6] |= 1L << accept;
        boolean changed = true;
        while (changed) {
            changed = false;
            for (int i = 0; i < n; i++) {
                if (has(live, i)) {
                    continue;
                }
                boolean reaches = classes[i] != null && has(live, next[i]);
                for (int e : b.epsilon.get(i)) {
                    reaches |= has(live, e);
                }
                if (reaches) {
                    live[i >>> 6] |= 1L << i;
                    changed = true;
                }
            }
        }
        start = closure[b.entry].clone();
        and(start, live);
    }

    private static void close(int s, long[] set, List<List<Integer>> epsilon) {
        if (has(set, s)) {
            return;
        }
        set[s >>> 6] |= 1L << s;
        for (int e : epsilon.get(s)) {
            close(e, set, epsilon);
        }
    }

    private static boolean has(long[] set, int i) {
        return (set[i >>> 6] >>> i & 1) != 0;
    }

    private static void and(long[] a, long[] b) {
        for (int i = 0; i < a.length; i++) {
            a[i] &= b[i];
        }
    }

    private static String shown(String pattern) {
        return pattern.length() > 60 ? pattern.substring(0, 60) + "..." : pattern;
    }

    /** States of the automaton (each costs a bit set of them for its closure). */
    int states() {
        return classes.length;
    }

    /** The states before the first character (a fresh array). */
    long[] start() {
        return start.clone();
    }

    /** {@code set} after code point {@code cp}, in place; false when the text can no longer match. */
    boolean step(long[] set, int cp, long[] scratch) {
        Arrays.fill(scratch, 0);
        boolean any = false;
        for (int w = 0; w < set.length; w++) {
            for (long bits = set[w]; bits != 0; bits &= bits - 1) {
                int s = w * 64 + Long.numberOfTrailingZeros(bits);
                if (classes[s] != null && contains(classes[s], cp)) {
                    long[] c = closure[next[s]];
                    for (int k = 0; k < scratch.length; k++) {
                        scratch[k] |= c[k];
                    }
                    any = true;
                }
            }
        }
        if (!any) {
            return false;
        }
        any = false;
        for (int k = 0; k < set.length; k++) {
            set[k] = scratch[k] & live[k];
            any |= set[k] != 0;
        }
        return any;
    }

    /**
     * Whether some code point in [lo, hi] can come next with the text still able to match (for a character whose
     * first bytes are written: its possible code points).
     */
    boolean canStep(long[] set, int lo, int hi) {
        for (int w = 0; w < set.length; w++) {
            for (long bits = set[w]; bits != 0; bits &= bits - 1) {
                int s = w * 64 + Long.numberOfTrailingZeros(bits);
                if (classes[s] != null && intersects(classes[s], lo, hi) && has(live, next[s])) {
                    return true;
                }
            }
        }
        return false;
    }

    private static boolean intersects(int[] ranges, int lo, int hi) {
        for (int k = 0; k < ranges.length; k += 2) {
            if (ranges[k + 1] >= lo) {
                return ranges[k] <= hi;
            }
        }
        return false;
    }

    /** Whether the text that led to {@code set} matches. */
    boolean matches(long[] set) {
        return has(set, accept);
    }

    private static boolean contains(int[] ranges, int cp) {
        int lo = 0;
        int hi = ranges.length / 2 - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (cp < ranges[2 * mid]) {
                hi = mid - 1;
            } else if (cp > ranges[2 * mid + 1]) {
                lo = mid + 1;
            } else {
                return true;
            }
        }
        return false;
    }

    /**
     * @throws IllegalArgumentException naming the construct and its position when the pattern is outside the subset
     *                                  (or makes more than {@link #MAX_STATES} states)
     */
    static JsonRegex compile(String pattern) {
        Parser p = new Parser(pattern);
        Node ast = p.pattern();
        Builder b = new Builder(pattern);
        b.accept = b.state(null, -1);
        int out = b.accept;
        if (!p.anchoredEnd) {
            out = b.star(ANY, out);
        }
        int entry = b.compile(ast, out);
        if (!p.anchoredStart) {
            entry = b.star(ANY, entry);
        }
        b.entry = entry;
        return new JsonRegex(pattern, b);
    }

    // ---- syntax tree

    private sealed interface Node permits Chars, Seq, Alt, Repeat {
    }

    private record Chars(int[] ranges) implements Node {
    }

    private record Seq(List<Node> items) implements Node {
    }

    private record Alt(List<Node> options) implements Node {
    }

    /** {min, max} repetitions; max -1: unbounded. */
    private record Repeat(Node body, int min, int max) implements Node {
    }

    private static final class Parser {
        private final String s;
        private int i;
        private int depth;
        boolean anchoredStart;
        boolean anchoredEnd;

        Parser(String s) {
            this.s = s;
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("pattern \"" + shown(s) + "\": " + what + " at index " + i
                    + " is not supported");
        }

        Node pattern() {
            if (s.startsWith("^")) {
                anchoredStart = true;
                i = 1;
            }
            Node n = alternation();
            if (i < s.length()) {
                throw error("an unmatched ')'");
            }
            if (n instanceof Alt && (anchoredStart || anchoredEnd)) {
                i = 0;
                throw error("'^' or '$' that applies to one alternative only (group the alternatives)");
            }
            return n;
        }

        private Node alternation() {
            List<Node> options = new ArrayList<>();
            options.add(sequence());
            while (i < s.length() && s.charAt(i) == '|') {
                i++;
                options.add(sequence());
            }
            return options.size() == 1 ? options.getFirst() : new Alt(options);
        }

        private Node sequence() {
            List<Node> items = new ArrayList<>();
            while (i < s.length() && s.charAt(i) != '|' && s.charAt(i) != ')') {
                if (s.charAt(i) == '$') {
                    if (i == s.length() - 1) {
                        anchoredEnd = true;
                        i++;
                        break;
                    }
                    throw error("'$' before the end");
                }
                if (s.charAt(i) == '^') {
                    throw error("'^' after the start");
                }
                items.add(quantified(atom()));
            }
            return new Seq(items);
        }

        private Node atom() {
            char c = s.charAt(i);
            switch (c) {
                case '(' -> {
                    if (++depth > MAX_NESTING) {
                        throw error("groups nested deeper than " + MAX_NESTING);
                    }
                    i++;
                    if (s.startsWith("?:", i)) {
                        i += 2;
                    } else if (s.startsWith("?", i)) {
                        throw error("a lookaround or named group");
                    }
                    Node inner = alternation();
                    if (i >= s.length() || s.charAt(i) != ')') {
                        throw error("an unclosed '('");
                    }
                    i++;
                    depth--;
                    return inner;
                }
                case '[' -> {
                    return new Chars(charClass());
                }
                case '.' -> {
                    i++;
                    return new Chars(complement(LINE_TERMINATORS));
                }
                case '\\' -> {
                    return new Chars(escape(false));
                }
                case '*', '+', '?', '{' -> throw error("a quantifier with nothing before it");
                default -> {
                    int cp = s.codePointAt(i);
                    i += Character.charCount(cp);
                    return new Chars(new int[] {cp, cp});
                }
            }
        }

        private Node quantified(Node atom) {
            if (i >= s.length()) {
                return atom;
            }
            int min;
            int max;
            switch (s.charAt(i)) {
                case '*' -> {
                    min = 0;
                    max = -1;
                    i++;
                }
                case '+' -> {
                    min = 1;
                    max = -1;
                    i++;
                }
                case '?' -> {
                    min = 0;
                    max = 1;
                    i++;
                }
                case '{' -> {
                    int close = s.indexOf('}', i);
                    String body = close < 0 ? "" : s.substring(i + 1, close);
                    if (!body.matches("\\d{1,4}(,\\d{0,4})?")) {
                        throw error("'{' that is not a {n}, {n,} or {n,m} quantifier");
                    }
                    String[] parts = body.split(",", -1);
                    min = Integer.parseInt(parts[0]);
                    max = parts.length == 1 ? min : parts[1].isEmpty() ? -1 : Integer.parseInt(parts[1]);
                    if (max >= 0 && max < min) {
                        throw error("{" + body + "} with its maximum below its minimum");
                    }
                    i = close + 1;
                }
                default -> {
                    return atom;
                }
            }
            if (i < s.length() && s.charAt(i) == '?') {
                i++;                            // lazy: the same language
            }
            if (i < s.length() && "*+?{".indexOf(s.charAt(i)) >= 0) {
                throw error("a quantifier after a quantifier");
            }
            return new Repeat(atom, min, max);
        }

        private int[] charClass() {
            i++;
            boolean negated = i < s.length() && s.charAt(i) == '^';
            if (negated) {
                i++;
            }
            List<int[]> parts = new ArrayList<>();
            boolean first = true;
            while (true) {
                if (i >= s.length()) {
                    throw error("an unclosed '['");
                }
                char c = s.charAt(i);
                if (c == ']' && !first) {
                    i++;
                    break;
                }
                first = false;
                int[] lo = c == '\\' ? escape(true) : single();
                if (lo.length == 2 && lo[0] == lo[1] && i + 1 < s.length() && s.charAt(i) == '-'
                        && s.charAt(i + 1) != ']') {
                    i++;
                    int[] hi = s.charAt(i) == '\\' ? escape(true) : single();
                    if (hi.length != 2 || hi[0] != hi[1] || hi[0] < lo[0]) {
                        throw error("a class range that is not from a character to a later one");
                    }
                    parts.add(new int[] {lo[0], hi[0]});
                } else {
                    parts.add(lo);
                }
            }
            int[] ranges = union(parts);
            return negated ? complement(ranges) : ranges;
        }

        private int[] single() {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            return new int[] {cp, cp};
        }

        private int[] escape(boolean inClass) {
            i++;
            if (i >= s.length()) {
                throw error("a '\\' at the end");
            }
            char c = s.charAt(i++);
            return switch (c) {
                case 'd' -> DIGIT;
                case 'D' -> complement(DIGIT);
                case 'w' -> WORD;
                case 'W' -> complement(WORD);
                case 's' -> SPACE;
                case 'S' -> complement(SPACE);
                case 't' -> new int[] {'\t', '\t'};
                case 'n' -> new int[] {'\n', '\n'};
                case 'r' -> new int[] {'\r', '\r'};
                case 'f' -> new int[] {'\f', '\f'};
                case 'v' -> new int[] {0x0B, 0x0B};
                case '0' -> new int[] {0, 0};
                case 'b' -> {
                    if (inClass) {
                        yield new int[] {8, 8};
                    }
                    i--;
                    throw error("a word boundary \\b");
                }
                case 'x', 'u' -> {
                    int digits = c == 'x' ? 2 : 4;
                    if (i + digits > s.length() || !s.substring(i, i + digits).matches("[0-9a-fA-F]+")) {
                        throw error("a \\" + c + " escape without " + digits + " hex digits");
                    }
                    int cp = Integer.parseInt(s.substring(i, i + digits), 16);
                    i += digits;
                    yield new int[] {cp, cp};
                }
                default -> {
                    if (Character.isLetterOrDigit(c)) {
                        i--;
                        throw error("the escape \\" + c + " (a backreference, class or property escape)");
                    }
                    yield new int[] {c, c};
                }
            };
        }
    }

    /** Sorted, merged ranges of all parts. */
    static int[] union(List<int[]> parts) {
        List<int[]> all = new ArrayList<>();
        for (int[] p : parts) {
            for (int k = 0; k < p.length; k += 2) {
                all.add(new int[] {p[k], p[k + 1]});
            }
        }
        all.sort((a, b) -> Integer.compare(a[0], b[0]));
        List<int[]> merged = new ArrayList<>();
        for (int[] r : all) {
            if (!merged.isEmpty() && r[0] <= merged.getLast()[1] + 1) {
                merged.getLast()[1] = Math.max(merged.getLast()[1], r[1]);
            } else {
                merged.add(r.clone());
            }
        }
        int[] out = new int[merged.size() * 2];
        for (int k = 0; k < merged.size(); k++) {
            out[2 * k] = merged.get(k)[0];
            out[2 * k + 1] = merged.get(k)[1];
        }
        return out;
    }

    /** Every code point not in the sorted disjoint {@code ranges}. */
    static int[] complement(int[] ranges) {
        List<int[]> out = new ArrayList<>();
        int from = 0;
        for (int k = 0; k < ranges.length; k += 2) {
            if (ranges[k] > from) {
                out.add(new int[] {from, ranges[k] - 1});
            }
            from = ranges[k + 1] + 1;
        }
        if (from <= MAX_CODE_POINT) {
            out.add(new int[] {from, MAX_CODE_POINT});
        }
        return union(out);
    }

    // ---- automaton

    private static final class Builder {
        final String pattern;
        final List<int[]> classes = new ArrayList<>();
        final List<Integer> next = new ArrayList<>();
        final List<List<Integer>> epsilon = new ArrayList<>();
        int accept;
        int entry;

        Builder(String pattern) {
            this.pattern = pattern;
        }

        int state(int[] ranges, int to) {
            if (classes.size() == MAX_STATES) {
                throw new IllegalArgumentException("pattern \"" + shown(pattern) + "\": more than " + MAX_STATES
                        + " automaton states (a large {n,m} repeat)");
            }
            classes.add(ranges);
            next.add(to);
            epsilon.add(new ArrayList<>());
            return classes.size() - 1;
        }

        /** A loop of {@code ranges} characters, then {@code out}. */
        int star(int[] ranges, int out) {
            int loop = state(null, -1);
            int body = state(ranges, loop);
            epsilon.get(loop).addAll(List.of(body, out));
            return loop;
        }

        /** The entry state of {@code n} followed by {@code out} (built backwards, so each use gets its own states). */
        int compile(Node n, int out) {
            return switch (n) {
                case Chars c -> state(c.ranges(), out);
                case Seq seq -> {
                    int e = out;
                    for (int k = seq.items().size() - 1; k >= 0; k--) {
                        e = compile(seq.items().get(k), e);
                    }
                    yield e;
                }
                case Alt alt -> {
                    int fork = state(null, -1);
                    for (Node option : alt.options()) {
                        epsilon.get(fork).add(compile(option, out));
                    }
                    yield fork;
                }
                case Repeat r -> {
                    int e = out;
                    if (r.max() < 0) {
                        int loop = state(null, -1);
                        epsilon.get(loop).add(compile(r.body(), loop));
                        epsilon.get(loop).add(out);
                        e = loop;
                    } else {
                        for (int k = r.min(); k < r.max(); k++) {
                            int optional = state(null, -1);
                            epsilon.get(optional).addAll(List.of(compile(r.body(), e), out));
                            e = optional;
                        }
                    }
                    for (int k = 0; k < r.min(); k++) {
                        e = compile(r.body(), e);
                    }
                    yield e;
                }
            };
        }
    }
}
