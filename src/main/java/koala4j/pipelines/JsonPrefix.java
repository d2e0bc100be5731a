package koala4j.pipelines;

/**
 * Whether a byte string is the start of one JSON object (RFC 8259) that a {@link JsonSchema} allows, read a byte at a
 * time: the automaton behind JSON output (OpenAI's {@code response_format} json_object and json_schema, Ollama's
 * {@code format}). Leading whitespace, then the object; strings hold valid UTF-8 (a character may be split between
 * tokens) and no control characters; at most {@link #MAX_DEPTH} nested containers. Whitespace between tokens is
 * what llama.cpp's JSON grammars allow ({@code space ::= | " " | "\n" [ \t]{0,20}}): one space, or a newline and at
 * most {@link #MAX_INDENT} spaces or tabs, so that a model can write compact or indented JSON but not pad it (a
 * known way for a constrained model to loop). Where the schema allows nothing more (no key left,
 * the most items) the separator that would lead nowhere is refused, so every accepted prefix can still be completed.
 * {@link #complete()} once the object has closed; nothing may follow it.
 *
 * <p>Where a value's first byte fits several alternatives of an anyOf, one state takes alternative {@link #fork}
 * (the first unless set) and counts them in {@link #forks}, so that a caller following every path ({@link JsonOutput})
 * can take the others from copies of the state before that byte.
 *
 * <p>Small mutable state: {@link #set} copies it, so every candidate token can be tried from the same state. Not
 * thread-safe.
 */
final class JsonPrefix {

    static final int MAX_DEPTH = 64;
    /** Bytes of a number whose schema bounds it (checked on its text). */
    static final int MAX_NUMBER = 400;
    static final int MAX_INDENT = 20;

    // what the parser expects next, outside a token in progress
    private static final int TOP = 0;                   // whitespace, then the object
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
    private static final int ENUM = 4;

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

    private final JsonSchema root;
    private int expect = TOP;
    private int token = NONE;
    // containers: the schema of each, an object's keys seen so far, an array's items so far (-1 for an object)
    private final JsonSchema[] frames = new JsonSchema[MAX_DEPTH];
    private final long[] seen = new long[MAX_DEPTH];
    private final int[] items = new int[MAX_DEPTH];
    private int depth;
    private boolean object;              // the innermost container is an object
    private int whitespace;
    private JsonSchema value;            // the schema of the value after the current key's colon
    // string state
    private boolean key;
    private JsonSchema stringSchema;
    private int chars;
    private int escape;                  // 0 none, 1 after '\', 2..5: hex digits of \\u still to read + 1
    private int continuation;            // UTF-8 continuation bytes still to read
    private int lowest;                  // the allowed range of the next continuation byte
    private int highest;
    private long candidates;             // keys: properties whose name starts with the key so far; enums: values
    private int position;                // bytes of the key / enum value so far
    // number / literal / enum state
    private int sub;
    private int literal;
    private boolean integer;
    private byte[][] literals;
    // a string with a pattern: the automaton's states (null: no pattern), the code point being read
    private long[] regexStates;
    private long[] regexScratch;
    private int codePoint;
    // uniqueItems: each array frame's items so far (canonical texts, newest first), the item being written
    private final Used[] used = new Used[MAX_DEPTH];
    private boolean capturing;
    private byte[] itemText = new byte[16];
    private int itemLength;
    private boolean duplicate;
    // a number with bounds: its schema and its text so far (null: no bounds)
    private JsonSchema numberSchema;
    private byte[] numberText;
    private int numberLength;
    /** The alternative the next ambiguous value start takes (then back to 0). */
    int fork;
    /** The alternatives at the last ambiguous value start; 0 until one is met (the caller resets it). */
    int forks;

    /** Any JSON object (OpenAI's json_object). */
    JsonPrefix() {
        this(JsonSchema.ANY_OBJECT);
    }

    /** An object {@code root} allows. */
    JsonPrefix(JsonSchema root) {
        this.root = root;
    }

    JsonPrefix copy() {
        return new JsonPrefix(root).set(this);
    }

    /** This state made equal to {@code o}'s (same schema); returns this. */
    JsonPrefix set(JsonPrefix o) {
        expect = o.expect;
        token = o.token;
        System.arraycopy(o.frames, 0, frames, 0, o.depth);
        System.arraycopy(o.seen, 0, seen, 0, o.depth);
        System.arraycopy(o.items, 0, items, 0, o.depth);
        depth = o.depth;
        object = o.object;
        whitespace = o.whitespace;
        value = o.value;
        key = o.key;
        stringSchema = o.stringSchema;
        chars = o.chars;
        escape = o.escape;
        continuation = o.continuation;
        lowest = o.lowest;
        highest = o.highest;
        candidates = o.candidates;
        position = o.position;
        sub = o.sub;
        literal = o.literal;
        integer = o.integer;
        literals = o.literals;
        fork = o.fork;
        forks = o.forks;
        System.arraycopy(o.used, 0, used, 0, o.depth);
        capturing = o.capturing;
        duplicate = o.duplicate;
        itemLength = o.itemLength;
        if (o.capturing) {
            if (itemText.length < o.itemLength) {
                itemText = new byte[o.itemText.length];
            }
            System.arraycopy(o.itemText, 0, itemText, 0, o.itemLength);
        }
        codePoint = o.codePoint;
        if (o.regexStates == null) {
            regexStates = null;
        } else {
            if (regexStates == null || regexStates.length != o.regexStates.length) {
                regexStates = new long[o.regexStates.length];
                regexScratch = new long[o.regexStates.length];
            }
            System.arraycopy(o.regexStates, 0, regexStates, 0, regexStates.length);
        }
        numberSchema = o.numberSchema;
        numberLength = o.numberLength;
        if (numberSchema != null) {
            if (numberText == null) {
                numberText = new byte[MAX_NUMBER];
            }
            System.arraycopy(o.numberText, 0, numberText, 0, numberLength);
        }
        return this;
    }

    /** The same parser state as {@code o} (same schema objects, same progress): one of two paths is redundant. */
    boolean sameAs(JsonPrefix o) {
        if (expect != o.expect || token != o.token || depth != o.depth || object != o.object
                || whitespace != o.whitespace || value != o.value || key != o.key || stringSchema != o.stringSchema
                || chars != o.chars || escape != o.escape || continuation != o.continuation || lowest != o.lowest
                || highest != o.highest || candidates != o.candidates || position != o.position || sub != o.sub
                || literal != o.literal || integer != o.integer || literals != o.literals
                || numberSchema != o.numberSchema || numberLength != o.numberLength || codePoint != o.codePoint
                || !java.util.Arrays.equals(regexStates, o.regexStates)) {
            return false;
        }
        if (numberSchema != null && !java.util.Arrays.equals(numberText, 0, numberLength, o.numberText, 0,
                numberLength)) {
            return false;
        }
        for (int d = 0; d < depth; d++) {
            if (frames[d] != o.frames[d] || seen[d] != o.seen[d] || items[d] != o.items[d] || used[d] != o.used[d]) {
                return false;
            }
        }
        if (capturing != o.capturing || capturing && !java.util.Arrays.equals(itemText, 0, itemLength, o.itemText, 0,
                o.itemLength)) {
            return false;
        }
        return true;
    }

    /** The top-level object has closed. */
    boolean complete() {
        return expect == DONE && token == NONE;
    }

    /** Reads {@code bytes}; false (the state is then undefined) as soon as one cannot continue an allowed object. */
    boolean accept(byte[] bytes) {
        for (byte b : bytes) {
            if (!accept(b & 0xFF)) {
                return false;
            }
        }
        return true;
    }

    boolean accept(int b) {
        if (capturing) {
            if (itemLength == itemText.length) {
                itemText = java.util.Arrays.copyOf(itemText, itemText.length * 2);
            }
            itemText[itemLength++] = (byte) b;
        }
        boolean ok = step(b);
        if (duplicate) {
            duplicate = false;
            return false;
        }
        return ok;
    }

    private boolean step(int b) {
        switch (token) {
            case STRING:
                return string(b);
            case NUMBER:
                if (number(b)) {
                    return numberSchema == null || boundedDigit(b);
                }
                if (!numberComplete() || numberSchema != null
                        && !NumberBounds.within(numberText, numberLength, numberSchema)) {
                    return false;
                }
                token = NONE;
                numberSchema = null;
                numberLength = 0;
                valueDone();
                return structure(b);        // the byte that ended the number
            case LITERAL:
                return literal(b);
            case ENUM:
                return enumValue(b);
            default:
                return structure(b);
        }
    }

    private boolean structure(int b) {
        if (b == ' ' || b == '\t' || b == '\n' || b == '\r') {
            if (expect == DONE) {
                return false;
            }
            // whitespace: 0 none yet, -1 after a lone space, 1 + n after a newline and n spaces or tabs
            if (whitespace == 0) {
                whitespace = b == ' ' ? -1 : b == '\n' ? 1 : 0;
                return whitespace != 0;
            }
            if (whitespace > 0 && (b == ' ' || b == '\t') && whitespace <= MAX_INDENT) {
                whitespace++;
                return true;
            }
            return false;
        }
        whitespace = 0;
        JsonSchema frame = depth == 0 ? null : frames[depth - 1];
        switch (expect) {
            case TOP:
                return startValue(root, b);
            case KEY_OR_CLOSE:
                if (b == '}') {
                    return closeObject(frame);
                }
                return b == '"' && moreKeys(frame) && startKey(frame);
            case KEY:
                return b == '"' && startKey(frame);
            case COLON:
                if (b == ':') {
                    expect = VALUE;
                    return true;
                }
                return false;
            case VALUE:
                if (object) {
                    return startValue(value, b);
                }
                return startItem(frame, b);
            case VALUE_OR_CLOSE:
                if (b == ']') {
                    return closeArray(frame);
                }
                return startItem(frame, b);
            case COMMA_OR_CLOSE:
                if (b == ',') {
                    if (object ? !moreKeys(frame) : items[depth - 1] >= frame.maxItems) {
                        return false;           // nothing could follow the comma
                    }
                    expect = object ? KEY : VALUE;
                    return true;
                }
                if (b == '}' && object) {
                    return closeObject(frame);
                }
                if (b == ']' && !object) {
                    return closeArray(frame);
                }
                return false;
            default:
                return false;
        }
    }

    private boolean startItem(JsonSchema array, int b) {
        int index = items[depth - 1];
        if (index >= array.maxItems) {
            return false;
        }
        items[depth - 1]++;
        if (array.uniqueItems) {
            capturing = true;
            itemText[0] = (byte) b;
            itemLength = 1;
            if (!startValue(array.items, b)) {
                return false;
            }
            if (token == ENUM) {
                // values already in the array are no longer candidates
                for (long rest = candidates; rest != 0; rest &= rest - 1) {
                    int i = Long.numberOfTrailingZeros(rest);
                    if (Used.contains(used[depth - 1], canonical(literals[i], literals[i].length))) {
                        candidates &= ~(1L << i);
                    }
                }
                if (candidates == 0) {
                    return false;
                }
            } else if (token == LITERAL && Used.contains(used[depth - 1],
                    new String(LITERALS[literal], java.nio.charset.StandardCharsets.US_ASCII))) {
                return false;
            }
            if (token == NONE) {
                // a whole value in one byte is not possible for scalars; kept for safety
                return !duplicate;
            }
            return true;
        }
        return startValue(index < array.prefix.length ? array.prefix[index] : array.items, b);
    }

    /** An array's items so far (uniqueItems), as an immutable list shared between copies of the state. */
    private record Used(String item, Used next) {
        static boolean contains(Used list, String item) {
            for (Used u = list; u != null; u = u.next) {
                if (u.item.equals(item)) {
                    return true;
                }
            }
            return false;
        }
    }

    /**
     * A scalar's text as JSON Schema compares values: strings by their characters (escapes decoded), numbers by value
     * (1, 1.0 and 1e0 are one), true / false / null as themselves; null when the text is not one value.
     */
    private static String canonical(byte[] text, int length) {
        int end = length;
        while (end > 0 && (text[end - 1] == ',' || text[end - 1] == ']' || text[end - 1] == '}'
                || text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\n' || text[end - 1] == '\r')) {
            end--;
        }
        try {
            if (end > 0 && (text[0] == '-' || text[0] >= '0' && text[0] <= '9')) {
                // exactly, whatever the exponent (1e999 is no double); past BigDecimal's exponents, as written
                String number = new String(text, 0, end, java.nio.charset.StandardCharsets.US_ASCII);
                try {
                    return "n" + new java.math.BigDecimal(number).stripTrailingZeros();
                } catch (NumberFormatException huge) {
                    return "r" + number.toLowerCase(java.util.Locale.ROOT);
                }
            }
            var node = JsonSchema.JSON.readTree(text, 0, end);
            return node.isTextual() ? "s" + node.asText() : node.toString();
        } catch (java.io.IOException | NumberFormatException e) {
            return null;        // a number ended by a byte that is no separator: the byte itself is refused next
        }
    }

    private boolean startValue(JsonSchema schema, int b) {
        int n = schema.countFor(b);
        if (n == 0) {
            return false;
        }
        JsonSchema s;
        if (n == 1) {
            s = schema.nthFor(b, 0);
        } else {
            forks = n;
            s = schema.nthFor(b, Math.min(fork, n - 1));
            fork = 0;
        }
        if (s.literals != null) {
            long c = 0;
            for (int i = 0; i < s.literals.length; i++) {
                if ((s.literals[i][0] & 0xFF) == b) {
                    c |= 1L << i;
                }
            }
            token = ENUM;
            literals = s.literals;
            candidates = c;
            position = 1;
            return finishEnumIfWhole();
        }
        switch (JsonSchema.typeOfStart(b)) {
            case JsonSchema.OBJECT:
                return open(s, true);
            case JsonSchema.ARRAY:
                return open(s, false);
            case JsonSchema.STRING:
                startString(false, s);
                return true;
            case JsonSchema.NUMBER:
                token = NUMBER;
                integer = (s.types & JsonSchema.NUMBER) == 0;
                sub = b == '-' ? N_MINUS : b == '0' ? N_ZERO : N_INT;
                numberSchema = s.bounded() ? s : null;
                numberLength = 0;
                return numberSchema == null || boundedDigit(b);
            case JsonSchema.BOOLEAN, JsonSchema.NULL:
                token = LITERAL;
                literal = b == 't' ? 0 : b == 'f' ? 1 : 2;
                sub = 1;
                return true;
            default:
                return false;
        }
    }

    private boolean open(JsonSchema s, boolean isObject) {
        if (depth == MAX_DEPTH) {
            return false;
        }
        frames[depth] = s;
        seen[depth] = 0;
        used[depth] = null;
        items[depth] = isObject ? -1 : 0;
        depth++;
        object = isObject;
        expect = isObject ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
        return true;
    }

    private boolean closeObject(JsonSchema s) {
        if ((seen[depth - 1] & s.required) != s.required || keyCount(depth - 1) < s.minProperties) {
            return false;
        }
        return pop();
    }

    /** Keys an object has so far: its frame's item slot counts them down from -1 (a negative slot marks objects). */
    private int keyCount(int d) {
        return -1 - items[d];
    }

    private boolean closeArray(JsonSchema s) {
        if (items[depth - 1] < s.minItems) {
            return false;
        }
        return pop();
    }

    private boolean pop() {
        depth--;
        object = depth > 0 && isObjectFrame(depth - 1);
        valueDone();
        return true;
    }

    /** Whether container {@code d} is an object: objects keep their key bits, arrays their item counts. */
    private boolean isObjectFrame(int d) {
        return items[d] < 0;
    }

    /** A value (or a container) ended: the top-level object closes the document. */
    private void valueDone() {
        expect = depth == 0 ? DONE : COMMA_OR_CLOSE;
        if (capturing && depth > 0 && !object && frames[depth - 1].uniqueItems) {
            // an item of a uniqueItems array is whole: a repeat is refused, else it joins the array's items
            capturing = false;
            String item = canonical(itemText, itemLength);
            if (item != null && Used.contains(used[depth - 1], item)) {
                duplicate = true;
            } else if (item != null) {
                used[depth - 1] = new Used(item, used[depth - 1]);
            }
        }
    }

    private boolean moreKeys(JsonSchema s) {
        long all = s.names.length == 64 ? -1L : (1L << s.names.length) - 1;
        return keyCount(depth - 1) < s.maxProperties && (s.additional != null || (seen[depth - 1] & all) != all);
    }

    private boolean startKey(JsonSchema s) {
        startString(true, s.keyNames != null ? s.keyNames : JsonSchema.ANY);
        long all = s.names.length == 64 ? -1L : (1L << s.names.length) - 1;
        candidates = all;
        position = 0;
        return true;
    }

    private void startString(boolean isKey, JsonSchema s) {
        token = STRING;
        key = isKey;
        stringSchema = s;
        chars = 0;
        escape = 0;
        continuation = 0;
        if (s.pattern != null) {
            regexStates = s.pattern.start();
            regexScratch = new long[regexStates.length];
        } else {
            regexStates = null;
        }
    }

    /** A character of a string value is whole: with a pattern, the text must still be able to match. */
    private boolean patternChar(int cp) {
        return regexStates == null || stringSchema.pattern.step(regexStates, cp, regexScratch);
    }

    /** Part of a character is written: with a pattern, one of the code points it may still become must fit. */
    private boolean patternRange(int lo, int hi) {
        return regexStates == null || stringSchema.pattern.canStep(regexStates, lo, hi);
    }

    private boolean string(int b) {
        if (continuation > 0) {
            if (b < lowest || b > highest) {
                return false;
            }
            continuation--;
            lowest = 0x80;
            highest = 0xBF;
            codePoint = codePoint << 6 | b & 0x3F;
            int rest = 6 * continuation;
            return (continuation > 0 ? patternRange(codePoint << rest, codePoint << rest | (1 << rest) - 1)
                    : patternChar(codePoint)) && keyByte(b);
        }
        if (escape == 1) {
            if (b == 'u') {
                escape = 5;
                codePoint = 0;
                return patternRange(0, 0xFFFF) && keyByte(b);
            }
            escape = 0;
            int cp = switch (b) {
                case '"', '\\', '/' -> b;
                case 'b' -> 8;
                case 'f' -> 12;
                case 'n' -> 10;
                case 'r' -> 13;
                case 't' -> 9;
                default -> -1;
            };
            return cp >= 0 && patternChar(cp) && keyByte(b);
        }
        if (escape > 1) {
            if (!(b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F')) {
                return false;
            }
            codePoint = codePoint << 4 | Character.digit(b, 16);
            escape = escape == 2 ? 0 : escape - 1;
            int rest = 4 * (escape - 1);
            return (escape > 0 ? patternRange(codePoint << rest, codePoint << rest | (1 << rest) - 1)
                    : patternChar(codePoint)) && keyByte(b);
        }
        if (b == '"') {
            return key ? endKey() : endString();
        }
        if (b < 0x20 || !newChar()) {
            return false;
        }
        if (b == '\\') {
            escape = 1;
            return patternRange(0, 0xFFFF) && keyByte(b);
        }
        if (b < 0x80) {
            return patternChar(b) && keyByte(b);
        }
        // UTF-8 lead bytes (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF)
        lowest = 0x80;
        highest = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            continuation = 1;
            codePoint = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            continuation = 2;
            codePoint = b & 0x0F;
            if (b == 0xE0) {
                lowest = 0xA0;
            } else if (b == 0xED) {
                highest = 0x9F;
            }
        } else if (b >= 0xF0 && b <= 0xF4) {
            continuation = 3;
            codePoint = b & 0x07;
            if (b == 0xF0) {
                lowest = 0x90;
            } else if (b == 0xF4) {
                highest = 0x8F;
            }
        } else {
            return false;
        }
        // the code points a character with this first byte can be (RFC 3629's ranges)
        int lo = codePoint << 6 * continuation | (lowest & 0x3F) << 6 * (continuation - 1);
        int hi = codePoint << 6 * continuation | (highest & 0x3F) << 6 * (continuation - 1)
                | (1 << 6 * (continuation - 1)) - 1;
        return patternRange(lo, hi) && keyByte(b);
    }

    /** A character starts: within the string's maxLength. */
    private boolean newChar() {
        return chars++ < stringSchema.maxLength;
    }

    /** A key's byte narrows the properties it can still be; with no other keys allowed, one must remain. */
    private boolean keyByte(int b) {
        if (!key) {
            return true;
        }
        JsonSchema s = frames[depth - 1];
        long c = candidates;
        for (long rest = c; rest != 0; rest &= rest - 1) {
            int i = Long.numberOfTrailingZeros(rest);
            byte[] name = s.names[i];
            if (position >= name.length || (name[position] & 0xFF) != b) {
                c &= ~(1L << i);
            }
        }
        candidates = c;
        position++;
        return s.additional != null || (c & ~seen[depth - 1]) != 0;
    }

    private boolean endKey() {
        JsonSchema s = frames[depth - 1];
        // propertyNames' length and pattern (declared names satisfy them: checked when the schema was compiled)
        if (chars < stringSchema.minLength || regexStates != null && !stringSchema.pattern.matches(regexStates)) {
            return false;
        }
        regexStates = null;
        int match = -1;
        for (long rest = candidates; rest != 0; rest &= rest - 1) {
            int i = Long.numberOfTrailingZeros(rest);
            if (s.names[i].length == position) {
                match = i;
            }
        }
        if (match >= 0) {
            if ((seen[depth - 1] >>> match & 1) != 0) {
                return false;                   // each key once
            }
            seen[depth - 1] |= 1L << match;
            value = s.properties[match];
        } else if (s.additional != null) {
            value = s.additional;
        } else {
            return false;
        }
        items[depth - 1]--;                     // one more key
        token = NONE;
        expect = COLON;
        return true;
    }

    private boolean endString() {
        if (chars < stringSchema.minLength || regexStates != null && !stringSchema.pattern.matches(regexStates)) {
            return false;
        }
        regexStates = null;
        token = NONE;
        valueDone();
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
                if (integer) {
                    return false;
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

    /** A bounded number's byte: no exponent, and the text must still be able to end within the bounds. */
    private boolean boundedDigit(int b) {
        if (b == 'e' || b == 'E' || numberLength == MAX_NUMBER) {
            return false;
        }
        if (numberText == null) {
            numberText = new byte[MAX_NUMBER];
        }
        numberText[numberLength++] = (byte) b;
        return NumberBounds.feasible(numberText, numberLength, numberSchema, integer);
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

    /**
     * An enum / const value: the bytes must stay a prefix of one of the values. A number value ends at the first byte
     * that cannot continue any value (that byte is then read as structure), any other kind with its last byte.
     */
    private boolean enumValue(int b) {
        long c = 0;
        long whole = 0;
        for (long rest = candidates; rest != 0; rest &= rest - 1) {
            int i = Long.numberOfTrailingZeros(rest);
            byte[] v = literals[i];
            if (position < v.length && (v[position] & 0xFF) == b) {
                c |= 1L << i;
            } else if (position == v.length) {
                whole |= 1L << i;
            }
        }
        if (c == 0) {
            if (whole == 0) {
                return false;
            }
            token = NONE;
            valueDone();
            return structure(b);
        }
        candidates = c;
        position++;
        return finishEnumIfWhole();
    }

    /** A self-delimiting value (string, literal, container) that is whole ends the token. */
    private boolean finishEnumIfWhole() {
        for (long rest = candidates; rest != 0; rest &= rest - 1) {
            int i = Long.numberOfTrailingZeros(rest);
            byte[] v = literals[i];
            if (v.length == position && JsonSchema.typeOfStart(v[0] & 0xFF) != JsonSchema.NUMBER) {
                token = NONE;
                valueDone();
                return true;
            }
        }
        return true;
    }
}
