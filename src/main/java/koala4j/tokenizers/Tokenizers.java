package koala4j.tokenizers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * Picks and loads the tokenizer of a model folder from its files, as transformers' {@code AutoTokenizer} would.
 * tokenizer_config.json {@code tokenizer_class} decides the family: LlamaTokenizer / LlamaTokenizerFast (and
 * CodeLlama / LLaMA-family aliases) load {@code tokenizer.json} when present ({@link HfTokenizer}, what the fast
 * tokenizer reads) and {@code tokenizer.model} otherwise ({@link LlamaTokenizer}); CLIPTokenizer(Fast) loads
 * {@link ClipTokenizer} (vocab.json + merges.txt). Without a class, the files decide: tokenizer.json, then
 * tokenizer.model. PreTrainedTokenizerFast / TokenizersBackend load tokenizer.json as it is. {@link Kind#SLOW} forces the SentencePiece path, which is what the original LLaVA code uses
 * ({@code use_fast=False}).
 */
public final class Tokenizers {

    /** Which implementation to prefer when a folder has both tokenizer.json and tokenizer.model. */
    public enum Kind {
        /** tokenizer.json when present (transformers' default, use_fast=True). */
        AUTO,
        /** tokenizer.model through the slow LlamaTokenizer (LLaVA's builder.py: use_fast=False). */
        SLOW,
        /** tokenizer.json only. */
        FAST
    }

    /**
     * Classes that are nothing but tokenizer.json: transformers 4's PreTrainedTokenizerFast and transformers 5's
     * TokenizersBackend (what 5.x writes when it saves a tokenizer it loaded through a generic class).
     */
    private static final Set<String> GENERIC = Set.of("PreTrainedTokenizerFast", "TokenizersBackend");

    private Tokenizers() {
    }

    /** {@link #load(Path, Kind)} with {@link Kind#AUTO}. */
    public static Tokenizer load(Path folder) {
        return load(folder, Kind.AUTO);
    }

    /**
     * @throws TokenizerException naming the folder, file and field when no tokenizer can be loaded: no known files,
     *                            an unsupported tokenizer_class, or a malformed file
     */
    public static Tokenizer load(Path folder, Kind kind) {
        if (!Files.isDirectory(folder)) {
            throw new TokenizerException(folder, "not a folder; expected a tokenizer folder with tokenizer_config.json and "
                    + "tokenizer.json, tokenizer.model or vocab.json + merges.txt");
        }
        Path configFile = folder.resolve(TokenizerFiles.CONFIG);
        String tokenizerClass = null;
        if (Files.isRegularFile(configFile)) {
            var node = TokenizerFiles.readObject(configFile).get("tokenizer_class");
            if (node != null && !node.isNull()) {
                if (!node.isTextual()) {
                    throw new TokenizerException(configFile, "tokenizer_class is %s, expected a class name such as "
                            .formatted(node) + "\"LlamaTokenizer\"");
                }
                tokenizerClass = node.asText();
            }
        }
        boolean hasJson = Files.isRegularFile(folder.resolve(TokenizerFiles.TOKENIZER_JSON));
        boolean hasModel = Files.isRegularFile(folder.resolve(LlamaTokenizer.MODEL_FILE));
        if (tokenizerClass != null && tokenizerClass.startsWith("CLIPTokenizer")) {
            return ClipTokenizer.load(folder);
        }
        if (tokenizerClass != null && GENERIC.contains(tokenizerClass)) {
            if (!hasJson) {
                throw new TokenizerException(folder.resolve(TokenizerFiles.TOKENIZER_JSON), ("missing file; tokenizer_class "
                        + "\"%s\" in %s is a tokenizers-library tokenizer.json").formatted(tokenizerClass, configFile));
            }
            return HfTokenizer.load(folder);
        }
        if (tokenizerClass != null && !isLlamaFamily(tokenizerClass)) {
            throw new TokenizerException(configFile, ("tokenizer_class is \"%s\", expected LlamaTokenizer, LlamaTokenizerFast, "
                    + "CLIPTokenizer, TokenizersBackend or PreTrainedTokenizerFast (the tokenizers koala4j implements)")
                    .formatted(tokenizerClass));
        }
        return switch (kind) {
            case SLOW -> {
                if (!hasModel) {
                    throw new TokenizerException(folder.resolve(LlamaTokenizer.MODEL_FILE),
                            "missing file; the slow LlamaTokenizer needs the SentencePiece model");
                }
                yield LlamaTokenizer.load(folder);
            }
            case FAST -> HfTokenizer.load(folder);
            case AUTO -> {
                if (hasJson) {
                    yield HfTokenizer.load(folder);
                }
                if (hasModel) {
                    yield LlamaTokenizer.load(folder);
                }
                if (tokenizerClass == null && Files.isRegularFile(folder.resolve(ClipTokenizerFiles.VOCAB))) {
                    throw new TokenizerException(configFile, "tokenizer_class is missing, expected \"CLIPTokenizer\" for a "
                            + "folder with vocab.json and merges.txt");
                }
                throw new TokenizerException(folder, "holds neither tokenizer.json nor tokenizer.model, expected one of them"
                        + (tokenizerClass == null ? "" : " for tokenizer_class \"" + tokenizerClass + "\" in " + configFile));
            }
        };
    }

    /**
     * {@link #load(Path, Kind)} for a language model's folder, whose tokenizer must be a {@link TextTokenizer}.
     *
     * @throws TokenizerException when the folder holds a CLIP tokenizer
     */
    public static TextTokenizer loadText(Path folder, Kind kind) {
        Tokenizer tokenizer = load(folder, kind);
        if (tokenizer instanceof TextTokenizer text) {
            return text;
        }
        throw new TokenizerException(folder.resolve(TokenizerFiles.CONFIG), "tokenizer_class is CLIPTokenizer, expected "
                + "a language-model tokenizer (LlamaTokenizer)");
    }

    private static boolean isLlamaFamily(String tokenizerClass) {
        String base = tokenizerClass.endsWith("Fast") ? tokenizerClass.substring(0, tokenizerClass.length() - 4) : tokenizerClass;
        return base.equals("LlamaTokenizer");
    }
}
