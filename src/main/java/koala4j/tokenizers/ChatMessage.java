package koala4j.tokenizers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One chat message as transformers' {@code apply_chat_template} takes it: a role ("system", "user", "assistant") and
 * content that is either a plain string or a list of parts ({@code {"type": "text", "text": ...}},
 * {@code {"type": "image"}}, {@code {"type": "video"}}). Immutable.
 *
 * @param text  the content when it is a plain string, else null
 * @param parts the content when it is a list of parts, else null
 */
public record ChatMessage(String role, String text, List<ChatPart> parts) {

    /** A part of a message's content. */
    public sealed interface ChatPart permits TextPart, ImagePart, VideoPart {
    }

    public record TextPart(String text) implements ChatPart {
        public TextPart {
            Objects.requireNonNull(text, "text");
        }
    }

    /** An image placeholder; the pixels travel separately (the processor expands the image token later). */
    public record ImagePart() implements ChatPart {
    }

    /** A video placeholder. */
    public record VideoPart() implements ChatPart {
    }

    public ChatMessage {
        Objects.requireNonNull(role, "role");
        if ((text == null) == (parts == null)) {
            throw new IllegalArgumentException("a message has either text or parts, not both or neither");
        }
        parts = parts == null ? null : List.copyOf(parts);
    }

    /** {@code {"role": role, "content": text}}. */
    public static ChatMessage text(String role, String text) {
        return new ChatMessage(role, text, null);
    }

    /** {@code {"role": role, "content": [parts...]}}. */
    public static ChatMessage parts(String role, ChatPart... parts) {
        return new ChatMessage(role, null, List.of(parts));
    }

    /** The text of the message: the string content, or the text parts joined by spaces. */
    public String plainText() {
        if (text != null) {
            return text;
        }
        List<String> texts = new ArrayList<>();
        for (ChatPart p : parts) {
            if (p instanceof TextPart t) {
                texts.add(t.text());
            }
        }
        return String.join(" ", texts);
    }

    /** The number of image parts. */
    public int imageCount() {
        return parts == null ? 0 : (int) parts.stream().filter(p -> p instanceof ImagePart).count();
    }

    /** The message as the template sees it: a dict with "role" and "content". */
    Map<String, Object> toTemplateValue() {
        Map<String, Object> message = new LinkedHashMap<>();
        message.put("role", role);
        if (text != null) {
            message.put("content", text);
        } else {
            List<Object> content = new ArrayList<>();
            for (ChatPart p : parts) {
                Map<String, Object> part = new LinkedHashMap<>();
                switch (p) {
                    case TextPart t -> {
                        part.put("type", "text");
                        part.put("text", t.text());
                    }
                    case ImagePart i -> part.put("type", "image");
                    case VideoPart v -> part.put("type", "video");
                }
                content.add(part);
            }
            message.put("content", content);
        }
        return message;
    }
}
