package koala4j.tokenizers;

import static koala4j.tokenizers.TokenizerFiles.flag;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a tokenizer folder as published (vocab.json, merges.txt, tokenizer_config.json and, for folders saved
 * before transformers 4.34, special_tokens_map.json / added_tokens.json), following transformers'
 * {@code PreTrainedTokenizerBase._from_pretrained} and {@code CLIPTokenizer.__init__}. Every error names the file,
 * the field or line, what was found and what was expected.
 */
final class ClipTokenizerFiles {

    static final String VOCAB = "vocab.json";
    static final String MERGES = "merges.txt";
    static final String CONFIG = "tokenizer_config.json";
    static final String SPECIAL_TOKENS_MAP = "special_tokens_map.json";
    static final String ADDED_TOKENS = "added_tokens.json";

    /** CLIPTokenizer keeps merges.txt lines 1 .. 48894 ({@code [1 : 49152 - 256 - 2 + 1]}) and ignores the rest. */
    static final int MAX_MERGES = 49152 - 256 - 2;

    /** Vocab ids above this are refused: the decoder table is an array indexed by id. */
    private static final int MAX_TOKEN_ID = (1 << 24) - 1;

    /** PreTrainedTokenizerBase.SPECIAL_TOKENS_ATTRIBUTES, in its order, without additional_special_tokens. */
    static final List<String> SPECIAL_TOKEN_FIELDS =
            List.of("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token");

    /** CLIPTokenizer.__init__ defaults; the other special tokens default to none. */
    private static final Map<String, String> CLIP_DEFAULTS = Map.of(
            "bos_token", "<|startoftext|>", "eos_token", "<|endoftext|>",
            "unk_token", "<|endoftext|>", "pad_token", "<|endoftext|>");

    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** For vocab.json: 49 k distinct keys, which Jackson would otherwise intern one by one. */
    private static final JsonFactory VOCAB_JSON = JsonFactory.builder()
            .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
            .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
            .build();

    /** A token as written in a config file, with where it was written (for error messages). */
    record TokenSpec(String content, boolean singleWord, boolean lstrip, boolean rstrip, boolean normalized,
                     boolean special, Path file, String field) {
    }

    /** What the folder says, before ids are resolved. {@code specials} maps a field to null when it is "none". */
    record Contents(Path folder, Map<String, Integer> vocab, List<String[]> merges, Map<String, TokenSpec> specials,
                    List<TokenSpec> additionalSpecials, Map<Integer, TokenSpec> addedTokens, int modelMaxLength,
                    boolean cleanUpTokenizationSpaces, Utf8Decoder.Errors errors) {
    }

    private ClipTokenizerFiles() {
    }

    static Contents read(Path folder) {
        if (!Files.isDirectory(folder)) {
            throw new TokenizerException(folder, "not a folder; expected a CLIPTokenizer folder holding "
                    + VOCAB + ", " + MERGES + " and " + CONFIG);
        }
        Path configFile = require(folder, CONFIG, "the tokenizer settings written by transformers' save_pretrained");

        JsonNode config = readObject(configFile);
        String tokenizerClass = optionalText(config, "tokenizer_class", configFile);
        if (tokenizerClass != null && !tokenizerClass.equals("CLIPTokenizer") && !tokenizerClass.equals("CLIPTokenizerFast")) {
            throw new TokenizerException(configFile, "tokenizer_class is \"%s\", expected \"CLIPTokenizer\" (or \"CLIPTokenizerFast\")"
                    .formatted(tokenizerClass));
        }
        Map<String, Integer> vocab;
        List<String[]> merges;
        Path tokenizerJson = folder.resolve(TokenizerFiles.TOKENIZER_JSON);
        if (!Files.isRegularFile(folder.resolve(VOCAB)) && !Files.isRegularFile(folder.resolve(MERGES))
                && Files.isRegularFile(tokenizerJson)) {
            // transformers 5 saves a CLIP tokenizer as tokenizer.json alone: the same vocab and merges inside
            JsonNode model = readObject(tokenizerJson).path("model");
            if (!"BPE".equals(model.path("type").asText())) {
                throw new TokenizerException(tokenizerJson, "model.type is %s, expected \"BPE\" for a CLIPTokenizer"
                        .formatted(TokenizerFiles.abbreviate(model.path("type"))));
            }
            vocab = HfBpe.vocab(model, tokenizerJson);
            merges = mergesOf(model, tokenizerJson);
        } else {
            vocab = readVocab(require(folder, VOCAB, "CLIPTokenizer's vocab_file, a JSON object from token to id (or a "
                    + "tokenizer.json holding it)"));
            merges = readMerges(require(folder, MERGES, "CLIPTokenizer's merges_file, '#version' then one 'left right' "
                    + "pair a line"));
        }

        Map<String, TokenSpec> specials = new LinkedHashMap<>();
        for (String field : SPECIAL_TOKEN_FIELDS) {
            if (config.has(field)) {
                specials.put(field, tokenSpec(config.get(field), configFile, field, true));
            } else {
                String fallback = CLIP_DEFAULTS.get(field);
                specials.put(field, fallback == null ? null
                        : new TokenSpec(fallback, false, false, false, true, true, configFile, field + " (CLIPTokenizer default)"));
            }
        }
        List<TokenSpec> additional = tokenList(config.get("additional_special_tokens"), configFile, "additional_special_tokens");

        Map<Integer, TokenSpec> added = new LinkedHashMap<>();
        if (config.has("added_tokens_decoder")) {
            // Saved by transformers >= 4.34: the config is complete and special_tokens_map.json is not read.
            readAddedTokensDecoder(config.get("added_tokens_decoder"), configFile, added);
        } else {
            Path mapFile = folder.resolve(SPECIAL_TOKENS_MAP);
            if (Files.isRegularFile(mapFile)) {
                applySpecialTokensMap(readObject(mapFile), mapFile, specials, additional);
            }
            Path addedFile = folder.resolve(ADDED_TOKENS);
            if (Files.isRegularFile(addedFile)) {
                readAddedTokensFile(addedFile, specials, additional, added);
            }
        }
        return new Contents(folder, vocab, merges, specials, additional, added,
                modelMaxLength(config.get("model_max_length"), configFile),
                optionalBoolean(config, "clean_up_tokenization_spaces", false, configFile),
                errors(optionalText(config, "errors", configFile), configFile));
    }

    private static Path require(Path folder, String name, String what) {
        Path file = folder.resolve(name);
        if (!Files.isRegularFile(file)) {
            throw new TokenizerException(file, "missing file; expected " + what);
        }
        return file;
    }

    /** vocab.json, streamed: it holds about 49 k entries. */
    static Map<String, Integer> readVocab(Path file) {
        Map<String, Integer> vocab = new LinkedHashMap<>(1 << 17);
        try (JsonParser parser = VOCAB_JSON.createParser(file.toFile())) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                throw new TokenizerException(file, "starts with %s, expected a JSON object from token to id"
                        .formatted(parser.currentToken()));
            }
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                String token = parser.currentName();
                JsonToken value = parser.nextToken();
                if (value != JsonToken.VALUE_NUMBER_INT || parser.getNumberType() != JsonParser.NumberType.INT
                        || parser.getIntValue() < 0 || parser.getIntValue() > MAX_TOKEN_ID) {
                    throw new TokenizerException(file, "token \"%s\" has id %s at %s, expected an integer in 0..%d"
                            .formatted(token, parser.getText(), where(parser.currentLocation()), MAX_TOKEN_ID));
                }
                vocab.put(token, parser.getIntValue());
            }
            if (parser.nextToken() != null) {
                throw new TokenizerException(file, "has content after the vocab object at " + where(parser.currentLocation()));
            }
        } catch (JsonProcessingException e) {
            throw new TokenizerException(file, "is not valid JSON: " + e.getOriginalMessage()
                    + " at " + where(e.getLocation()) + "; expected a JSON object from token to id", e);
        } catch (IOException e) {
            throw new TokenizerException(file, "cannot be read: " + e, e);
        }
        if (vocab.isEmpty()) {
            throw new TokenizerException(file, "is an empty object, expected the tokens and their ids");
        }
        return vocab;
    }

    /** merges.txt as {@code read().strip().split("\n")[1:48895]}, each line split on whitespace into a pair. */
    static List<String[]> readMerges(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (CharacterCodingException e) {
            throw new TokenizerException(file, "is not UTF-8 text, expected one 'left right' merge a line", e);
        } catch (IOException e) {
            throw new TokenizerException(file, "cannot be read: " + e, e);
        }
        String[] lines = BasicTokenizer.pythonStrip(text).split("\n", -1);
        // The first line is the "#version: 0.2" header; the reference skips it whatever it says.
        int last = Math.min(lines.length, MAX_MERGES + 1);
        List<String[]> merges = new ArrayList<>(Math.max(0, last - 1));
        for (int i = 1; i < last; i++) {
            String[] pair = splitPair(lines[i]);
            if (pair == null) {
                throw new TokenizerException(file, "line %d is \"%s\" with %d field(s), expected two symbols 'left right'"
                        .formatted(i + 1, lines[i], lines[i].isBlank() ? 0 : lines[i].strip().split("\\s+").length));
            }
            merges.add(pair);
        }
        return merges;
    }

    /** tokenizer.json's {@code model.merges}, kept to the first 48 894 as CLIPTokenizer keeps merges.txt's. */
    private static List<String[]> mergesOf(JsonNode model, Path file) {
        JsonNode node = model.get("merges");
        if (node == null || !node.isArray()) {
            throw new TokenizerException(file, "model.merges is %s, expected a list of merges"
                    .formatted(node == null ? "missing" : TokenizerFiles.abbreviate(node)));
        }
        List<String[]> merges = new ArrayList<>(Math.min(node.size(), MAX_MERGES));
        for (int rank = 0; rank < node.size() && rank < MAX_MERGES; rank++) {
            merges.add(HfBpe.mergePair(node.get(rank), rank, file));
        }
        return merges;
    }

    /** {@code line.split()} when it gives exactly two fields, else null; no regex, merges.txt has 48 894 lines. */
    private static String[] splitPair(String line) {
        int n = line.length();
        int i = 0;
        while (i < n && Character.isWhitespace(line.charAt(i))) {
            i++;
        }
        int leftStart = i;
        while (i < n && !Character.isWhitespace(line.charAt(i))) {
            i++;
        }
        int leftEnd = i;
        while (i < n && Character.isWhitespace(line.charAt(i))) {
            i++;
        }
        int rightStart = i;
        while (i < n && !Character.isWhitespace(line.charAt(i))) {
            i++;
        }
        int rightEnd = i;
        while (i < n && Character.isWhitespace(line.charAt(i))) {
            i++;
        }
        if (leftEnd == leftStart || rightEnd == rightStart || i != n) {
            return null;
        }
        return new String[] {line.substring(leftStart, leftEnd), line.substring(rightStart, rightEnd)};
    }

    private static JsonNode readObject(Path file) {
        JsonNode node;
        try {
            node = MAPPER.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new TokenizerException(file, "is not valid JSON: " + e.getOriginalMessage()
                    + " at " + where(e.getLocation()), e);
        } catch (IOException e) {
            throw new TokenizerException(file, "cannot be read: " + e, e);
        }
        if (node == null || !node.isObject()) {
            throw new TokenizerException(file, "holds %s, expected a JSON object".formatted(node == null ? "nothing" : node.getNodeType()));
        }
        return node;
    }

    /** A special token: a string, an AddedToken object ({@code {"content": ...}}) or null for none. */
    private static TokenSpec tokenSpec(JsonNode node, Path file, String field, boolean special) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return new TokenSpec(node.asText(), false, false, false, !special, special, file, field);
        }
        if (node.isObject()) {
            JsonNode content = node.get("content");
            if (content == null || !content.isTextual() || content.asText().isEmpty()) {
                throw new TokenizerException(file, "%s.content is %s, expected the token text".formatted(field, content));
            }
            return new TokenSpec(content.asText(),
                    flag(node, "single_word", false, file, field), flag(node, "lstrip", false, file, field),
                    flag(node, "rstrip", false, file, field), flag(node, "normalized", true, file, field),
                    flag(node, "special", special, file, field) || special, file, field);
        }
        throw new TokenizerException(file, "%s is %s, expected a string, an AddedToken object {\"content\": ...} or null"
                .formatted(field, node));
    }

    private static List<TokenSpec> tokenList(JsonNode node, Path file, String field) {
        List<TokenSpec> out = new ArrayList<>();
        if (node == null || node.isNull()) {
            return out;
        }
        if (!node.isArray()) {
            throw new TokenizerException(file, "%s is %s, expected a list of tokens".formatted(field, node));
        }
        for (int i = 0; i < node.size(); i++) {
            TokenSpec spec = tokenSpec(node.get(i), file, field + "[" + i + "]", true);
            if (spec != null) {
                out.add(spec);
            }
        }
        return out;
    }

    private static void readAddedTokensDecoder(JsonNode node, Path file, Map<Integer, TokenSpec> added) {
        if (!node.isObject()) {
            throw new TokenizerException(file, "added_tokens_decoder is %s, expected an object from id to AddedToken".formatted(node));
        }
        for (Map.Entry<String, JsonNode> entry : node.properties()) {
            int id = parseId(entry.getKey(), file, "added_tokens_decoder");
            String field = "added_tokens_decoder[\"" + entry.getKey() + "\"]";
            if (!entry.getValue().isObject()) {
                throw new TokenizerException(file, "%s is %s, expected an AddedToken object {\"content\": ...}"
                        .formatted(field, entry.getValue()));
            }
            added.put(id, tokenSpec(entry.getValue(), file, field, false));
        }
    }

    /** Legacy folders: special_tokens_map.json overrides the config's special tokens (as _from_pretrained does). */
    private static void applySpecialTokensMap(JsonNode map, Path file, Map<String, TokenSpec> specials,
                                              List<TokenSpec> additional) {
        for (Map.Entry<String, JsonNode> entry : map.properties()) {
            String field = entry.getKey();
            if (field.equals("additional_special_tokens")) {
                for (TokenSpec spec : tokenList(entry.getValue(), file, field)) {
                    if (additional.stream().noneMatch(s -> s.content().equals(spec.content()))) {
                        additional.add(spec);
                    }
                }
            } else if (SPECIAL_TOKEN_FIELDS.contains(field)) {
                specials.put(field, tokenSpec(entry.getValue(), file, field, true));
            }
        }
    }

    /** Legacy added_tokens.json: {@code {token: id}}, special when it names a special token. */
    private static void readAddedTokensFile(Path file, Map<String, TokenSpec> specials, List<TokenSpec> additional,
                                            Map<Integer, TokenSpec> added) {
        JsonNode node = readObject(file);
        List<String> specialContents = new ArrayList<>();
        specials.values().stream().filter(s -> s != null).forEach(s -> specialContents.add(s.content()));
        additional.forEach(s -> specialContents.add(s.content()));
        for (Map.Entry<String, JsonNode> entry : node.properties()) {
            JsonNode id = entry.getValue();
            if (!id.canConvertToInt() || !id.isIntegralNumber() || id.intValue() < 0) {
                throw new TokenizerException(file, "token \"%s\" has id %s, expected a non-negative integer"
                        .formatted(entry.getKey(), id));
            }
            boolean special = specialContents.contains(entry.getKey());
            added.put(id.intValue(), new TokenSpec(entry.getKey(), false, false, false, !special, special,
                    file, entry.getKey()));
        }
    }

    private static int parseId(String key, Path file, String field) {
        try {
            int id = Integer.parseInt(key);
            if (id >= 0) {
                return id;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new TokenizerException(file, "%s has key \"%s\", expected a non-negative token id".formatted(field, key));
    }

    /** model_max_length; absent or larger than an int means "no limit" (transformers' VERY_LARGE_INTEGER, 1e30). */
    private static int modelMaxLength(JsonNode node, Path file) {
        if (node == null || node.isNull()) {
            return Integer.MAX_VALUE;
        }
        if (node.isNumber()) {
            BigInteger value = node.isIntegralNumber() ? node.bigIntegerValue()
                    : node.doubleValue() == Math.rint(node.doubleValue()) ? node.decimalValue().toBigInteger() : null;
            if (value != null && value.signum() > 0) {
                return value.bitLength() < 32 ? value.intValue() : Integer.MAX_VALUE;
            }
        }
        throw new TokenizerException(file, "model_max_length is %s, expected a positive integer (77 for CLIP)".formatted(node));
    }

    private static Utf8Decoder.Errors errors(String value, Path file) {
        if (value == null) {
            return Utf8Decoder.Errors.REPLACE;
        }
        return switch (value) {
            case "replace" -> Utf8Decoder.Errors.REPLACE;
            case "ignore" -> Utf8Decoder.Errors.IGNORE;
            case "strict" -> Utf8Decoder.Errors.STRICT;
            default -> throw new TokenizerException(file,
                    "errors is \"%s\", expected \"replace\", \"ignore\" or \"strict\"".formatted(value));
        };
    }

    private static String optionalText(JsonNode config, String field, Path file) {
        JsonNode node = config.get(field);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isTextual()) {
            throw new TokenizerException(file, "%s is %s, expected a string".formatted(field, node));
        }
        return node.asText();
    }

    private static boolean optionalBoolean(JsonNode config, String field, boolean fallback, Path file) {
        JsonNode node = config.get(field);
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (!node.isBoolean()) {
            throw new TokenizerException(file, "%s is %s, expected true or false".formatted(field, node));
        }
        return node.asBoolean();
    }


    private static String where(JsonLocation location) {
        return location == null ? "unknown position"
                : "line %d column %d".formatted(location.getLineNr(), location.getColumnNr());
    }

    /** The id-to-token table, {@code {v: k for k, v in encoder.items()}}: a later token with the same id wins. */
    static String[] decoderTable(Map<String, Integer> vocab) {
        int size = 0;
        for (int id : vocab.values()) {
            size = Math.max(size, id + 1);
        }
        String[] table = new String[size];
        vocab.forEach((token, id) -> table[id] = token);
        return table;
    }
}
