package koala4j.tokenizers;

import java.util.List;
import java.util.Map;

/**
 * Turns chat messages into the prompt text a model was trained on: a shipped Jinja2 {@link ChatTemplate}, or one of the
 * original LLaVA code base's {@link LlavaConversation} templates. {@link #select} applies the rule for choosing.
 * Image parts become the model's image placeholder ({@code <image>}); expanding it into patch tokens is the caller's.
 */
public sealed interface PromptFormat permits ChatTemplate, LlavaConversation {

    /**
     * @param addGenerationPrompt end with the assistant's turn opened, ready for generation
     * @param specialTokens       variables such as bos_token / eos_token ({@link TextTokenizer#specialTokensMap()})
     */
    String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, Object> specialTokens);

    /** Where the format came from, for logs: a file, or a conversation template and why it was chosen. */
    String describe();

    /**
     * The prompt format of a model folder: the conversation template named by {@code override} when given (a name of
     * {@link LlavaConversation#templateNames()}); else the folder's shipped chat template ({@link ChatTemplate#fromFolder});
     * else the conversation template LLaVA's serve/cli.py infers from the model name
     * ({@link LlavaConversation#modeForModel}), the name being the folder's last path element (or its parent's with a
     * {@code checkpoint-} folder) as {@code get_model_name_from_path} takes it.
     *
     * @param modelName the model's name or path as the user gave it (e.g. "etri-vilab/Ko-LLaVA-13b"); null: the folder
     */
    static PromptFormat select(java.nio.file.Path folder, String modelName, String override) {
        if (override != null && !override.isEmpty()) {
            // a Jinja chat template file (llama.cpp's --chat-template-file), else a LLaVA conversation template name
            java.nio.file.Path file = java.nio.file.Path.of(override);
            if (java.nio.file.Files.isRegularFile(file)) {
                try {
                    return ChatTemplate.parse(java.nio.file.Files.readString(file), file.toString());
                } catch (java.io.IOException e) {
                    throw new IllegalArgumentException(file + ": cannot be read as a chat template: " + e.getMessage(), e);
                }
            }
            if (!LlavaConversation.templateNames().contains(override) && override.endsWith(".jinja")) {
                throw new IllegalArgumentException(file + ": no such chat template file");
            }
            return LlavaConversation.template(override).describedAs("conversation template '%s' (--conv-mode)".formatted(override));
        }
        var shipped = ChatTemplate.fromFolder(folder);
        if (shipped.isPresent()) {
            return shipped.get();
        }
        String name = LlavaConversation.modelNameFromPath(modelName != null ? modelName : folder.toAbsolutePath().normalize().toString());
        String mode = LlavaConversation.modeForModel(name);
        return LlavaConversation.template(mode).describedAs(
                "conversation template '%s' (no chat template in %s; inferred from model name '%s' as LLaVA's cli.py does)"
                        .formatted(mode, folder, name));
    }
}
