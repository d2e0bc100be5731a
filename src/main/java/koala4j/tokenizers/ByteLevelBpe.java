package koala4j.tokenizers;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToIntFunction;

/**
 * CLIP's byte-level BPE: {@code bytes_to_unicode} and {@code CLIPTokenizer.bpe} (models/clip/tokenization_clip.py).
 * A word's UTF-8 bytes become printable characters, the last one carries the {@code </w>} end-of-word marker,
 * and the lowest-ranked adjacent pair is merged, everywhere left to right, until no ranked pair is left.
 *
 * <p>Every string that can appear as a symbol (vocab entries, both sides and the result of every merge, each
 * byte character with and without {@code </w>}) gets an int index at load time, so merging compares ints and a
 * word's result is an {@code int[]} of symbol indices. Results are cached per word like the reference's
 * {@code self.cache}; the cache is concurrent, so one instance serves many threads.
 */
final class ByteLevelBpe {

    static final String END_OF_WORD = "</w>";

    /** bytes_to_unicode(): byte value to the printable character standing for it. */
    static final char[] BYTE_TO_CHAR = bytesToUnicode();

    /** The inverse of {@link #BYTE_TO_CHAR}, indexed by character; -1 where no byte maps there. */
    static final int[] CHAR_TO_BYTE = invert(BYTE_TO_CHAR);

    /** The reference pre-fills its cache with these two so that they map to themselves, without {@code </w>}. */
    private static final List<String> SELF_MAPPED = List.of("<|startoftext|>", "<|endoftext|>");

    /** Words cached at most; the reference's cache is unbounded, a server's input is not. */
    private static final int CACHE_LIMIT = 1 << 17;

    private final String[] symbols;            // symbol index -> its text (null for ids the vocab skips)
    private final int[] symbolIds;             // symbol index -> token id
    private final int[] charSymbol;            // byte character -> symbol of "c"
    private final int[] charEndSymbol;         // byte character -> symbol of "c</w>"
    private final PairTable merges;            // (left, right) -> (rank, merged)
    private final Map<String, int[]> selfMapped = new HashMap<>();
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param vocab       vocab.json
     * @param vocabById   its inverse, {@code decoder}, indexed by id
     * @param ranked      merges.txt pairs in rank order; a pair listed twice keeps its last rank, as the reference's dict
     * @param addedTokens added token ids by content, which take precedence over the vocab
     * @param unkId       the id of a token that is neither added nor in the vocab (-1 if there is no unk token)
     */
    ByteLevelBpe(Map<String, Integer> vocab, String[] vocabById, List<String[]> ranked, Map<String, Integer> addedTokens,
                 int unkId) {
        // A vocab token's symbol index is its id, so no second table of 49 k strings is built; strings outside
        // the vocab (a merges.txt that does not match its vocab.json) are numbered after it.
        Map<String, Integer> extra = new HashMap<>();
        List<String> extraTexts = new ArrayList<>();
        ToIntFunction<String> intern = text -> {
            Integer id = vocab.get(text);
            if (id != null && text.equals(vocabById[id])) {
                return id;
            }
            return extra.computeIfAbsent(text, k -> {
                extraTexts.add(k);
                return vocabById.length + extraTexts.size() - 1;
            });
        };
        merges = new PairTable(ranked.size());
        for (int rank = 0; rank < ranked.size(); rank++) {
            String[] pair = ranked.get(rank);
            merges.put(intern.applyAsInt(pair[0]), intern.applyAsInt(pair[1]), rank, intern.applyAsInt(pair[0] + pair[1]));
        }
        charSymbol = new int[CHAR_TO_BYTE.length];
        charEndSymbol = new int[CHAR_TO_BYTE.length];
        for (char c : BYTE_TO_CHAR) {
            charSymbol[c] = intern.applyAsInt(String.valueOf(c));
            charEndSymbol[c] = intern.applyAsInt(c + END_OF_WORD);
        }
        for (String text : SELF_MAPPED) {
            selfMapped.put(text, new int[] {intern.applyAsInt(text)});
        }
        symbols = Arrays.copyOf(vocabById, vocabById.length + extraTexts.size());
        symbolIds = new int[symbols.length];
        for (int i = 0; i < symbols.length; i++) {
            if (i >= vocabById.length) {
                symbols[i] = extraTexts.get(i - vocabById.length);
                symbolIds[i] = unkId;
            } else {
                symbolIds[i] = symbols[i] == null ? -1 : i;
            }
        }
        // _convert_token_to_id_with_added_voc: added tokens first.
        addedTokens.forEach((text, id) -> {
            Integer vocabId = vocab.get(text);
            int symbol = vocabId != null && text.equals(vocabById[vocabId]) ? vocabId : extra.getOrDefault(text, -1);
            if (symbol >= 0) {
                symbolIds[symbol] = id;
            }
        });
    }

    /** The text of a symbol, a BPE token such as {@code "cat</w>"}. */
    String symbol(int symbol) {
        return symbols[symbol];
    }

    /** The token id of a symbol. */
    int tokenId(int symbol) {
        return symbolIds[symbol];
    }

    /**
     * The BPE symbols of one pre-tokenised word (a match of CLIP's regex), as {@code self.bpe(token).split(" ")}
     * after the byte-to-unicode mapping. The returned array is shared: do not modify it.
     */
    int[] word(String word) {
        int[] cached = cache.get(word);
        if (cached != null) {
            return cached;
        }
        int[] special = selfMapped.get(word);
        if (special != null) {
            return special;
        }
        int[] result = merge(initialSymbols(word));
        if (cache.size() < CACHE_LIMIT) {
            cache.putIfAbsent(word, result);
        }
        return result;
    }

    private int[] initialSymbols(String word) {
        byte[] utf8 = word.getBytes(StandardCharsets.UTF_8);
        int[] out = new int[utf8.length];
        int last = utf8.length - 1;
        for (int i = 0; i < utf8.length; i++) {
            char c = BYTE_TO_CHAR[utf8[i] & 0xFF];
            out[i] = i == last ? charEndSymbol[c] : charSymbol[c];
        }
        return out;
    }

    private int[] merge(int[] word) {
        int n = word.length;
        while (n > 1) {
            int bestRank = Integer.MAX_VALUE;
            int first = -1;
            int second = -1;
            int merged = -1;
            for (int i = 0; i + 1 < n; i++) {
                long entry = merges.get(word[i], word[i + 1]);
                if (entry != PairTable.MISSING && PairTable.rank(entry) < bestRank) {
                    bestRank = PairTable.rank(entry);
                    first = word[i];
                    second = word[i + 1];
                    merged = PairTable.merged(entry);
                }
            }
            if (first < 0) {
                break;
            }
            int out = 0;                                           // merging shrinks the word in place
            for (int i = 0; i < n; ) {
                if (i + 1 < n && word[i] == first && word[i + 1] == second) {
                    word[out++] = merged;
                    i += 2;
                } else {
                    word[out++] = word[i++];
                }
            }
            n = out;
        }
        return n == word.length ? word : Arrays.copyOf(word, n);
    }

    private static char[] bytesToUnicode() {
        char[] map = new char[256];
        boolean[] printable = new boolean[256];
        for (int b = 0; b < 256; b++) {
            printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        }
        int next = 0;
        for (int b = 0; b < 256; b++) {
            // Printable bytes stand for themselves; the others take 256, 257, ... in byte order.
            map[b] = printable[b] ? (char) b : (char) (256 + next++);
        }
        return map;
    }

    private static int[] invert(char[] byteToChar) {
        int size = 0;
        for (char c : byteToChar) {
            size = Math.max(size, c + 1);
        }
        int[] inverse = new int[size];
        Arrays.fill(inverse, -1);
        for (int b = 0; b < byteToChar.length; b++) {
            inverse[byteToChar[b]] = b;
        }
        return inverse;
    }

    /** Open-addressing map from a pair of symbol indices to (rank, merged symbol), without boxing. */
    private static final class PairTable {
        static final long MISSING = -1L;
        private final long[] keys;
        private final long[] values;
        private final int mask;

        PairTable(int expected) {
            int capacity = Integer.highestOneBit(Math.max(4, expected * 2 + 1)) << 1;
            keys = new long[capacity];
            values = new long[capacity];
            Arrays.fill(keys, MISSING);
            mask = capacity - 1;
        }

        void put(int left, int right, int rank, int merged) {
            long key = key(left, right);
            int slot = slot(key);
            while (keys[slot] != MISSING && keys[slot] != key) {
                slot = (slot + 1) & mask;
            }
            keys[slot] = key;
            values[slot] = ((long) rank << 32) | (merged & 0xFFFFFFFFL);
        }

        long get(int left, int right) {
            long key = key(left, right);
            int slot = slot(key);
            while (true) {
                long k = keys[slot];
                if (k == key) {
                    return values[slot];
                }
                if (k == MISSING) {
                    return MISSING;
                }
                slot = (slot + 1) & mask;
            }
        }

        static int rank(long entry) {
            return (int) (entry >>> 32);
        }

        static int merged(long entry) {
            return (int) entry;
        }

        private static long key(int left, int right) {
            return ((long) left << 32) | (right & 0xFFFFFFFFL);
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            return (int) (h ^ (h >>> 32)) & mask;
        }
    }
}
