package koala4j.io.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Expected values are what Python's {@code fnmatch.fnmatchcase(path, pattern)} returns. */
@Timeout(10)
class GlobTest {

    @ParameterizedTest
    @CsvSource({
        "unet/*.safetensors, unet/diffusion_pytorch_model.safetensors, true",
        "unet/*.safetensors, unet/sub/x.safetensors, true",          // fnmatch '*' crosses '/'
        "unet/*.safetensors, vae/diffusion_pytorch_model.safetensors, false",
        "*.json, model_index.json, true",
        "*.json, text_encoder/config.json, true",
        "*.json, model.json.bak, false",
        "tokenizer/*, tokenizer/vocab.json, true",
        "tokenizer/*, tokenizer_2/vocab.json, false",
        "tokenizer/, tokenizer/merges.txt, true",                     // a trailing '/' means the whole folder
        "model.?.bin, model.1.bin, true",
        "model.?.bin, model.12.bin, false",
        "shard-[0-2].bin, shard-1.bin, true",
        "shard-[!0-2].bin, shard-1.bin, false",
        "shard-[!0-2].bin, shard-7.bin, true",
        "a[.json, a[.json, true",                                     // unclosed '[' is literal
        "config.json, Config.json, false",
        "(x)+.json, (x)+.json, true",                                  // regex syntax is literal
    })
    void matchesLikeFnmatch(String pattern, String path, boolean expected) {
        assertEquals(expected, Glob.anyOf(List.of(pattern)).matches(path), pattern + " vs " + path);
    }

    @org.junit.jupiter.api.Test
    void noPatternsMeansEverything() {
        assertEquals(true, Glob.anyOf(null).matches("any/file.bin"));
        assertEquals(true, Glob.anyOf(List.of()).matches("any/file.bin"));
        assertEquals(false, Glob.anyOf(List.of("*.json", "vae/*")).matches("unet/x.bin"));
        assertEquals(true, Glob.anyOf(List.of("*.json", "vae/*")).matches("vae/x.bin"));
    }
}
