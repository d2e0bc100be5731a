package koala4j.tokenizers;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A language model's tokenizer as transformers exposes it to generation code: {@code tokenizer(text)}, {@code
 * decode(ids, skip_special_tokens)}, {@code tokenize}, the special tokens and the id lookups. {@link Tokenizers#load}
 * returns one for a model folder. Implementations are immutable after loading and thread-safe.
 */
public interface TextTokenizer extends Tokenizer {

    /**
     * {@code tokenizer(text, add_special_tokens=addSpecialTokens).input_ids}: with special tokens, the ids are wrapped
     * as the folder says (LLaMA: bos first when {@code add_bos_token}, eos last when {@code add_eos_token}).
     */
    int[] encode(String text, boolean addSpecialTokens);

    /** {@code tokenizer.decode(ids, skip_special_tokens=skipSpecialTokens)}. */
    String decode(int[] ids, boolean skipSpecialTokens);

    /** {@code tokenizer.tokenize(text)}: the token strings, added tokens whole. */
    List<String> tokenize(String text);

    /** {@code convert_ids_to_tokens(id)}. @throws IllegalArgumentException for an id the tokenizer does not have */
    String idToToken(int id);

    /** The id of exactly this token (an added token or a vocabulary entry); empty when there is none (no unk fallback). */
    OptionalInt tokenId(String token);

    /** {@code len(tokenizer)}: the vocabulary plus the added tokens. */
    int size();

    OptionalInt bosId();

    OptionalInt eosId();

    OptionalInt padId();

    OptionalInt unkId();

    /** Whether {@code id} is a special token ({@code all_special_ids}). */
    boolean isSpecial(int id);

    /**
     * {@code tokenizer.special_tokens_map}: {@code bos_token}, {@code eos_token}, {@code unk_token}, {@code pad_token},
     * ... to their text and {@code additional_special_tokens} to a list; unset ones are absent. Chat templates see these
     * as variables.
     */
    Map<String, Object> specialTokensMap();

    /** The folder the tokenizer was loaded from. */
    Path folder();

    /**
     * The bytes token {@code id} stands for, as llama.cpp's and OpenAI's log-probabilities report a token: a word
     * piece its text with its own leading space (which decoding drops at the start of a text), a byte token its one
     * byte (possibly part of a character), an added or special token its content.
     *
     * @throws IllegalArgumentException for an id the tokenizer does not have
     */
    byte[] tokenBytes(int id);

    /**
     * {@link #tokenBytes} as text: the UTF-8 string when the bytes are valid UTF-8, else OpenAI's spelling
     * {@code bytes:\xNN...} of the raw bytes.
     */
    static String tokenText(byte[] bytes) {
        try {
            return Utf8Decoder.decode(bytes, bytes.length, Utf8Decoder.Errors.STRICT);
        } catch (IllegalArgumentException e) {
            StringBuilder out = new StringBuilder("bytes:");
            for (byte b : bytes) {
                out.append("\\x").append(String.format("%02x", b & 0xFF));
            }
            return out.toString();
        }
    }

    @Override
    default int[] encode(String text) {
        return encode(text, false);
    }

    @Override
    default String decode(int[] ids) {
        return decode(ids, false);
    }
}
