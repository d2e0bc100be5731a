package koala4j.tokenizers;

import static koala4j.tokenizers.TokenizerFiles.flag;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a ByT5 tokenizer folder says (tokenizer_config.json; for folders saved before transformers 4.34 also
 * special_tokens_map.json and added_tokens.json), resolved as transformers'
 * {@code PreTrainedTokenizerBase._from_pretrained} does before it calls {@code ByT5Tokenizer(**init_kwargs)}.
 * Every file is optional: ByT5Tokenizer needs no vocabulary.
 */
final class ByteTokenizerFiles {

    static final String CONFIG = "tokenizer_config.json";
    static final String SPECIAL_TOKENS_MAP = "special_tokens_map.json";
    static final String ADDED_TOKENS = "added_tokens.json";

    /** PreTrainedTokenizerBase.SPECIAL_TOKENS_ATTRIBUTES without additional_special_tokens, in its order. */
    static final List<String> SPECIAL_FIELDS =
            List.of("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token");

    private static final ObjectMapper MAPPER = new ObjectMapper();

    /**
     * A token as a file writes it. {@code object} tells an AddedToken object from a bare string: ByT5Tokenizer turns a
     * bare pad/eos/unk string into an AddedToken that strips spaces on both sides.
     */
    record Spec(String content, boolean singleWord, boolean lstrip, boolean rstrip, boolean normalized, boolean special,
                boolean object) {

        AddedToken at(int id, boolean forceSpecial) {
            return new AddedToken(content, id, singleWord, lstrip, rstrip, normalized, special || forceSpecial);
        }
    }

    /**
     * @param specials   SPECIAL_FIELDS -> token, absent when the files do not set the field, null value when set to null
     * @param additional additional_special_tokens, null when no file sets it
     * @param extraIds   ByT5Tokenizer's extra_ids (125 unless the config says otherwise)
     */
    record Contents(Path folder, Map<String, Spec> specials, List<Spec> additional, int extraIds,
                    Map<Integer, Spec> addedTokensDecoder, boolean cleanUpTokenizationSpaces) {
    }

    private ByteTokenizerFiles() {
    }

    /** {@code first} (null: none) then those of {@code more} whose content it lacks. */
    private static List<Spec> union(List<Spec> first, List<Spec> more) {
        List<Spec> merged = first == null ? new ArrayList<>() : new ArrayList<>(first);
        for (Spec s : more) {
            if (merged.stream().noneMatch(m -> m.content().equals(s.content()))) {
                merged.add(s);
            }
        }
        return merged;
    }

    static Contents read(Path folder) {
        if (!Files.isDirectory(folder)) {
            throw new TokenizerException(folder, "not a folder; expected a model folder (ByT5 tokenizer files are optional)");
        }
        Path configFile = folder.resolve(CONFIG);
        JsonNode config = Files.isRegularFile(configFile) ? readObject(configFile) : MAPPER.createObjectNode();
        JsonNode tokenizerClass = config.get("tokenizer_class");
        if (tokenizerClass != null && !tokenizerClass.isNull()
                && !List.of("ByT5Tokenizer", "ByT5TokenizerFast").contains(tokenizerClass.asText())) {
            throw new TokenizerException(configFile, "tokenizer_class is %s, expected ByT5Tokenizer (a byte-level T5)"
                    .formatted(tokenizerClass));
        }
        Map<String, Spec> specials = new LinkedHashMap<>();
        for (String field : SPECIAL_FIELDS) {
            if (config.has(field)) {
                specials.put(field, spec(config.get(field), configFile, field, true));
            }
        }
        List<Spec> additional = config.has("additional_special_tokens") && !config.get("additional_special_tokens").isNull()
                ? specList(config.get("additional_special_tokens"), configFile, "additional_special_tokens") : null;
        JsonNode extraSpecial = config.get("extra_special_tokens");
        if (extraSpecial != null && extraSpecial.isArray()) {
            // transformers 5 writes the <extra_id_N> tokens here and additional_special_tokens as null
            additional = union(additional, specList(extraSpecial, configFile, "extra_special_tokens"));
        }
        Map<Integer, Spec> added = new LinkedHashMap<>();
        if (config.has("added_tokens_decoder")) {
            // Saved by transformers >= 4.34: the config is complete; a special token named by its text is the
            // AddedToken of the same content in added_tokens_decoder.
            JsonNode node = config.get("added_tokens_decoder");
            if (!node.isObject()) {
                throw new TokenizerException(configFile, "added_tokens_decoder is %s, expected an object from id to AddedToken"
                        .formatted(node));
            }
            Map<String, Spec> byContent = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : node.properties()) {
                String field = "added_tokens_decoder[\"" + e.getKey() + "\"]";
                if (!e.getValue().isObject()) {
                    throw new TokenizerException(configFile, "%s is %s, expected an AddedToken object".formatted(field, e.getValue()));
                }
                Spec s = spec(e.getValue(), configFile, field, false);
                added.put(parseId(e.getKey(), configFile), s);
                byContent.put(s.content(), s);
            }
            specials.replaceAll((field, s) -> s == null ? null : byContent.getOrDefault(s.content(), s));
        } else {
            Path mapFile = folder.resolve(SPECIAL_TOKENS_MAP);
            if (Files.isRegularFile(mapFile)) {
                JsonNode map = readObject(mapFile);
                for (Map.Entry<String, JsonNode> e : map.properties()) {
                    if (e.getKey().equals("additional_special_tokens")) {
                        additional = union(additional, specList(e.getValue(), mapFile, e.getKey()));
                    } else if (SPECIAL_FIELDS.contains(e.getKey())) {
                        specials.put(e.getKey(), spec(e.getValue(), mapFile, e.getKey(), true));
                    }
                }
            }
            Path addedFile = folder.resolve(ADDED_TOKENS);
            if (Files.isRegularFile(addedFile)) {
                List<String> specialContents = new ArrayList<>();
                specials.values().stream().filter(s -> s != null).forEach(s -> specialContents.add(s.content()));
                if (additional != null) {
                    additional.forEach(s -> specialContents.add(s.content()));
                }
                for (Map.Entry<String, JsonNode> e : readObject(addedFile).properties()) {
                    JsonNode id = e.getValue();
                    if (!id.isIntegralNumber() || !id.canConvertToInt() || id.intValue() < 0) {
                        throw new TokenizerException(addedFile, "token \"%s\" has id %s, expected a non-negative integer"
                                .formatted(e.getKey(), id));
                    }
                    boolean special = specialContents.contains(e.getKey());
                    added.put(id.intValue(), new Spec(e.getKey(), false, false, false, !special, special, true));
                }
            }
        }
        JsonNode extra = config.get("extra_ids");
        if (extra != null && !extra.isNull() && (!extra.isIntegralNumber() || extra.intValue() < 0)) {
            throw new TokenizerException(configFile, "extra_ids is %s, expected a non-negative integer".formatted(extra));
        }
        JsonNode cleanUp = config.get("clean_up_tokenization_spaces");
        if (cleanUp != null && !cleanUp.isNull() && !cleanUp.isBoolean()) {
            throw new TokenizerException(configFile, "clean_up_tokenization_spaces is %s, expected true or false".formatted(cleanUp));
        }
        return new Contents(folder, specials, additional, extra == null || extra.isNull() ? 125 : extra.intValue(), added,
                cleanUp != null && cleanUp.asBoolean());
    }

    private static JsonNode readObject(Path file) {
        JsonNode node;
        try {
            node = MAPPER.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new TokenizerException(file, "is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new TokenizerException(file, "cannot be read: " + e, e);
        }
        if (node == null || !node.isObject()) {
            throw new TokenizerException(file, "holds %s, expected a JSON object".formatted(node == null ? "nothing" : node.getNodeType()));
        }
        return node;
    }

    /** A string, an AddedToken object ({@code {"content": ...}}) or null. */
    private static Spec spec(JsonNode node, Path file, String field, boolean special) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return new Spec(node.asText(), false, false, false, !special, special, false);
        }
        if (node.isObject()) {
            JsonNode content = node.get("content");
            if (content == null || !content.isTextual() || content.asText().isEmpty()) {
                throw new TokenizerException(file, "%s.content is %s, expected the token text".formatted(field, content));
            }
            return new Spec(content.asText(), flag(node, "single_word", false, file, field), flag(node, "lstrip", false, file, field),
                    flag(node, "rstrip", false, file, field), flag(node, "normalized", true, file, field),
                    flag(node, "special", special, file, field) || special, true);
        }
        throw new TokenizerException(file, "%s is %s, expected a string, an AddedToken object or null".formatted(field, node));
    }

    private static List<Spec> specList(JsonNode node, Path file, String field) {
        if (!node.isArray()) {
            throw new TokenizerException(file, "%s is %s, expected a list of tokens".formatted(field, node));
        }
        List<Spec> out = new ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            Spec s = spec(node.get(i), file, field + "[" + i + "]", true);
            if (s != null) {
                out.add(s);
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
        throw new TokenizerException(file, "added_tokens_decoder has key \"%s\", expected a non-negative token id".formatted(key));
    }
}
