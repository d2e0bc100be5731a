package koala4j.tokenizers;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;

/**
 * The settings files of a transformers tokenizer folder, resolved as {@code PreTrainedTokenizerBase._from_pretrained}
 * (transformers 4.57) does before it calls the tokenizer's constructor: tokenizer_config.json (optional), and only
 * when it has no {@code added_tokens_decoder} (folders saved before transformers 4.34) the legacy special_tokens_map.json,
 * added_tokens.json and the {@code added_tokens} of tokenizer.json. Errors name the file and the field.
 *
 * @param specials           special-token field (bos_token, eos_token, ..., then the keys of extra_special_tokens) to
 *                           its token; a field maps to null when the folder sets it to null
 * @param additionalSpecials additional_special_tokens
 * @param addedTokens        added_tokens_decoder: id to token, in file order
 */
record TokenizerFiles(Path folder, Path configFile, ObjectNode config, Map<String, ClipTokenizerFiles.TokenSpec> specials,
                      List<ClipTokenizerFiles.TokenSpec> additionalSpecials,
                      Map<Integer, ClipTokenizerFiles.TokenSpec> addedTokens) {

    static final String CONFIG = "tokenizer_config.json";
    static final String SPECIAL_TOKENS_MAP = "special_tokens_map.json";
    static final String ADDED_TOKENS = "added_tokens.json";
    static final String TOKENIZER_JSON = "tokenizer.json";

    /**
     * @param defaults special-token fields the tokenizer class fills in when the config does not name them
     *                 (LlamaTokenizer: bos {@code <s>}, eos {@code </s>}, unk {@code <unk>}); values may be null
     */
    static TokenizerFiles read(Path folder, Map<String, String> defaults, boolean legacyTokenizerJson) {
        Path configFile = folder.resolve(CONFIG);
        ObjectNode config = Files.isRegularFile(configFile) ? readObject(configFile) : JsonNodeFactory.instance.objectNode();
        Map<String, ClipTokenizerFiles.TokenSpec> specials = new LinkedHashMap<>();
        for (String field : ClipTokenizerFiles.SPECIAL_TOKEN_FIELDS) {
            if (config.has(field)) {
                specials.put(field, tokenSpec(config.get(field), configFile, field, true));
            } else {
                String fallback = defaults.get(field);
                specials.put(field, fallback == null ? null : new ClipTokenizerFiles.TokenSpec(fallback, false, false, false,
                        false, true, configFile, field + " (class default)"));
            }
        }
        List<ClipTokenizerFiles.TokenSpec> additional = tokenList(config.get("additional_special_tokens"), configFile,
                "additional_special_tokens");
        JsonNode extra = config.get("extra_special_tokens");
        if (extra != null && extra.isObject()) {
            // transformers 4.57 _set_model_specific_special_tokens: each key becomes one more special-token attribute
            for (Map.Entry<String, JsonNode> entry : extra.properties()) {
                specials.put(entry.getKey(), tokenSpec(entry.getValue(), configFile,
                        "extra_special_tokens." + entry.getKey(), true));
            }
        } else if (extra != null && extra.isArray()) {
            additional.addAll(tokenList(extra, configFile, "extra_special_tokens"));
        }

        Map<Integer, ClipTokenizerFiles.TokenSpec> added = new LinkedHashMap<>();
        if (config.has("added_tokens_decoder")) {
            JsonNode node = config.get("added_tokens_decoder");
            if (!node.isObject()) {
                throw new TokenizerException(configFile, "added_tokens_decoder is %s, expected an object from id to AddedToken"
                        .formatted(abbreviate(node)));
            }
            for (Map.Entry<String, JsonNode> entry : node.properties()) {
                int id = parseId(entry.getKey(), configFile);
                String field = "added_tokens_decoder[\"" + entry.getKey() + "\"]";
                if (!entry.getValue().isObject()) {
                    throw new TokenizerException(configFile, "%s is %s, expected an AddedToken object {\"content\": ...}"
                            .formatted(field, abbreviate(entry.getValue())));
                }
                added.put(id, tokenSpec(entry.getValue(), configFile, field, false));
            }
        } else {
            Path mapFile = folder.resolve(SPECIAL_TOKENS_MAP);
            if (Files.isRegularFile(mapFile)) {
                for (Map.Entry<String, JsonNode> entry : readObject(mapFile).properties()) {
                    String field = entry.getKey();
                    if (field.equals("additional_special_tokens")) {
                        for (ClipTokenizerFiles.TokenSpec spec : tokenList(entry.getValue(), mapFile, field)) {
                            if (additional.stream().noneMatch(s -> s.content().equals(spec.content()))) {
                                additional.add(spec);
                            }
                        }
                    } else if (specials.containsKey(field)) {
                        specials.put(field, tokenSpec(entry.getValue(), mapFile, field, true));
                    }
                }
            }
            Path addedFile = folder.resolve(ADDED_TOKENS);
            if (Files.isRegularFile(addedFile)) {
                List<String> specialContents = new ArrayList<>();
                specials.values().stream().filter(s -> s != null).forEach(s -> specialContents.add(s.content()));
                additional.forEach(s -> specialContents.add(s.content()));
                for (Map.Entry<String, JsonNode> entry : readObject(addedFile).properties()) {
                    JsonNode id = entry.getValue();
                    if (!id.isIntegralNumber() || !id.canConvertToInt() || id.intValue() < 0) {
                        throw new TokenizerException(addedFile, "token \"%s\" has id %s, expected a non-negative integer"
                                .formatted(entry.getKey(), abbreviate(id)));
                    }
                    boolean special = specialContents.contains(entry.getKey());
                    added.put(id.intValue(), new ClipTokenizerFiles.TokenSpec(entry.getKey(), false, false, false,
                            !special, special, addedFile, entry.getKey()));
                }
            }
            Path tokenizerJson = folder.resolve(TOKENIZER_JSON);
            if (legacyTokenizerJson && Files.isRegularFile(tokenizerJson)) {
                // "allows converting a fast -> slow": tokenizer.json's added_tokens, their special flag ignored
                JsonNode list = readObject(tokenizerJson).get("added_tokens");
                if (list != null && list.isArray()) {
                    for (int i = 0; i < list.size(); i++) {
                        JsonNode token = list.get(i);
                        String field = "added_tokens[" + i + "]";
                        if (!token.isObject() || !token.has("id") || !token.get("id").canConvertToInt()) {
                            throw new TokenizerException(tokenizerJson, "%s is %s, expected {\"id\": int, \"content\": ...}"
                                    .formatted(field, abbreviate(token)));
                        }
                        ClipTokenizerFiles.TokenSpec spec = tokenSpec(token, tokenizerJson, field, false);
                        added.put(token.get("id").intValue(), new ClipTokenizerFiles.TokenSpec(spec.content(),
                                spec.singleWord(), spec.lstrip(), spec.rstrip(), spec.normalized(), false, tokenizerJson, field));
                    }
                }
            }
        }
        return new TokenizerFiles(folder, configFile, config, specials, additional, added);
    }

    // ---------------------------------------------------------------------------------------------------- settings

    String tokenizerClass() {
        return optionalText("tokenizer_class");
    }

    boolean flag(String field, boolean fallback) {
        return flag(config, field, fallback, configFile, null);
    }

    /**
     * {@code object.name} as a boolean, {@code fallback} when it is missing or null; errors name the file and
     * {@code path.name} ({@code name} alone when path is null).
     */
    static boolean flag(JsonNode object, String name, boolean fallback, Path file, String path) {
        JsonNode node = object.get(name);
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (!node.isBoolean()) {
            throw new TokenizerException(file, "%s is %s, expected true or false"
                    .formatted(path == null ? name : path + "." + name, abbreviate(node)));
        }
        return node.asBoolean();
    }

    /** null when the field is absent or null. */
    Boolean optionalFlag(String field) {
        JsonNode node = config.get(field);
        return node == null || node.isNull() ? null : flag(field, false);
    }

    String optionalText(String field) {
        JsonNode node = config.get(field);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isTextual()) {
            throw new TokenizerException(configFile, "%s is %s, expected a string".formatted(field, abbreviate(node)));
        }
        return node.asText();
    }

    /** sp_model_kwargs: only the empty object (no subword sampling) is supported. */
    void requireNoSpModelKwargs() {
        JsonNode node = config.get("sp_model_kwargs");
        if (node != null && !node.isNull() && !(node.isObject() && node.isEmpty())) {
            throw new TokenizerException(configFile, ("sp_model_kwargs is %s, expected {} (sampling options such as "
                    + "enable_sampling make tokenization random and are not supported)").formatted(abbreviate(node)));
        }
    }

    // ---------------------------------------------------------------------------------------------------- parsing

    static ObjectNode readObject(Path file) {
        JsonNode node;
        try {
            node = Json.read(file).node();
        } catch (JsonException e) {
            throw new TokenizerException(file, e.getMessage().startsWith(file + ": ")
                    ? e.getMessage().substring(file.toString().length() + 2) : e.getMessage(), e);
        }
        return (ObjectNode) node;
    }

    /** A token: a string, an AddedToken object ({@code {"content": ...}}, maybe with {@code "__type"}) or null. */
    static ClipTokenizerFiles.TokenSpec tokenSpec(JsonNode node, Path file, String field, boolean special) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return new ClipTokenizerFiles.TokenSpec(node.asText(), false, false, false, !special, special, file, field);
        }
        if (node.isObject()) {
            JsonNode content = node.get("content");
            if (content == null || !content.isTextual()) {
                throw new TokenizerException(file, "%s.content is %s, expected the token text"
                        .formatted(field, content == null ? "missing" : abbreviate(content)));
            }
            return new ClipTokenizerFiles.TokenSpec(content.asText(),
                    flag(node, "single_word", false, file, field), flag(node, "lstrip", false, file, field),
                    flag(node, "rstrip", false, file, field), flag(node, "normalized", !special, file, field),
                    flag(node, "special", special, file, field) || special, file, field);
        }
        throw new TokenizerException(file, "%s is %s, expected a string, an AddedToken object {\"content\": ...} or null"
                .formatted(field, abbreviate(node)));
    }

    static List<ClipTokenizerFiles.TokenSpec> tokenList(JsonNode node, Path file, String field) {
        List<ClipTokenizerFiles.TokenSpec> out = new ArrayList<>();
        if (node == null || node.isNull()) {
            return out;
        }
        if (!node.isArray()) {
            throw new TokenizerException(file, "%s is %s, expected a list of tokens".formatted(field, abbreviate(node)));
        }
        for (int i = 0; i < node.size(); i++) {
            ClipTokenizerFiles.TokenSpec spec = tokenSpec(node.get(i), file, field + "[" + i + "]", true);
            if (spec != null) {
                out.add(spec);
            }
        }
        return out;
    }

    private static int parseId(String key, Path file) {
        try {
            int id = Integer.parseInt(key);
            if (id >= 0) {
                return id;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new TokenizerException(file, "added_tokens_decoder has key \"%s\", expected a non-negative token id"
                .formatted(key));
    }

    static String abbreviate(JsonNode node) {
        String text = node.toString();
        return text.length() <= 80 ? text : text.substring(0, 77) + "...";
    }
}
