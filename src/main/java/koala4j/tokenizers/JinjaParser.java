package koala4j.tokenizers;

import java.util.ArrayList;
import java.util.List;

/**
 * Lexer and parser for the Jinja2 subset that chat templates use, with the environment transformers compiles them in
 * ({@code trim_blocks=True, lstrip_blocks=True}, loop controls): text, {@code {{ }}}, {@code {% %}} (if/elif/else,
 * for with else and an inline filter, set (also block set and namespace attributes), break/continue, generation),
 * {@code {# #}} comments, and whitespace control with {@code -} (and {@code +}). Expressions follow Jinja2's grammar
 * and precedence (parser.py): conditional, or/and/not, comparisons and {@code in}, {@code + -}, {@code ~},
 * {@code * / // %}, {@code **}, unary minus, filters, tests ({@code is [not] name}), calls, attributes, subscripts and
 * slices, and literals (strings, numbers, true/false/none, lists, tuples, dicts).
 */
final class JinjaParser {

    // ---------------------------------------------------------------------------------------------------- the tree

    sealed interface Node permits Text, Output, If, For, Set, SetBlock, Break, Continue, Block {
    }

    record Text(String text) implements Node {
    }

    record Output(Expr expr, int line) implements Node {
    }

    record If(List<Expr> conditions, List<List<Node>> bodies, List<Node> orElse, int line) implements Node {
    }

    record For(List<String> targets, Expr iterable, Expr filter, List<Node> body, List<Node> orElse, int line)
            implements Node {
    }

    /** {@code set name = expr}, {@code set a, b = expr} or {@code set ns.attr = expr}. */
    record Set(List<String> targets, String attribute, Expr value, int line) implements Node {
    }

    record SetBlock(String target, List<Node> body, int line) implements Node {
    }

    record Break(int line) implements Node {
    }

    record Continue(int line) implements Node {
    }

    /** A body rendered as is ({@code generation}, transformers' marker for assistant text). */
    record Block(List<Node> body) implements Node {
    }

    sealed interface Expr permits Literal, Name, ListExpr, DictExpr, Attr, Item, Slice, Call, Filter, Test, Unary,
            Binary, Conditional {
        int line();
    }

    record Literal(Object value, int line) implements Expr {
    }

    record Name(String name, int line) implements Expr {
    }

    record ListExpr(List<Expr> items, boolean tuple, int line) implements Expr {
    }

    record DictExpr(List<Expr> keys, List<Expr> values, int line) implements Expr {
    }

    record Attr(Expr target, String name, int line) implements Expr {
    }

    record Item(Expr target, Expr key, int line) implements Expr {
    }

    record Slice(Expr target, Expr start, Expr stop, Expr step, int line) implements Expr {
    }

    record Call(Expr callee, List<Expr> args, List<String> kwNames, List<Expr> kwValues, int line) implements Expr {
    }

    record Filter(Expr target, String name, List<Expr> args, List<String> kwNames, List<Expr> kwValues, int line)
            implements Expr {
    }

    record Test(Expr target, String name, List<Expr> args, boolean negated, int line) implements Expr {
    }

    record Unary(String op, Expr operand, int line) implements Expr {
    }

    record Binary(String op, Expr left, Expr right, int line) implements Expr {
    }

    record Conditional(Expr condition, Expr then, Expr orElse, int line) implements Expr {
    }

    // ---------------------------------------------------------------------------------------------------- lexing

    private enum Kind { TEXT, VAR, BLOCK }

    private record Chunk(Kind kind, String content, int line) {
    }

    private final String source;
    private final String name;
    private final List<Chunk> chunks = new ArrayList<>();
    private int position;

    private JinjaParser(String source, String name) {
        this.source = source;
        this.name = name;
    }

    static List<Node> parse(String source, String name) {
        JinjaParser parser = new JinjaParser(source, name);
        parser.lex();
        List<Node> body = parser.parseBody(List.of());
        if (parser.position < parser.chunks.size()) {
            Chunk c = parser.chunks.get(parser.position);
            throw parser.fail(c.line(), "unexpected '{%% %s %%}'".formatted(c.content().strip()));
        }
        return body;
    }

    ChatTemplateException fail(int line, String message) {
        return new ChatTemplateException(name, line, message);
    }

    private void lex() {
        String s = source.replace("\r\n", "\n");
        int at = 0;
        StringBuilder text = new StringBuilder();
        int textLine = 1;
        boolean stripNextWhitespace = false;
        boolean trimNextNewline = false;
        while (at <= s.length()) {
            int open = nextTag(s, at);
            String raw = s.substring(at, open < 0 ? s.length() : open);
            boolean lineStarting = at == 0 || s.charAt(at - 1) == '\n';
            if (stripNextWhitespace) {
                raw = raw.stripLeading();
            } else if (trimNextNewline && raw.startsWith("\n")) {
                raw = raw.substring(1);
                lineStarting = true;
            }
            if (open < 0) {
                addText(raw, textLine);
                break;
            }
            char type = s.charAt(open + 1);
            int line = lineOf(s, open);
            int inner = open + 2;
            boolean stripBefore = inner < s.length() && s.charAt(inner) == '-';
            boolean plus = inner < s.length() && s.charAt(inner) == '+';
            if (stripBefore || plus) {
                inner++;
            }
            if (stripBefore) {
                raw = raw.stripTrailing();
            } else if (type != '{' && !plus) {
                // lstrip_blocks: spaces and tabs between the line start and a block or comment tag go
                int lineStart = raw.lastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && raw.substring(lineStart).chars().allMatch(c -> c == ' ' || c == '\t')) {
                    raw = raw.substring(0, lineStart);
                }
            }
            addText(raw, textLine);
            String close = type == '{' ? "}}" : type == '%' ? "%}" : "#}";
            int end = type == '#' ? s.indexOf(close, inner) : findClose(s, inner, close, line);
            if (end < 0) {
                throw fail(line, "'%s' is never closed, expected '%s'".formatted(s.substring(open, open + 2), close));
            }
            boolean stripAfter = end > inner && s.charAt(end - 1) == '-';
            String content = s.substring(inner, stripAfter ? end - 1 : end);
            if (type == '{') {
                chunks.add(new Chunk(Kind.VAR, content, line));
            } else if (type == '%') {
                chunks.add(new Chunk(Kind.BLOCK, content, line));
            }
            stripNextWhitespace = stripAfter;
            trimNextNewline = type != '{';                    // trim_blocks: blocks and comments, not variables
            at = end + 2;
            textLine = lineOf(s, at);
            if (at > s.length()) {
                break;
            }
        }
    }

    private void addText(String text, int line) {
        if (!text.isEmpty()) {
            chunks.add(new Chunk(Kind.TEXT, text, line));
        }
    }

    private static int nextTag(String s, int from) {
        for (int i = s.indexOf('{', from); i >= 0 && i + 1 < s.length(); i = s.indexOf('{', i + 1)) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
        }
        return -1;
    }

    /** The index of {@code close} after {@code from}, skipping string literals. */
    private int findClose(String s, int from, String close, int line) {
        char quote = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (s.startsWith(close, i)) {
                return i;
            }
        }
        if (quote != 0) {
            throw fail(line, "unterminated string literal");
        }
        return -1;
    }

    private static int lineOf(String s, int index) {
        int line = 1;
        for (int i = 0; i < Math.min(index, s.length()); i++) {
            if (s.charAt(i) == '\n') {
                line++;
            }
        }
        return line;
    }

    // ---------------------------------------------------------------------------------------------------- statements

    /** Parses nodes until one of {@code terminators} (a block keyword) or the end; the terminator is not consumed. */
    private List<Node> parseBody(List<String> terminators) {
        List<Node> body = new ArrayList<>();
        while (position < chunks.size()) {
            Chunk chunk = chunks.get(position);
            switch (chunk.kind()) {
                case TEXT -> {
                    body.add(new Text(chunk.content()));
                    position++;
                }
                case VAR -> {
                    ExprParser p = new ExprParser(this, chunk.content(), chunk.line());
                    body.add(new Output(p.parseExpression(), chunk.line()));
                    p.expectEnd();
                    position++;
                }
                case BLOCK -> {
                    String keyword = keyword(chunk);
                    if (terminators.contains(keyword)) {
                        return body;
                    }
                    position++;
                    body.add(statement(keyword, chunk));
                }
            }
        }
        if (!terminators.isEmpty()) {
            int line = chunks.isEmpty() ? 1 : chunks.get(chunks.size() - 1).line();
            throw fail(line, "unexpected end of template, expected '{%% %s %%}'".formatted(terminators.get(terminators.size() - 1)));
        }
        return body;
    }

    private static String keyword(Chunk chunk) {
        String content = chunk.content().strip();
        int end = 0;
        while (end < content.length() && (Character.isLetterOrDigit(content.charAt(end)) || content.charAt(end) == '_')) {
            end++;
        }
        return content.substring(0, end);
    }

    private Node statement(String keyword, Chunk chunk) {
        ExprParser p = new ExprParser(this, chunk.content(), chunk.line());
        p.expectName(keyword);
        int line = chunk.line();
        switch (keyword) {
            case "if" -> {
                List<Expr> conditions = new ArrayList<>();
                List<List<Node>> bodies = new ArrayList<>();
                conditions.add(p.parseExpression());
                p.expectEnd();
                List<Node> orElse = List.of();
                while (true) {
                    bodies.add(parseBody(List.of("elif", "else", "endif")));
                    Chunk next = chunks.get(position++);
                    String k = keyword(next);
                    ExprParser q = new ExprParser(this, next.content(), next.line());
                    q.expectName(k);
                    if (k.equals("elif")) {
                        conditions.add(q.parseExpression());
                        q.expectEnd();
                    } else if (k.equals("else")) {
                        q.expectEnd();
                        orElse = parseBody(List.of("endif"));
                        position++;
                        break;
                    } else {
                        q.expectEnd();
                        break;
                    }
                }
                return new If(conditions, bodies, orElse, line);
            }
            case "for" -> {
                List<String> targets = new ArrayList<>();
                targets.add(p.expectIdentifier());
                while (p.accept(",")) {
                    targets.add(p.expectIdentifier());
                }
                p.expectName("in");
                Expr iterable = p.parseExpression(false);
                Expr filter = null;
                if (p.acceptName("if")) {
                    filter = p.parseExpression(false);
                }
                if (p.acceptName("recursive")) {
                    throw fail(line, "recursive for loops are not supported");
                }
                p.expectEnd();
                List<Node> body = parseBody(List.of("else", "endfor"));
                List<Node> orElse = List.of();
                if (keyword(chunks.get(position)).equals("else")) {
                    position++;
                    orElse = parseBody(List.of("endfor"));
                }
                position++;
                return new For(targets, iterable, filter, body, orElse, line);
            }
            case "set" -> {
                String target = p.expectIdentifier();
                if (p.accept(".")) {
                    String attribute = p.expectIdentifier();
                    p.expect("=");
                    Expr value = p.parseExpression();
                    p.expectEnd();
                    return new Set(List.of(target), attribute, value, line);
                }
                List<String> targets = new ArrayList<>(List.of(target));
                while (p.accept(",")) {
                    targets.add(p.expectIdentifier());
                }
                if (p.atEnd() && targets.size() == 1) {
                    List<Node> body = parseBody(List.of("endset"));
                    position++;
                    return new SetBlock(target, body, line);
                }
                p.expect("=");
                Expr value = p.parseExpression();
                p.expectEnd();
                return new Set(targets, null, value, line);
            }
            case "break" -> {
                p.expectEnd();
                return new Break(line);
            }
            case "continue" -> {
                p.expectEnd();
                return new Continue(line);
            }
            case "generation" -> {
                p.expectEnd();
                List<Node> body = parseBody(List.of("endgeneration"));
                position++;
                return new Block(body);
            }
            default -> throw fail(line, "unknown or unsupported tag '%s'".formatted(keyword.isEmpty()
                    ? chunk.content().strip() : keyword));
        }
    }
}
