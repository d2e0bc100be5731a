package koala4j.testing;

import static koala4j.testing.Close.resource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The golden e2e language-model folders (shared/golden/e2e: transformers 4.57.6) ready to load: llama, llava (put
 * together in a work folder: its preprocessor_config.json is stored once, under e2e_images/llava), kollava_v0 (with
 * its tower in the sibling kollava_v0_vision, as its config.json's "../kollava_v0_vision" says) and t5.
 */
public final class TinyChatModels {

    private TinyChatModels() {
    }

    public static Path llama() {
        return resource("golden/e2e/llama/model");
    }

    /**
     * A copy of the tiny LLaMA in {@code work} whose config allows {@code positions} positions instead of 512 (its
     * default rotary frequencies do not depend on it, so the numbers stay the same), for prompts that a 512-position
     * context refuses, such as tool schemas rendered by the tiny tokenizer.
     */
    public static Path llamaWithContext(Path work, int positions) {
        return withConfig(llama(), work.resolve("llama-" + positions),
                config -> config.put("max_position_embeddings", positions), LLAMA_FILES);
    }

    /** The tiny LLaMA folder's files besides config.json. */
    public static final List<String> LLAMA_FILES = List.of("generation_config.json", "model.safetensors",
            "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json");

    /**
     * Model folder {@code to}: {@code from}'s config.json changed by {@code edit}, and {@code files} of {@code from}
     * linked, not copied (callers only read them).
     */
    public static Path withConfig(Path from, Path to, Consumer<ObjectNode> edit, List<String> files) {
        try {
            Files.createDirectories(to);
            ObjectMapper json = new ObjectMapper();
            ObjectNode config = (ObjectNode) json.readTree(from.resolve("config.json").toFile());
            edit.accept(config);
            json.writeValue(to.resolve("config.json").toFile(), config);
            for (String file : files) {
                Files.createSymbolicLink(to.resolve(file), from.resolve(file).toAbsolutePath());
            }
            return to;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The tiny LLaMA loaded as {@code chat} loads it, on the CPU (the caller closes it). */
    public static koala4j.pipelines.VisionChat loadLlama() {
        return koala4j.pipelines.VisionChat.load(llama(), null, koala4j.pipelines.VisionChat.Options.defaults(),
                new koala4j.backend.cpu.CpuOps());
    }

    public static Path kollava() {
        return resource("golden/e2e/kollava_v0");
    }

    public static Path t5() {
        return resource("golden/e2e/t5/model");
    }

    /** golden/e2e/&lt;name&gt;/expected.json. */
    public static Path expected(String name) {
        return resource("golden/e2e/" + name + "/expected.json");
    }

    /** The question image of the llava or kollava_v0 runs. */
    public static Path image(String name) {
        return resource("golden/e2e_images/" + name + "/image.png");
    }

    /** {@code work/llava}: the complete LlavaForConditionalGeneration + LlavaProcessor folder, assembled on first use. */
    public static synchronized Path llava(Path work) {
        Path target = work.resolve("llava");
        if (Files.isDirectory(target)) {
            return target;
        }
        try {
            TinyPipelines.copyTree(resource("golden/e2e/llava/model"), target);
            Files.copy(resource("golden/e2e_images/llava/preprocessor_config.json"),
                    target.resolve("preprocessor_config.json"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return target;
    }
}
