package koala4j.tokenizers;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The pipeline parts of a {@code tokenizer.json} that LLaMA-family tokenizers use (tokenizers 0.22): normalizers
 * (Sequence, Prepend, Replace with a string pattern, NFC/NFD/NFKC/NFKD, Lowercase, Strip), the Metaspace
 * pre-tokenizer (old {@code add_prefix_space} form and new {@code prepend_scheme} form), decoders (Sequence, Replace,
 * ByteFallback, Fuse, Strip, Metaspace) and the TemplateProcessing post-processor. Anything else is refused with the
 * file and JSON path, never silently ignored.
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

    /** Metaspace: spaces become the replacement, a prefix is prepended per the scheme, optionally split before it. */
    record Metaspace(String replacement, PrependScheme scheme, boolean split) {

        /** The pieces of one split; {@code atOriginalStart}: the split starts at offset 0 of the input text. */
        List<String> preTokenize(String s, boolean atOriginalStart) {
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

    static Metaspace preTokenizer(JsonNode node, Path file, String path) {
        if (node == null || node.isNull()) {
            return null;
        }
        String type = type(node, file, path);
        if (type.equals("Sequence")) {
            JsonNode items = array(node, "pretokenizers", file, path);
            if (items.size() == 1) {
                return preTokenizer(items.get(0), file, path + ".pretokenizers[0]");
            }
            throw unsupported(file, path, "Sequence of " + items.size(), "Metaspace or a Sequence holding only Metaspace");
        }
        if (!type.equals("Metaspace")) {
            throw unsupported(file, path, type, "Metaspace (the pre-tokenizer of SentencePiece-style tokenizers)");
        }
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

    sealed interface Decoder permits DecoderSequence, DecodeReplace, ByteFallback, Fuse, DecodeStrip, DecodeMetaspace {
        List<String> decodeChain(List<String> tokens);
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

    /** {@code <0xNN>} runs become their UTF-8 text; a run that is not valid UTF-8 becomes one U+FFFD per byte. */
    record ByteFallback() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>();
            java.io.ByteArrayOutputStream run = new java.io.ByteArrayOutputStream();
            for (String token : tokens) {
                int b = token.length() == 6 && token.startsWith("<0x") && token.endsWith(">")
                        ? parseHexByte(token.substring(3, 5)) : -1;
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
                Metaspace m = preTokenizer(node, file, path);
                yield new DecodeMetaspace(m.replacement().codePointAt(0), m.scheme());
            }
            default -> throw unsupported(file, path, type, "Sequence, Replace, ByteFallback, Fuse, Strip or Metaspace");
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
        if (!type.equals("TemplateProcessing")) {
            throw unsupported(file, path, type, "TemplateProcessing or null");
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
