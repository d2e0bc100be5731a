package koala4j.tokenizers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;

/**
 * transformers' slow {@code LlamaTokenizer} (models/llama/tokenization_llama.py, transformers 4.57) over a SentencePiece
 * {@code tokenizer.model}: what the original LLaVA code base loads ({@code use_fast=False}) for LLaMA, Vicuna, LLaVA
 * and Ko-LLaVA checkpoints.
 *
 * <p>Encoding: added tokens ({@code <image>}, {@code <im_patch>}, ...) are split out of the raw text first
 * ({@code PreTrainedTokenizer.tokenize}), honouring their lstrip/rstrip/single_word flags; every other part goes through
 * SentencePiece. {@code legacy=True} (the default when tokenizer_config.json does not say, i.e. old checkpoints) encodes
 * each part with the model's dummy prefix, so a part after an added token starts with "▁". {@code legacy=False}
 * switches the model's dummy prefix off, prepends one "▁" to the whole text (when {@code add_prefix_space}) and
 * encodes parts that start with a space behind the unk token so that SentencePiece keeps that space. {@code
 * add_bos_token} (default true) and {@code add_eos_token} (default false) wrap the ids.
 *
 * <p>Decoding: byte pieces are reassembled into UTF-8, "▁" becomes a space, the first token loses its leading space,
 * added tokens are emitted verbatim, special tokens optionally skipped.
 *
 * <p>Immutable after {@link #load}; thread-safe.
 */
public final class LlamaTokenizer implements TextTokenizer {

    static final String MODEL_FILE = "tokenizer.model";
    private static final String SPIECE_UNDERLINE = "\u2581";

    /** LlamaTokenizer.__init__ defaults for the special tokens (pad none). */
    static final Map<String, String> DEFAULT_SPECIALS = Map.of("bos_token", "<s>", "eos_token", "</s>", "unk_token", "<unk>");

    private final Path folder;
    private final SentencePieceProcessor sp;
    private final boolean legacy;
    private final boolean addPrefixSpace;
    private final boolean addBosToken;
    private final boolean addEosToken;
    private final boolean cleanUpTokenizationSpaces;
    private final boolean spacesBetweenSpecialTokens;
    private final String unkTokenText;
    private final int unkTokenLength;
    private final AddedTokenTrie trie;
    private final Map<String, AddedToken> addedByContent = new LinkedHashMap<>();
    private final Map<Integer, AddedToken> addedById = new LinkedHashMap<>();
    private final Set<String> allSpecialTokens = new LinkedHashSet<>();
    private final Set<Integer> allSpecialIds = new HashSet<>();
    private final Set<String> legacyAddedTokens = new HashSet<>();
    private final Map<String, Object> specialTokensMap = new LinkedHashMap<>();
    private final int bosId;
    private final int eosId;
    private final int padId;
    private final int unkId;
    private final int size;

    private LlamaTokenizer(TokenizerFiles files, SentencePieceModel model) {
        folder = files.folder();
        files.requireNoSpModelKwargs();
        Boolean legacyFlag = files.optionalFlag("legacy");
        legacy = legacyFlag == null || legacyFlag;                     // None -> True, with transformers' warning
        addPrefixSpace = files.flag("add_prefix_space", true);
        addBosToken = files.flag("add_bos_token", true);
        addEosToken = files.flag("add_eos_token", false);
        cleanUpTokenizationSpaces = files.flag("clean_up_tokenization_spaces", false);
        spacesBetweenSpecialTokens = files.flag("spaces_between_special_tokens", false);
        if (files.flag("split_special_tokens", false)) {
            throw new TokenizerException(files.configFile(), "split_special_tokens is true, expected false (added tokens "
                    + "are always split out of the text here)");
        }
        // get_spm_processor: legacy keeps the model as is; legacy=False turns add_dummy_prefix off.
        sp = new SentencePieceProcessor(legacy ? model : model.withoutDummyPrefix());

        // PreTrainedTokenizer.__init__: added_tokens_decoder, then the special tokens not yet added (_add_tokens).
        files.addedTokens().forEach((id, spec) -> put(spec, id, spec.special()));
        Set<String> vocab = new HashSet<>();
        for (int i = 0; i < sp.size(); i++) {
            vocab.add(tokenAt(i));
        }
        vocab.addAll(addedByContent.keySet());
        int nextId = vocab.size();
        List<ClipTokenizerFiles.TokenSpec> specialSpecs = new ArrayList<>();
        List<String> additionalContents = new ArrayList<>();
        files.specials().forEach((field, spec) -> {
            if (spec != null) {
                specialTokensMap.put(field, spec.content());
                specialSpecs.add(spec);
            }
        });
        for (ClipTokenizerFiles.TokenSpec spec : files.additionalSpecials()) {
            if (!additionalContents.contains(spec.content())) {
                additionalContents.add(spec.content());
                specialSpecs.add(spec);
            }
        }
        if (!additionalContents.isEmpty()) {
            specialTokensMap.put("additional_special_tokens", List.copyOf(additionalContents));
        }
        for (ClipTokenizerFiles.TokenSpec spec : specialSpecs) {
            if (spec.content().isEmpty() || !allSpecialTokens.add(spec.content())) {
                continue;                                               // _add_tokens skips "" and duplicates
            }
            AddedToken existing = addedByContent.get(spec.content());
            if (existing != null) {
                put(new ClipTokenizerFiles.TokenSpec(existing.content(), existing.singleWord(), existing.lstrip(),
                        existing.rstrip(), existing.normalized(), true, spec.file(), spec.field()), existing.id(), true);
            } else {
                int id = sp.pieceToId(spec.content());
                boolean inVocab = sp.idToPiece(id).equals(spec.content()) && !addedById.containsKey(id);
                put(spec, inVocab ? id : nextId++, true);
            }
        }
        for (String content : allSpecialTokens) {
            allSpecialIds.add(convertTokenToId(content));
        }
        size = nextId;
        trie = new AddedTokenTrie(addedByContent.keySet());
        // _decode: added tokens that are not special, and additional special tokens outside the SentencePiece vocab,
        // are emitted verbatim rather than through convert_tokens_to_string.
        for (String content : addedByContent.keySet()) {
            if (!allSpecialTokens.contains(content)) {
                legacyAddedTokens.add(content);
            }
        }
        for (String content : additionalContents) {
            if (convertTokenToId(content) >= sp.size()) {
                legacyAddedTokens.add(content);
            }
        }
        bosId = specialId(files, "bos_token");
        eosId = specialId(files, "eos_token");
        padId = specialId(files, "pad_token");
        unkId = specialId(files, "unk_token");
        ClipTokenizerFiles.TokenSpec unk = files.specials().get("unk_token");
        unkTokenText = unk == null ? "None" : unk.content();             // str(self.unk_token)
        unkTokenLength = sp.encode(unkTokenText).size();
        if (addBosToken && bosId < 0) {
            throw new TokenizerException(files.configFile(), "add_bos_token is true but bos_token is null, expected a token");
        }
        if (addEosToken && eosId < 0) {
            throw new TokenizerException(files.configFile(), "add_eos_token is true but eos_token is null, expected a token");
        }
    }

    /**
     * Loads a folder holding {@code tokenizer.model} and optionally tokenizer_config.json, special_tokens_map.json and
     * added_tokens.json, as {@code LlamaTokenizer.from_pretrained(folder)} does.
     *
     * @throws TokenizerException naming the file and field when something is missing or malformed
     */
    public static LlamaTokenizer load(Path folder) {
        Path modelFile = folder.resolve(MODEL_FILE);
        if (!Files.isRegularFile(modelFile)) {
            throw new TokenizerException(modelFile, "missing file; expected the SentencePiece model of a LlamaTokenizer");
        }
        return new LlamaTokenizer(TokenizerFiles.read(folder, DEFAULT_SPECIALS, true), SentencePieceModel.read(modelFile));
    }

    private void put(ClipTokenizerFiles.TokenSpec spec, int id, boolean special) {
        AddedToken old = addedById.remove(id);
        if (old != null) {
            addedByContent.remove(old.content());
        }
        AddedToken token = new AddedToken(spec.content(), id, spec.singleWord(), spec.lstrip(), spec.rstrip(),
                spec.normalized(), special);
        addedById.put(id, token);
        addedByContent.put(spec.content(), token);
    }

    private int specialId(TokenizerFiles files, String field) {
        ClipTokenizerFiles.TokenSpec spec = files.specials().get(field);
        return spec == null ? -1 : convertTokenToId(spec.content());
    }

    /** convert_ids_to_tokens for one id: the added token, else the SentencePiece piece. */
    private String tokenAt(int id) {
        AddedToken added = addedById.get(id);
        return added != null ? added.content() : sp.idToPiece(id);
    }

    @Override
    public byte[] tokenBytes(int id) {
        String token = idToToken(id);
        if (addedById.containsKey(id) || allSpecialIds.contains(id)) {
            return token.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        }
        return sp.pieceBytes(token);
    }

    /** _convert_token_to_id_with_added_voc: added tokens first, then piece_to_id (unknown pieces give unk's id). */
    private int convertTokenToId(String token) {
        AddedToken added = addedByContent.get(token);
        return added != null ? added.id() : sp.pieceToId(token);
    }

    // ---------------------------------------------------------------------------------------------------- encoding

    @Override
    public List<String> tokenize(String text) {
        if (legacy || text.isEmpty()) {
            return splitAndTokenize(text);
        }
        text = text.replace(SPIECE_UNDERLINE, " ");
        if (addPrefixSpace) {
            text = SPIECE_UNDERLINE + text;
        }
        List<String> tokens = splitAndTokenize(text);
        if (tokens.size() > 1 && tokens.get(0).equals(SPIECE_UNDERLINE) && allSpecialTokens.contains(tokens.get(1))) {
            tokens = tokens.subList(1, tokens.size());
        }
        return tokens;
    }

    /** PreTrainedTokenizer.tokenize with split_special_tokens=False. */
    private List<String> splitAndTokenize(String text) {
        String[] parts = trie.splitAdded(text, addedByContent);
        List<String> tokens = new ArrayList<>();
        for (String part : parts) {
            if (part.isEmpty()) {
                continue;
            }
            if (addedByContent.containsKey(part)) {
                tokens.add(part);
            } else {
                tokens.addAll(sentencePieceTokenize(part));
            }
        }
        return tokens;
    }

    /** LlamaTokenizer._tokenize. */
    private List<String> sentencePieceTokenize(String text) {
        if (legacy || !(text.startsWith(SPIECE_UNDERLINE) || text.startsWith(" "))) {
            return sp.encode(text);
        }
        // The model's dummy prefix is off, and SentencePiece would drop the leading space: encode behind the unk token.
        List<String> tokens = sp.encode(unkTokenText + text);
        return tokens.size() >= unkTokenLength ? tokens.subList(unkTokenLength, tokens.size()) : tokens;
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        List<String> tokens = tokenize(text);
        int extra = addSpecialTokens ? (addBosToken ? 1 : 0) + (addEosToken ? 1 : 0) : 0;
        int[] ids = new int[tokens.size() + extra];
        int at = 0;
        if (addSpecialTokens && addBosToken) {
            ids[at++] = bosId;
        }
        for (String token : tokens) {
            ids[at++] = convertTokenToId(token);
        }
        if (addSpecialTokens && addEosToken) {
            ids[at] = eosId;
        }
        return ids;
    }

    // ---------------------------------------------------------------------------------------------------- decoding

    /**
     * PreTrainedTokenizer._decode: ids to tokens (special ids dropped when asked), added tokens outside the
     * SentencePiece vocab emitted verbatim, the rest through {@code LlamaTokenizer.convert_tokens_to_string}.
     *
     * @throws IllegalArgumentException for an id neither in the model nor among the added tokens
     */
    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> subTexts = new ArrayList<>();
        List<String> current = new ArrayList<>();
        for (int id : ids) {
            if (skipSpecialTokens && allSpecialIds.contains(id)) {
                continue;
            }
            String token = idToToken(id);
            if (legacyAddedTokens.contains(token)) {
                if (!current.isEmpty()) {
                    String text = tokensToString(current);
                    if (!text.isEmpty()) {
                        subTexts.add(text);
                    }
                    current = new ArrayList<>();
                }
                subTexts.add(token);
            } else {
                current.add(token);
            }
        }
        if (!current.isEmpty()) {
            subTexts.add(tokensToString(current));
        }
        String text = String.join(spacesBetweenSpecialTokens ? " " : "", subTexts);
        return cleanUpTokenizationSpaces ? ClipTokenizer.cleanUpTokenization(text) : text;
    }

    /** LlamaTokenizer.convert_tokens_to_string. */
    private String tokensToString(List<String> tokens) {
        if (tokens.get(0).startsWith(SPIECE_UNDERLINE) && addPrefixSpace) {
            tokens.set(0, tokens.get(0).substring(1));              // the prefix space added when encoding
        }
        StringBuilder out = new StringBuilder();
        List<String> pieces = new ArrayList<>();
        boolean prevIsSpecial = false;
        for (int i = 0; i < tokens.size(); i++) {
            String token = tokens.get(i);
            if (allSpecialTokens.contains(token)) {
                if (!prevIsSpecial && i != 0 && legacy) {
                    out.append(' ');
                }
                out.append(sp.decode(pieces)).append(token);
                prevIsSpecial = true;
                pieces = new ArrayList<>();
            } else {
                if (prevIsSpecial && i == 1 && addPrefixSpace && !token.startsWith(SPIECE_UNDERLINE)) {
                    out.append(' ');
                }
                pieces.add(token);
                prevIsSpecial = false;
            }
        }
        out.append(sp.decode(pieces));
        return out.toString();
    }

    // ---------------------------------------------------------------------------------------------------- lookups

    @Override
    public String idToToken(int id) {
        return tokenAt(id);
    }

    @Override
    public OptionalInt tokenId(String token) {
        AddedToken added = addedByContent.get(token);
        if (added != null) {
            return OptionalInt.of(added.id());
        }
        int id = sp.pieceToId(token);
        return sp.idToPiece(id).equals(token) ? OptionalInt.of(id) : OptionalInt.empty();
    }

    @Override
    public int size() {
        return size;
    }

    /** {@code vocab_size}: the SentencePiece pieces, without added tokens. */
    public int vocabSize() {
        return sp.size();
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
        return allSpecialIds.contains(id);
    }

    @Override
    public Map<String, Object> specialTokensMap() {
        return Collections.unmodifiableMap(specialTokensMap);
    }

    @Override
    public Path folder() {
        return folder;
    }

    /** The {@code legacy} flag in effect (true when tokenizer_config.json leaves it unset). */
    public boolean legacy() {
        return legacy;
    }

    @Override
    public String toString() {
        return "LlamaTokenizer(%s, %d pieces + %d added, legacy=%s, add_bos=%s, add_eos=%s)".formatted(folder,
                sp.size(), addedById.size(), legacy, addBosToken, addEosToken);
    }
}
