package koala4j.tokenizers;

/**
 * A token matched in the raw text before any normalisation, as transformers' {@code AddedToken}
 * (tokenization_utils_base.py): special tokens such as {@code <|endoftext|>} and tokens listed in
 * {@code added_tokens_decoder}. {@code normalized} is kept for completeness: slow tokenizers without
 * {@code do_lower_case} never read it.
 */
record AddedToken(String content, int id, boolean singleWord, boolean lstrip, boolean rstrip,
                  boolean normalized, boolean special) {
}
