package koala4j.tokenizers;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * ByT5's token-free tokenizer, as transformers' slow {@code ByT5Tokenizer} (models/byt5/tokenization_byt5.py,
 * transformers 4.57) on top of {@code PreTrainedTokenizer}: every UTF-8 byte b is id b + 3, with pad 0, eos 1, unk 2
 * and the sentinels {@code <extra_id_N>} as added special tokens (ids 259 + N unless the folder's files say
 * otherwise). Used by ByT5, KEByT5 and GBST-KEByT5.
 *
 * <p>Encoding: added tokens are cut out of the raw text first (with their lstrip/rstrip rules; ByT5's pad, eos and
 * unk eat the spaces around them), the rest is UTF-8 encoded byte by byte. Decoding follows the reference's
 * {@code _decode}: special and byte tokens are joined into bytes and decoded with {@code errors="ignore"} (so bytes
 * that do not form valid UTF-8, frequent in what a byte model generates, are dropped rather than failing), sentinels
 * with ids past the byte range stay separate pieces, and the pieces are joined with spaces.
 *
 * <p>Immutable after loading; thread-safe.
 */
public final class ByteTokenizer implements Tokenizer {

    /** ids 0..2 are pad, eos, unk; bytes start here. */
    public static final int OFFSET = 3;
    /** ByT5Tokenizer.vocab_size: the 256 byte values (legacy added tokens are those at or past it). */
    private static final int UTF_VOCAB_SIZE = 256;

    /** Input ids and attention mask of a padded batch, as {@code tokenizer(texts, padding=True)}. */
    public record Batch(long[] ids, long[] attentionMask, int rows, int length) {
    }

    private final Map<String, AddedToken> addedByContent = new LinkedHashMap<>();
    private final Map<Integer, AddedToken> addedById = new HashMap<>();
    private final AddedTokenTrie trie;
    private final Set<Integer> specialIds = new HashSet<>();
    private final Set<String> legacyAddedTokens = new HashSet<>();
    private final int eosId;
    private final int padId;
    private final int unkId;
    private final boolean cleanUpTokenizationSpaces;

    private ByteTokenizer(ByteTokenizerFiles.Contents files) {
        // ByT5Tokenizer.__init__: pad/eos/unk default to strings, which it turns into AddedTokens stripping both sides
        ByteTokenizerFiles.Spec pad = byt5Special(files, "pad_token", "<pad>");
        ByteTokenizerFiles.Spec eos = byt5Special(files, "eos_token", "</s>");
        ByteTokenizerFiles.Spec unk = byt5Special(files, "unk_token", "<unk>");
        List<ByteTokenizerFiles.Spec> additional = files.additional();
        int extraIds = files.extraIds();
        if (extraIds > 0 && additional == null) {
            additional = new ArrayList<>();
            for (int i = 0; i < extraIds; i++) {
                additional.add(new ByteTokenizerFiles.Spec("<extra_id_" + i + ">", false, false, false, false, true, false));
            }
        } else if (extraIds > 0 && !additional.isEmpty()) {
            long sentinels = additional.stream().map(ByteTokenizerFiles.Spec::content).filter(c -> c.contains("extra_id"))
                    .distinct().count();
            if (sentinels != extraIds) {
                throw new TokenizerException(files.folder().resolve(ByteTokenizerFiles.CONFIG), ("extra_ids is %d but "
                        + "additional_special_tokens holds %d <extra_id_N> tokens; ByT5Tokenizer requires them to agree")
                        .formatted(extraIds, sentinels));
            }
        }
        if (additional == null) {
            additional = List.of();
        }
        // self._added_tokens_decoder = {0: pad, 1: eos, 2: unk}, then PreTrainedTokenizer.__init__ overwrites it with
        // the folder's added_tokens_decoder
        Map<Integer, AddedToken> decoder = new LinkedHashMap<>();
        decoder.put(0, pad.at(0, true));
        decoder.put(1, eos.at(1, true));
        decoder.put(2, unk.at(2, true));
        files.addedTokensDecoder().forEach((id, spec) -> decoder.put(id, spec.at(id, false)));
        Map<String, Integer> encoder = new LinkedHashMap<>();
        decoder.forEach((id, token) -> encoder.put(token.content(), id));
        // then every special token not yet known gets the next free id (_add_tokens with special_tokens=True)
        List<ByteTokenizerFiles.Spec> allSpecials = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (String field : ByteTokenizerFiles.SPECIAL_FIELDS) {
            ByteTokenizerFiles.Spec s = switch (field) {
                case "pad_token" -> pad;
                case "eos_token" -> eos;
                case "unk_token" -> unk;
                default -> files.specials().get(field);
            };
            if (s != null && seen.add(s.content())) {
                allSpecials.add(s);
            }
        }
        for (ByteTokenizerFiles.Spec s : additional) {
            if (seen.add(s.content())) {
                allSpecials.add(s);
            }
        }
        Map<String, Integer> vocab = new LinkedHashMap<>();                  // get_vocab()
        for (int i = 0; i < UTF_VOCAB_SIZE + OFFSET; i++) {
            AddedToken t = decoder.get(i);
            vocab.put(t != null ? t.content() : String.valueOf((char) (i - OFFSET)), i);
        }
        vocab.putAll(encoder);
        int next = vocab.size();
        for (ByteTokenizerFiles.Spec s : allSpecials) {
            if (encoder.containsKey(s.content())) {
                continue;
            }
            int id = vocab.containsKey(s.content()) ? vocab.get(s.content()) : next++;
            vocab.put(s.content(), id);
            ByteTokenizerFiles.Spec token = s.object() ? s
                    : new ByteTokenizerFiles.Spec(s.content(), false, false, false, false, true, false);
            decoder.put(id, token.at(id, true));
            encoder.put(s.content(), id);
        }
        decoder.forEach((id, token) -> {
            addedById.put(id, token);
            addedByContent.put(token.content(), token);
        });
        for (ByteTokenizerFiles.Spec s : allSpecials) {
            specialIds.add(encoder.get(s.content()));
        }
        Set<String> specialContents = new HashSet<>(seen);
        for (String content : encoder.keySet()) {
            if (!specialContents.contains(content)) {
                legacyAddedTokens.add(content);
            }
        }
        for (ByteTokenizerFiles.Spec s : additional) {
            if (encoder.get(s.content()) >= UTF_VOCAB_SIZE) {
                legacyAddedTokens.add(s.content());
            }
        }
        trie = new AddedTokenTrie(addedByContent.keySet());
        eosId = encoder.get(eos.content());
        padId = encoder.get(pad.content());
        unkId = encoder.get(unk.content());
        cleanUpTokenizationSpaces = files.cleanUpTokenizationSpaces();
    }

    private static ByteTokenizerFiles.Spec byt5Special(ByteTokenizerFiles.Contents files, String field, String dflt) {
        ByteTokenizerFiles.Spec s = files.specials().containsKey(field) ? files.specials().get(field)
                : new ByteTokenizerFiles.Spec(dflt, false, false, false, false, true, false);
        if (s == null) {
            throw new TokenizerException(files.folder(), field + " is null; ByT5Tokenizer needs pad, eos and unk tokens");
        }
        return s.object() ? s : new ByteTokenizerFiles.Spec(s.content(), false, true, true, false, true, true);
    }

    /**
     * The tokenizer of a model folder: its tokenizer_config.json (and, for folders saved before transformers 4.34,
     * special_tokens_map.json / added_tokens.json) when present, else ByT5Tokenizer's defaults.
     *
     * @throws TokenizerException naming the file and field when a file is malformed or names another tokenizer class
     */
    public static ByteTokenizer load(Path folder) {
        return new ByteTokenizer(ByteTokenizerFiles.read(folder));
    }

    /** {@code ByT5Tokenizer()}: pad/eos/unk and 125 sentinels {@code <extra_id_0>} = 259 .. {@code <extra_id_124>} = 383. */
    public static ByteTokenizer byt5() {
        return new ByteTokenizer(new ByteTokenizerFiles.Contents(Path.of("ByT5Tokenizer()"), Map.of(), null, 125, Map.of(), false));
    }

    public int eosId() {
        return eosId;
    }

    public int padId() {
        return padId;
    }

    public int unkId() {
        return unkId;
    }

    /** Ids the tokenizer knows: bytes, pad/eos/unk and the added tokens (the largest + 1). */
    public int size() {
        int max = UTF_VOCAB_SIZE + OFFSET - 1;
        for (int id : addedById.keySet()) {
            max = Math.max(max, id);
        }
        return max + 1;
    }

    @Override
    public int[] encode(String text) {
        List<Integer> ids = new ArrayList<>();
        String[] parts = trie.splitAdded(text, addedByContent);
        for (String part : parts) {
            if (part.isEmpty()) {
                continue;
            }
            AddedToken token = addedByContent.get(part);
            if (token != null) {
                ids.add(token.id());
                continue;
            }
            for (byte b : utf8(part)) {
                // convert_tokens_to_ids looks a one-character token up among the added tokens first
                AddedToken same = addedByContent.get(String.valueOf((char) (b & 0xFF)));
                ids.add(same != null ? same.id() : (b & 0xFF) + OFFSET);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** {@code tokenizer(text)["input_ids"]}: the ids with eos appended unless they already end with it. */
    public int[] encodeWithEos(String text) {
        int[] ids = encode(text);
        if (ids.length > 0 && ids[ids.length - 1] == eosId) {
            return ids;                                  // _add_eos_if_not_present
        }
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eosId;
        return out;
    }

    /** {@code tokenizer(texts, padding=True)}: eos-terminated rows padded on the right with pad, mask 0 there. */
    public Batch encodeBatch(List<String> texts) {
        if (texts.isEmpty()) {
            throw new IllegalArgumentException("no texts to encode");
        }
        List<int[]> rows = texts.stream().map(this::encodeWithEos).toList();
        int length = rows.stream().mapToInt(r -> r.length).max().orElseThrow();
        long[] ids = new long[rows.size() * length];
        long[] mask = new long[ids.length];
        Arrays.fill(ids, padId);
        for (int r = 0; r < rows.size(); r++) {
            int[] row = rows.get(r);
            for (int i = 0; i < row.length; i++) {
                ids[r * length + i] = row[i];
                mask[r * length + i] = 1;
            }
        }
        return new Batch(ids, mask, rows.size(), length);
    }

    private static byte[] utf8(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean paired = Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1));
            if (paired) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new IllegalArgumentException("text holds an unpaired surrogate U+%04X at %d; Python's str.encode(\"utf-8\")"
                        .formatted((int) c, i) + " raises UnicodeEncodeError there");
            }
        }
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /** Whether {@link #decode} applies transformers' clean_up_tokenization (" ." -> "." and the like). */
    public boolean cleansUpTokenizationSpaces() {
        return cleanUpTokenizationSpaces;
    }

    @Override
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * transformers' {@code _decode} with ByT5's {@code convert_tokens_to_string}.
     *
     * @throws IllegalArgumentException for an id that is neither a byte nor an added token (the reference fails too)
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> subTexts = new ArrayList<>();
        ByteArrayOutputStream current = new ByteArrayOutputStream();
        boolean open = false;
        for (int id : ids) {
            if (skipSpecialTokens && specialIds.contains(id)) {
                continue;
            }
            AddedToken added = addedById.get(id);
            if (added != null && legacyAddedTokens.contains(added.content())) {
                if (open) {
                    String text = Utf8Decoder.decode(current.toByteArray(), current.size(), Utf8Decoder.Errors.IGNORE);
                    if (!text.isEmpty()) {
                        subTexts.add(text);
                    }
                    current.reset();
                    open = false;
                }
                subTexts.add(added.content());
                continue;
            }
            open = true;
            if (added != null) {
                current.writeBytes(added.content().getBytes(StandardCharsets.UTF_8));
            } else if (id >= OFFSET && id < UTF_VOCAB_SIZE + OFFSET) {
                String token = String.valueOf((char) (id - OFFSET));
                AddedToken same = addedByContent.get(token);   // a one-character token equal to an added token's text
                if (same != null) {
                    current.writeBytes(token.getBytes(StandardCharsets.UTF_8));
                } else {
                    current.write(id - OFFSET);
                }
            } else {
                throw new IllegalArgumentException("token id %d is neither a byte (%d..%d) nor an added token of this tokenizer"
                        .formatted(id, OFFSET, UTF_VOCAB_SIZE + OFFSET - 1));
            }
        }
        if (open) {
            subTexts.add(Utf8Decoder.decode(current.toByteArray(), current.size(), Utf8Decoder.Errors.IGNORE));
        }
        String text = String.join(" ", subTexts);                      // spaces_between_special_tokens=True
        return cleanUpTokenizationSpaces ? ClipTokenizer.cleanUpTokenization(text) : text;
    }
}
