package koala4j.tokenizers;

import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * golden/clip_tokenizer: transformers 4.57.6 slow CLIPTokenizer, ftfy NOT installed (case.json), on the real
 * openai/CLIP BPE (49 408 tokens, 48 894 merges); 40 prompts. Tokenizer 1 is SD/SDXL's text_encoder tokenizer
 * (pad {@code <|endoftext|>} = 49407), tokenizer 2 SDXL's text_encoder_2 tokenizer (pad {@code "!"} = 0). Here they
 * are the real SDXL pipeline folders' configs (golden/tokenizer_folders) over the golden vocab/merges.
 * Metric: exact equality of every id, token and mask value; tokenization has no tolerance.
 */
class ClipTokenizerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    static Path golden;
    static ClipTokenizer tokenizer1;
    static ClipTokenizer tokenizer2;
    static ClipTokenizer sd15;

    @BeforeAll
    static void loadFolders() throws IOException {
        golden = resource("golden/clip_tokenizer");
        tokenizer1 = ClipTokenizer.load(pipelineFolder("sdxl_tokenizer"));
        tokenizer2 = ClipTokenizer.load(pipelineFolder("sdxl_tokenizer_2"));
        sd15 = ClipTokenizer.load(pipelineFolder("sd15_tokenizer"));
    }

    // ---- golden prompts ----

    static Stream<Arguments> goldenCases() throws IOException {
        JsonNode rows = JSON.readTree(resource("golden/clip_tokenizer").resolve("tokens.json").toFile());
        assertEquals(40, rows.size(), "tokens.json rows");
        return IntStream.range(0, rows.size()).mapToObj(i -> Arguments.of(i, rows.get(i).get("prompt").asText(), rows.get(i)));
    }

    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("goldenCases")
    void untruncatedIdsAndTokensMatchSlowClipTokenizer(int index, String prompt, JsonNode row) {
        int[] ids = ints(row.get("ids_untruncated"));
        List<String> tokens = strings(row.get("tokens_untruncated"));
        assertArrayEquals(ids, tokenizer1.encode(prompt, Integer.MAX_VALUE, false, false).ids(), "ids with bos/eos");
        assertArrayEquals(Arrays.copyOfRange(ids, 1, ids.length - 1), tokenizer1.encode(prompt), "ids without bos/eos");
        assertEquals(tokens.subList(1, tokens.size() - 1), tokenizer1.tokens(prompt), "BPE tokens");
    }

    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("goldenCases")
    void paddedAndTruncatedTo77MatchBothSdxlTokenizers(int index, String prompt, JsonNode row) {
        ClipTokenizer.Encoding first = tokenizer1.encode(prompt, 77, true, true);
        assertArrayEquals(ints(row.get("ids_tokenizer1_pad77")), first.ids(), "tokenizer 1 ids");
        assertArrayEquals(ints(row.get("attention_mask_tokenizer1_pad77")), first.attentionMask(), "tokenizer 1 mask");
        ClipTokenizer.Encoding second = tokenizer2.encode(prompt, 77, true, true);
        assertArrayEquals(ints(row.get("ids_tokenizer2_pad77")), second.ids(), "tokenizer 2 ids");
        assertArrayEquals(ints(row.get("attention_mask_tokenizer2_pad77")), second.attentionMask(), "tokenizer 2 mask");
        assertArrayEquals(first.ids(), sd15.encode(prompt, sd15.maxLength(), true, true).ids(), "sd15 = SDXL tokenizer 1");
    }

    /**
     * transformers 5 saves a CLIP tokenizer as tokenizer_config.json + tokenizer.json only (no vocab.json/merges.txt);
     * this one is the golden vocab and merges in that layout, with the config 5.18 wrote for SD 1.5's tokenizer.
     */
    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("goldenCases")
    void aTokenizerJsonAloneGivesTheSameIds(int index, String prompt, JsonNode row) throws IOException {
        int[] ids = ints(row.get("ids_tokenizer1_pad77"));
        assertArrayEquals(ids, transformers5Folder().encode(prompt, 77, true, true).ids());
    }

    private static ClipTokenizer transformers5;

    private static synchronized ClipTokenizer transformers5Folder() throws IOException {
        if (transformers5 == null) {
            Path folder = tmp.resolve("transformers5-" + System.nanoTime());
            Files.createDirectories(folder);
            var model = JSON.createObjectNode().put("type", "BPE").putNull("dropout").put("unk_token", "<|endoftext|>")
                    .put("end_of_word_suffix", "</w>").put("fuse_unk", false).put("byte_fallback", false);
            model.set("vocab", JSON.readTree(golden.resolve("vocab.json").toFile()));
            var merges = model.putArray("merges");
            List<String> lines = Files.readAllLines(golden.resolve("merges.txt"));
            for (String line : lines.subList(1, lines.size())) {
                if (!line.isBlank()) {
                    String[] ab = line.split(" ");
                    merges.addArray().add(ab[0]).add(ab[1]);
                }
            }
            var json = JSON.createObjectNode().put("version", "1.0");
            json.set("model", model);
            JSON.writeValue(folder.resolve("tokenizer.json").toFile(), json);
            Files.writeString(folder.resolve("tokenizer_config.json"), """
                    {"backend": "tokenizers", "bos_token": "<|startoftext|>", "clean_up_tokenization_spaces": false,
                     "eos_token": "<|endoftext|>", "errors": "replace", "model_max_length": 77,
                     "pad_token": "<|endoftext|>", "tokenizer_class": "CLIPTokenizer", "unk_token": "<|endoftext|>"}""");
            transformers5 = (ClipTokenizer) Tokenizers.load(folder);
        }
        return transformers5;
    }

    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("goldenCases")
    void decodingThenEncodingGivesTheSameIds(int index, String prompt, JsonNode row) {
        int[] ids = tokenizer1.encode(prompt);
        assertArrayEquals(ids, tokenizer1.encode(tokenizer1.decode(ids)));
    }

    @Test
    void goldenWasMadeWithoutFtfy() throws IOException {
        JsonNode caseJson = JSON.readTree(golden.resolve("case.json").toFile());
        assertTrue(caseJson.get("classes").get("tokenizer").asText().contains("no ftfy"));
    }

    // ---- pipeline folders ----

    @Test
    void pipelineFoldersHaveTheirOwnPadTokens() {
        for (ClipTokenizer t : List.of(tokenizer1, tokenizer2, sd15)) {
            assertEquals(49406, t.bosId());
            assertEquals(49407, t.eosId());
            assertEquals(77, t.maxLength());
        }
        assertEquals(49407, tokenizer1.padId());
        assertEquals(0, tokenizer2.padId());
        assertEquals(49407, sd15.padId());
    }

    @Test
    void tokenizer2SplitsExclamationMarksOutAsItsPadToken() {
        // "!" is an added (special) token of tokenizer_2, so the trie cuts it out before BPE; tokenizer 1 merges "!!!".
        assertArrayEquals(new int[] {3306, 0, 0, 0, 1002, 3824}, tokenizer2.encode("hello!!! world???"));
        assertArrayEquals(new int[] {3306, 995, 1002, 3824}, tokenizer1.encode("hello!!! world???"));
    }

    @Test
    void truncationKeepsBosFirstAndEosLast() {
        String longPrompt = "a cat ".repeat(100);
        ClipTokenizer.Encoding truncated = tokenizer1.encode(longPrompt, 77, false, true);
        assertEquals(77, truncated.ids().length);
        assertEquals(49406, truncated.ids()[0]);
        assertEquals(49407, truncated.ids()[76]);
        assertTrue(Arrays.stream(truncated.attentionMask()).allMatch(m -> m == 1));
        assertEquals(202, tokenizer1.encode(longPrompt, 77, true, false).ids().length, "no truncation: whole prompt");
        ClipTokenizer.Encoding shortOne = tokenizer1.encode("a cat", 77, false, true);
        assertArrayEquals(new int[] {49406, 320, 2368, 49407}, shortOne.ids(), "no padding: only what is there");
        assertThrows(IllegalArgumentException.class, () -> tokenizer1.encode("a cat", 1, false, true));
    }

    // ---- decoding ----

    @Test
    void decodeFollowsConvertTokensToString() {
        // Expected strings: CLIPTokenizer.convert_tokens_to_string applied to the golden tokens.
        assertEquals("a photo of a cat", tokenizer1.decode(tokenizer1.encode("A Photo Of A CAT")));
        assertEquals("hello !!! world ???", tokenizer1.decode(tokenizer1.encode("hello!!! world???")));
        assertEquals("worst quality , low quality , illustration , low resolution",
                tokenizer1.decode(tokenizer1.encode("worst quality, low quality, illustration, low resolution")));
        assertEquals("don 't stop , it 's 5 o ' clock ; we 'll see . they 're here & we 've won",
                tokenizer1.decode(tokenizer1.encode("don't stop, it's 5 o'clock; we'll see. they're here & we've won")));
        assertEquals("multiple spaces and tabs and newlines",
                tokenizer1.decode(tokenizer1.encode("multiple     spaces\tand\ttabs\nand\nnewlines")));
        assertEquals("café naïve résumé über straße", tokenizer1.decode(tokenizer1.encode("café naïve résumé über straße")));
        assertEquals("日 本 語 のテキスト 東 京 タワー", tokenizer1.decode(tokenizer1.encode("日本語のテキスト 東京タワー")));
    }

    @Test
    void decodeKeepsSpecialTokensUnlessAskedToSkipThem() {
        int[] padded = tokenizer1.encode("a photo of a cat", 77, true, true).ids();
        assertEquals("<|startoftext|>a photo of a cat <|endoftext|>",
                tokenizer1.decode(Arrays.copyOf(padded, 7)));
        assertEquals("a photo of a cat", tokenizer1.decode(padded, true));
        assertEquals("a photo of a cat", tokenizer2.decode(tokenizer2.encode("a photo of a cat", 77, true, true).ids(), true));
        assertEquals("!!", tokenizer2.decode(new int[] {0, 0}));
    }

    @Test
    void decodeReplacesBrokenUtf8AsPython() {
        // 'æľ' is the token for bytes E6 9C, the first two bytes of 本; errors="replace" gives one U+FFFD.
        int id = tokenizer1.encode("日本語")[1];
        assertEquals("æľ", tokenizer1.tokens("日本語").get(1));
        assertEquals("\uFFFD", tokenizer1.decode(new int[] {id}));
        assertThrows(IllegalArgumentException.class, () -> tokenizer1.decode(new int[] {49408}));
        assertThrows(IllegalArgumentException.class, () -> tokenizer1.decode(new int[] {-1}));
    }

    // ---- loading variants ----

    @Test
    void legacyFolderTakesSpecialTokensFromSpecialTokensMap() throws IOException {
        // Saved before transformers 4.34 (no added_tokens_decoder): special_tokens_map.json overrides the config.
        Path folder = withVocab("legacy");
        Files.writeString(folder.resolve("tokenizer_config.json"), """
                {"bos_token": {"__type": "AddedToken", "content": "<|startoftext|>", "lstrip": false, "normalized": true,
                               "rstrip": false, "single_word": false},
                 "do_lower_case": true, "errors": "replace", "model_max_length": 77, "pad_token": "<|endoftext|>",
                 "tokenizer_class": "CLIPTokenizer", "unk_token": "<|endoftext|>"}""");
        Files.writeString(folder.resolve("special_tokens_map.json"), """
                {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>"}""");
        ClipTokenizer legacy = ClipTokenizer.load(folder);
        assertEquals(0, legacy.padId());
        assertArrayEquals(tokenizer2.encode("hello!!! world???"), legacy.encode("hello!!! world???"));

        // With added_tokens_decoder the config is complete and a contradicting special_tokens_map.json is ignored.
        Path modern = pipelineFolder("sdxl_tokenizer");
        Files.writeString(modern.resolve("special_tokens_map.json"), "{\"pad_token\": \"!\"}");
        assertEquals(49407, ClipTokenizer.load(modern).padId());
    }

    @Test
    void defaultsAreClipTokenizersWhenTheConfigIsEmpty() throws IOException {
        Path folder = withVocab("defaults");
        Files.writeString(folder.resolve("tokenizer_config.json"), "{}");
        ClipTokenizer defaults = ClipTokenizer.load(folder);
        assertEquals(49406, defaults.bosId());
        assertEquals(49407, defaults.eosId());
        assertEquals(49407, defaults.padId());
        assertEquals(Integer.MAX_VALUE, defaults.maxLength(), "no model_max_length: no limit (VERY_LARGE_INTEGER)");
    }

    @Test
    void unknownBpeTokensBecomeTheUnkToken() throws IOException {
        Path folder = tmp.resolve("tiny");
        Files.createDirectories(folder);
        Files.writeString(folder.resolve("vocab.json"), """
                {"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "<|startoftext|>": 5, "<|endoftext|>": 6}""");
        Files.writeString(folder.resolve("merges.txt"), "#version: 0.2\na b</w>\n");
        Files.writeString(folder.resolve("tokenizer_config.json"), "{\"model_max_length\": 8}");
        ClipTokenizer tiny = ClipTokenizer.load(folder);
        assertEquals(List.of("ab</w>", "z</w>", "a", "b", "a</w>"), tiny.tokens("ab z aba"));
        assertArrayEquals(new int[] {4, 6, 0, 1, 2}, tiny.encode("AB z aba"));
        assertArrayEquals(new int[] {5, 4, 6, 6, 6, 6, 6, 6}, tiny.encode("ab", 8, true, true).ids());
    }

    @Test
    void encodingIsThreadSafe() throws Exception {
        ClipTokenizer fresh = ClipTokenizer.load(pipelineFolder("sdxl_tokenizer"));   // cold cache
        List<String> prompts = goldenCases().map(a -> (String) a.get()[1]).toList();
        List<int[]> expected = prompts.stream().map(tokenizer1::encode).toList();
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Future<Boolean>> results = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int offset = t;
                results.add(pool.submit(() -> {
                    for (int k = 0; k < prompts.size() * 3; k++) {
                        int i = (k + offset * 7) % prompts.size();
                        if (!Arrays.equals(expected.get(i), fresh.encode(prompts.get(i)))) {
                            return false;
                        }
                    }
                    return true;
                }));
            }
            for (Future<Boolean> result : results) {
                assertTrue(result.get());
            }
        }
    }

    // ---- errors ----

    @Test
    void missingFolderAndFilesAreNamed() throws IOException {
        Path nowhere = tmp.resolve("does-not-exist");
        TokenizerException e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(nowhere));
        assertTrue(e.getMessage().contains("does-not-exist") && e.getMessage().contains("not a folder"), e.getMessage());

        for (String name : List.of("vocab.json", "merges.txt", "tokenizer_config.json")) {
            Path folder = pipelineFolder("sdxl_tokenizer", "missing-" + name);
            Files.delete(folder.resolve(name));
            e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
            assertEquals(folder.resolve(name), e.file());
            assertTrue(e.getMessage().contains("missing file"), e.getMessage());
        }
    }

    @Test
    void malformedFilesAreReportedWithLineOrField() throws IOException {
        Path folder = pipelineFolder("sdxl_tokenizer", "malformed");
        Path merges = folder.resolve("merges.txt");
        Files.writeString(merges, "#version: 0.2\ni n\nt h e\n");
        TokenizerException e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
        assertEquals(merges, e.file());
        assertTrue(e.getMessage().contains("line 3") && e.getMessage().contains("\"t h e\"")
                && e.getMessage().contains("expected two symbols"), e.getMessage());

        Files.writeString(merges, "#version: 0.2\ni n\n");
        Path vocab = folder.resolve("vocab.json");
        Files.writeString(vocab, "{\"a\": 0, \"b\": ");
        e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
        assertTrue(e.getMessage().contains("not valid JSON") && e.getMessage().contains("line 1"), e.getMessage());
        Files.writeString(vocab, "{\"a\": 0, \"b\": \"one\"}");
        e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
        assertTrue(e.getMessage().contains("token \"b\" has id one"), e.getMessage());
        Files.writeString(vocab, "[\"a\"]");
        e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
        assertTrue(e.getMessage().contains("expected a JSON object"), e.getMessage());
    }

    @Test
    void badConfigValuesAreReportedWithTheirField() throws IOException {
        Path folder = withVocab("bad-config");
        Path config = folder.resolve("tokenizer_config.json");
        Files.writeString(config, "{\"pad_token\": \"<pad>\"}");
        TokenizerException e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
        assertEquals(config, e.file());
        assertTrue(e.getMessage().contains("pad_token \"<pad>\" is neither in vocab.json"), e.getMessage());

        Files.writeString(config, "{\"model_max_length\": \"77\"}");
        e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
        assertTrue(e.getMessage().contains("model_max_length is \"77\", expected a positive integer"), e.getMessage());

        Files.writeString(config, "{\"tokenizer_class\": \"T5Tokenizer\"}");
        e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
        assertTrue(e.getMessage().contains("tokenizer_class is \"T5Tokenizer\", expected \"CLIPTokenizer\""), e.getMessage());

        Files.writeString(config, "{\"bos_token\": 5}");
        e = assertThrows(TokenizerException.class, () -> ClipTokenizer.load(folder));
        assertTrue(e.getMessage().contains("bos_token is 5, expected a string"), e.getMessage());

        Files.writeString(config, "{\"pad_token\": null}");
        ClipTokenizer noPad = ClipTokenizer.load(folder);
        IllegalStateException s = assertThrows(IllegalStateException.class, () -> noPad.encode("a", 77, true, true));
        assertTrue(s.getMessage().contains("sets no pad_token"), s.getMessage());
        assertEquals(3, noPad.encode("a", 77, false, true).ids().length, "no padding asked: no pad token needed");
    }

    // ---- helpers ----

    static Path resource(String name) {
        try {
            return Path.of(ClipTokenizerTest.class.getClassLoader().getResource(name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A copy of a pipeline tokenizer folder: its own configs plus the shared golden vocab.json/merges.txt. */
    static Path pipelineFolder(String name) throws IOException {
        return pipelineFolder(name, name + "-" + System.nanoTime());
    }

    static Path pipelineFolder(String name, String copyName) throws IOException {
        Path folder = withVocab(copyName);
        Path configs = resource("golden/tokenizer_folders/" + name);
        for (String file : List.of("tokenizer_config.json", "special_tokens_map.json")) {
            Files.copy(configs.resolve(file), folder.resolve(file));
        }
        return folder;
    }

    private static Path withVocab(String name) throws IOException {
        Path folder = tmp.resolve(name);
        Files.createDirectories(folder);
        Path source = resource("golden/clip_tokenizer");
        Files.copy(source.resolve("vocab.json"), folder.resolve("vocab.json"));
        Files.copy(source.resolve("merges.txt"), folder.resolve("merges.txt"));
        return folder;
    }


    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
