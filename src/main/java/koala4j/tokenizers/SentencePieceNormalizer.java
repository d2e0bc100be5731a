package koala4j.tokenizers;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * SentencePiece's {@code normalizer::Normalizer::Normalize} (normalizer.cc, sentencepiece 0.2): rule-based
 * normalisation by the model's {@code precompiled_charsmap} (a Darts double-array trie of UTF-8 prefixes, as
 * {@code nmt_nfkc} writes it; absent for LLaMA's "identity"), user-defined symbols passed through untouched, extra
 * whitespace removed, spaces escaped to U+2581 and the dummy prefix added. Works on UTF-8 bytes like the reference,
 * so every rule applies at the same byte boundaries. Immutable; thread-safe.
 */
final class SentencePieceNormalizer {

    static final String SPACE_SYMBOL = "\u2581";
    private static final byte[] SPACE_SYMBOL_BYTES = SPACE_SYMBOL.getBytes(StandardCharsets.UTF_8);
    private static final byte[] REPLACEMENT = "\uFFFD".getBytes(StandardCharsets.UTF_8);

    private final SentencePieceModel.Normalization spec;
    private final boolean treatWhitespaceAsSuffix;
    private final ByteTrie userDefined;
    private final int[] trieUnits;          // Darts-clone units; null without a charsmap
    private final byte[] normalizedPool;    // NUL-delimited replacement strings the trie values point into

    SentencePieceNormalizer(SentencePieceModel.Normalization spec, boolean treatWhitespaceAsSuffix,
                            List<String> userDefinedSymbols, java.nio.file.Path file, String field) {
        this.spec = spec;
        this.treatWhitespaceAsSuffix = treatWhitespaceAsSuffix;
        this.userDefined = new ByteTrie();
        for (String symbol : userDefinedSymbols) {
            userDefined.add(symbol.getBytes(StandardCharsets.UTF_8));
        }
        byte[] blob = spec.precompiledCharsmap();
        if (blob.length == 0) {
            trieUnits = null;
            normalizedPool = null;
        } else {
            // DecodePrecompiledCharsMap: uint32 LE trie size, the trie units, then the normalized strings.
            if (blob.length < 4) {
                throw new TokenizerException(file, "%s.precompiled_charsmap is %d bytes, expected at least 4"
                        .formatted(field, blob.length));
            }
            long trieSize = (blob[0] & 0xFFL) | (blob[1] & 0xFFL) << 8 | (blob[2] & 0xFFL) << 16 | (blob[3] & 0xFFL) << 24;
            if (trieSize >= blob.length - 4L || trieSize % 4 != 0 || trieSize == 0) {
                throw new TokenizerException(file, ("%s.precompiled_charsmap declares a trie of %d bytes in a blob of %d, "
                        + "expected a positive multiple of 4 smaller than the blob").formatted(field, trieSize, blob.length));
            }
            trieUnits = new int[(int) (trieSize / 4)];
            for (int i = 0; i < trieUnits.length; i++) {
                int at = 4 + 4 * i;
                trieUnits[i] = (blob[at] & 0xFF) | (blob[at + 1] & 0xFF) << 8 | (blob[at + 2] & 0xFF) << 16
                        | (blob[at + 3] & 0xFF) << 24;
            }
            normalizedPool = java.util.Arrays.copyOfRange(blob, 4 + (int) trieSize, blob.length);
        }
    }

    /** The normalized text as UTF-8 bytes. */
    byte[] normalize(String text) {
        byte[] input = utf8(text);
        ByteArrayOutputStream out = new ByteArrayOutputStream(input.length * 3 + 3);
        int at = 0;
        int[] consumed = new int[1];
        if (spec.removeExtraWhitespaces()) {
            while (at < input.length) {
                byte[] p = normalizePrefix(input, at, consumed);
                if (!(p.length == 1 && p[0] == ' ')) {
                    break;
                }
                at += consumed[0];
            }
        }
        if (at == input.length) {
            return new byte[0];                                  // all characters are whitespace
        }
        if (!treatWhitespaceAsSuffix && spec.addDummyPrefix()) {
            addWhitespace(out);
        }
        boolean isPrevSpace = spec.removeExtraWhitespaces();
        while (at < input.length) {
            byte[] sp = normalizePrefix(input, at, consumed);
            int start = 0;
            while (isPrevSpace && start < sp.length && sp[start] == ' ') {
                start++;                                         // heading spaces after a space
            }
            if (start < sp.length) {
                for (int n = start; n < sp.length; n++) {
                    if (spec.escapeWhitespaces() && sp[n] == ' ') {
                        out.writeBytes(SPACE_SYMBOL_BYTES);
                    } else {
                        out.write(sp[n]);
                    }
                }
                isPrevSpace = sp[sp.length - 1] == ' ';
            }
            at += consumed[0];
            if (!spec.removeExtraWhitespaces()) {
                isPrevSpace = false;
            }
        }
        byte[] normalized = out.toByteArray();
        int length = normalized.length;
        if (spec.removeExtraWhitespaces()) {
            byte[] space = spec.escapeWhitespaces() ? SPACE_SYMBOL_BYTES : new byte[] {' '};
            while (endsWith(normalized, length, space)) {
                length -= space.length;                          // trailing spaces
            }
        }
        ByteArrayOutputStream result = new ByteArrayOutputStream(length + 3);
        result.write(normalized, 0, length);
        if (treatWhitespaceAsSuffix && spec.addDummyPrefix()) {
            addWhitespace(result);
        }
        return result.toByteArray();
    }

    private void addWhitespace(ByteArrayOutputStream out) {
        if (spec.escapeWhitespaces()) {
            out.writeBytes(SPACE_SYMBOL_BYTES);
        } else {
            out.write(' ');
        }
    }

    private static boolean endsWith(byte[] s, int length, byte[] suffix) {
        if (length < suffix.length) {
            return false;
        }
        for (int i = 0; i < suffix.length; i++) {
            if (s[length - suffix.length + i] != suffix[i]) {
                return false;
            }
        }
        return true;
    }

    /** NormalizePrefix: the replacement of the longest rule at {@code at}, and in {@code consumed[0]} its input length. */
    private byte[] normalizePrefix(byte[] input, int at, int[] consumed) {
        int userLength = userDefined.longestPrefix(input, at);
        if (userLength > 0) {
            consumed[0] = userLength;
            return java.util.Arrays.copyOfRange(input, at, at + userLength);
        }
        int longestLength = 0;
        int longestValue = 0;
        if (trieUnits != null) {
            // Darts::DoubleArray::commonPrefixSearch, keeping the longest match.
            int nodePos = 0;
            int unit = unit(0);
            nodePos ^= offset(unit);
            for (int i = at; i < input.length; i++) {
                int label = input[i] & 0xFF;
                nodePos ^= label;
                unit = unit(nodePos);
                if ((unit & (0x80000000 | 0xFF)) != label) {
                    break;
                }
                nodePos ^= offset(unit);
                if (((unit >>> 8) & 1) == 1) {
                    longestLength = i + 1 - at;
                    longestValue = unit(nodePos) & 0x7FFFFFFF;
                }
            }
        }
        if (longestLength == 0) {
            int length = validUtf8Length(input, at);
            if (length == 0) {
                consumed[0] = 1;                                 // malformed byte: U+FFFD, one byte consumed
                return REPLACEMENT;
            }
            consumed[0] = length;
            return java.util.Arrays.copyOfRange(input, at, at + length);
        }
        consumed[0] = longestLength;
        if (longestValue >= normalizedPool.length) {
            throw new IllegalStateException("precompiled_charsmap rule points at byte %d of a %d-byte string pool"
                    .formatted(longestValue, normalizedPool.length));
        }
        int end = longestValue;
        while (end < normalizedPool.length && normalizedPool[end] != 0) {
            end++;
        }
        return java.util.Arrays.copyOfRange(normalizedPool, longestValue, end);
    }

    private int unit(int index) {
        if (index < 0 || index >= trieUnits.length) {
            throw new IllegalStateException("precompiled_charsmap trie walks to unit %d of %d: the charsmap is corrupt"
                    .formatted(index, trieUnits.length));
        }
        return trieUnits[index];
    }

    private static int offset(int unit) {
        return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    }

    /** string_util::DecodeUTF8 as IsValidDecodeUTF8 uses it: the length of a valid character at {@code at}, else 0. */
    static int validUtf8Length(byte[] s, int at) {
        int b0 = s[at] & 0xFF;
        int left = s.length - at;
        if (b0 < 0x80) {
            return 1;
        }
        if (left >= 2 && (b0 & 0xE0) == 0xC0) {
            int cp = (b0 & 0x1F) << 6 | (s[at + 1] & 0x3F);
            return trail(s[at + 1]) && cp >= 0x80 ? 2 : 0;
        }
        if (left >= 3 && (b0 & 0xF0) == 0xE0) {
            int cp = (b0 & 0x0F) << 12 | (s[at + 1] & 0x3F) << 6 | (s[at + 2] & 0x3F);
            boolean valid = trail(s[at + 1]) && trail(s[at + 2]) && cp >= 0x800 && (cp < 0xD800 || cp >= 0xE000);
            // U+FFFD itself is valid; IsValidDecodeUTF8 accepts kUnicodeError when three bytes were consumed
            return valid ? 3 : 0;
        }
        if (left >= 4 && (b0 & 0xF8) == 0xF0) {
            int cp = (b0 & 0x07) << 18 | (s[at + 1] & 0x3F) << 12 | (s[at + 2] & 0x3F) << 6 | (s[at + 3] & 0x3F);
            return trail(s[at + 1]) && trail(s[at + 2]) && trail(s[at + 3]) && cp >= 0x10000 && cp <= 0x10FFFF ? 4 : 0;
        }
        return 0;
    }

    private static boolean trail(byte b) {
        return (b & 0xC0) == 0x80;
    }

    /** UTF-8 of a Java string; an unpaired surrogate (not encodable, Python raises) becomes U+FFFD. */
    static byte[] utf8(String text) {
        StringBuilder out = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                if (out != null) {
                    out.append(c).append(text.charAt(i + 1));
                }
                i++;
            } else if (Character.isSurrogate(c)) {
                if (out == null) {
                    out = new StringBuilder(text.length()).append(text, 0, i);
                }
                out.append('\uFFFD');
            } else if (out != null) {
                out.append(c);
            }
        }
        return (out == null ? text : out.toString()).getBytes(StandardCharsets.UTF_8);
    }

    /** Longest-prefix matcher over byte strings (sentencepiece's PrefixMatcher for user-defined symbols). */
    static final class ByteTrie {
        private static final class Node {
            final Map<Byte, Node> children = new HashMap<>();
            boolean terminal;
        }

        private final Node root = new Node();
        private boolean empty = true;

        void add(byte[] word) {
            if (word.length == 0) {
                return;
            }
            Node node = root;
            for (byte b : word) {
                node = node.children.computeIfAbsent(b, k -> new Node());
            }
            node.terminal = true;
            empty = false;
        }

        /** The length of the longest word starting at {@code at}, 0 when none. */
        int longestPrefix(byte[] s, int at) {
            if (empty) {
                return 0;
            }
            Node node = root;
            int best = 0;
            for (int i = at; i < s.length; i++) {
                node = node.children.get(s[i]);
                if (node == null) {
                    break;
                }
                if (node.terminal) {
                    best = i + 1 - at;
                }
            }
            return best;
        }
    }
}
