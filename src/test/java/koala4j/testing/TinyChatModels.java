package koala4j.testing;

import static koala4j.testing.Close.resource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

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
        return llamaWithConfig(work, "llama-" + positions, config -> config.put("max_position_embeddings", positions));
    }

    /** A copy of the tiny LLaMA in {@code work/name} with config.json changed by {@code edit}; other files linked. */
    public static Path llamaWithConfig(Path work, String name,
                                       java.util.function.Consumer<com.fasterxml.jackson.databind.node.ObjectNode> edit) {
        try {
            Path target = work.resolve(name);
            Files.createDirectories(target);
            try (var files = Files.list(llama())) {
                for (Path file : files.toList()) {
                    Path to = target.resolve(file.getFileName().toString());
                    if (file.getFileName().toString().equals("config.json")) {
                        var config = (com.fasterxml.jackson.databind.node.ObjectNode)
                                new com.fasterxml.jackson.databind.ObjectMapper().readTree(file.toFile());
                        edit.accept(config);
                        Files.writeString(to, config.toString());
                    } else {
                        Files.createSymbolicLink(to, file.toAbsolutePath());
                    }
                }
            }
            return target;
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
