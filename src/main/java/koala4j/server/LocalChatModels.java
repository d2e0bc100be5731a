package koala4j.server;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import koala4j.io.json.Json;
import koala4j.pipelines.VisionChat;
import koala4j.tensor.Ops;
import koala4j.tensor.quant.Quantization;

/**
 * Chat models served from local model folders, their kind decided by the folder's config.json: LLaVA (either
 * layout) and LLaMA folders answer through {@link VisionChat}, T5 / mT5 / GBST-KEByT5 folders through
 * {@link koala4j.pipelines.TextToText} (the last user message is the input). Models load on their first request
 * and stay loaded, or, under a limit on loaded chat models ({@code serve --chat-max-loaded}) or on their bytes
 * ({@code --chat-memory-budget}, {@link #estimatedBytes}), the least recently used idle ones unload before another
 * loads past it (chat models are not counted in the image models' memory budget).
 */
public final class LocalChatModels {

    /** Which pipeline answers. */
    public enum Kind { VISION_CHAT, TEXT_TO_TEXT }

    private LocalChatModels() {
    }

    /**
     * The kind of a model folder from its config.json ({@code model_type} llava or llama; t5, mt5 or gbswt5).
     *
     * @throws koala4j.io.json.JsonException naming the file and field when it is neither
     */
    public static Kind kindOf(Path folder) {
        Path file = folder.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(file + ": missing (every model folder has its config.json)");
        }
        Json config = Json.read(file);
        String type = config.stringOr("model_type", "");
        if (List.of("t5", "mt5", "gbswt5").contains(type)) {
            return Kind.TEXT_TO_TEXT;
        }
        try {
            VisionChat.architectureOf(folder);
            return Kind.VISION_CHAT;
        } catch (koala4j.io.json.JsonException e) {
            throw config.error("model_type", Json.quote(type.isEmpty() ? "(none)" : type), "llava or llama (LLaVA, "
                    + "Ko-LLaVA, LLaMA: LlavaForConditionalGeneration, LlavaLlamaForCausalLM, LlamaForCausalLM) or t5,"
                    + " mt5, gbswt5 (KEByT5, ByT5)");
        }
    }

    /**
     * The bytes a chat model folder holds once loaded, as {@code serve --chat-memory-budget} counts it: its weight
     * files, a LLaMA / LLaVA language model's Linear weights at their quantised size
     * ({@link VisionChat#estimatedBytes}).
     */
    public static long estimatedBytes(Path folder, Quantization quantization) {
        return kindOf(folder) == Kind.VISION_CHAT ? VisionChat.estimatedBytes(folder, quantization)
                : koala4j.pipelines.PipelineFiles.checkpointBytes(folder);
    }

    /**
     * A chat model over {@code folder}; nothing is loaded until the first request.
     *
     * @param id      the model id clients send (a hub id, or the folder name)
     * @param options for LLaVA / LLaMA folders: quantisation, template, tower, frames, hub client
     */
    public static ChatModel open(String id, String displayName, Path folder, VisionChat.Options options, Ops ops) {
        return open(id, displayName, folder, options, ops, ChatModelLimit.NONE);
    }

    /** The same, loaded under {@code limit}, shared by the models it limits. */
    public static ChatModel open(String id, String displayName, Path folder, VisionChat.Options options, Ops ops,
                          ChatModelLimit limit) {
        return switch (kindOf(folder)) {
            case VISION_CHAT -> new VisionChatModel(id, displayName, folder, options, ops, limit);
            case TEXT_TO_TEXT -> new TextToTextChatModel(id, displayName, folder, ops, limit);
        };
    }

}
