package koala4j.tokenizers;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;

/**
 * A fast tokenizer from {@code tokenizer.json} as transformers' {@code PreTrainedTokenizerFast} runs it through the
 * tokenizers library (0.22): added tokens are matched in the raw text (leftmost-longest, with their single_word,
 * lstrip and rstrip flags; {@code normalized} ones in the normalized text), the rest is normalized, pre-tokenized
 * (Metaspace), BPE-encoded ({@link HfBpe}), and the post-processor adds bos/eos. For {@code LlamaTokenizer(Fast)}
 * folders the post-processor is rebuilt from tokenizer_config.json's {@code add_bos_token} / {@code add_eos_token}, as
 * {@code LlamaTokenizerFast.update_post_processor} does. Decoding runs the decoder chain.
 *
 * <p>Immutable after {@link #load}; thread-safe.
 */
public final class HfTokenizer implements TextTokenizer {

    private record Added(String content, int id, boolean singleWord, boolean lstrip, boolean rstrip, boolean normalized,
                         boolean special) {
    }

    private final Path folder;
    private final HfBpe model;
    private final HfComponents.Normalizer normalizer;
    private final HfComponents.PreTokenizer preTokenizer;
    private final HfComponents.Decoder decoder;
    private final List<HfComponents.TemplateItem> template;
    private final Map<String, Added> addedByContent = new LinkedHashMap<>();
    private final Map<Integer, Added> addedById = new LinkedHashMap<>();
    private final List<Added> rawPatterns = new ArrayList<>();
    private final List<Added> normalizedPatterns = new ArrayList<>();
    private final Map<String, Object> specialTokensMap = new LinkedHashMap<>();
    private final Set<Integer> specialIds = new HashSet<>();
    private final boolean cleanUpTokenizationSpaces;
    private final int bosId;
    private final int eosId;
    private final int padId;
    private final int unkId;
    private int size;

    private HfTokenizer(Path folder, ObjectNode json, Path file, TokenizerFiles files) {
        this.folder = folder;
        JsonNode modelNode = json.get("model");
        if (modelNode == null || !modelNode.isObject()) {
            throw new TokenizerException(file, "model is %s, expected the tokenizer model object"
                    .formatted(modelNode == null ? "missing" : TokenizerFiles.abbreviate(modelNode)));
        }
        String type = modelNode.path("type").asText("BPE");
        if (!type.equals("BPE")) {
            throw new TokenizerException(file, "model.type is \"%s\", expected \"BPE\"".formatted(type));
        }
        model = new HfBpe(modelNode, file);
        normalizer = HfComponents.normalizer(json.get("normalizer"), file, "normalizer");
        preTokenizer = HfComponents.preTokenizer(json.get("pre_tokenizer"), file, "pre_tokenizer");
        decoder = HfComponents.decoder(json.get("decoder"), file, "decoder");
        size = model.vocabSize();
        JsonNode added = json.get("added_tokens");
        if (added != null && !added.isNull()) {
            if (!added.isArray()) {
                throw new TokenizerException(file, "added_tokens is %s, expected a list".formatted(TokenizerFiles.abbreviate(added)));
            }
            for (int i = 0; i < added.size(); i++) {
                JsonNode token = added.get(i);
                String field = "added_tokens[" + i + "]";
                if (!token.path("id").canConvertToInt() || !token.path("id").isIntegralNumber()) {
                    throw new TokenizerException(file, "%s.id is %s, expected an integer".formatted(field, token.get("id")));
                }
                ClipTokenizerFiles.TokenSpec spec = TokenizerFiles.tokenSpec(token, file, field, false);
                add(spec, token.get("id").intValue(), spec.special());
            }
        }
        // PreTrainedTokenizerFast.__init__: config added tokens and special tokens the tokenizer.json lacks.
        files.addedTokens().forEach((id, spec) -> {
            if (!addedByContent.containsKey(spec.content())) {
                add(spec, id, spec.special());
            }
        });
        List<String> additional = new ArrayList<>();
        files.specials().forEach((field, spec) -> {
            if (spec != null) {
                specialTokensMap.put(field, spec.content());
                markSpecial(spec);
            }
        });
        for (ClipTokenizerFiles.TokenSpec spec : files.additionalSpecials()) {
            if (!additional.contains(spec.content())) {
                additional.add(spec.content());
                markSpecial(spec);
            }
        }
        if (!additional.isEmpty()) {
            specialTokensMap.put("additional_special_tokens", List.copyOf(additional));
        }
        for (Added token : addedByContent.values()) {
            (token.normalized() ? normalizedPatterns : rawPatterns).add(token);
            if (token.special()) {
                specialIds.add(token.id());
            }
        }
        bosId = specialId(files, "bos_token");
        eosId = specialId(files, "eos_token");
        padId = specialId(files, "pad_token");
        unkId = specialId(files, "unk_token");
        String tokenizerClass = files.tokenizerClass();
        if ("LlamaTokenizer".equals(tokenizerClass) || "LlamaTokenizerFast".equals(tokenizerClass)) {
            boolean addBos = files.flag("add_bos_token", true);
            boolean addEos = files.flag("add_eos_token", false);
            if (addBos && bosId < 0 || addEos && eosId < 0) {
                throw new TokenizerException(files.configFile(), "add_%s_token is true but %s_token is null, expected a token"
                        .formatted(addBos && bosId < 0 ? "bos" : "eos", addBos && bosId < 0 ? "bos" : "eos"));
            }
            List<HfComponents.TemplateItem> items = new ArrayList<>();
            if (addBos) {
                items.add(new HfComponents.TemplateItem(List.of(bosId), false));
            }
            items.add(new HfComponents.TemplateItem(List.of(), true));
            if (addEos) {
                items.add(new HfComponents.TemplateItem(List.of(eosId), false));
            }
            template = List.copyOf(items);
        } else {
            template = HfComponents.template(json.get("post_processor"), file, "post_processor");
        }
        cleanUpTokenizationSpaces = files.flag("clean_up_tokenization_spaces", false);
    }

    /**
     * Loads {@code tokenizer.json} with the folder's tokenizer_config.json / special_tokens_map.json.
     *
     * @throws TokenizerException naming the file and JSON path when something is missing or unsupported
     */
    public static HfTokenizer load(Path folder) {
        Path file = folder.resolve(TokenizerFiles.TOKENIZER_JSON);
        if (!Files.isRegularFile(file)) {
            throw new TokenizerException(file, "missing file; expected a tokenizers-library tokenizer.json");
        }
        ObjectNode json = TokenizerFiles.readObject(file);
        TokenizerFiles files = TokenizerFiles.read(folder, Map.of(), false);
        return new HfTokenizer(folder, json, file, files);
    }

    private void add(ClipTokenizerFiles.TokenSpec spec, int id, boolean special) {
        Added old = addedById.remove(id);
        if (old != null) {
            addedByContent.remove(old.content());
        }
        Added token = new Added(spec.content(), id, spec.singleWord(), spec.lstrip(), spec.rstrip(), spec.normalized(), special);
        addedByContent.put(token.content(), token);
        addedById.put(id, token);
        size = Math.max(size, id + 1);
    }

    private void markSpecial(ClipTokenizerFiles.TokenSpec spec) {
        Added existing = addedByContent.get(spec.content());
        if (existing != null) {
            if (!existing.special()) {
                add(new ClipTokenizerFiles.TokenSpec(existing.content(), existing.singleWord(), existing.lstrip(),
                        existing.rstrip(), existing.normalized(), true, spec.file(), spec.field()), existing.id(), true);
            }
            return;
        }
        Integer id = model.tokenToId(spec.content());
        add(new ClipTokenizerFiles.TokenSpec(spec.content(), false, false, false, false, true, spec.file(), spec.field()),
                id != null ? id : size, true);
    }

    private int specialId(TokenizerFiles files, String field) {
        ClipTokenizerFiles.TokenSpec spec = files.specials().get(field);
        if (spec == null) {
            return -1;
        }
        return tokenId(spec.content()).orElse(-1);
    }

    // ---------------------------------------------------------------------------------------------------- encoding

    /** A part of the input: an added token's id, or text with whether it starts at offset 0 of the input. */
    private record Split(String text, int addedId, boolean atStart) {
    }

    @Override
    public List<String> tokenize(String text) {
        List<String> out = new ArrayList<>();
        for (int id : encode(text, false)) {
            out.add(idToToken(id));
        }
        return out;
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        List<Integer> ids = new ArrayList<>();
        // AddedVocabulary::extract_and_normalize: raw matches, normalize the rest, then normalized matches.
        for (Split raw : findMatches(text, rawPatterns, true)) {
            if (raw.addedId() >= 0) {
                ids.add(raw.addedId());
                continue;
            }
            String normalized = normalizer == null ? raw.text() : normalizer.normalize(raw.text());
            for (Split split : findMatches(normalized, normalizedPatterns, raw.atStart())) {
                if (split.addedId() >= 0) {
                    ids.add(split.addedId());
                } else if (preTokenizer == null) {
                    model.tokenize(split.text(), ids);
                } else {
                    for (String piece : preTokenizer.preTokenize(split.text(), split.atStart())) {
                        model.tokenize(piece, ids);
                    }
                }
            }
        }
        List<Integer> out = ids;
        if (addSpecialTokens && template != null) {
            out = new ArrayList<>(ids.size() + 2);
            for (HfComponents.TemplateItem item : template) {
                if (item.sequence()) {
                    out.addAll(ids);
                } else {
                    out.addAll(item.specialIds());
                }
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** AddedVocabulary::find_matches: leftmost-longest matches, single_word / lstrip / rstrip applied. */
    private List<Split> findMatches(String sentence, List<Added> patterns, boolean atStart) {
        List<Split> splits = new ArrayList<>();
        if (sentence.isEmpty()) {
            return splits;
        }
        int startOffset = 0;
        int at = 0;
        while (at < sentence.length() && !patterns.isEmpty()) {
            Added match = null;
            for (Added p : patterns) {
                if (sentence.startsWith(p.content(), at) && (match == null || p.content().length() > match.content().length())) {
                    match = p;
                }
            }
            if (match == null || match.content().isEmpty()) {
                at++;
                continue;
            }
            int start = at;
            int stop = at + match.content().length();
            at = stop;
            if (match.singleWord()) {
                boolean startSpace = start == 0 || !isWordChar(sentence.codePointBefore(start));
                boolean stopSpace = stop == sentence.length() || !isWordChar(sentence.codePointAt(stop));
                if (!startSpace || !stopSpace) {
                    continue;
                }
            }
            if (match.lstrip()) {
                int newStart = start;
                while (newStart > 0 && Character.isWhitespace(sentence.codePointBefore(newStart))) {
                    newStart -= Character.charCount(sentence.codePointBefore(newStart));
                }
                start = Math.max(newStart, startOffset);
            }
            if (match.rstrip()) {
                while (stop < sentence.length() && Character.isWhitespace(sentence.codePointAt(stop))) {
                    stop += Character.charCount(sentence.codePointAt(stop));
                }
                at = stop;
            }
            if (startOffset < start) {
                splits.add(new Split(sentence.substring(startOffset, start), -1, atStart && startOffset == 0));
            }
            splits.add(new Split(match.content(), match.id(), false));
            startOffset = stop;
        }
        if (startOffset < sentence.length()) {
            splits.add(new Split(sentence.substring(startOffset), -1, atStart && startOffset == 0));
        }
        return splits;
    }

    private static boolean isWordChar(int c) {
        return Character.isLetterOrDigit(c) || c == '_';
    }

    // ---------------------------------------------------------------------------------------------------- decoding

    /** Tokenizer::decode: ids to tokens (unknown ids dropped, special ones when asked), then the decoder chain. */
    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            Added added = addedById.get(id);
            String token = added != null ? added.content() : model.idToToken(id);
            if (token == null || skipSpecialTokens && added != null && added.special()) {
                continue;
            }
            tokens.add(token);
        }
        String text = decoder == null ? String.join(" ", tokens) : String.join("", decoder.decodeChain(tokens));
        return cleanUpTokenizationSpaces ? ClipTokenizer.cleanUpTokenization(text) : text;
    }

    /** A {@code <0xNN>} vocab token under a ByteFallback decoder: a later byte may turn its run into U+FFFDs. */
    @Override
    public boolean openEnded(int id) {
        return decoder != null && HfComponents.hasByteFallback(decoder) && !addedById.containsKey(id)
                && model.idToToken(id) != null && HfComponents.byteToken(model.idToToken(id)) >= 0;
    }

    /**
     * Byte tokens and byte-level tokens map to their bytes directly; any other token is decoded after a stand-in
     * first token, so that a decoder's removal of the text's leading space does not touch it.
     */
    @Override
    public byte[] tokenBytes(int id) {
        String token = idToToken(id);
        if (addedById.containsKey(id) || decoder == null) {
            return token.getBytes(StandardCharsets.UTF_8);
        }
        if (HfComponents.hasByteFallback(decoder) && HfComponents.byteToken(token) >= 0) {
            return new byte[] {(byte) HfComponents.byteToken(token)};
        }
        if (HfComponents.hasByteLevel(decoder)) {
            byte[] mapped = HfComponents.byteLevelBytes(token);
            if (mapped != null) {
                return mapped;
            }
        }
        String text = String.join("", decoder.decodeChain(List.of("a", token)));
        return (text.startsWith("a") ? text.substring(1) : text).getBytes(StandardCharsets.UTF_8);
    }

    // ---------------------------------------------------------------------------------------------------- lookups

    @Override
    public String idToToken(int id) {
        Added added = addedById.get(id);
        String token = added != null ? added.content() : model.idToToken(id);
        if (token == null) {
            throw new IllegalArgumentException("token id %d is neither in %s model.vocab nor an added token"
                    .formatted(id, folder.resolve(TokenizerFiles.TOKENIZER_JSON)));
        }
        return token;
    }

    @Override
    public OptionalInt tokenId(String token) {
        Added added = addedByContent.get(token);
        if (added != null) {
            return OptionalInt.of(added.id());
        }
        Integer id = model.tokenToId(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public OptionalInt bosId() {
        return bosId < 0 ? OptionalInt.empty() : OptionalInt.of(bosId);
    }

    @Override
    public OptionalInt eosId() {
        return eosId < 0 ? OptionalInt.empty() : OptionalInt.of(eosId);
    }

    @Override
    public OptionalInt padId() {
        return padId < 0 ? OptionalInt.empty() : OptionalInt.of(padId);
    }

    @Override
    public OptionalInt unkId() {
        return unkId < 0 ? OptionalInt.empty() : OptionalInt.of(unkId);
    }

    @Override
    public boolean isSpecial(int id) {
        return specialIds.contains(id);
    }

    @Override
    public Map<String, Object> specialTokensMap() {
        return Collections.unmodifiableMap(specialTokensMap);
    }

    @Override
    public Path folder() {
        return folder;
    }

    @Override
    public String toString() {
        return "HfTokenizer(%s, %d tokens, %d added)".formatted(folder, model.vocabSize(), addedById.size());
    }
}
