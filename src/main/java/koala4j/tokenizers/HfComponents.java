package koala4j.tokenizers;

import static koala4j.tokenizers.TokenizerFiles.flag;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The pipeline parts of a {@code tokenizer.json} that LLaMA-family tokenizers use (tokenizers 0.22): normalizers
 * (Sequence, Prepend, Replace with a string pattern, NFC/NFD/NFKC/NFKD, Lowercase, Strip), pre-tokenizers
 * (Metaspace in its old {@code add_prefix_space} and new {@code prepend_scheme} forms for SentencePiece-style
 * tokenizers; Split and ByteLevel for byte-level BPE as LLaMA 3 and GPT-2 use; Sequence), decoders (Sequence,
 * Replace, ByteFallback, Fuse, Strip, Metaspace, ByteLevel) and post-processors (TemplateProcessing, ByteLevel, a
 * Sequence of them). Anything else is refused with the file and JSON path, never silently ignored.
 */
final class HfComponents {

    private HfComponents() {
    }

    // ---------------------------------------------------------------------------------------------------- normalizers

    sealed interface Normalizer permits Sequence, Prepend, Replace, Unicode, Lowercase, Strip {
        String normalize(String s);
    }

    record Sequence(List<Normalizer> normalizers) implements Normalizer {
        @Override
        public String normalize(String s) {
            for (Normalizer n : normalizers) {
                s = n.normalize(s);
            }
            return s;
        }
    }

    /** Prepend: only a non-empty string gets the prefix. */
    record Prepend(String prepend) implements Normalizer {
        @Override
        public String normalize(String s) {
            return s.isEmpty() ? s : prepend + s;
        }
    }

    record Replace(String pattern, String content) implements Normalizer {
        @Override
        public String normalize(String s) {
            return pattern.isEmpty() ? s : s.replace(pattern, content);
        }
    }

    record Unicode(java.text.Normalizer.Form form) implements Normalizer {
        @Override
        public String normalize(String s) {
            return java.text.Normalizer.normalize(s, form);
        }
    }

    record Lowercase() implements Normalizer {
        @Override
        public String normalize(String s) {
            return s.toLowerCase(Locale.ROOT);
        }
    }

    record Strip(boolean left, boolean right) implements Normalizer {
        @Override
        public String normalize(String s) {
            int start = 0;
            int end = s.length();
            while (left && start < end && Character.isWhitespace(s.codePointAt(start))) {
                start += Character.charCount(s.codePointAt(start));
            }
            while (right && end > start && Character.isWhitespace(s.codePointBefore(end))) {
                end -= Character.charCount(s.codePointBefore(end));
            }
            return s.substring(start, end);
        }
    }

    static Normalizer normalizer(JsonNode node, Path file, String path) {
        if (node == null || node.isNull()) {
            return null;
        }
        String type = type(node, file, path);
        return switch (type) {
            case "Sequence" -> {
                List<Normalizer> list = new ArrayList<>();
                JsonNode items = array(node, "normalizers", file, path);
                for (int i = 0; i < items.size(); i++) {
                    list.add(normalizer(items.get(i), file, path + ".normalizers[" + i + "]"));
                }
                yield new Sequence(List.copyOf(list));
            }
            case "Prepend" -> new Prepend(text(node, "prepend", file, path));
            case "Replace" -> new Replace(stringPattern(node, file, path), text(node, "content", file, path));
            case "NFC" -> new Unicode(java.text.Normalizer.Form.NFC);
            case "NFD" -> new Unicode(java.text.Normalizer.Form.NFD);
            case "NFKC" -> new Unicode(java.text.Normalizer.Form.NFKC);
            case "NFKD" -> new Unicode(java.text.Normalizer.Form.NFKD);
            case "Lowercase" -> new Lowercase();
            case "Strip" -> new Strip(node.path("strip_left").asBoolean(true), node.path("strip_right").asBoolean(true));
            default -> throw unsupported(file, path, type, "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase or Strip");
        };
    }

    // ---------------------------------------------------------------------------------------------------- pre-tokenizer

    enum PrependScheme { ALWAYS, FIRST, NEVER }

    /** A pre-tokenizer: the pieces the model then tokenizes one by one. */
    sealed interface PreTokenizer permits Metaspace, Split, ByteLevel, PreTokenizerSequence {
        /** The pieces of one split; {@code atOriginalStart}: the split starts at offset 0 of the input text. */
        List<String> preTokenize(String s, boolean atOriginalStart);
    }

    /** Each pre-tokenizer in turn over every piece of the one before (only the first piece is "at the start"). */
    record PreTokenizerSequence(List<PreTokenizer> items) implements PreTokenizer {
        @Override
        public List<String> preTokenize(String s, boolean atOriginalStart) {
            List<String> pieces = List.of(s);
            for (PreTokenizer item : items) {
                List<String> next = new ArrayList<>();
                for (int i = 0; i < pieces.size(); i++) {
                    next.addAll(item.preTokenize(pieces.get(i), atOriginalStart && i == 0));
                }
                pieces = next;
            }
            return pieces;
        }
    }

    enum SplitBehavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS }

    /**
     * Split: the matches of a pattern (a literal string, or a regex in Oniguruma syntax run as a Java regex with
     * Unicode character classes) and the text between them, combined as {@code behavior} says; {@code invert} swaps
     * which parts are the delimiters. Empty pieces are dropped, as tokenizers does.
     */
    record Split(java.util.regex.Pattern pattern, SplitBehavior behavior, boolean invert) implements PreTokenizer {
        @Override
        public List<String> preTokenize(String s, boolean atOriginalStart) {
            // (start, end, isDelimiter) parts covering s
            List<int[]> parts = new ArrayList<>();
            java.util.regex.Matcher m = pattern.matcher(s);
            int last = 0;
            while (m.find()) {
                if (m.end() == m.start()) {
                    continue;
                }
                if (m.start() > last) {
                    parts.add(new int[] {last, m.start(), invert ? 1 : 0});
                }
                parts.add(new int[] {m.start(), m.end(), invert ? 0 : 1});
                last = m.end();
            }
            if (last < s.length()) {
                parts.add(new int[] {last, s.length(), invert ? 1 : 0});
            }
            // tokenizers' split: a delimiter merges into its neighbour only when that neighbour is not a delimiter too
            List<int[]> kept = new ArrayList<>();
            switch (behavior) {
                case REMOVED -> parts.stream().filter(p -> p[2] == 0).forEach(kept::add);
                case ISOLATED -> kept.addAll(parts);
                case MERGED_WITH_PREVIOUS -> {
                    boolean previousDelimiter = false;
                    for (int[] p : parts) {
                        if (p[2] == 1 && !previousDelimiter && !kept.isEmpty()) {
                            kept.getLast()[1] = p[1];
                        } else {
                            kept.add(p.clone());
                        }
                        previousDelimiter = p[2] == 1;
                    }
                }
                case MERGED_WITH_NEXT -> {
                    boolean nextDelimiter = false;
                    for (int i = parts.size() - 1; i >= 0; i--) {
                        int[] p = parts.get(i);
                        if (p[2] == 1 && !nextDelimiter && !kept.isEmpty()) {
                            kept.getLast()[0] = p[0];
                        } else {
                            kept.add(p.clone());
                        }
                        nextDelimiter = p[2] == 1;
                    }
                    java.util.Collections.reverse(kept);
                }
                case CONTIGUOUS -> {
                    // neighbours of the same kind join (with invert, neighbouring non-delimiter matches do too)
                    for (int i = 0; i < parts.size(); i++) {
                        int[] p = parts.get(i);
                        if (i > 0 && p[2] == parts.get(i - 1)[2]) {
                            kept.getLast()[1] = p[1];
                        } else {
                            kept.add(p.clone());
                        }
                    }
                }
            }
            List<String> out = new ArrayList<>(kept.size());
            for (int[] p : kept) {
                out.add(s.substring(p[0], p[1]));
            }
            return out;
        }
    }

    /** GPT-2's pattern, each match and each run between matches a piece: ByteLevel's split when use_regex is true. */
    static final Split GPT2_SPLIT = new Split(java.util.regex.Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            java.util.regex.Pattern.UNICODE_CHARACTER_CLASS), SplitBehavior.ISOLATED, false);

    /**
     * ByteLevel: a space in front of every split that lacks one (add_prefix_space), GPT-2's split (use_regex), then
     * each UTF-8 byte as its printable stand-in character (GPT-2's bytes_to_unicode).
     */
    record ByteLevel(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
        @Override
        public List<String> preTokenize(String s, boolean atOriginalStart) {
            if (addPrefixSpace && !s.startsWith(" ")) {
                s = " " + s;
            }
            List<String> pieces = useRegex
                    ? GPT2_SPLIT.preTokenize(s, atOriginalStart) : List.of(s);
            List<String> out = new ArrayList<>(pieces.size());
            for (String piece : pieces) {
                byte[] utf8 = piece.getBytes(StandardCharsets.UTF_8);
                char[] chars = new char[utf8.length];
                for (int i = 0; i < utf8.length; i++) {
                    chars[i] = ByteLevelBpe.BYTE_TO_CHAR[utf8[i] & 0xFF];
                }
                out.add(new String(chars));
            }
            return out;
        }
    }

    /** Metaspace: spaces become the replacement, a prefix is prepended per the scheme, optionally split before it. */
    record Metaspace(String replacement, PrependScheme scheme, boolean split) implements PreTokenizer {

        @Override
        public List<String> preTokenize(String s, boolean atOriginalStart) {
            s = s.replace(" ", replacement);
            boolean prepend = switch (scheme) {
                case ALWAYS -> !s.startsWith(replacement);
                case FIRST -> !s.startsWith(replacement) && atOriginalStart;
                case NEVER -> false;
            };
            if (prepend) {
                s = replacement + s;
            }
            if (!split) {
                return List.of(s);
            }
            // SplitDelimiterBehavior::MergedWithNext: each replacement starts a new piece
            List<String> pieces = new ArrayList<>();
            int start = 0;
            for (int i = s.indexOf(replacement, 1); i >= 0; i = s.indexOf(replacement, i + 1)) {
                pieces.add(s.substring(start, i));
                start = i;
            }
            if (start < s.length()) {
                pieces.add(s.substring(start));
            }
            return pieces;
        }
    }

    static PreTokenizer preTokenizer(JsonNode node, Path file, String path) {
        if (node == null || node.isNull()) {
            return null;
        }
        String type = type(node, file, path);
        return switch (type) {
            case "Sequence" -> {
                JsonNode items = array(node, "pretokenizers", file, path);
                List<PreTokenizer> list = new ArrayList<>();
                for (int i = 0; i < items.size(); i++) {
                    list.add(preTokenizer(items.get(i), file, path + ".pretokenizers[" + i + "]"));
                }
                yield list.size() == 1 ? list.getFirst() : new PreTokenizerSequence(List.copyOf(list));
            }
            case "Metaspace" -> metaspace(node, file, path);
            case "ByteLevel" -> new ByteLevel(flag(node, "add_prefix_space", true, file, path),
                    flag(node, "use_regex", true, file, path));
            case "Split" -> split(node, file, path);
            default -> throw unsupported(file, path, type, "Metaspace, ByteLevel, Split or a Sequence of them");
        };
    }

    private static Split split(JsonNode node, Path file, String path) {
        JsonNode pattern = node.get("pattern");
        java.util.regex.Pattern compiled;
        if (pattern != null && pattern.path("String").isTextual()) {
            compiled = java.util.regex.Pattern.compile(java.util.regex.Pattern.quote(pattern.get("String").asText()));
        } else if (pattern != null && pattern.path("Regex").isTextual()) {
            try {
                compiled = java.util.regex.Pattern.compile(pattern.get("Regex").asText(),
                        java.util.regex.Pattern.UNICODE_CHARACTER_CLASS);
            } catch (java.util.regex.PatternSyntaxException e) {
                throw new TokenizerException(file, "%s.pattern.Regex is not a regex Java can run: %s"
                        .formatted(path, e.getDescription()));
            }
        } else {
            throw new TokenizerException(file, "%s.pattern is %s, expected {\"String\": ...} or {\"Regex\": ...}"
                    .formatted(path, pattern == null ? "missing" : TokenizerFiles.abbreviate(pattern)));
        }
        SplitBehavior behavior = switch (text(node, "behavior", file, path)) {
            case "Removed" -> SplitBehavior.REMOVED;
            case "Isolated" -> SplitBehavior.ISOLATED;
            case "MergedWithPrevious" -> SplitBehavior.MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> SplitBehavior.MERGED_WITH_NEXT;
            case "Contiguous" -> SplitBehavior.CONTIGUOUS;
            default -> throw new TokenizerException(file, ("%s.behavior is %s, expected Removed, Isolated, MergedWithPrevious, "
                    + "MergedWithNext or Contiguous").formatted(path, node.get("behavior")));
        };
        return new Split(compiled, behavior, flag(node, "invert", false, file, path));
    }


    private static Metaspace metaspace(JsonNode node, Path file, String path) {
        String replacement = text(node, "replacement", file, path);
        if (replacement.codePointCount(0, replacement.length()) != 1) {
            throw new TokenizerException(file, "%s.replacement is \"%s\", expected one character".formatted(path, replacement));
        }
        PrependScheme scheme;
        if (node.has("prepend_scheme")) {
            scheme = switch (text(node, "prepend_scheme", file, path)) {
                case "always" -> PrependScheme.ALWAYS;
                case "first" -> PrependScheme.FIRST;
                case "never" -> PrependScheme.NEVER;
                default -> throw new TokenizerException(file, "%s.prepend_scheme is %s, expected \"always\", \"first\" or \"never\""
                        .formatted(path, node.get("prepend_scheme")));
            };
        } else {
            // tokenizers < 0.14 wrote add_prefix_space instead
            scheme = node.path("add_prefix_space").asBoolean(true) ? PrependScheme.ALWAYS : PrependScheme.NEVER;
        }
        return new Metaspace(replacement, scheme, node.path("split").asBoolean(true));
    }

    // ---------------------------------------------------------------------------------------------------- decoders

    sealed interface Decoder permits DecoderSequence, DecodeReplace, ByteFallback, Fuse, DecodeStrip, DecodeMetaspace,
            DecodeByteLevel {
        List<String> decodeChain(List<String> tokens);
    }

    /**
     * ByteLevel decoder: every token's stand-in characters back to bytes (a token holding any other character
     * contributes its own UTF-8 bytes), all of them decoded as one text, invalid sequences as U+FFFD
     * (String::from_utf8_lossy).
     */
    record DecodeByteLevel() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
            for (String token : tokens) {
                byte[] mapped = byteLevelBytes(token);
                byte[] out = mapped != null ? mapped : token.getBytes(StandardCharsets.UTF_8);
                bytes.write(out, 0, out.length);
            }
            byte[] all = bytes.toByteArray();
            return List.of(Utf8Decoder.decode(all, all.length, Utf8Decoder.Errors.REPLACE));
        }
    }

    record DecoderSequence(List<Decoder> decoders) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            for (Decoder d : decoders) {
                tokens = d.decodeChain(tokens);
            }
            return tokens;
        }
    }

    record DecodeReplace(String pattern, String content) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            return tokens.stream().map(t -> pattern.isEmpty() ? t : t.replace(pattern, content)).toList();
        }
    }

    /** A byte-level token's bytes (one per stand-in character); null when a character is no stand-in. */
    static byte[] byteLevelBytes(String token) {
        byte[] mapped = new byte[token.length()];
        for (int i = 0; i < token.length(); i++) {
            char c = token.charAt(i);
            int b = c < ByteLevelBpe.CHAR_TO_BYTE.length ? ByteLevelBpe.CHAR_TO_BYTE[c] : -1;
            if (b < 0) {
                return null;
            }
            mapped[i] = (byte) b;
        }
        return mapped;
    }

    /** Whether the decoder, or one in its sequence, is {@link DecodeByteLevel}. */
    static boolean hasByteLevel(Decoder d) {
        return d instanceof DecodeByteLevel
                || d instanceof DecoderSequence seq && seq.decoders().stream().anyMatch(HfComponents::hasByteLevel);
    }

    /** Whether the decoder, or one in its sequence, is {@link ByteFallback}. */
    static boolean hasByteFallback(Decoder d) {
        return d instanceof ByteFallback
                || d instanceof DecoderSequence seq && seq.decoders().stream().anyMatch(HfComponents::hasByteFallback);
    }

    /** A {@code <0xNN>} token's byte, else -1. */
    static int byteToken(String token) {
        return token.length() == 6 && token.startsWith("<0x") && token.endsWith(">")
                ? ByteFallback.parseHexByte(token.substring(3, 5)) : -1;
    }

    /**
     * {@code <0xNN>} runs become their UTF-8 text; a run that is not valid UTF-8 becomes one U+FFFD per byte (so a
     * byte that joins a run can turn the text of the bytes before it into U+FFFD).
     */
    record ByteFallback() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>();
            java.io.ByteArrayOutputStream run = new java.io.ByteArrayOutputStream();
            for (String token : tokens) {
                int b = byteToken(token);
                if (b >= 0) {
                    run.write(b);
                } else {
                    flush(run, out);
                    out.add(token);
                }
            }
            flush(run, out);
            return out;
        }

        private static void flush(java.io.ByteArrayOutputStream run, List<String> out) {
            if (run.size() == 0) {
                return;
            }
            byte[] bytes = run.toByteArray();
            run.reset();
            try {
                out.add(StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                        .decode(java.nio.ByteBuffer.wrap(bytes)).toString());
            } catch (java.nio.charset.CharacterCodingException e) {
                for (int i = 0; i < bytes.length; i++) {
                    out.add("\uFFFD");
                }
            }
        }

        /** Rust's u8::from_str_radix(s, 16) for two characters. */
        private static int parseHexByte(String s) {
            int hi = hex(s.charAt(0));
            int lo = hex(s.charAt(1));
            return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
        }

        private static int hex(char c) {
            return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        }
    }

    record Fuse() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            return List.of(String.join("", tokens));
        }
    }

    /** Strip: up to {@code start} leading and {@code stop} trailing {@code content} characters of every token. */
    record DecodeStrip(int content, int start, int stop) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String token : tokens) {
                int[] chars = token.codePoints().toArray();
                int startCut = 0;
                for (int i = 0; i < Math.min(start, chars.length); i++) {
                    if (chars[i] != content) {
                        break;
                    }
                    startCut = i + 1;
                }
                int stopCut = chars.length;
                for (int i = 0; i < Math.min(stop, chars.length); i++) {
                    int index = chars.length - i - 1;
                    if (chars[index] != content) {
                        break;
                    }
                    stopCut = index;
                }
                out.add(stopCut <= startCut ? "" : new String(chars, startCut, stopCut - startCut));
            }
            return out;
        }
    }

    /** Metaspace decoder: the replacement becomes a space, and disappears from the first token unless scheme never. */
    record DecodeMetaspace(int replacement, PrependScheme scheme) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (int i = 0; i < tokens.size(); i++) {
                StringBuilder sb = new StringBuilder();
                boolean first = i == 0;
                tokens.get(i).codePoints().forEach(c -> {
                    if (c == replacement) {
                        if (!(first && scheme != PrependScheme.NEVER)) {
                            sb.append(' ');
                        }
                    } else {
                        sb.appendCodePoint(c);
                    }
                });
                out.add(sb.toString());
            }
            return out;
        }
    }

    static Decoder decoder(JsonNode node, Path file, String path) {
        if (node == null || node.isNull()) {
            return null;
        }
        String type = type(node, file, path);
        return switch (type) {
            case "Sequence" -> {
                List<Decoder> list = new ArrayList<>();
                JsonNode items = array(node, "decoders", file, path);
                for (int i = 0; i < items.size(); i++) {
                    list.add(decoder(items.get(i), file, path + ".decoders[" + i + "]"));
                }
                yield new DecoderSequence(List.copyOf(list));
            }
            case "Replace" -> new DecodeReplace(stringPattern(node, file, path), text(node, "content", file, path));
            case "ByteFallback" -> new ByteFallback();
            case "Fuse" -> new Fuse();
            case "Strip" -> {
                String content = text(node, "content", file, path);
                if (content.codePointCount(0, content.length()) != 1) {
                    throw new TokenizerException(file, "%s.content is \"%s\", expected one character".formatted(path, content));
                }
                yield new DecodeStrip(content.codePointAt(0), node.path("start").asInt(0), node.path("stop").asInt(0));
            }
            case "Metaspace" -> {
                Metaspace m = metaspace(node, file, path);
                yield new DecodeMetaspace(m.replacement().codePointAt(0), m.scheme());
            }
            case "ByteLevel" -> new DecodeByteLevel();
            default -> throw unsupported(file, path, type, "Sequence, Replace, ByteFallback, Fuse, Strip, Metaspace or ByteLevel");
        };
    }

    // ---------------------------------------------------------------------------------------------------- post-processor

    /** One item of a TemplateProcessing template: a special token's ids, or the sequence. */
    record TemplateItem(List<Integer> specialIds, boolean sequence) {
    }

    static List<TemplateItem> template(JsonNode node, Path file, String path) {
        if (node == null || node.isNull()) {
            return null;
        }
        String type = type(node, file, path);
        if (type.equals("ByteLevel")) {
            return null;                                  // offsets only: no ids added
        }
        if (type.equals("Sequence")) {
            JsonNode items = array(node, "processors", file, path);
            List<TemplateItem> found = null;
            for (int i = 0; i < items.size(); i++) {
                List<TemplateItem> t = template(items.get(i), file, path + ".processors[" + i + "]");
                if (t != null && found != null) {
                    throw new TokenizerException(file, "%s holds two TemplateProcessing processors, expected at most one"
                            .formatted(path));
                }
                found = t != null ? t : found;
            }
            return found;
        }
        if (!type.equals("TemplateProcessing")) {
            throw unsupported(file, path, type, "TemplateProcessing, ByteLevel, a Sequence of them or null");
        }
        JsonNode single = array(node, "single", file, path);
        JsonNode specials = node.get("special_tokens");
        List<TemplateItem> items = new ArrayList<>();
        for (int i = 0; i < single.size(); i++) {
            JsonNode item = single.get(i);
            String itemPath = path + ".single[" + i + "]";
            if (item.has("Sequence")) {
                items.add(new TemplateItem(List.of(), true));
            } else if (item.has("SpecialToken")) {
                String id = item.get("SpecialToken").path("id").asText();
                JsonNode special = specials == null ? null : specials.get(id);
                if (special == null || !special.path("ids").isArray()) {
                    throw new TokenizerException(file, "%s names special token \"%s\", which %s.special_tokens does not define"
                            .formatted(itemPath, id, path));
                }
                List<Integer> ids = new ArrayList<>();
                special.get("ids").forEach(n -> ids.add(n.intValue()));
                items.add(new TemplateItem(List.copyOf(ids), false));
            } else {
                throw new TokenizerException(file, "%s is %s, expected {\"SpecialToken\": ...} or {\"Sequence\": ...}"
                        .formatted(itemPath, TokenizerFiles.abbreviate(item)));
            }
        }
        return List.copyOf(items);
    }

    // ---------------------------------------------------------------------------------------------------- helpers

    private static String type(JsonNode node, Path file, String path) {
        JsonNode type = node.get("type");
        if (type == null || !type.isTextual()) {
            throw new TokenizerException(file, "%s.type is %s, expected a component type name"
                    .formatted(path, type == null ? "missing" : type));
        }
        return type.asText();
    }

    private static String stringPattern(JsonNode node, Path file, String path) {
        JsonNode pattern = node.get("pattern");
        if (pattern != null && pattern.has("String") && pattern.get("String").isTextual()) {
            return pattern.get("String").asText();
        }
        throw new TokenizerException(file, "%s.pattern is %s, expected {\"String\": ...} (Regex patterns are not supported)"
                .formatted(path, pattern == null ? "missing" : TokenizerFiles.abbreviate(pattern)));
    }

    private static String text(JsonNode node, String field, Path file, String path) {
        JsonNode value = node.get(field);
        if (value == null || !value.isTextual()) {
            throw new TokenizerException(file, "%s.%s is %s, expected a string"
                    .formatted(path, field, value == null ? "missing" : TokenizerFiles.abbreviate(value)));
        }
        return value.asText();
    }

    private static JsonNode array(JsonNode node, String field, Path file, String path) {
        JsonNode value = node.get(field);
        if (value == null || !value.isArray()) {
            throw new TokenizerException(file, "%s.%s is %s, expected a list"
                    .formatted(path, field, value == null ? "missing" : TokenizerFiles.abbreviate(value)));
        }
        return value;
    }

    private static TokenizerException unsupported(Path file, String path, String type, String expected) {
        return new TokenizerException(file, "%s.type is \"%s\", expected %s".formatted(path, type, expected));
    }
}
