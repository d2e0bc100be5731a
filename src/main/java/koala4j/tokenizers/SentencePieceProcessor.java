package koala4j.tokenizers;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece's {@code SentencePieceProcessor} for what transformers calls on it: {@code encode(text,
 * out_type=str)}, {@code piece_to_id}, {@code IdToPiece} and {@code decode(pieces)} (sentencepiece 0.2:
 * sentencepiece_processor.cc, model_interface.cc, bpe_model.cc, unigram_model.cc). Encoding normalizes
 * ({@link SentencePieceNormalizer}), segments with the model (BPE: merge the adjacent pair whose merged piece has the
 * highest score, leftmost first; UNIGRAM: Viterbi over piece scores), then turns unknown pieces into
 * {@code <0xNN>} byte pieces when the model has {@code byte_fallback}, or merges runs of them into one unknown piece.
 *
 * <p>Immutable after construction; every method is thread-safe.
 */
final class SentencePieceProcessor {

    /** unigram_model.cc kUnkPenalty. */
    private static final float UNK_PENALTY = 10.0f;

    private final SentencePieceModel model;
    private final SentencePieceNormalizer normalizer;
    private final SentencePieceNormalizer denormalizer;
    private final String[] pieceText;
    private final SentencePieceModel.PieceType[] pieceType;
    private final float[] pieceScore;
    private final Map<String, Integer> pieces = new HashMap<>();        // NORMAL, USER_DEFINED, UNUSED
    private final Map<String, Integer> reserved = new HashMap<>();      // CONTROL, UNKNOWN, BYTE
    private final List<String> userDefined = new ArrayList<>();
    private final int[] byteIds = new int[256];
    private final int unkId;
    private final int maxPieceChars;
    private final float minScore;
    private final float maxScore;

    SentencePieceProcessor(SentencePieceModel model) {
        this.model = model;
        if (model.modelType() != SentencePieceModel.ModelType.BPE
                && model.modelType() != SentencePieceModel.ModelType.UNIGRAM) {
            throw new TokenizerException(model.file(), "trainer_spec.model_type is %s, expected UNIGRAM or BPE (the "
                    .formatted(model.modelType()) + "model types of SentencePiece tokenizers that transformers ships)");
        }
        if (model.treatWhitespaceAsSuffix()) {
            throw new TokenizerException(model.file(), "trainer_spec.treat_whitespace_as_suffix is true, expected false "
                    + "(suffix whitespace is not supported)");
        }
        List<SentencePieceModel.Piece> list = model.pieces();
        int n = list.size();
        pieceText = new String[n];
        pieceType = new SentencePieceModel.PieceType[n];
        pieceScore = new float[n];
        java.util.Arrays.fill(byteIds, -1);
        int unk = -1;
        int longest = 1;
        float min = Float.MAX_VALUE;
        float max = Float.MIN_VALUE;                    // sentencepiece starts from FLT_MIN too (smallest positive)
        for (int i = 0; i < n; i++) {
            SentencePieceModel.Piece p = list.get(i);
            pieceText[i] = p.text();
            pieceType[i] = p.type();
            pieceScore[i] = p.score();
            boolean normal = p.type() == SentencePieceModel.PieceType.NORMAL
                    || p.type() == SentencePieceModel.PieceType.USER_DEFINED
                    || p.type() == SentencePieceModel.PieceType.UNUSED;
            Map<String, Integer> target = normal ? pieces : reserved;
            if (target.putIfAbsent(p.text(), i) != null) {
                throw new TokenizerException(model.file(), "pieces[%d] \"%s\" is already defined (as pieces[%d]), "
                        .formatted(i, p.text(), target.get(p.text())) + "expected every piece once");
            }
            if (normal) {
                longest = Math.max(longest, p.text().length());
            }
            switch (p.type()) {
                case USER_DEFINED -> userDefined.add(p.text());
                case UNKNOWN -> {
                    if (unk >= 0) {
                        throw new TokenizerException(model.file(), "pieces[%d] is a second UNKNOWN piece (pieces[%d] is one), "
                                .formatted(i, unk) + "expected exactly one");
                    }
                    unk = i;
                }
                case BYTE -> {
                    if (!model.byteFallback()) {
                        throw new TokenizerException(model.file(), "pieces[%d] \"%s\" is a BYTE piece although "
                                .formatted(i, p.text()) + "trainer_spec.byte_fallback is false");
                    }
                    int b = pieceToByte(p.text());
                    if (b < 0) {
                        throw new TokenizerException(model.file(), "pieces[%d] is the BYTE piece \"%s\", expected <0x00>..<0xFF>"
                                .formatted(i, p.text()));
                    }
                    byteIds[b] = i;
                }
                case NORMAL -> {
                    min = Math.min(min, p.score());
                    max = Math.max(max, p.score());
                }
                default -> { }
            }
        }
        if (unk < 0) {
            throw new TokenizerException(model.file(), "has no UNKNOWN piece, expected exactly one (usually <unk>, id 0)");
        }
        if (model.byteFallback()) {
            for (int b = 0; b < 256; b++) {
                if (byteIds[b] < 0) {
                    throw new TokenizerException(model.file(), "has byte_fallback but no BYTE piece <0x%02X>, expected all 256"
                            .formatted(b));
                }
            }
        }
        unkId = unk;
        maxPieceChars = longest;
        minScore = min;
        maxScore = max;
        normalizer = new SentencePieceNormalizer(model.normalizer(), false, userDefined, model.file(), "normalizer_spec");
        denormalizer = model.denormalizer() == null || model.denormalizer().precompiledCharsmap().length == 0 ? null
                : new SentencePieceNormalizer(model.denormalizer(), false, List.of(), model.file(), "denormalizer_spec");
    }

    SentencePieceModel model() {
        return model;
    }

    int size() {
        return pieceText.length;
    }

    int unkId() {
        return unkId;
    }

    /** IdToPiece. @throws IllegalArgumentException for an id outside the model, as sentencepiece raises */
    String idToPiece(int id) {
        if (id < 0 || id >= pieceText.length) {
            throw new IllegalArgumentException("piece id %d is out of range: %s has ids 0..%d"
                    .formatted(id, model.file(), pieceText.length - 1));
        }
        return pieceText[id];
    }

    /** PieceToId: reserved pieces first, then the others, else the unknown id. */
    int pieceToId(String piece) {
        Integer id = reserved.get(piece);
        if (id == null) {
            id = pieces.get(piece);
        }
        return id == null ? unkId : id;
    }

    boolean isControl(int id) {
        return pieceType[id] == SentencePieceModel.PieceType.CONTROL;
    }

    boolean isUnknown(int id) {
        return pieceType[id] == SentencePieceModel.PieceType.UNKNOWN;
    }

    boolean isByte(int id) {
        return pieceType[id] == SentencePieceModel.PieceType.BYTE;
    }

    // ------------------------------------------------------------------------------------------------ encoding

    /** {@code encode(text, out_type=str)}: the pieces of {@code text}. */
    List<String> encode(String text) {
        byte[] normalizedBytes = normalizer.normalize(text);
        String normalized = new String(normalizedBytes, StandardCharsets.UTF_8);
        List<String> segments = model.modelType() == SentencePieceModel.ModelType.BPE
                ? bpe(normalized) : unigram(normalized);
        // PopulateSentencePieceText: byte fallback, or runs of unknown pieces merged into one.
        List<String> out = new ArrayList<>(segments.size());
        boolean prevUnknown = false;
        for (String w : segments) {
            int id = pieceToId(w);
            boolean unknown = isUnknown(id);
            if (isControl(id)) {
                out.add(w);
            } else if (unknown && model.byteFallback()) {
                for (byte b : w.getBytes(StandardCharsets.UTF_8)) {
                    out.add(pieceText[byteIds[b & 0xFF]]);
                }
            } else if (unknown && prevUnknown) {
                out.set(out.size() - 1, out.get(out.size() - 1) + w);
            } else {
                out.add(w);
            }
            prevUnknown = unknown;
        }
        return out;
    }

    /** bpe_model.cc Model::SampleEncode without dropout. */
    private List<String> bpe(String normalized) {
        int length = normalized.length();
        if (length == 0) {
            return List.of();
        }
        // Split into characters, user-defined symbols kept whole and frozen.
        int[] start = new int[length];
        int[] size = new int[length];
        int[] prev = new int[length];
        int[] next = new int[length];
        boolean[] freeze = new boolean[length];
        int count = 0;
        for (int at = 0; at < length; ) {
            int matched = longestUserDefined(normalized, at);
            int len = matched > 0 ? matched : Character.charCount(normalized.codePointAt(at));
            start[count] = at;
            size[count] = len;
            freeze[count] = matched > 0;
            prev[count] = count - 1;
            at += len;
            next[count] = at < length ? count + 1 : -1;
            count++;
        }
        record Pair(int left, int right, float score, int size) {
        }
        PriorityQueue<Pair> agenda = new PriorityQueue<>((a, b) -> a.score != b.score
                ? Float.compare(b.score, a.score) : Integer.compare(a.left, b.left));
        Map<String, String[]> revMerge = new HashMap<>();
        java.util.function.BiConsumer<Integer, Integer> maybeAdd = (left, right) -> {
            if (left == -1 || right == -1 || freeze[left] || freeze[right]) {
                return;
            }
            int merged = size[left] + size[right];
            String piece = normalized.substring(start[left], start[left] + merged);
            Integer id = pieces.get(piece);
            if (id == null) {
                return;
            }
            agenda.add(new Pair(left, right, pieceScore[id], merged));
            if (pieceType[id] == SentencePieceModel.PieceType.UNUSED) {
                revMerge.put(piece, new String[] {
                        normalized.substring(start[left], start[left] + size[left]),
                        normalized.substring(start[right], start[right] + size[right])});
            }
        };
        for (int i = 1; i < count; i++) {
            maybeAdd.accept(i - 1, i);
        }
        while (!agenda.isEmpty()) {
            Pair top = agenda.poll();
            if (size[top.left] == 0 || size[top.right] == 0 || size[top.left] + size[top.right] != top.size) {
                continue;                                     // a symbol of this pair was merged away meanwhile
            }
            size[top.left] += size[top.right];
            next[top.left] = next[top.right];
            if (next[top.right] >= 0) {
                prev[next[top.right]] = top.left;
            }
            size[top.right] = 0;
            maybeAdd.accept(prev[top.left], top.left);
            maybeAdd.accept(top.left, next[top.left]);
        }
        List<String> out = new ArrayList<>();
        for (int index = 0; index != -1; index = next[index]) {
            resegment(normalized.substring(start[index], start[index] + size[index]), revMerge, out);
        }
        return out;
    }

    /** UNUSED pieces are split back into the two symbols that made them. */
    private void resegment(String w, Map<String, String[]> revMerge, List<String> out) {
        Integer id = pieces.get(w);
        if (id == null || pieceType[id] != SentencePieceModel.PieceType.UNUSED) {
            out.add(w);
            return;
        }
        String[] parts = revMerge.get(w);
        if (parts == null) {
            out.add(w);
            return;
        }
        resegment(parts[0], revMerge, out);
        resegment(parts[1], revMerge, out);
    }

    private int longestUserDefined(String s, int at) {
        int best = 0;
        for (String symbol : userDefined) {
            if (symbol.length() > best && s.startsWith(symbol, at)) {
                best = symbol.length();
            }
        }
        return best;
    }

    /**
     * unigram_model.cc Model::EncodeOptimized: the best path ending at each position, scores summed as the
     * reference does (the candidate in double, the stored best in float), ties keeping the earlier start.
     */
    private List<String> unigram(String normalized) {
        int length = normalized.length();
        if (length == 0) {
            return List.of();
        }
        float unkScore = minScore - UNK_PENALTY;
        float[] bestScore = new float[length + 1];
        int[] startsAt = new int[length + 1];
        int[] bestId = new int[length + 1];
        java.util.Arrays.fill(startsAt, -1);
        for (int begin = 0; begin < length; ) {
            double tillHere = bestScore[begin];
            int charLen = Character.charCount(normalized.codePointAt(begin));
            boolean hasSingleNode = false;
            int limit = Math.min(length, begin + maxPieceChars);
            for (int end = begin + 1; end <= limit; end++) {
                Integer id = pieces.get(normalized.substring(begin, end));
                if (id == null || pieceType[id] == SentencePieceModel.PieceType.UNUSED) {
                    continue;
                }
                double score = pieceType[id] == SentencePieceModel.PieceType.USER_DEFINED
                        ? (double) ((float) utf8Length(normalized, begin, end) * maxScore) - 0.1
                        : pieceScore[id];
                double candidate = score + tillHere;
                if (startsAt[end] == -1 || candidate > bestScore[end]) {
                    bestScore[end] = (float) candidate;
                    startsAt[end] = begin;
                    bestId[end] = id;
                }
                if (end - begin == charLen) {
                    hasSingleNode = true;
                }
            }
            if (!hasSingleNode) {
                int end = begin + charLen;
                double candidate = unkScore + tillHere;
                if (startsAt[end] == -1 || candidate > bestScore[end]) {
                    bestScore[end] = (float) candidate;
                    startsAt[end] = begin;
                    bestId[end] = unkId;
                }
            }
            begin += charLen;
        }
        List<String> out = new ArrayList<>();
        for (int end = length; end > 0; end = startsAt[end]) {
            out.add(normalized.substring(startsAt[end], end));
        }
        java.util.Collections.reverse(out);
        return out;
    }

    private static int utf8Length(String s, int from, int to) {
        return s.substring(from, to).getBytes(StandardCharsets.UTF_8).length;
    }

    // ------------------------------------------------------------------------------------------------ decoding

    /**
     * {@code decode(pieces)} (DecodePieces): control pieces vanish, {@code <unk>} becomes the unknown surface
     * ({@code " ⁇ "}), runs of byte pieces are reassembled as UTF-8 (each invalid byte a U+FFFD), U+2581 becomes a
     * space, and the first piece loses its leading U+2581 when the model adds a dummy prefix or removes extra
     * whitespace.
     */
    String decode(List<String> decodePieces) {
        StringBuilder text = new StringBuilder();
        int n = decodePieces.size();
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = pieceToId(decodePieces.get(i));
        }
        int byteStart = 0;
        boolean isBosWs = true;
        boolean bosWsSeen = false;
        SentencePieceModel.Normalization spec = model.normalizer();
        for (int i = 0; i < n; i++) {
            if (isByte(ids[i])) {
                continue;
            }
            appendBytes(decodePieces, byteStart, i, text);
            if (bosWsSeen || !text.isEmpty()) {
                isBosWs = false;
            }
            byteStart = i + 1;
            String piece = decodePieces.get(i);
            int id = ids[i];
            boolean hasBosWs = false;
            String surface;
            if (isControl(id)) {
                surface = "";
            } else if (isUnknown(id)) {
                surface = pieceText[id].equals(piece) ? model.unkSurface() : piece;
            } else {
                if (isBosWs && (spec.addDummyPrefix() || spec.removeExtraWhitespaces())) {
                    if (piece.startsWith(SentencePieceNormalizer.SPACE_SYMBOL)) {
                        piece = piece.substring(1);
                        hasBosWs = true;
                    }
                    if (spec.removeExtraWhitespaces()) {
                        hasBosWs = false;               // keep stripping: all leading whitespace goes
                    }
                }
                surface = piece.replace(SentencePieceNormalizer.SPACE_SYMBOL, " ");
            }
            bosWsSeen = hasBosWs;
            text.append(surface);
        }
        appendBytes(decodePieces, byteStart, n, text);
        if (denormalizer != null) {
            return new String(denormalizer.normalize(text.toString()), StandardCharsets.UTF_8);
        }
        return text.toString();
    }

    /**
     * The bytes one piece decodes to in the middle of a text: a byte piece its byte, a control piece none, the
     * unknown piece the unknown surface, any other its text with U+2581 as a space (no leading-space removal).
     */
    byte[] pieceBytes(String piece) {
        int id = pieceToId(piece);
        if (isByte(id)) {
            return new byte[] {(byte) pieceToByte(piece)};
        }
        String surface = isControl(id) ? "" : isUnknown(id) && pieceText[id].equals(piece) ? model.unkSurface()
                : piece.replace(SentencePieceNormalizer.SPACE_SYMBOL, " ");
        return surface.getBytes(StandardCharsets.UTF_8);
    }

    /** ProcessBytePieces: one character per valid UTF-8 sequence, U+FFFD per invalid byte. */
    private static void appendBytes(List<String> decodePieces, int from, int to, StringBuilder text) {
        if (from >= to) {
            return;
        }
        byte[] bytes = new byte[to - from];
        for (int i = from; i < to; i++) {
            bytes[i - from] = (byte) pieceToByte(decodePieces.get(i));
        }
        for (int at = 0; at < bytes.length; ) {
            int length = SentencePieceNormalizer.validUtf8Length(bytes, at);
            if (length == 0) {
                text.append('\uFFFD');
                at++;
            } else {
                text.append(new String(bytes, at, length, StandardCharsets.UTF_8));
                at += length;
            }
        }
    }

    /** {@code <0xNN>} to its byte value, -1 for anything else (PieceToByte). */
    static int pieceToByte(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') {
            return -1;
        }
        int hi = Character.digit(piece.charAt(3), 16);
        int lo = Character.digit(piece.charAt(4), 16);
        return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
    }
}
