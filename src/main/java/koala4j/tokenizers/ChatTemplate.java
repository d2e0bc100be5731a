package koala4j.tokenizers;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A model's Jinja2 chat template, rendered as transformers' {@code apply_chat_template} does (Jinja2 with
 * {@code trim_blocks} and {@code lstrip_blocks}, variables {@code messages}, {@code add_generation_prompt}, the special
 * tokens such as {@code bos_token} / {@code eos_token}, and {@code raise_exception}). Parsed once; immutable and
 * thread-safe (each render has its own state).
 */
public final class ChatTemplate implements PromptFormat {

    static final String JINJA_FILE = "chat_template.jinja";
    static final String JSON_FILE = "chat_template.json";
    static final String PROCESSOR_CONFIG = "processor_config.json";

    private final String source;
    private final String sourceName;
    private final List<JinjaParser.Node> body;

    private ChatTemplate(String source, String sourceName) {
        this.source = source;
        this.sourceName = sourceName;
        this.body = JinjaParser.parse(source, sourceName);
    }

    /**
     * Parses a template.
     *
     * @param sourceName where it came from, used in every error ("chat_template.jinja", ...)
     * @throws ChatTemplateException naming the source and line when the template does not parse
     */
    public static ChatTemplate parse(String source, String sourceName) {
        return new ChatTemplate(source, sourceName);
    }

    /**
     * The chat template a folder ships, looked for as transformers 4.57 does for a processor and its tokenizer:
     * chat_template.jinja, then chat_template.json {@code "chat_template"}, then processor_config.json
     * {@code "chat_template"}, then tokenizer_config.json {@code "chat_template"} (a string, or a list of
     * {@code {"name", "template"}} of which "default" is taken). Empty when the folder has none.
     *
     * @throws ChatTemplateException when the template found does not parse (naming the file and line)
     * @throws TokenizerException    when a file holding it is not valid JSON or the field has the wrong type
     */
    public static Optional<ChatTemplate> fromFolder(Path folder) {
        Path jinja = folder.resolve(JINJA_FILE);
        if (Files.isRegularFile(jinja)) {
            try {
                return Optional.of(parse(Files.readString(jinja, StandardCharsets.UTF_8), jinja.toString()));
            } catch (IOException e) {
                throw new TokenizerException(jinja, "cannot be read: " + e, e);
            }
        }
        for (String name : List.of(JSON_FILE, PROCESSOR_CONFIG, TokenizerFiles.CONFIG)) {
            Path file = folder.resolve(name);
            if (!Files.isRegularFile(file)) {
                continue;
            }
            JsonNode node = TokenizerFiles.readObject(file).get("chat_template");
            if (node == null || node.isNull()) {
                continue;
            }
            if (node.isTextual()) {
                return Optional.of(parse(node.asText(), file + " chat_template"));
            }
            if (node.isArray()) {
                for (JsonNode entry : node) {
                    if ("default".equals(entry.path("name").asText()) && entry.path("template").isTextual()) {
                        return Optional.of(parse(entry.get("template").asText(), file + " chat_template[default]"));
                    }
                }
                throw new TokenizerException(file, "chat_template is a list without a \"default\" entry, expected a string "
                        + "or [{\"name\": \"default\", \"template\": ...}]");
            }
            throw new TokenizerException(file, "chat_template is %s, expected a string".formatted(TokenizerFiles.abbreviate(node)));
        }
        return Optional.empty();
    }

    @Override
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, Object> specialTokens) {
        Map<String, Object> context = new LinkedHashMap<>(specialTokens);
        List<Object> values = new ArrayList<>();
        messages.forEach(m -> values.add(m.toTemplateValue()));
        context.put("messages", values);
        context.put("add_generation_prompt", addGenerationPrompt);
        return render(context);
    }

    /** Renders with arbitrary variables (values: String, Long, Double, Boolean, null, List, Map). */
    public String render(Map<String, Object> variables) {
        return new JinjaRuntime(sourceName, variables).render(body);
    }

    /** The template text. */
    public String source() {
        return source;
    }

    @Override
    public String describe() {
        return "chat template " + sourceName;
    }

    @Override
    public String toString() {
        return describe();
    }
}
