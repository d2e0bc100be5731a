package koala4j.cli;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import koala4j.testing.TinyChatModels;
import koala4j.testing.TinyPipelines;

/**
 * Language and vision-chat folders as transformers 5.18 saves them (src/test/resources/transformers5, made by its
 * make_transformers5.py), through {@code koala4j chat --json}. The golden e2e models re-saved by 5.x (config.json with
 * {@code rope_parameters}, tokenizer.json alone, {@code TokenizersBackend}, the image processor inside
 * processor_config.json, a CLIPVisionModel without its {@code vision_model.} level) give the golden ids; new tiny
 * models in variants/ (llama3 and linear rope, tied embeddings, one KV head, head_dim 24 with biases, bf16 and f16
 * weights; LLaVA with the "full" strategy on the last layer and no projector bias, and with two feature layers) give
 * the ids transformers 5.18 generated from their stored weights (and a Mistral whose 6-position sliding window is
 * shorter than two of the prompts). Greedy, eos_token_id=None; ids exact.
 */
@Timeout(120)
class Transformers5FoldersTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path work;


    private JsonNode ok(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out), new PrintWriter(err),
                Map.of("HF_HOME", work.resolve("hf-empty").toString(), "HF_HUB_OFFLINE", "1"));
        assertEquals(0, code, err.toString());
        try {
            return JSON.readTree(out.toString());
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + out + "\n" + err, e);
        }
    }

    private JsonNode chat(Path model, String image, String prompt, int maxNewTokens, String... options) {
        List<String> args = new ArrayList<>(List.of("chat", "--model", model.toString(), "--prompt", prompt,
                "--max-new-tokens", Integer.toString(maxNewTokens), "--ignore-eos", "--json"));
        args.addAll(List.of(options));
        if (image != null) {
            args.addAll(List.of("--image", image));
        } else {
            args.add("--raw");
        }
        return ok(args.toArray(String[]::new));
    }

    private static void check(JsonNode got, JsonNode inputIds, JsonNode newIds, String what) {
        assertArrayEquals(ints(inputIds), ints(got.get("prompt_ids")), what + ": prompt ids");
        assertArrayEquals(ints(newIds), ints(got.get("output_ids")), what + ": new ids");
    }

    @Test
    void llamaSavedByTransformers5GivesTheGoldenIds() throws IOException {
        JsonNode expected = JSON.readTree(TinyChatModels.expected("llama").toFile());
        for (JsonNode r : expected.get("runs")) {
            JsonNode got = chat(resource("transformers5/llama"), null, r.get("prompt").asText(),
                    r.get("max_new_tokens").asInt());
            check(got, r.at("/expected/input_ids"), r.at("/expected/new_ids"), r.get("prompt").asText());
        }
    }

    @Test
    void llavaSavedByTransformers5GivesTheGoldenIds() throws IOException {
        JsonNode expected = JSON.readTree(TinyChatModels.expected("llava").toFile());
        for (JsonNode r : expected.get("runs")) {
            JsonNode got = chat(resource("transformers5/llava"), TinyChatModels.image("llava").toString(),
                    r.get("question").asText(), r.get("max_new_tokens").asInt());
            check(got, r.at("/expected/input_ids"), r.at("/expected/new_ids"), r.get("question").asText());
            assertEquals(r.at("/expected/new_text").asText(), got.get("text").asText());
        }
    }

    @Test
    void koLlavaWithAVisionTowerSavedByTransformers5() throws IOException {
        JsonNode expected = JSON.readTree(TinyChatModels.kollava().resolve("expected.json").toFile());
        for (JsonNode r : expected.get("runs")) {
            JsonNode got = ok("chat", "--model", TinyChatModels.kollava().toString(), "--image",
                    TinyChatModels.image("kollava_v0").toString(), "--vision-tower",
                    resource("transformers5/kollava_v0_vision").toString(), "--prompt", r.get("question").asText(),
                    "--max-new-tokens", r.get("max_new_tokens").asText(), "--ignore-eos", "--json");
            check(got, r.at("/expected/input_ids"), r.at("/expected/new_ids"), r.get("question").asText());
        }
    }

    @Test
    void newLlamaConfigsAsTransformers5RunsThem() throws IOException {
        JsonNode expected = JSON.readTree(resource("transformers5/variants/expected.json").toFile());
        for (String name : List.of("llama3_tied_gqa1", "linear_bias_hd24")) {
            // the variants share the tokenizer of transformers5/llama
            Path model = work.resolve(name);
            TinyPipelines.copyTree(resource("transformers5/variants/" + name), model);
            for (String file : List.of("tokenizer.json", "tokenizer_config.json")) {
                Files.copy(resource("transformers5/llama/" + file), model.resolve(file));
            }
            for (JsonNode r : expected.at("/" + name + "/runs")) {
                JsonNode got = chat(model, null, r.get("prompt").asText(), r.get("new_ids").size());
                check(got, r.get("input_ids"), r.get("new_ids"), name + " " + r.get("prompt").asText());
            }
        }
    }

    @Test
    void mistralWithASlidingWindowShorterThanThePrompt() throws IOException {
        JsonNode expected = JSON.readTree(resource("transformers5/variants/expected.json").toFile());
        Path model = work.resolve("mistral_window");
        TinyPipelines.copyTree(resource("transformers5/variants/mistral_window"), model);
        for (String file : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(resource("transformers5/llama/" + file), model.resolve(file));
        }
        for (JsonNode r : expected.at("/mistral_window/runs")) {
            JsonNode got = chat(model, null, r.get("prompt").asText(), r.get("new_ids").size());
            check(got, r.get("input_ids"), r.get("new_ids"), "mistral " + r.get("prompt").asText());
            // prompts computed 4 positions at a time: each chunk's window reaches back into the cache
            JsonNode chunked = chat(model, null, r.get("prompt").asText(), r.get("new_ids").size(),
                    "--prefill-chunk", "4");
            check(chunked, r.get("input_ids"), r.get("new_ids"), "mistral in chunks of 4 " + r.get("prompt").asText());
        }
        // the window matters here: without it transformers answers the longest prompt differently
        JsonNode last = expected.at("/mistral_window/runs/2/new_ids");
        assertTrue(!last.equals(expected.at("/mistral_window/last_without_window")));
    }

    @Test
    void newLlavaConfigsAsTransformers5RunsThem() throws IOException {
        JsonNode expected = JSON.readTree(resource("transformers5/variants/expected.json").toFile());
        for (String name : List.of("llava_full_last", "llava_layers")) {
            for (JsonNode r : expected.at("/" + name + "/runs")) {
                JsonNode got = chat(resource("transformers5/variants/" + name), TinyChatModels.image("llava").toString(),
                        r.get("question").asText(), r.get("new_ids").size());
                check(got, r.get("input_ids"), r.get("new_ids"), name + " " + r.get("question").asText());
            }
        }
        // "full" keeps the class token: 16 patches + 1 image tokens, as the processor's num_additional_image_tokens says
        JsonNode full = expected.at("/llava_full_last/runs/0/input_ids");
        int images = 0;
        for (JsonNode id : full) {
            images += id.asInt() == 500 ? 1 : 0;
        }
        assertEquals(17, images, "image tokens in the full-strategy prompt");
    }

    @Test
    void llama3StyleChatModelWithByteLevelTokenizerAndSystemPrompt() throws IOException {
        // PreTrainedTokenizerFast saved by 5.x as TokenizersBackend (byte-level BPE), a Llama 3.1-style chat template,
        // llama3 rope, tied embeddings, eos_token_id [<|end_of_text|>, <|eot_id|>]
        JsonNode expected = JSON.readTree(resource("transformers5/variants/expected.json").toFile());
        Path model = resource("transformers5/variants/llama3_chat");
        for (JsonNode r : expected.at("/llama3_chat/runs")) {
            JsonNode got = ok("chat", "--model", model.toString(), "--system", r.get("system").asText(), "--prompt",
                    r.get("question").asText(), "--max-new-tokens", Integer.toString(r.get("new_ids").size()),
                    "--ignore-eos", "--json");
            check(got, r.get("input_ids"), r.get("new_ids"), r.get("question").asText());
            assertEquals(r.get("new_text").asText(), got.get("text").asText());
        }
    }
}
