package koala4j.tokenizers;

import static koala4j.testing.Close.resource;
import static koala4j.testing.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * golden/e2e/kollava_v0: the v0 conversation prompt recorded by the oracle (system + "###Human: " + image tokens +
 * question + "###Assistant:") and its ids, built here from conv_llava_v0 with mm_use_im_start_end. The other expected
 * prompts follow llava/conversation.py get_prompt for the SINGLE / TWO / LLAMA_2 styles, spelled out per case.
 */
class LlavaConversationTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void kollavaV0PromptAndIdsFromTheConversationTemplate() throws IOException {
        Path folder = resource("golden/e2e/kollava_v0");
        JsonNode expected = JSON.readTree(folder.resolve("expected.json").toFile());
        boolean imStartEnd = JSON.readTree(folder.resolve("config.json").toFile()).get("mm_use_im_start_end").asBoolean();
        PromptFormat format = PromptFormat.select(folder, "etri-vilab/Ko-LLaVA-13b", null);
        LlavaConversation conv = assertInstanceOf(LlavaConversation.class, format);
        assertEquals("llava_v0", conv.name());
        assertTrue(conv.describe().contains("Ko-LLaVA-13b"), conv.describe());
        TextTokenizer tokenizer = Tokenizers.loadText(folder, Tokenizers.Kind.SLOW);
        int patches = expected.get("num_image_patches").intValue();
        for (JsonNode run : expected.get("runs")) {
            String prompt = conv.withImStartEnd(imStartEnd).render(List.of(ChatMessage.parts("user",
                    new ChatMessage.ImagePart(), new ChatMessage.TextPart(run.get("question").asText()))), true, Map.of());
            prompt = LlavaConversation.expandImageTokens(prompt, LlavaConversation.IMAGE_PATCH_TOKEN, patches);
            assertEquals(run.get("prompt").asText(), prompt);
            assertArrayEquals(ints(run.get("expected").get("input_ids")), tokenizer.encode(prompt, true));
        }
        assertEquals("###", conv.stopString());
    }

    @Test
    void multiTurnPrompts() {
        List<ChatMessage> chat = List.of(
                ChatMessage.parts("user", new ChatMessage.ImagePart(), new ChatMessage.TextPart("What is this?")),
                ChatMessage.text("assistant", "A koala."),
                ChatMessage.text("user", "어디에 살아요?"));
        String human = "A chat between a curious human and an artificial intelligence assistant. "
                + "The assistant gives helpful, detailed, and polite answers to the human's questions.";
        // SINGLE: system + sep, then "role: message" + sep per turn, "role:" for the open turn
        assertEquals(human + "###Human: <image>\nWhat is this?###Assistant: A koala.###Human: 어디에 살아요?###Assistant:",
                LlavaConversation.template("llava_v0").render(chat, true, Map.of()));
        // TWO: seps alternate " " and "</s>"
        assertEquals(human + " USER: <image>\nWhat is this? ASSISTANT: A koala.</s>USER: 어디에 살아요? ASSISTANT:",
                LlavaConversation.template("llava_v1").render(chat, true, Map.of()));
        String user = "A chat between a curious user and an artificial intelligence assistant. "
                + "The assistant gives helpful, detailed, and polite answers to the user's questions.";
        assertEquals(user + " USER: <image>\nWhat is this? ASSISTANT: A koala.</s>USER: 어디에 살아요? ",
                LlavaConversation.template("vicuna_v1").render(chat, false, Map.of()));
        assertEquals("</s>", LlavaConversation.template("vicuna_v1").stopString());
        // LLAMA_2: [INST] <<SYS>> ... [/INST] answer </s><s>[INST] ... [/INST], leading sep characters stripped
        assertEquals("[INST] <<SYS>>\nYou are a helpful language and vision assistant. You are able to understand the "
                        + "visual content that the user provides, and assist the user with a variety of tasks using natural "
                        + "language.\n<</SYS>>\n\n<image>\nWhat is this? [/INST] A koala. </s><s>[INST] 어디에 살아요? [/INST]",
                LlavaConversation.template("llava_llama_2").render(chat, true, Map.of()));
        // the few-shot example of conv_vicuna_v0 comes first
        String v0 = LlavaConversation.template("v0").render(List.of(ChatMessage.text("user", "Hi")), true, Map.of());
        assertTrue(v0.startsWith(human + "###Human: What are the key differences between renewable"), v0);
        assertTrue(v0.endsWith("economic and social instability.\n###Human: Hi###Assistant:"), v0);
        // a system message replaces the template's system prompt
        assertEquals("Be brief.###Human: Hi###Assistant:", LlavaConversation.template("llava_v0")
                .render(List.of(ChatMessage.text("system", "Be brief."), ChatMessage.text("user", "Hi")), true, Map.of()));
    }

    @Test
    void modeFromModelNameAsLlavaCli() {
        assertEquals("llava_v0", LlavaConversation.modeForModel("Ko-LLaVA-13b"));
        assertEquals("llava_v1", LlavaConversation.modeForModel("llava-v1.5-7b"));
        assertEquals("llava_llama_2", LlavaConversation.modeForModel("llava-llama-2-13b-chat-lightning-preview"));
        assertEquals("mistral_instruct", LlavaConversation.modeForModel("llava-v1.6-mistral-7b"));
        assertEquals("chatml_direct", LlavaConversation.modeForModel("llava-v1.6-34b"));
        assertEquals("mpt", LlavaConversation.modeForModel("LLaVA-Lightning-MPT-7B-preview"));
        assertEquals("Ko-LLaVA-13b", LlavaConversation.modelNameFromPath("etri-vilab/Ko-LLaVA-13b/"));
        assertEquals("llava-13b_checkpoint-500", LlavaConversation.modelNameFromPath("/runs/llava-13b/checkpoint-500"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlavaConversation.template("nope"));
        assertTrue(e.getMessage().contains("llava_v0"), e.getMessage());
    }

    @Test
    void selectionPrefersTheOverrideThenTheShippedTemplate() {
        Path llava = resource("golden/e2e/llava/model");
        assertInstanceOf(ChatTemplate.class, PromptFormat.select(llava, "llava-hf/llava-1.5-7b-hf", null));
        PromptFormat forced = PromptFormat.select(llava, null, "vicuna_v1");
        assertEquals("vicuna_v1", assertInstanceOf(LlavaConversation.class, forced).name());
        PromptFormat byFolderName = PromptFormat.select(resource("golden/e2e/kollava_v0"), null, null);
        assertEquals("llava_v0", ((LlavaConversation) byFolderName).name());
    }
}
