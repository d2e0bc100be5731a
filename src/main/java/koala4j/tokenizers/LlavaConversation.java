package koala4j.tokenizers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The conversation templates of the original LLaVA code base (llava/conversation.py, haotian-liu/LLaVA v1.2):
 * {@code conv_templates} with their system prompts, roles and separators, and {@code Conversation.get_prompt} for the
 * five separator styles. {@code llava_v0} is what Ko-LLaVA (LLaVA v0) was trained with:
 * {@code system + "###" + "Human: " + message + "###" + ... + "Assistant:"}. Immutable: {@link #render} builds the
 * message list that {@code append_message} would, from a copy.
 *
 * <p>Image placement follows llava/serve/cli.py: the first user message that has image parts is prefixed with
 * {@code <image>\n} ({@code <im_start><image><im_end>\n} when the model's config has {@code mm_use_im_start_end});
 * the caller expands {@code <image>} into patch tokens.
 */
public record LlavaConversation(String name, String system, List<String> roles, List<List<String>> fewShot,
                                SeparatorStyle style, String sep, String sep2, String version, boolean imStartEnd,
                                String description) implements PromptFormat {

    /** conversation.py SeparatorStyle. */
    public enum SeparatorStyle { SINGLE, TWO, MPT, PLAIN, LLAMA_2 }

    public static final String IMAGE_TOKEN = "<image>";
    public static final String IM_START_TOKEN = "<im_start>";
    public static final String IM_END_TOKEN = "<im_end>";
    public static final String IMAGE_PATCH_TOKEN = "<im_patch>";

    private static final String HUMAN_SYSTEM = "A chat between a curious human and an artificial intelligence assistant. "
            + "The assistant gives helpful, detailed, and polite answers to the human's questions.";
    private static final String USER_SYSTEM = "A chat between a curious user and an artificial intelligence assistant. "
            + "The assistant gives helpful, detailed, and polite answers to the user's questions.";
    private static final String MMTAG_SYSTEM = "A chat between a curious user and an artificial intelligence assistant. "
            + "The assistant is able to understand the visual content that the user provides, and assist the user with a "
            + "variety of tasks using natural language."
            + "The visual content will be provided with the following format: <Image>visual content</Image>.";
    private static final String LLAMA_2_SYSTEM = "You are a helpful, respectful and honest assistant. Always answer as "
            + "helpfully as possible, while being safe.  Your answers should not include any harmful, unethical, racist, "
            + "sexist, toxic, dangerous, or illegal content. Please ensure that your responses are socially unbiased and "
            + "positive in nature.\n\nIf a question does not make any sense, or is not factually coherent, explain why "
            + "instead of answering something not correct. If you don't know the answer to a question, please don't share "
            + "false information.";
    private static final List<List<String>> VICUNA_V0_EXAMPLE = List.of(
            List.of("Human", "What are the key differences between renewable and non-renewable energy sources?"),
            List.of("Assistant", "Renewable energy sources are those that can be replenished naturally in a relatively "
                    + "short amount of time, such as solar, wind, hydro, geothermal, and biomass. "
                    + "Non-renewable energy sources, on the other hand, are finite and will eventually be "
                    + "depleted, such as coal, oil, and natural gas. Here are some key differences between "
                    + "renewable and non-renewable energy sources:\n"
                    + "1. Availability: Renewable energy sources are virtually inexhaustible, while non-renewable "
                    + "energy sources are finite and will eventually run out.\n"
                    + "2. Environmental impact: Renewable energy sources have a much lower environmental impact "
                    + "than non-renewable sources, which can lead to air and water pollution, greenhouse gas emissions, "
                    + "and other negative effects.\n"
                    + "3. Cost: Renewable energy sources can be more expensive to initially set up, but they typically "
                    + "have lower operational costs than non-renewable sources.\n"
                    + "4. Reliability: Renewable energy sources are often more reliable and can be used in more remote "
                    + "locations than non-renewable sources.\n"
                    + "5. Flexibility: Renewable energy sources are often more flexible and can be adapted to different "
                    + "situations and needs, while non-renewable sources are more rigid and inflexible.\n"
                    + "6. Sustainability: Renewable energy sources are more sustainable over the long term, while "
                    + "non-renewable sources are not, and their depletion can lead to economic and social instability.\n"));

    private static final Map<String, LlavaConversation> TEMPLATES = new LinkedHashMap<>();

    static {
        var vicunaV0 = conv("v0", HUMAN_SYSTEM, "Human", "Assistant", VICUNA_V0_EXAMPLE, SeparatorStyle.SINGLE, "###", null, "Unknown");
        var vicunaV1 = conv("v1", USER_SYSTEM, "USER", "ASSISTANT", List.of(), SeparatorStyle.TWO, " ", "</s>", "v1");
        var llama2 = conv("llama_2", LLAMA_2_SYSTEM, "USER", "ASSISTANT", List.of(), SeparatorStyle.LLAMA_2, "<s>", "</s>", "llama_v2");
        var mistralInstruct = conv("mistral_instruct", "", "USER", "ASSISTANT", List.of(), SeparatorStyle.LLAMA_2, "", "</s>", "llama_v2");
        var chatmlDirect = conv("chatml_direct", "<|im_start|>system\nAnswer the questions.", "<|im_start|>user\n",
                "<|im_start|>assistant\n", List.of(), SeparatorStyle.MPT, "<|im_end|>", null, "mpt");
        var plain = conv("plain", "", "", "", List.of(), SeparatorStyle.PLAIN, "\n", null, "Unknown");
        var llavaV0 = conv("llava_v0", HUMAN_SYSTEM, "Human", "Assistant", List.of(), SeparatorStyle.SINGLE, "###", null, "Unknown");
        var v0Mmtag = conv("v0_mmtag", MMTAG_SYSTEM, "Human", "Assistant", List.of(), SeparatorStyle.SINGLE, "###", null, "v0_mmtag");
        var llavaV1 = conv("llava_v1", HUMAN_SYSTEM, "USER", "ASSISTANT", List.of(), SeparatorStyle.TWO, " ", "</s>", "v1");
        var v1Mmtag = conv("v1_mmtag", MMTAG_SYSTEM, "USER", "ASSISTANT", List.of(), SeparatorStyle.TWO, " ", "</s>", "v1_mmtag");
        var llavaLlama2 = conv("llava_llama_2", "You are a helpful language and vision assistant. You are able to understand "
                + "the visual content that the user provides, and assist the user with a variety of tasks using natural language.",
                "USER", "ASSISTANT", List.of(), SeparatorStyle.LLAMA_2, "<s>", "</s>", "llama_v2");
        var mpt = conv("mpt", "<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. The assistant "
                + "gives helpful and honest answers.", "<|im_start|>user\n", "<|im_start|>assistant\n", List.of(),
                SeparatorStyle.MPT, "<|im_end|>", null, "mpt");
        register("default", vicunaV0);
        register("v0", vicunaV0);
        register("v1", vicunaV1);
        register("vicuna_v1", vicunaV1);
        register("llama_2", llama2);
        register("mistral_instruct", mistralInstruct);
        register("chatml_direct", chatmlDirect);
        register("mistral_direct", chatmlDirect);
        register("plain", plain);
        register("v0_plain", plain);
        register("llava_v0", llavaV0);
        register("v0_mmtag", v0Mmtag);
        register("llava_v1", llavaV1);
        register("v1_mmtag", v1Mmtag);
        register("llava_llama_2", llavaLlama2);
        register("mpt", mpt);
    }

    private static LlavaConversation conv(String name, String system, String user, String assistant,
                                          List<List<String>> fewShot, SeparatorStyle style, String sep, String sep2,
                                          String version) {
        return new LlavaConversation(name, system, List.of(user, assistant), fewShot, style, sep, sep2, version, false,
                "conversation template '" + name + "'");
    }

    private static void register(String key, LlavaConversation template) {
        TEMPLATES.put(key, new LlavaConversation(key, template.system, template.roles, template.fewShot, template.style,
                template.sep, template.sep2, template.version, false, "conversation template '" + key + "'"));
    }

    public LlavaConversation {
        roles = List.copyOf(roles);
        fewShot = List.copyOf(fewShot);
    }

    /** {@code conv_templates[name]}. @throws IllegalArgumentException naming the known templates */
    public static LlavaConversation template(String name) {
        LlavaConversation t = TEMPLATES.get(name);
        if (t == null) {
            throw new IllegalArgumentException("unknown conversation template '%s', expected one of %s or a Jinja chat"
                    .formatted(name, TEMPLATES.keySet()) + " template file");
        }
        return t;
    }

    /** The keys of {@code conv_templates}. */
    public static Set<String> templateNames() {
        return TEMPLATES.keySet();
    }

    /**
     * The conversation mode LLaVA's serve/cli.py (and eval/run_llava.py) infers from a model name: llama-2 →
     * llava_llama_2, mistral → mistral_instruct, v1.6-34b → chatml_direct, v1 → llava_v1, mpt → mpt, else llava_v0
     * (so "Ko-LLaVA-13b", without "v1", gets llava_v0). Case-insensitive substring tests in that order.
     */
    public static String modeForModel(String modelName) {
        String name = modelName.toLowerCase(java.util.Locale.ROOT);
        if (name.contains("llama-2")) {
            return "llava_llama_2";
        } else if (name.contains("mistral")) {
            return "mistral_instruct";
        } else if (name.contains("v1.6-34b")) {
            return "chatml_direct";
        } else if (name.contains("v1")) {
            return "llava_v1";
        } else if (name.contains("mpt")) {
            return "mpt";
        }
        return "llava_v0";
    }

    /** mm_utils.get_model_name_from_path: the last path element, or "parent_checkpoint-N" for a checkpoint folder. */
    public static String modelNameFromPath(String modelPath) {
        String path = modelPath.replace('\\', '/');
        while (path.startsWith("/")) {
            path = path.substring(1);
        }
        while (path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        String[] parts = path.split("/", -1);
        String last = parts[parts.length - 1];
        if (last.startsWith("checkpoint-") && parts.length > 1) {
            return parts[parts.length - 2] + "_" + last;
        }
        return last;
    }

    /** This template with {@code mm_use_im_start_end} (from the model's config.json) for image placement. */
    public LlavaConversation withImStartEnd(boolean useImStartEnd) {
        return new LlavaConversation(name, system, roles, fewShot, style, sep, sep2, version, useImStartEnd, description);
    }

    LlavaConversation describedAs(String text) {
        return new LlavaConversation(name, system, roles, fewShot, style, sep, sep2, version, imStartEnd, text);
    }

    /** The stop string cli.py streams until: {@code sep}, or {@code sep2} for the TWO style. */
    public String stopString() {
        return style == SeparatorStyle.TWO ? sep2 : sep;
    }

    /**
     * {@code Conversation.get_prompt} over the few-shot messages and {@code messages}: "user" maps to roles[0],
     * "assistant" to roles[1], a "system" message replaces the system prompt; with {@code addGenerationPrompt} an
     * empty assistant turn ({@code append_message(roles[1], None)}) ends the prompt.
     */
    @Override
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, Object> specialTokens) {
        String systemPrompt = system;
        List<String[]> turns = new ArrayList<>();
        fewShot.forEach(m -> turns.add(new String[] {m.get(0), m.get(1)}));
        boolean imagePlaced = false;
        for (ChatMessage m : messages) {
            switch (m.role()) {
                case "system" -> systemPrompt = m.plainText();
                case "user" -> {
                    String text = m.plainText();
                    if (m.imageCount() > 0 && !imagePlaced) {
                        text = imagePrompt(text, imStartEnd);
                        imagePlaced = true;
                    }
                    turns.add(new String[] {roles.get(0), text});
                }
                case "assistant" -> turns.add(new String[] {roles.get(1), m.plainText()});
                default -> throw new IllegalArgumentException("message role '%s', expected system, user or assistant"
                        .formatted(m.role()));
            }
        }
        if (addGenerationPrompt) {
            turns.add(new String[] {roles.get(1), null});
        }
        return prompt(systemPrompt, turns);
    }

    /** cli.py's first message: {@code <image>\n} + text, or {@code <im_start><image><im_end>\n} + text. */
    public static String imagePrompt(String text, boolean useImStartEnd) {
        return (useImStartEnd ? IM_START_TOKEN + IMAGE_TOKEN + IM_END_TOKEN : IMAGE_TOKEN) + "\n" + text;
    }

    /** Each {@code <image>} replaced by {@code count} copies of {@code patchToken} (LLaVA v0's image_token_len). */
    public static String expandImageTokens(String prompt, String patchToken, int count) {
        return prompt.replace(IMAGE_TOKEN, patchToken.repeat(count));
    }

    private String prompt(String systemPrompt, List<String[]> messages) {
        StringBuilder ret = new StringBuilder();
        switch (style) {
            case SINGLE -> {
                ret.append(systemPrompt).append(sep);
                for (String[] m : messages) {
                    if (m[1] != null && !m[1].isEmpty()) {
                        ret.append(m[0]).append(": ").append(m[1]).append(sep);
                    } else {
                        ret.append(m[0]).append(":");
                    }
                }
            }
            case TWO -> {
                String[] seps = {sep, sep2};
                ret.append(systemPrompt).append(seps[0]);
                for (int i = 0; i < messages.size(); i++) {
                    String[] m = messages.get(i);
                    if (m[1] != null && !m[1].isEmpty()) {
                        ret.append(m[0]).append(": ").append(m[1]).append(seps[i % 2]);
                    } else {
                        ret.append(m[0]).append(":");
                    }
                }
            }
            case MPT -> {
                ret.append(systemPrompt).append(sep);
                for (String[] m : messages) {
                    if (m[1] != null && !m[1].isEmpty()) {
                        ret.append(m[0]).append(m[1]).append(sep);
                    } else {
                        ret.append(m[0]);
                    }
                }
            }
            case LLAMA_2 -> {
                for (int i = 0; i < messages.size(); i++) {
                    String[] m = messages.get(i);
                    if (i == 0 && (m[1] == null || m[1].isEmpty() || !m[0].equals(roles.get(0)))) {
                        throw new IllegalArgumentException("first message should not be none and should come from user");
                    }
                    if (m[1] != null && !m[1].isEmpty()) {
                        String message = m[1];
                        if (i == 0) {
                            message = (systemPrompt.isEmpty() ? "" : "<<SYS>>\n" + systemPrompt + "\n<</SYS>>\n\n") + message;
                        }
                        if (i % 2 == 0) {
                            ret.append(sep).append("[INST] ").append(message).append(" [/INST]");
                        } else {
                            ret.append(" ").append(message).append(" ").append(sep2);
                        }
                    }
                }
                // ret.lstrip(self.sep): strips any leading characters found in sep
                int start = 0;
                while (!sep.isEmpty() && start < ret.length() && sep.indexOf(ret.charAt(start)) >= 0) {
                    start++;
                }
                return ret.substring(start);
            }
            case PLAIN -> {
                String[] seps = {sep, sep2};
                ret.append(systemPrompt);
                for (int i = 0; i < messages.size(); i++) {
                    String[] m = messages.get(i);
                    if (m[1] != null && !m[1].isEmpty()) {
                        if (seps[i % 2] == null) {
                            // Python raises TypeError on str + None here
                            throw new IllegalArgumentException("template '%s' has no sep2 for message %d".formatted(name, i));
                        }
                        ret.append(m[1]).append(seps[i % 2]);
                    }
                }
            }
        }
        return ret.toString();
    }

    @Override
    public String describe() {
        return description;
    }
}
