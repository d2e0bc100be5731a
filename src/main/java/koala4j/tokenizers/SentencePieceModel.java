package koala4j.tokenizers;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A SentencePiece {@code tokenizer.model}: the protobuf {@code ModelProto} of sentencepiece_model.proto, read by hand
 * (no protobuf dependency). Only the fields that encoding and decoding use are kept; every other field is skipped
 * by its wire type. Field numbers and defaults are those of sentencepiece 0.2 (proto2 defaults apply to absent
 * fields: model_type UNIGRAM, add_dummy_prefix / remove_extra_whitespaces / escape_whitespaces true).
 *
 * <p>Immutable; thread-safe.
 */
record SentencePieceModel(Path file, List<Piece> pieces, ModelType modelType, boolean byteFallback,
                          boolean treatWhitespaceAsSuffix, String unkSurface, Normalization normalizer,
                          Normalization denormalizer) {

    /** ModelProto.SentencePiece.Type; the numbers are the proto enum values. */
    enum PieceType {
        NORMAL(1), UNKNOWN(2), CONTROL(3), USER_DEFINED(4), UNUSED(5), BYTE(6);

        final int number;

        PieceType(int number) {
            this.number = number;
        }
    }

    /** TrainerSpec.ModelType. */
    enum ModelType { UNIGRAM, BPE, WORD, CHAR }

    record Piece(String text, float score, PieceType type) {
    }

    /**
     * NormalizerSpec: {@code name} is informational, {@code precompiledCharsmap} empty means no rule set (identity,
     * as LLaMA's); the denormalizer of a model is null when the model has none.
     */
    record Normalization(String name, byte[] precompiledCharsmap, boolean addDummyPrefix,
                         boolean removeExtraWhitespaces, boolean escapeWhitespaces) {
    }

    /** Larger than any real tokenizer.model (LLaMA's is 500 kB, multilingual unigram models a few MB). */
    private static final long MAX_BYTES = 256L << 20;

    static SentencePieceModel read(Path file) {
        byte[] bytes;
        try {
            long size = Files.size(file);
            if (size > MAX_BYTES) {
                throw new TokenizerException(file, "is %d bytes, expected at most %d for a SentencePiece model"
                        .formatted(size, MAX_BYTES));
            }
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new TokenizerException(file, "cannot be read: " + e, e);
        }
        return parse(bytes, file);
    }

    static SentencePieceModel parse(byte[] bytes, Path file) {
        Reader in = new Reader(bytes, 0, bytes.length, file, "ModelProto");
        List<Piece> pieces = new ArrayList<>();
        ModelType modelType = ModelType.UNIGRAM;
        boolean byteFallback = false;
        boolean suffix = false;
        String unkSurface = " \u2047 ";
        Normalization normalizer = null;
        Normalization denormalizer = null;
        while (in.more()) {
            int tag = in.tag();
            int field = tag >>> 3;
            int wire = tag & 7;
            switch (field) {
                case 1 -> pieces.add(piece(in.message(wire, "pieces[" + pieces.size() + "]"), pieces.size()));
                case 2 -> {
                    Reader trainer = in.message(wire, "trainer_spec");
                    while (trainer.more()) {
                        int t = trainer.tag();
                        switch (t >>> 3) {
                            case 3 -> {
                                long value = trainer.varint(t & 7, "trainer_spec.model_type");
                                if (value < 1 || value > 4) {
                                    throw new TokenizerException(file, ("trainer_spec.model_type is %d, expected "
                                            + "1 (UNIGRAM), 2 (BPE), 3 (WORD) or 4 (CHAR)").formatted(value));
                                }
                                modelType = ModelType.values()[(int) value - 1];
                            }
                            case 24 -> suffix = trainer.varint(t & 7, "trainer_spec.treat_whitespace_as_suffix") != 0;
                            case 35 -> byteFallback = trainer.varint(t & 7, "trainer_spec.byte_fallback") != 0;
                            case 44 -> unkSurface = trainer.string(t & 7, "trainer_spec.unk_surface");
                            default -> trainer.skip(t & 7, "trainer_spec field " + (t >>> 3));
                        }
                    }
                }
                case 3 -> normalizer = normalization(in.message(wire, "normalizer_spec"), "normalizer_spec");
                case 5 -> denormalizer = normalization(in.message(wire, "denormalizer_spec"), "denormalizer_spec");
                default -> in.skip(wire, "ModelProto field " + field);
            }
        }
        if (pieces.isEmpty()) {
            throw new TokenizerException(file, "holds no pieces (ModelProto field 1), expected a SentencePiece model");
        }
        if (normalizer == null) {
            normalizer = new Normalization("", new byte[0], true, true, true);
        }
        return new SentencePieceModel(file, List.copyOf(pieces), modelType, byteFallback, suffix, unkSurface,
                normalizer, denormalizer);
    }

    private static Piece piece(Reader in, int index) {
        String text = null;
        float score = 0f;
        PieceType type = PieceType.NORMAL;
        while (in.more()) {
            int tag = in.tag();
            switch (tag >>> 3) {
                case 1 -> text = in.string(tag & 7, "pieces[" + index + "].piece");
                case 2 -> score = in.float32(tag & 7, "pieces[" + index + "].score");
                case 3 -> {
                    long value = in.varint(tag & 7, "pieces[" + index + "].type");
                    type = Arrays.stream(PieceType.values()).filter(p -> p.number == value).findFirst()
                            .orElseThrow(() -> new TokenizerException(in.file, ("pieces[%d] has type %d, expected "
                                    + "1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED or 6 BYTE")
                                    .formatted(index, value)));
                }
                default -> in.skip(tag & 7, "pieces[" + index + "] field " + (tag >>> 3));
            }
        }
        if (text == null || text.isEmpty()) {
            // sentencepiece refuses this too ("piece must not be empty")
            throw new TokenizerException(in.file, "pieces[%d] has an empty piece, expected its text".formatted(index));
        }
        return new Piece(text, score, type);
    }

    private static Normalization normalization(Reader in, String what) {
        String name = "";
        byte[] charsmap = new byte[0];
        boolean dummyPrefix = true;
        boolean removeExtra = true;
        boolean escape = true;
        while (in.more()) {
            int tag = in.tag();
            switch (tag >>> 3) {
                case 1 -> name = in.string(tag & 7, what + ".name");
                case 2 -> charsmap = in.bytes(tag & 7, what + ".precompiled_charsmap");
                case 3 -> dummyPrefix = in.varint(tag & 7, what + ".add_dummy_prefix") != 0;
                case 4 -> removeExtra = in.varint(tag & 7, what + ".remove_extra_whitespaces") != 0;
                case 5 -> escape = in.varint(tag & 7, what + ".escape_whitespaces") != 0;
                default -> in.skip(tag & 7, what + " field " + (tag >>> 3));
            }
        }
        return new Normalization(name, charsmap, dummyPrefix, removeExtra, escape);
    }

    /** A copy of this model with {@code add_dummy_prefix} off, as LlamaTokenizer.get_spm_processor does for legacy=False. */
    SentencePieceModel withoutDummyPrefix() {
        Normalization n = normalizer;
        return new SentencePieceModel(file, pieces, modelType, byteFallback, treatWhitespaceAsSuffix, unkSurface,
                new Normalization(n.name(), n.precompiledCharsmap(), false, n.removeExtraWhitespaces(),
                        n.escapeWhitespaces()), denormalizer);
    }

    /** The protobuf wire format over one message's bytes; every error names the file, the field and the offset. */
    private static final class Reader {
        final byte[] bytes;
        final Path file;
        final String message;
        int at;
        final int end;

        Reader(byte[] bytes, int start, int end, Path file, String message) {
            this.bytes = bytes;
            this.at = start;
            this.end = end;
            this.file = file;
            this.message = message;
        }

        boolean more() {
            return at < end;
        }

        int tag() {
            long tag = rawVarint(message + " field tag");
            if (tag >>> 3 == 0 || tag > Integer.MAX_VALUE) {
                throw problem("field tag %d in %s".formatted(tag, message), "a field number of at least 1");
            }
            return (int) tag;
        }

        long varint(int wire, String field) {
            expectWire(wire, 0, field);
            return rawVarint(field);
        }

        float float32(int wire, String field) {
            expectWire(wire, 5, field);
            if (end - at < 4) {
                throw truncated(field, 4);
            }
            int bits = (bytes[at] & 0xFF) | (bytes[at + 1] & 0xFF) << 8 | (bytes[at + 2] & 0xFF) << 16
                    | (bytes[at + 3] & 0xFF) << 24;
            at += 4;
            return Float.intBitsToFloat(bits);
        }

        byte[] bytes(int wire, String field) {
            int length = length(wire, field);
            byte[] out = Arrays.copyOfRange(bytes, at, at + length);
            at += length;
            return out;
        }

        String string(int wire, String field) {
            int length = length(wire, field);
            try {
                String s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(java.nio.ByteBuffer.wrap(bytes, at, length)).toString();
                at += length;
                return s;
            } catch (CharacterCodingException e) {
                throw problem("%s (%d bytes at offset %d) is not UTF-8".formatted(field, length, at), "UTF-8 text");
            }
        }

        Reader message(int wire, String field) {
            int length = length(wire, field);
            Reader sub = new Reader(bytes, at, at + length, file, field);
            at += length;
            return sub;
        }

        void skip(int wire, String field) {
            switch (wire) {
                case 0 -> rawVarint(field);
                case 1 -> {
                    if (end - at < 8) {
                        throw truncated(field, 8);
                    }
                    at += 8;
                }
                case 2 -> {
                    int length = length(wire, field);   // reads the length varint, so not "at += length(...)"
                    at += length;
                }
                case 5 -> {
                    if (end - at < 4) {
                        throw truncated(field, 4);
                    }
                    at += 4;
                }
                default -> throw problem("%s has wire type %d at offset %d".formatted(field, wire, at),
                        "0 (varint), 1 (64-bit), 2 (length-delimited) or 5 (32-bit)");
            }
        }

        private int length(int wire, String field) {
            expectWire(wire, 2, field);
            long length = rawVarint(field + " length");
            if (length > end - at) {
                throw truncated(field, length);
            }
            return (int) length;
        }

        private long rawVarint(String field) {
            long value = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (at >= end) {
                    throw truncated(field, 1);
                }
                byte b = bytes[at++];
                value |= (long) (b & 0x7F) << shift;
                if (b >= 0) {
                    return value;
                }
            }
            throw problem("%s is a varint longer than 10 bytes at offset %d".formatted(field, at), "at most 10 bytes");
        }

        private void expectWire(int wire, int expected, String field) {
            if (wire != expected) {
                throw problem("%s has wire type %d at offset %d".formatted(field, wire, at), "wire type " + expected);
            }
        }

        private TokenizerException truncated(String field, long needed) {
            return new TokenizerException(file, ("is truncated or corrupt: %s needs %d more byte(s) at offset %d but "
                    + "%s ends at %d (file size %d); expected a complete SentencePiece ModelProto")
                    .formatted(field, needed, at, message, end, bytes.length));
        }

        private TokenizerException problem(String found, String expected) {
            return new TokenizerException(file, "is not a valid SentencePiece ModelProto: %s, expected %s"
                    .formatted(found, expected));
        }
    }
}
