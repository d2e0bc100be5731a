package koala4j.tokenizers;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * CLIP's byte-level BPE tokenizer, token for token as transformers' slow {@code CLIPTokenizer}
 * (models/clip/tokenization_clip.py, transformers 4.57) without {@code ftfy} installed, which is what diffusers
 * runs for SD 1.x/2.x and for both SDXL text encoders.
 *
 * <p>Per prompt: (1) split out added tokens ({@code <|startoftext|>}, {@code <|endoftext|>}, and {@code "!"} for
 * SDXL's tokenizer_2, whose pad token is an added token) as {@code PreTrainedTokenizer.tokenize} does;
 * (2) clean each remaining piece with {@link BasicTokenizer} (control characters dropped, whitespace collapsed,
 * CJK ideographs spaced, NFC, lower case); (3) cut it with CLIP's regex; (4) byte-level BPE each match
 * ({@link ByteLevelBpe}); (5) map tokens to ids, added tokens first, then vocab.json, else the unk token.
 *
 * <p>Immutable after {@link #load}; every method is thread-safe (the per-word BPE cache is concurrent).
 */
public final class ClipTokenizer implements Tokenizer {

    /** CLIPTokenizer's {@code self.pat} (with {@code re.IGNORECASE}). */
    private static final Pattern PAT = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);

    /** Input ids and attention mask, as {@code tokenizer(text, padding=..., truncation=..., max_length=...)}. */
    public record Encoding(int[] ids, int[] attentionMask) {
    }

    private final Path folder;
    private final ByteLevelBpe bpe;
    private final AddedTokenTrie trie;
    private final Map<String, AddedToken> addedByContent = new LinkedHashMap<>();
    private final Map<Integer, AddedToken> addedById = new LinkedHashMap<>();
    private final String[] vocabDecoder;
    private final int bosId;
    private final int eosId;
    private final int padId;                       // -1 when the folder sets pad_token to null
    private final int unkId;                       // -1 when the folder sets unk_token to null
    private final int maxLength;
    private final Set<Integer> specialIds = new HashSet<>();
    private final Set<String> legacyAddedTokens = new HashSet<>();
    private final boolean cleanUpTokenizationSpaces;
    private final Utf8Decoder.Errors errors;

    private ClipTokenizer(ClipTokenizerFiles.Contents files) {
        folder = files.folder();
        Map<String, Integer> vocab = files.vocab();
        // PreTrainedTokenizer.__init__: added_tokens_decoder first, then every special token not yet there,
        // under its vocab id (_add_tokens). A special token outside the vocab would get a new id past the
        // text encoder's embedding table, so it is refused here instead.
        files.addedTokens().forEach((id, spec) -> addAdded(spec, id));
        Map<String, AddedToken> specials = new LinkedHashMap<>();
        List<ClipTokenizerFiles.TokenSpec> specialSpecs = new ArrayList<>();
        files.specials().forEach((field, spec) -> {
            if (spec != null) {
                specialSpecs.add(spec);
            }
        });
        specialSpecs.addAll(files.additionalSpecials());
        for (ClipTokenizerFiles.TokenSpec spec : specialSpecs) {
            AddedToken token = addedByContent.get(spec.content());
            if (token == null) {
                Integer id = vocab.get(spec.content());
                if (id == null) {
                    throw new TokenizerException(spec.file(), ("%s \"%s\" is neither in %s nor in added_tokens_decoder; "
                            + "expected a token the text encoder has an embedding for")
                            .formatted(spec.field(), spec.content(), ClipTokenizerFiles.VOCAB));
                }
                token = addAdded(spec, id);
            }
            specials.put(spec.content(), token);
            specialIds.add(token.id());
        }
        bosId = requiredSpecial(files, "bos_token").id();
        eosId = requiredSpecial(files, "eos_token").id();
        ClipTokenizerFiles.TokenSpec pad = files.specials().get("pad_token");
        padId = pad == null ? -1 : addedByContent.get(pad.content()).id();
        ClipTokenizerFiles.TokenSpec unk = files.specials().get("unk_token");
        // _convert_token_to_id: self.encoder.get(token, self.encoder.get(self.unk_token)), the vocab's id of unk.
        unkId = unk == null ? -1 : vocab.getOrDefault(unk.content(), addedByContent.get(unk.content()).id());

        // _decode: added tokens that are not special are emitted verbatim, not byte-decoded.
        for (String content : addedByContent.keySet()) {
            if (!specials.containsKey(content)) {
                legacyAddedTokens.add(content);
            }
        }
        for (ClipTokenizerFiles.TokenSpec spec : files.additionalSpecials()) {
            if (addedByContent.get(spec.content()).id() >= vocab.size()) {
                legacyAddedTokens.add(spec.content());
            }
        }

        vocabDecoder = ClipTokenizerFiles.decoderTable(vocab);
        Map<String, Integer> addedIds = new LinkedHashMap<>();
        addedByContent.forEach((content, token) -> addedIds.put(content, token.id()));
        bpe = new ByteLevelBpe(vocab, vocabDecoder, files.merges(), addedIds, unkId);
        trie = new AddedTokenTrie(addedByContent.keySet());
        maxLength = files.modelMaxLength();
        cleanUpTokenizationSpaces = files.cleanUpTokenizationSpaces();
        errors = files.errors();
    }

    /**
     * Loads a tokenizer folder as published ({@code tokenizer/} or {@code tokenizer_2/} of a diffusers pipeline):
     * vocab.json, merges.txt and tokenizer_config.json, plus special_tokens_map.json and added_tokens.json for
     * folders saved before transformers 4.34 (no {@code added_tokens_decoder} in the config). Missing settings take
     * CLIPTokenizer's defaults: bos {@code <|startoftext|>}, eos, unk and pad {@code <|endoftext|>}, no length limit.
     * {@code do_lower_case} is ignored, as CLIPTokenizer ignores it: the text is always lower-cased.
     *
     * @throws TokenizerException naming the file, field or line when something is missing or malformed
     */
    public static ClipTokenizer load(Path folder) {
        return new ClipTokenizer(ClipTokenizerFiles.read(folder));
    }

    public int bosId() {
        return bosId;
    }

    public int eosId() {
        return eosId;
    }

    /** @throws IllegalStateException when the folder sets {@code pad_token} to null */
    public int padId() {
        if (padId < 0) {
            throw new IllegalStateException(folder.resolve(ClipTokenizerFiles.CONFIG) + " sets no pad_token");
        }
        return padId;
    }

    /** {@code model_max_length} (77 for CLIP); {@link Integer#MAX_VALUE} when the folder sets none. */
    public int maxLength() {
        return maxLength;
    }

    @Override
    public int[] encode(String text) {
        IdSink sink = new IdSink();
        tokenize(text, sink);
        return Arrays.copyOf(sink.ids, sink.size);
    }

    /** The tokens of {@code text} (BPE tokens carry the {@code </w>} end-of-word marker), as {@code tokenizer.tokenize}. */
    public List<String> tokens(String text) {
        List<String> out = new ArrayList<>();
        tokenize(text, new Sink() {
            @Override
            public void added(AddedToken token) {
                out.add(token.content());
            }

            @Override
            public void symbol(int symbol) {
                out.add(bpe.symbol(symbol));
            }
        });
        return out;
    }

    /**
     * {@code [bos] + ids + [eos]} as {@code tokenizer(text, padding="max_length" if padToMax, truncation=truncate,
     * max_length=maxLength)}: truncation drops ids from the end and keeps eos last; padding appends the pad id on
     * the right with mask 0. Without truncation a longer prompt comes back whole.
     */
    public Encoding encode(String text, int maxLength, boolean padToMax, boolean truncate) {
        if (maxLength < 1) {
            throw new IllegalArgumentException("maxLength is " + maxLength + ", expected at least 2 (bos and eos)");
        }
        if (padToMax && padId < 0) {
            // transformers raises before looking at the length: "Asking to pad but the tokenizer does not have a padding token"
            padId();
        }
        int[] ids = encode(text);
        if (truncate && ids.length + 2 > maxLength) {
            if (maxLength < 2) {
                throw new IllegalArgumentException("maxLength is " + maxLength + ", expected at least 2 to hold bos and eos");
            }
            ids = Arrays.copyOf(ids, maxLength - 2);
        }
        int used = ids.length + 2;
        int total = padToMax ? Math.max(used, maxLength) : used;
        int[] out = new int[total];
        int[] mask = new int[total];
        out[0] = bosId;
        System.arraycopy(ids, 0, out, 1, ids.length);
        out[used - 1] = eosId;
        Arrays.fill(out, used, total, padId);
        Arrays.fill(mask, 0, used, 1);
        return new Encoding(out, mask);
    }

    @Override
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * transformers' slow {@code _decode}: tokens joined, mapped back to bytes, UTF-8 decoded with the folder's
     * {@code errors} handler (replace by default), {@code </w>} turned into a space, then stripped.
     *
     * @param skipSpecialTokens drop bos, eos, unk, pad and other special ids (for tokenizer_2 that includes
     *                          {@code "!"}, id 0, since it is the pad token)
     * @throws IllegalArgumentException for an id neither in vocab.json nor among the added tokens
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> subTexts = new ArrayList<>();
        List<String> current = new ArrayList<>();
        for (int id : ids) {
            if (skipSpecialTokens && specialIds.contains(id)) {
                continue;
            }
            String token = tokenText(id);
            if (legacyAddedTokens.contains(token)) {
                if (!current.isEmpty()) {
                    String text = tokensToString(current);
                    if (!text.isEmpty()) {
                        subTexts.add(text);
                    }
                    current.clear();
                }
                subTexts.add(token);
            } else {
                current.add(token);
            }
        }
        if (!current.isEmpty()) {
            subTexts.add(tokensToString(current));
        }
        String text = String.join(" ", subTexts);                  // spaces_between_special_tokens=True
        return cleanUpTokenizationSpaces ? cleanUpTokenization(text) : text;
    }

    private String tokenText(int id) {
        AddedToken added = addedById.get(id);
        if (added != null) {
            return added.content();
        }
        if (id < 0 || id >= vocabDecoder.length || vocabDecoder[id] == null) {
            throw new IllegalArgumentException("token id %d is neither in %s (ids 0..%d) nor an added token"
                    .formatted(id, folder.resolve(ClipTokenizerFiles.VOCAB), vocabDecoder.length - 1));
        }
        return vocabDecoder[id];
    }

    /** CLIPTokenizer.convert_tokens_to_string. */
    private String tokensToString(List<String> tokens) {
        int length = 0;
        for (String token : tokens) {
            length += token.length();
        }
        byte[] bytes = new byte[length];
        int at = 0;
        for (String token : tokens) {
            for (int i = 0; i < token.length(); i++) {
                char c = token.charAt(i);
                int b = c < ByteLevelBpe.CHAR_TO_BYTE.length ? ByteLevelBpe.CHAR_TO_BYTE[c] : -1;
                if (b < 0) {
                    throw new IllegalArgumentException("token \"%s\" holds U+%04X, which bytes_to_unicode does not map to a byte"
                            .formatted(token, (int) c));
                }
                bytes[at++] = (byte) b;
            }
        }
        String text = Utf8Decoder.decode(bytes, at, errors).replace(ByteLevelBpe.END_OF_WORD, " ");
        return BasicTokenizer.pythonStrip(text);
    }

    /** PreTrainedTokenizerBase.clean_up_tokenization, used when the config sets clean_up_tokenization_spaces. */
    static String cleanUpTokenization(String text) {
        return text.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
                .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
                .replace(" 've", "'ve").replace(" 're", "'re");
    }

    // ---- tokenization ----

    private interface Sink {
        void added(AddedToken token);

        void symbol(int symbol);
    }

    private final class IdSink implements Sink {
        int[] ids = new int[64];
        int size;

        @Override
        public void added(AddedToken token) {
            push(token.id());
        }

        @Override
        public void symbol(int symbol) {
            int id = bpe.tokenId(symbol);
            if (id < 0) {
                throw new IllegalStateException("BPE token \"%s\" is not in %s and the folder sets no unk_token"
                        .formatted(bpe.symbol(symbol), folder.resolve(ClipTokenizerFiles.VOCAB)));
            }
            push(id);
        }

        private void push(int id) {
            if (size == ids.length) {
                ids = Arrays.copyOf(ids, size * 2);
            }
            ids[size++] = id;
        }
    }

    /** PreTrainedTokenizer.tokenize with split_special_tokens=False, then CLIPTokenizer._tokenize per piece. */
    private void tokenize(String text, Sink sink) {
        String[] parts = trie.splitAdded(text, addedByContent);
        for (String part : parts) {
            if (part.isEmpty()) {
                continue;
            }
            AddedToken token = addedByContent.get(part);
            if (token != null) {
                sink.added(token);
            } else {
                bpeTokenize(part, sink);
            }
        }
    }

    /** CLIPTokenizer._tokenize without ftfy: BasicTokenizer clean-up, regex split, byte-level BPE. */
    private void bpeTokenize(String text, Sink sink) {
        String cleaned = BasicTokenizer.clean(text);
        if (cleaned.isEmpty()) {
            return;
        }
        Matcher matcher = PAT.matcher(cleaned);
        while (matcher.find()) {
            for (int symbol : bpe.word(matcher.group())) {
                sink.symbol(symbol);
            }
        }
    }

    private AddedToken addAdded(ClipTokenizerFiles.TokenSpec spec, int id) {
        AddedToken token = new AddedToken(spec.content(), id, spec.singleWord(), spec.lstrip(), spec.rstrip(),
                spec.normalized(), spec.special());
        addedById.put(id, token);
        addedByContent.put(spec.content(), token);
        return token;
    }

    private AddedToken requiredSpecial(ClipTokenizerFiles.Contents files, String field) {
        ClipTokenizerFiles.TokenSpec spec = files.specials().get(field);
        if (spec == null) {
            throw new TokenizerException(files.folder().resolve(ClipTokenizerFiles.CONFIG),
                    field + " is null, expected a token: CLIPTokenizer wraps every prompt in bos_token ... eos_token");
        }
        return addedByContent.get(spec.content());
    }
}
