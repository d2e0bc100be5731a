package koala4j.pipelines;

/**
 * Whether a byte string is the start of one JSON object (RFC 8259), read a byte at a time: the automaton behind
 * JSON output mode (OpenAI's {@code response_format: {"type": "json_object"}}, Ollama's {@code format: "json"}).
 * Leading whitespace, then an object whose values may be any JSON value; strings hold valid UTF-8 (a character may
 * be split between tokens) and no control characters; at most {@link #MAX_DEPTH} nested containers and
 * {@link #MAX_WHITESPACE} whitespace bytes in a row, so that a model cannot pad forever. {@link #complete()} once the
 * top-level object has closed; nothing may follow it.
 *
 * <p>Small mutable state (a few ints and a long): {@link #set} copies it, so every candidate token can be tried from
 * the same state. Not thread-safe.
 */
final class JsonPrefix {

    static final int MAX_DEPTH = 64;
    static final int MAX_WHITESPACE = 32;

    // what the parser expects next, outside a token in progress
    private static final int TOP = 0;                   // whitespace, then '{'
    private static final int KEY_OR_CLOSE = 1;          // just after '{'
    private static final int KEY = 2;                   // after ',' in an object
    private static final int COLON = 3;
    private static final int VALUE = 4;
    private static final int VALUE_OR_CLOSE = 5;        // just after '['
    private static final int COMMA_OR_CLOSE = 6;
    private static final int DONE = 7;

    // a token in progress
    private static final int NONE = 0;
    private static final int STRING = 1;
    private static final int NUMBER = 2;
    private static final int LITERAL = 3;

    // number sub-states: what was read last
    private static final int N_MINUS = 0;
    private static final int N_ZERO = 1;
    private static final int N_INT = 2;
    private static final int N_DOT = 3;
    private static final int N_FRAC = 4;
    private static final int N_E = 5;
    private static final int N_E_SIGN = 6;
    private static final int N_EXP = 7;

    private static final byte[][] LITERALS = {"true".getBytes(), "false".getBytes(), "null".getBytes()};

    private int expect = TOP;
    private int token = NONE;
    private long containers;            // bit i: 1 if the container at depth i is an object
    private int depth;
    private int whitespace;
    // string state
    private boolean key;
    private int escape;                 // 0 none, 1 after '\', 2..5 hex digits of \\u still to read (5 = 4 left)
    private int continuation;           // UTF-8 continuation bytes still to read
    private int lowest;                 // the smallest allowed next continuation byte (overlong / surrogate checks)
    private int highest;
    // number / literal state
    private int sub;
    private int literal;

    JsonPrefix copy() {
        return new JsonPrefix().set(this);
    }

    /** This state made equal to {@code o}'s; returns this. */
    JsonPrefix set(JsonPrefix o) {
        expect = o.expect;
        token = o.token;
        containers = o.containers;
        depth = o.depth;
        whitespace = o.whitespace;
        key = o.key;
        escape = o.escape;
        continuation = o.continuation;
        lowest = o.lowest;
        highest = o.highest;
        sub = o.sub;
        literal = o.literal;
        return this;
    }

    /** The top-level object has closed. */
    boolean complete() {
        return expect == DONE && token == NONE;
    }

    /** Reads {@code bytes}; false (the state is then undefined) as soon as one cannot continue a JSON object. */
    boolean accept(byte[] bytes) {
        for (byte b : bytes) {
            if (!accept(b & 0xFF)) {
                return false;
            }
        }
        return true;
    }

    boolean accept(int b) {
        switch (token) {
            case STRING:
                return string(b);
            case NUMBER:
                if (number(b)) {
                    return true;
                }
                if (!numberComplete()) {
                    return false;
                }
                token = NONE;
                valueDone();
                return structure(b);        // the byte that ended the number
            case LITERAL:
                return literal(b);
            default:
                return structure(b);
        }
    }

    private boolean structure(int b) {
        if (b == ' ' || b == '\t' || b == '\n' || b == '\r') {
            return expect != DONE && ++whitespace <= MAX_WHITESPACE;
        }
        whitespace = 0;
        switch (expect) {
            case TOP:
                return b == '{' && open(true);
            case KEY_OR_CLOSE:
                if (b == '}') {
                    return close(true);
                }
                return b == '"' && startString(true);
            case KEY:
                return b == '"' && startString(true);
            case COLON:
                if (b == ':') {
                    expect = VALUE;
                    return true;
                }
                return false;
            case VALUE_OR_CLOSE:
                if (b == ']') {
                    return close(false);
                }
                return value(b);
            case VALUE:
                return value(b);
            case COMMA_OR_CLOSE:
                if (b == ',') {
                    expect = inObject() ? KEY : VALUE;
                    return true;
                }
                if (b == '}' || b == ']') {
                    return close(b == '}');
                }
                return false;
            default:
                return false;
        }
    }

    private boolean value(int b) {
        switch (b) {
            case '{':
                return open(true);
            case '[':
                return open(false);
            case '"':
                return startString(false);
            case '-':
                token = NUMBER;
                sub = N_MINUS;
                return true;
            case 't', 'f', 'n':
                token = LITERAL;
                literal = b == 't' ? 0 : b == 'f' ? 1 : 2;
                sub = 1;
                return true;
            default:
                if (b >= '0' && b <= '9') {
                    token = NUMBER;
                    sub = b == '0' ? N_ZERO : N_INT;
                    return true;
                }
                return false;
        }
    }

    private boolean inObject() {
        return (containers >>> (depth - 1) & 1) == 1;
    }

    private boolean open(boolean object) {
        if (depth == MAX_DEPTH) {
            return false;
        }
        containers = object ? containers | 1L << depth : containers & ~(1L << depth);
        depth++;
        expect = object ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
        return true;
    }

    private boolean close(boolean object) {
        if (depth == 0 || inObject() != object) {
            return false;
        }
        depth--;
        valueDone();
        return true;
    }

    /** A value (or a container) ended: the top-level object closes the document. */
    private void valueDone() {
        expect = depth == 0 ? DONE : COMMA_OR_CLOSE;
    }

    private boolean startString(boolean isKey) {
        token = STRING;
        key = isKey;
        escape = 0;
        continuation = 0;
        return true;
    }

    private boolean string(int b) {
        if (continuation > 0) {
            if (b < lowest || b > highest) {
                return false;
            }
            continuation--;
            lowest = 0x80;
            highest = 0xBF;
            return true;
        }
        if (escape == 1) {
            if (b == 'u') {
                escape = 5;
                return true;
            }
            escape = 0;
            return b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' || b == 't';
        }
        if (escape > 1) {
            if (!(b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F')) {
                return false;
            }
            escape = escape == 2 ? 0 : escape - 1;
            return true;
        }
        if (b == '"') {
            token = NONE;
            if (key) {
                expect = COLON;
            } else {
                valueDone();
            }
            return true;
        }
        if (b == '\\') {
            escape = 1;
            return true;
        }
        if (b < 0x20) {
            return false;
        }
        if (b < 0x80) {
            return true;
        }
        // UTF-8 lead bytes (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF)
        lowest = 0x80;
        highest = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            continuation = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            continuation = 2;
            if (b == 0xE0) {
                lowest = 0xA0;
            } else if (b == 0xED) {
                highest = 0x9F;
            }
        } else if (b >= 0xF0 && b <= 0xF4) {
            continuation = 3;
            if (b == 0xF0) {
                lowest = 0x90;
            } else if (b == 0xF4) {
                highest = 0x8F;
            }
        } else {
            return false;
        }
        return true;
    }

    private boolean number(int b) {
        boolean digit = b >= '0' && b <= '9';
        switch (sub) {
            case N_MINUS:
                if (digit) {
                    sub = b == '0' ? N_ZERO : N_INT;
                    return true;
                }
                return false;
            case N_ZERO, N_INT:
                if (digit && sub == N_INT) {
                    return true;
                }
                if (b == '.') {
                    sub = N_DOT;
                    return true;
                }
                if (b == 'e' || b == 'E') {
                    sub = N_E;
                    return true;
                }
                return false;
            case N_DOT, N_FRAC:
                if (digit) {
                    sub = N_FRAC;
                    return true;
                }
                if (sub == N_FRAC && (b == 'e' || b == 'E')) {
                    sub = N_E;
                    return true;
                }
                return false;
            case N_E:
                if (b == '+' || b == '-') {
                    sub = N_E_SIGN;
                    return true;
                }
                if (digit) {
                    sub = N_EXP;
                    return true;
                }
                return false;
            case N_E_SIGN, N_EXP:
                if (digit) {
                    sub = N_EXP;
                    return true;
                }
                return false;
            default:
                return false;
        }
    }

    private boolean numberComplete() {
        return sub == N_ZERO || sub == N_INT || sub == N_FRAC || sub == N_EXP;
    }

    private boolean literal(int b) {
        byte[] word = LITERALS[literal];
        if (word[sub] != b) {
            return false;
        }
        if (++sub == word.length) {
            token = NONE;
            valueDone();
        }
        return true;
    }
}
