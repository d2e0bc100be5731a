package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * chat_templates/chat_vectors.json: the real Jinja2 3.1.6 in transformers' chat-template environment
 * (chat_templates/make_chat_vectors.py) rendering the golden LLaVA template, llava-1.5-hf's chat_template.json text
 * (selectattr/equalto, comments, {% generation %}), Llama-2-chat (raise_exception, slices, loop.index0), a Vicuna
 * template and a multi-line template exercising whitespace control, trim/lstrip blocks, namespace, scoping, tests,
 * filters, tojson and arithmetic, over seven conversations. Metric: the exact text, or an error where Jinja2 raises.
 */
class ChatTemplateTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void rendersAsJinja2() throws IOException {
        JsonNode data = JSON.readTree(resource("chat_templates/chat_vectors.json").toFile());
        Map<String, Object> specials = new LinkedHashMap<>();
        data.get("special_tokens").properties().forEach(e -> specials.put(e.getKey(), e.getValue().asText()));
        int checked = 0;
        for (JsonNode row : data.get("rows")) {
            String name = row.get("template").asText();
            ChatTemplate template = ChatTemplate.parse(data.get("templates").get(name).asText(), name);
            List<ChatMessage> messages = messages(data.get("conversations").get(row.get("conversation").asText()));
            boolean generation = row.get("add_generation_prompt").asBoolean();
            String what = name + " / " + row.get("conversation").asText() + " / " + generation;
            if (row.has("rendered")) {
                assertEquals(row.get("rendered").asText(), template.render(messages, generation, specials), what);
            } else {
                ChatTemplateException e = assertThrows(ChatTemplateException.class,
                        () -> template.render(messages, generation, specials), what);
                assertTrue(e.getMessage().startsWith(name + ":1: "), e.getMessage());
                if (row.get("error").asText().startsWith("TemplateError: Conversation roles")) {
                    assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
                }
            }
            checked++;
        }
        assertEquals(98, checked);
    }

    static List<ChatMessage> messages(JsonNode conversation) {
        List<ChatMessage> out = new ArrayList<>();
        for (JsonNode m : conversation) {
            String role = m.get("role").asText();
            JsonNode content = m.get("content");
            if (content.isTextual()) {
                out.add(ChatMessage.text(role, content.asText()));
                continue;
            }
            List<ChatMessage.ChatPart> parts = new ArrayList<>();
            for (JsonNode part : content) {
                switch (part.get("type").asText()) {
                    case "image" -> parts.add(new ChatMessage.ImagePart());
                    case "video" -> parts.add(new ChatMessage.VideoPart());
                    default -> parts.add(new ChatMessage.TextPart(part.get("text").asText()));
                }
            }
            out.add(ChatMessage.parts(role, parts.toArray(ChatMessage.ChatPart[]::new)));
        }
        return out;
    }

    @Test
    void goldenLlavaFolderTemplateReproducesTheRecordedPrompts() throws IOException {
        Path root = resource("golden/e2e/llava");
        Path folder = root.resolve("model");
        ChatTemplate template = ChatTemplate.fromFolder(folder).orElseThrow();
        assertTrue(template.describe().contains("chat_template.jinja"));
        TextTokenizer tokenizer = Tokenizers.loadText(folder, Tokenizers.Kind.AUTO);
        for (JsonNode run : JSON.readTree(root.resolve("expected.json").toFile()).get("runs")) {
            List<ChatMessage> messages = List.of(ChatMessage.parts("user", new ChatMessage.ImagePart(),
                    new ChatMessage.TextPart(run.get("question").asText())));
            String prompt = template.render(messages, true, tokenizer.specialTokensMap());
            assertEquals(run.get("prompt").asText(), prompt);
            int images = run.get("expected").get("num_image_tokens_in_prompt").intValue();
            assertEquals(List.of(run.get("expected").get("input_ids")).toString().length() > 0, true);
            int[] ids = tokenizer.encode(prompt.replace("<image>", "<image>".repeat(images)), true);
            assertEquals(JSON.writeValueAsString(run.get("expected").get("input_ids")), JSON.writeValueAsString(ids));
        }
    }

    @Test
    void syntaxErrorsNameTheFileAndLine() throws IOException {
        Path folder = Files.createDirectories(tmp.resolve("broken"));
        Files.writeString(folder.resolve("chat_template.jinja"), "{% for m in messages %}\n{{ m.role }}\n{% if x %}\n{% endfor %}");
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.fromFolder(folder));
        assertTrue(e.getMessage().startsWith(folder.resolve("chat_template.jinja") + ":"), e.getMessage());
        assertEquals(4, e.line(), e.getMessage());

        e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.parse("line one\n{{ 1 + }}", "t.jinja"));
        assertEquals("t.jinja", e.source());
        assertEquals(2, e.line(), e.getMessage());
        e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.parse("a\nb\n{% macro f() %}{% endmacro %}", "m"));
        assertTrue(e.getMessage().startsWith("m:3: ") && e.getMessage().contains("macro"), e.getMessage());
        e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.parse("{{ 'open", "s"));
        assertTrue(e.getMessage().contains("never closed") || e.getMessage().contains("unterminated"), e.getMessage());
        e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.parse("{% if true %}x", "u"));
        assertTrue(e.getMessage().contains("endif"), e.getMessage());
    }

    @Test
    void templateInTokenizerConfigAndProcessorConfig() throws IOException {
        Path folder = Files.createDirectories(tmp.resolve("cfg"));
        Files.writeString(folder.resolve("tokenizer_config.json"),
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": \"{{ bos_token }}{{ messages[0]['content'] }}\"}]}");
        ChatTemplate t = ChatTemplate.fromFolder(folder).orElseThrow();
        assertEquals("<s>hi", t.render(List.of(ChatMessage.text("user", "hi")), false, Map.of("bos_token", "<s>")));
        Files.writeString(folder.resolve("processor_config.json"), "{\"chat_template\": \"P{{ messages|length }}\"}");
        assertEquals("P1", ChatTemplate.fromFolder(folder).orElseThrow()
                .render(List.of(ChatMessage.text("user", "hi")), false, Map.of()));
        Files.writeString(folder.resolve("processor_config.json"), "{\"chat_template\": 5}");
        TokenizerException e = assertThrows(TokenizerException.class, () -> ChatTemplate.fromFolder(folder));
        assertTrue(e.getMessage().contains("processor_config.json") && e.getMessage().contains("chat_template is 5"),
                e.getMessage());
    }
}
