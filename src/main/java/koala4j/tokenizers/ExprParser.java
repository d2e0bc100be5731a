package koala4j.tokenizers;

import java.util.ArrayList;
import java.util.List;

/**
 * Tokenizes and parses one Jinja2 expression (the inside of a {@code {{ }}} or {@code {% %}} tag) with Jinja2's
 * precedence: conditional < or < and < not < comparison < {@code + -} < {@code ~} < {@code * / // %} < {@code **} <
 * unary minus < filters / tests / calls / attributes / subscripts (jinja2/parser.py).
 */
final class ExprParser {

    private enum T { NAME, STRING, INT, FLOAT, OP, END }

    private record Token(T type, String text, Object value) {
    }

    private static final List<String> OPERATORS = List.of("//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%",
            "~", "<", ">", "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}");

    private final JinjaParser owner;
    private final int line;
    private final List<Token> tokens = new ArrayList<>();
    private int at;

    ExprParser(JinjaParser owner, String text, int line) {
        this.owner = owner;
        this.line = line;
        lex(text);
    }

    private void lex(String s) {
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
            } else if (Character.isLetter(c) || c == '_') {
                int start = i;
                while (i < s.length() && (Character.isLetterOrDigit(s.charAt(i)) || s.charAt(i) == '_')) {
                    i++;
                }
                tokens.add(new Token(T.NAME, s.substring(start, i), null));
            } else if (Character.isDigit(c)) {
                int start = i;
                while (i < s.length() && (Character.isDigit(s.charAt(i)) || s.charAt(i) == '_')) {
                    i++;
                }
                boolean isFloat = false;
                if (i + 1 < s.length() && s.charAt(i) == '.' && Character.isDigit(s.charAt(i + 1))) {
                    isFloat = true;
                    i++;
                    while (i < s.length() && Character.isDigit(s.charAt(i))) {
                        i++;
                    }
                }
                String number = s.substring(start, i).replace("_", "");
                tokens.add(isFloat ? new Token(T.FLOAT, number, Double.parseDouble(number))
                        : new Token(T.INT, number, Long.parseLong(number)));
            } else if (c == '\'' || c == '"') {
                StringBuilder value = new StringBuilder();
                int j = i + 1;
                while (j < s.length() && s.charAt(j) != c) {
                    char d = s.charAt(j);
                    if (d == '\\' && j + 1 < s.length()) {
                        char e = s.charAt(++j);
                        switch (e) {
                            case 'n' -> value.append('\n');
                            case 't' -> value.append('\t');
                            case 'r' -> value.append('\r');
                            case '\\', '\'', '"' -> value.append(e);
                            case 'u' -> {
                                value.append((char) Integer.parseInt(s.substring(j + 1, j + 5), 16));
                                j += 4;
                            }
                            default -> value.append('\\').append(e);
                        }
                    } else {
                        value.append(d);
                    }
                    j++;
                }
                if (j >= s.length()) {
                    throw owner.fail(line, "unterminated string literal");
                }
                tokens.add(new Token(T.STRING, s.substring(i, j + 1), value.toString()));
                i = j + 1;
            } else {
                String op = null;
                for (String candidate : OPERATORS) {
                    if (s.startsWith(candidate, i)) {
                        op = candidate;
                        break;
                    }
                }
                if (op == null) {
                    throw owner.fail(line, "unexpected character '%s'".formatted(c));
                }
                tokens.add(new Token(T.OP, op, null));
                i += op.length();
            }
        }
        tokens.add(new Token(T.END, "end of tag", null));
    }

    // ---------------------------------------------------------------------------------------------------- helpers

    private Token peek() {
        return tokens.get(at);
    }

    private Token next() {
        return tokens.get(at++);
    }

    boolean atEnd() {
        return peek().type() == T.END;
    }

    void expectEnd() {
        if (!atEnd()) {
            throw owner.fail(line, "unexpected '%s', expected the end of the tag".formatted(peek().text()));
        }
    }

    boolean accept(String op) {
        if (peek().type() == T.OP && peek().text().equals(op)) {
            at++;
            return true;
        }
        return false;
    }

    void expect(String op) {
        if (!accept(op)) {
            throw owner.fail(line, "unexpected '%s', expected '%s'".formatted(peek().text(), op));
        }
    }

    boolean acceptName(String name) {
        if (peek().type() == T.NAME && peek().text().equals(name)) {
            at++;
            return true;
        }
        return false;
    }

    private boolean peekName(String name) {
        return peek().type() == T.NAME && peek().text().equals(name);
    }

    void expectName(String name) {
        if (!acceptName(name)) {
            throw owner.fail(line, "unexpected '%s', expected '%s'".formatted(peek().text(), name));
        }
    }

    String expectIdentifier() {
        Token t = next();
        if (t.type() != T.NAME) {
            throw owner.fail(line, "unexpected '%s', expected a name".formatted(t.text()));
        }
        return t.text();
    }

    // ---------------------------------------------------------------------------------------------------- grammar

    JinjaParser.Expr parseExpression() {
        return parseExpression(true);
    }

    /** @param withCondExpr false inside a for loop's iterable, where {@code if} starts the loop filter */
    JinjaParser.Expr parseExpression(boolean withCondExpr) {
        JinjaParser.Expr expr = parseTupleOrOr(withCondExpr);
        return expr;
    }

    private JinjaParser.Expr parseTupleOrOr(boolean withCondExpr) {
        JinjaParser.Expr first = withCondExpr ? parseCondition() : parseOr();
        if (peek().type() != T.OP || !peek().text().equals(",") || !allowsImplicitTuple()) {
            return first;
        }
        List<JinjaParser.Expr> items = new ArrayList<>(List.of(first));
        while (accept(",")) {
            if (atEnd() || peekName("if")) {
                break;
            }
            items.add(withCondExpr ? parseCondition() : parseOr());
        }
        return new JinjaParser.ListExpr(items, true, line);
    }

    private int depth;

    private boolean allowsImplicitTuple() {
        return depth == 0;
    }

    private JinjaParser.Expr parseCondition() {
        JinjaParser.Expr expr = parseOr();
        while (acceptName("if")) {
            JinjaParser.Expr condition = parseOr();
            JinjaParser.Expr orElse = acceptName("else") ? parseCondition() : null;
            expr = new JinjaParser.Conditional(condition, expr, orElse, line);
        }
        return expr;
    }

    private JinjaParser.Expr parseOr() {
        JinjaParser.Expr left = parseAnd();
        while (acceptName("or")) {
            left = new JinjaParser.Binary("or", left, parseAnd(), line);
        }
        return left;
    }

    private JinjaParser.Expr parseAnd() {
        JinjaParser.Expr left = parseNot();
        while (acceptName("and")) {
            left = new JinjaParser.Binary("and", left, parseNot(), line);
        }
        return left;
    }

    private JinjaParser.Expr parseNot() {
        if (acceptName("not")) {
            return new JinjaParser.Unary("not", parseNot(), line);
        }
        return parseCompare();
    }

    private JinjaParser.Expr parseCompare() {
        JinjaParser.Expr left = parseMath1();
        while (true) {
            Token t = peek();
            if (t.type() == T.OP && List.of("==", "!=", "<", "<=", ">", ">=").contains(t.text())) {
                at++;
                left = new JinjaParser.Binary(t.text(), left, parseMath1(), line);
            } else if (acceptName("in")) {
                left = new JinjaParser.Binary("in", left, parseMath1(), line);
            } else if (peekName("not") && tokens.get(at + 1).type() == T.NAME && tokens.get(at + 1).text().equals("in")) {
                at += 2;
                left = new JinjaParser.Binary("not in", left, parseMath1(), line);
            } else {
                return left;
            }
        }
    }

    private JinjaParser.Expr parseMath1() {
        JinjaParser.Expr left = parseConcat();
        while (peek().type() == T.OP && (peek().text().equals("+") || peek().text().equals("-"))) {
            String op = next().text();
            left = new JinjaParser.Binary(op, left, parseConcat(), line);
        }
        return left;
    }

    private JinjaParser.Expr parseConcat() {
        JinjaParser.Expr left = parseMath2();
        while (accept("~")) {
            left = new JinjaParser.Binary("~", left, parseMath2(), line);
        }
        return left;
    }

    private JinjaParser.Expr parseMath2() {
        JinjaParser.Expr left = parsePow();
        while (peek().type() == T.OP && List.of("*", "/", "//", "%").contains(peek().text())) {
            String op = next().text();
            left = new JinjaParser.Binary(op, left, parsePow(), line);
        }
        return left;
    }

    private JinjaParser.Expr parsePow() {
        JinjaParser.Expr left = parseUnary(true);
        while (accept("**")) {
            left = new JinjaParser.Binary("**", left, parseUnary(true), line);
        }
        return left;
    }

    private JinjaParser.Expr parseUnary(boolean withFilter) {
        JinjaParser.Expr node;
        if (accept("-")) {
            node = new JinjaParser.Unary("-", parseUnary(false), line);
        } else if (accept("+")) {
            node = new JinjaParser.Unary("+", parseUnary(false), line);
        } else {
            node = parsePrimary();
        }
        node = parsePostfix(node);
        return withFilter ? parseFilterExpr(node) : node;
    }

    private JinjaParser.Expr parsePrimary() {
        Token t = next();
        switch (t.type()) {
            case NAME -> {
                return switch (t.text()) {
                    case "true", "True" -> new JinjaParser.Literal(Boolean.TRUE, line);
                    case "false", "False" -> new JinjaParser.Literal(Boolean.FALSE, line);
                    case "none", "None" -> new JinjaParser.Literal(null, line);
                    default -> new JinjaParser.Name(t.text(), line);
                };
            }
            case STRING -> {
                StringBuilder value = new StringBuilder((String) t.value());
                while (peek().type() == T.STRING) {
                    value.append((String) next().value());   // adjacent literals concatenate
                }
                return new JinjaParser.Literal(value.toString(), line);
            }
            case INT, FLOAT -> {
                return new JinjaParser.Literal(t.value(), line);
            }
            case OP -> {
                switch (t.text()) {
                    case "(" -> {
                        depth++;
                        if (accept(")")) {
                            depth--;
                            return new JinjaParser.ListExpr(List.of(), true, line);
                        }
                        JinjaParser.Expr first = parseCondition();
                        if (peek().type() == T.OP && peek().text().equals(",")) {
                            List<JinjaParser.Expr> items = new ArrayList<>(List.of(first));
                            while (accept(",")) {
                                if (peek().type() == T.OP && peek().text().equals(")")) {
                                    break;
                                }
                                items.add(parseCondition());
                            }
                            expect(")");
                            depth--;
                            return new JinjaParser.ListExpr(items, true, line);
                        }
                        expect(")");
                        depth--;
                        return first;
                    }
                    case "[" -> {
                        depth++;
                        List<JinjaParser.Expr> items = new ArrayList<>();
                        while (!accept("]")) {
                            if (!items.isEmpty()) {
                                expect(",");
                                if (accept("]")) {
                                    break;
                                }
                            }
                            items.add(parseCondition());
                        }
                        depth--;
                        return new JinjaParser.ListExpr(items, false, line);
                    }
                    case "{" -> {
                        depth++;
                        List<JinjaParser.Expr> keys = new ArrayList<>();
                        List<JinjaParser.Expr> values = new ArrayList<>();
                        while (!accept("}")) {
                            if (!keys.isEmpty()) {
                                expect(",");
                                if (accept("}")) {
                                    break;
                                }
                            }
                            keys.add(parseCondition());
                            expect(":");
                            values.add(parseCondition());
                        }
                        depth--;
                        return new JinjaParser.DictExpr(keys, values, line);
                    }
                    default -> {
                    }
                }
            }
            default -> {
            }
        }
        throw owner.fail(line, "unexpected '%s', expected an expression".formatted(t.text()));
    }

    private JinjaParser.Expr parsePostfix(JinjaParser.Expr node) {
        while (true) {
            if (accept(".")) {
                Token t = next();
                if (t.type() == T.NAME) {
                    node = new JinjaParser.Attr(node, t.text(), line);
                } else if (t.type() == T.INT) {
                    node = new JinjaParser.Item(node, new JinjaParser.Literal(t.value(), line), line);
                } else {
                    throw owner.fail(line, "unexpected '%s' after '.', expected an attribute name".formatted(t.text()));
                }
            } else if (accept("[")) {
                depth++;
                JinjaParser.Expr start = null;
                JinjaParser.Expr stop = null;
                JinjaParser.Expr step = null;
                boolean slice = false;
                if (!(peek().type() == T.OP && peek().text().equals(":"))) {
                    start = parseCondition();
                }
                if (accept(":")) {
                    slice = true;
                    if (!(peek().type() == T.OP && (peek().text().equals("]") || peek().text().equals(":")))) {
                        stop = parseCondition();
                    }
                    if (accept(":") && !(peek().type() == T.OP && peek().text().equals("]"))) {
                        step = parseCondition();
                    }
                }
                expect("]");
                depth--;
                node = slice ? new JinjaParser.Slice(node, start, stop, step, line) : new JinjaParser.Item(node, start, line);
            } else if (peek().type() == T.OP && peek().text().equals("(")) {
                node = parseCall(node);
            } else {
                return node;
            }
        }
    }

    private JinjaParser.Expr parseCall(JinjaParser.Expr callee) {
        List<JinjaParser.Expr> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<JinjaParser.Expr> kwValues = new ArrayList<>();
        parseArgs(args, kwNames, kwValues);
        return new JinjaParser.Call(callee, args, kwNames, kwValues, line);
    }

    private void parseArgs(List<JinjaParser.Expr> args, List<String> kwNames, List<JinjaParser.Expr> kwValues) {
        expect("(");
        depth++;
        boolean first = true;
        while (!accept(")")) {
            if (!first) {
                expect(",");
                if (accept(")")) {
                    break;
                }
            }
            first = false;
            if (peek().type() == T.NAME && tokens.get(at + 1).type() == T.OP && tokens.get(at + 1).text().equals("=")) {
                kwNames.add(next().text());
                at++;
                kwValues.add(parseCondition());
            } else {
                if (!kwNames.isEmpty()) {
                    throw owner.fail(line, "positional argument after a keyword argument");
                }
                args.add(parseCondition());
            }
        }
        depth--;
    }

    private JinjaParser.Expr parseFilterExpr(JinjaParser.Expr node) {
        while (true) {
            if (accept("|")) {
                String name = expectIdentifier();
                List<JinjaParser.Expr> args = new ArrayList<>();
                List<String> kwNames = new ArrayList<>();
                List<JinjaParser.Expr> kwValues = new ArrayList<>();
                if (peek().type() == T.OP && peek().text().equals("(")) {
                    parseArgs(args, kwNames, kwValues);
                }
                node = new JinjaParser.Filter(node, name, args, kwNames, kwValues, line);
                node = parsePostfix(node);
            } else if (acceptName("is")) {
                boolean negated = acceptName("not");
                String name = expectIdentifier();
                List<JinjaParser.Expr> args = new ArrayList<>();
                if (peek().type() == T.OP && peek().text().equals("(")) {
                    parseArgs(args, new ArrayList<>(), new ArrayList<>());
                } else if ((peek().type() == T.NAME || peek().type() == T.STRING || peek().type() == T.INT
                        || peek().type() == T.FLOAT || peek().type() == T.OP && List.of("[", "{").contains(peek().text()))
                        && !peekName("else") && !peekName("or") && !peekName("and") && !peekName("if")) {
                    if (peekName("is")) {
                        throw owner.fail(line, "you cannot chain multiple tests with is");
                    }
                    args.add(parsePostfix(parsePrimary()));
                }
                node = new JinjaParser.Test(node, name, args, negated, line);
            } else if (peek().type() == T.OP && peek().text().equals("(")) {
                node = parseCall(node);
            } else {
                return node;
            }
        }
    }
}
