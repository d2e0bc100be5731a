package koala4j.pipelines;

import java.util.ArrayList;
import java.util.List;

import koala4j.tokenizers.ChatMessage;
import koala4j.tokenizers.ChatTemplate;
import koala4j.tokenizers.LlavaConversation;
import koala4j.tokenizers.PromptFormat;
import koala4j.tokenizers.TextTokenizer;

/**
 * Prompt text and prompt ids for {@link VisionChat}: a {@link Conversation} rendered with the model's
 * {@link PromptFormat}, each {@code <image>} placeholder then expanded into the image's feature rows the way the
 * model's own code does it. Pure functions.
 */
final class ChatPrompts {

    /** How the placeholders become token ids; one per checkpoint convention. */
    sealed interface Expansion permits Repeat, Placeholder {
    }

    /**
     * Each {@code <image>} replaced by {@code token} repeated once per feature row before tokenizing: transformers'
     * LlavaProcessor ({@code sample.replace(image_token, image_token * num_image_tokens)}) and LLaVA v0 / Ko-LLaVA
     * ({@code <im_patch>} * image_token_len).
     */
    record Repeat(String token) implements Expansion {
    }

    /**
     * LLaVA-1.5's {@code tokenizer_image_token} (llava/mm_utils.py): the text is split at each {@code <image>}, every
     * chunk tokenized on its own (with BOS), the chunks' BOS dropped after the first one, and {@code id} (-200)
     * put between them; the model expands each placeholder into an image's rows.
     */
    record Placeholder(int id) implements Expansion {
    }

    private ChatPrompts() {
    }

    /**
     * The prompt text of {@code c}, ending with the assistant's turn opened. Visuals become image placeholders before
     * their turn's text: image parts for a Jinja chat template ({@code partsContent}; a text-only model's template
     * gets plain string content instead), {@code <image>\n} (or {@code <im_start><image><im_end>\n}) prefixes for a
     * LLaVA conversation template, as serve/cli.py builds its first message.
     */
    static String render(PromptFormat format, Conversation c, TextTokenizer tokenizer, boolean partsContent) {
        List<ChatMessage> messages = new ArrayList<>();
        for (Conversation.Turn t : c.turns()) {
            String role = t.role().templateName();
            int images = t.imageCount();
            switch (format) {
                case ChatTemplate ignored when partsContent -> {
                    List<ChatMessage.ChatPart> parts = new ArrayList<>();
                    for (int i = 0; i < images; i++) {
                        parts.add(new ChatMessage.ImagePart());
                    }
                    parts.add(new ChatMessage.TextPart(t.text()));
                    messages.add(new ChatMessage(role, null, parts));
                }
                case ChatTemplate ignored -> messages.add(ChatMessage.text(role, t.text()));
                case LlavaConversation conv -> {
                    String text = t.text();
                    for (int i = 0; i < images; i++) {
                        text = LlavaConversation.imagePrompt(text, conv.imStartEnd());
                    }
                    messages.add(ChatMessage.text(role, text));
                }
            }
        }
        return format.render(messages, true, tokenizer.specialTokensMap());
    }

    /**
     * Whether to add the tokenizer's special tokens (BOS) to a rendered chat prompt: yes unless the prompt already
     * starts with the BOS text (transformers' ProcessorMixin.apply_chat_template rule).
     */
    static boolean addSpecialTokens(String prompt, TextTokenizer tokenizer) {
        if (tokenizer.bosId().isEmpty()) {
            return true;
        }
        String bos = tokenizer.idToToken(tokenizer.bosId().getAsInt());
        return bos.isEmpty() || !prompt.startsWith(bos);
    }

    /**
     * The ids of {@code prompt} with its {@code <image>} placeholders expanded: the i-th placeholder stands for image
     * i with {@code rowsPerImage[i]} feature rows.
     *
     * @throws IllegalArgumentException when the prompt's placeholders and the images do not pair up
     */
    static int[] tokenize(String prompt, int[] rowsPerImage, Expansion expansion, TextTokenizer tokenizer,
                          boolean addSpecialTokens) {
        String[] chunks = prompt.split(java.util.regex.Pattern.quote(LlavaConversation.IMAGE_TOKEN), -1);
        int placeholders = chunks.length - 1;
        if (placeholders != rowsPerImage.length) {
            throw new IllegalArgumentException("the prompt has " + placeholders + " " + LlavaConversation.IMAGE_TOKEN
                    + " placeholder(s) for " + rowsPerImage.length + " image(s)" + (placeholders > rowsPerImage.length
                    ? " (a text containing " + LlavaConversation.IMAGE_TOKEN + " itself, or a raw prompt with more"
                    + " placeholders than images)" : " (a chat template that does not place images, or a raw prompt"
                    + " without one " + LlavaConversation.IMAGE_TOKEN + " per image or video frame)"));
        }
        return switch (expansion) {
            case Repeat r -> {
                StringBuilder text = new StringBuilder(chunks[0]);
                for (int i = 0; i < placeholders; i++) {
                    text.append(r.token().repeat(rowsPerImage[i])).append(chunks[i + 1]);
                }
                yield tokenizer.encode(text.toString(), addSpecialTokens);
            }
            case Placeholder p -> tokenizerImageToken(chunks, p.id(), tokenizer, addSpecialTokens);
        };
    }

    /** mm_utils.tokenizer_image_token over the chunks between placeholders. */
    private static int[] tokenizerImageToken(String[] chunks, int placeholder, TextTokenizer tokenizer,
                                             boolean addSpecialTokens) {
        List<int[]> pieces = new ArrayList<>();
        for (String chunk : chunks) {
            pieces.add(tokenizer.encode(chunk, addSpecialTokens));
        }
        List<Integer> ids = new ArrayList<>();
        int offset = 0;
        int[] first = pieces.getFirst();
        if (first.length > 0 && tokenizer.bosId().isPresent() && first[0] == tokenizer.bosId().getAsInt()) {
            offset = 1;
            ids.add(first[0]);
        }
        // insert_separator(prompt_chunks, [image_token_index] * (offset + 1)), then each x[offset:]
        for (int i = 0; i < pieces.size(); i++) {
            if (i > 0) {
                int[] separator = new int[offset + 1];
                java.util.Arrays.fill(separator, placeholder);
                for (int k = offset; k < separator.length; k++) {
                    ids.add(separator[k]);
                }
            }
            int[] piece = pieces.get(i);
            for (int k = offset; k < piece.length; k++) {
                ids.add(piece[k]);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }
}
