package koala4j.tokenizers;

import static koala4j.tokenizers.TokenizerFiles.flag;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * The BPE model of a {@code tokenizer.json} (tokenizers 0.22, models/bpe/model.rs and word.rs): a word is split into
 * characters (each looked up in the vocab, else its UTF-8 bytes as {@code <0xNN>} tokens when {@code byte_fallback},
 * else the unk token, fused when {@code fuse_unk}), then the lowest-ranked merge is applied, leftmost first, until none
 * applies. Merges are read in both formats: {@code "a b"} strings and {@code ["a", "b"]} pairs. Dropout is refused
 * (it makes encoding random). Immutable; thread-safe.
 */
final class HfBpe {

    private record Merge(int rank, int newId) {
    }

    private final Map<String, Integer> vocab;
    private final String[] vocabR;
    private final Map<Long, Merge> merges = new HashMap<>();
    private final Integer unkId;
    private final String continuingSubwordPrefix;
    private final String endOfWordSuffix;
    private final boolean fuseUnk;
    private final boolean byteFallback;
    private final boolean ignoreMerges;

    HfBpe(JsonNode model, Path file) {
        vocab = vocab(model, file);
        int maxId = vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1);
        vocabR = new String[maxId + 1];
        vocab.forEach((token, id) -> vocabR[id] = token);
        JsonNode dropout = model.get("dropout");
        if (dropout != null && !dropout.isNull() && dropout.asDouble() != 0.0) {
            throw new TokenizerException(file, "model.dropout is %s, expected null (BPE dropout makes encoding random)"
                    .formatted(dropout));
        }
        continuingSubwordPrefix = text(model, "continuing_subword_prefix", file);
        endOfWordSuffix = text(model, "end_of_word_suffix", file);
        fuseUnk = flag(model, "fuse_unk", false, file, "model");
        byteFallback = flag(model, "byte_fallback", false, file, "model");
        ignoreMerges = flag(model, "ignore_merges", false, file, "model");
        String unk = text(model, "unk_token", file);
        if (unk != null && !vocab.containsKey(unk)) {
            throw new TokenizerException(file, "model.unk_token \"%s\" is not in model.vocab, expected one of its tokens"
                    .formatted(unk));
        }
        unkId = unk == null ? null : vocab.get(unk);
        JsonNode mergesNode = model.get("merges");
        if (mergesNode == null || !mergesNode.isArray()) {
            throw new TokenizerException(file, "model.merges is %s, expected a list of merges"
                    .formatted(mergesNode == null ? "missing" : TokenizerFiles.abbreviate(mergesNode)));
        }
        int prefixLength = continuingSubwordPrefix == null ? 0 : continuingSubwordPrefix.length();
        for (int rank = 0; rank < mergesNode.size(); rank++) {
            String[] ab = mergePair(mergesNode.get(rank), rank, file);
            String a = ab[0];
            String b = ab[1];
            Integer aId = vocab.get(a);
            Integer bId = vocab.get(b);
            String merged = a + b.substring(Math.min(prefixLength, b.length()));
            Integer newId = vocab.get(merged);
            if (aId == null || bId == null || newId == null) {
                throw new TokenizerException(file, "model.merges[%d] (\"%s\", \"%s\") needs \"%s\", which is not in model.vocab"
                        .formatted(rank, a, b, aId == null ? a : bId == null ? b : merged));
            }
            merges.putIfAbsent(pair(aId, bId), new Merge(rank, newId));
        }
    }

    /** {@code model.vocab} of a tokenizer.json: token to non-negative id. */
    static Map<String, Integer> vocab(JsonNode model, Path file) {
        JsonNode vocabNode = model.get("vocab");
        if (vocabNode == null || !vocabNode.isObject()) {
            throw new TokenizerException(file, "model.vocab is %s, expected an object from token to id"
                    .formatted(vocabNode == null ? "missing" : TokenizerFiles.abbreviate(vocabNode)));
        }
        Map<String, Integer> out = new HashMap<>(vocabNode.size() * 2);
        for (Map.Entry<String, JsonNode> e : vocabNode.properties()) {
            if (!e.getValue().canConvertToInt() || !e.getValue().isIntegralNumber() || e.getValue().intValue() < 0) {
                throw new TokenizerException(file, "model.vocab[\"%s\"] is %s, expected a non-negative integer id"
                        .formatted(e.getKey(), e.getValue()));
            }
            out.put(e.getKey(), e.getValue().intValue());
        }
        return out;
    }

    /** {@code model.merges[rank]}: "a b" (tokenizers before 0.20) or ["a", "b"]. */
    static String[] mergePair(JsonNode merge, int rank, Path file) {
        if (merge.isTextual()) {
            String[] parts = merge.asText().split(" ", -1);
            if (parts.length != 2) {
                throw new TokenizerException(file, "model.merges[%d] is \"%s\", expected two tokens separated by one space"
                        .formatted(rank, merge.asText()));
            }
            return parts;
        }
        if (merge.isArray() && merge.size() == 2 && merge.get(0).isTextual() && merge.get(1).isTextual()) {
            return new String[] {merge.get(0).asText(), merge.get(1).asText()};
        }
        throw new TokenizerException(file, "model.merges[%d] is %s, expected \"a b\" or [\"a\", \"b\"]"
                .formatted(rank, TokenizerFiles.abbreviate(merge)));
    }

    private static long pair(int a, int b) {
        return (long) a << 32 | (b & 0xFFFFFFFFL);
    }

    int vocabSize() {
        return vocab.size();
    }

    Integer tokenToId(String token) {
        return vocab.get(token);
    }

    /** null when the id is not in the vocab. */
    String idToToken(int id) {
        return id >= 0 && id < vocabR.length ? vocabR[id] : null;
    }

    /** BPE.tokenize: the ids of one pre-tokenized word. */
    void tokenize(String word, List<Integer> out) {
        if (word.isEmpty()) {
            return;
        }
        if (ignoreMerges && vocab.containsKey(word)) {
            out.add(vocab.get(word));
            return;
        }
        // merge_word: characters (or byte tokens, or unk) as symbols
        List<Integer> ids = new ArrayList<>();
        int unk = -1;
        int unkLength = 0;
        for (int i = 0; i < word.length(); ) {
            int end = i + Character.charCount(word.codePointAt(i));
            String s = word.substring(i, end);
            if (i > 0 && continuingSubwordPrefix != null) {
                s = continuingSubwordPrefix + s;
            }
            if (end == word.length() && endOfWordSuffix != null) {
                s = s + endOfWordSuffix;
            }
            Integer id = vocab.get(s);
            if (id != null) {
                if (unk >= 0) {
                    ids.add(unk);
                    unk = -1;
                }
                ids.add(id);
            } else {
                boolean fallback = false;
                if (byteFallback) {
                    byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
                    List<Integer> byteIds = new ArrayList<>(bytes.length);
                    for (byte b : bytes) {
                        Integer byteId = vocab.get("<0x%02X>".formatted(b & 0xFF));
                        if (byteId == null) {
                            byteIds = null;
                            break;
                        }
                        byteIds.add(byteId);
                    }
                    if (byteIds != null) {
                        ids.addAll(byteIds);                     // a pending unk stays pending, as in the reference
                        fallback = true;
                    }
                }
                if (!fallback && unkId != null) {
                    if (unk >= 0 && fuseUnk) {
                        unkLength++;
                    } else {
                        if (unk >= 0) {
                            ids.add(unk);
                        }
                        unk = unkId;
                        unkLength = 1;
                    }
                }
            }
            i = end;
        }
        if (unk >= 0) {
            ids.add(unk);
        }
        mergeAll(ids, out);
    }

    /** Word::merge_all without dropout: a min-heap on (rank, position). */
    private void mergeAll(List<Integer> symbols, List<Integer> out) {
        int n = symbols.size();
        int[] c = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        boolean[] removed = new boolean[n];
        for (int i = 0; i < n; i++) {
            c[i] = symbols.get(i);
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        record Entry(int pos, int rank, int newId) {
        }
        PriorityQueue<Entry> queue = new PriorityQueue<>((x, y) -> x.rank != y.rank
                ? Integer.compare(x.rank, y.rank) : Integer.compare(x.pos, y.pos));
        for (int i = 0; i + 1 < n; i++) {
            Merge m = merges.get(pair(c[i], c[i + 1]));
            if (m != null) {
                queue.add(new Entry(i, m.rank(), m.newId()));
            }
        }
        while (!queue.isEmpty()) {
            Entry top = queue.poll();
            if (removed[top.pos] || next[top.pos] == -1) {
                continue;
            }
            int right = next[top.pos];
            Merge current = merges.get(pair(c[top.pos], c[right]));
            if (current == null || current.newId() != top.newId) {
                continue;                                          // an expired entry
            }
            c[top.pos] = top.newId;
            removed[right] = true;
            next[top.pos] = next[right];
            if (next[right] >= 0) {
                prev[next[right]] = top.pos;
            }
            if (prev[top.pos] >= 0) {
                Merge m = merges.get(pair(c[prev[top.pos]], c[top.pos]));
                if (m != null) {
                    queue.add(new Entry(prev[top.pos], m.rank(), m.newId()));
                }
            }
            if (next[top.pos] >= 0) {
                Merge m = merges.get(pair(c[top.pos], c[next[top.pos]]));
                if (m != null) {
                    queue.add(new Entry(top.pos, m.rank(), m.newId()));
                }
            }
        }
        for (int i = 0; i < n; i++) {
            if (!removed[i]) {
                out.add(c[i]);
            }
        }
    }

    private static String text(JsonNode model, String field, Path file) {
        JsonNode node = model.get(field);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isTextual()) {
            throw new TokenizerException(file, "model.%s is %s, expected a string or null".formatted(field, node));
        }
        return node.asText();
    }

}
