package koala4j.pipelines;

import java.util.List;
import java.util.Optional;

/**
 * The published checkpoints koala4j knows by hub id, with what they are. Any other folder or id of a supported
 * architecture loads from its own config files; this list is for {@code koala4j models} and for defaults.
 */
public final class ModelCatalog {

    /** What a model does. */
    public enum Task { TEXT_TO_IMAGE, VISION_CHAT, TEXT_TO_TEXT }

    public record Entry(String id, String family, Task task, String description) {
    }

    private static final List<Entry> ENTRIES = List.of(
            new Entry("etri-vilab/koala-700m", "koala", Task.TEXT_TO_IMAGE, "KOALA 700M UNet, SDXL distilled"),
            new Entry("etri-vilab/koala-1b", "koala", Task.TEXT_TO_IMAGE, "KOALA 1B UNet, SDXL distilled"),
            new Entry("etri-vilab/koala-lightning-700m", "koala-lightning", Task.TEXT_TO_IMAGE,
                    "KOALA-Lightning 700M (10 steps, trailing Euler)"),
            new Entry("etri-vilab/koala-lightning-1b", "koala-lightning", Task.TEXT_TO_IMAGE,
                    "KOALA-Lightning 1B (10 steps, trailing Euler)"),
            new Entry("stabilityai/stable-diffusion-xl-base-1.0", "sdxl", Task.TEXT_TO_IMAGE, "SDXL base 1.0 (2.6B UNet)"),
            new Entry("segmind/SSD-1B", "sdxl", Task.TEXT_TO_IMAGE, "Segmind SSD-1B, SDXL distilled"),
            new Entry("segmind/Segmind-Vega", "sdxl", Task.TEXT_TO_IMAGE, "Segmind Vega, SDXL distilled"),
            new Entry("runwayml/stable-diffusion-v1-5", "sd1", Task.TEXT_TO_IMAGE, "Stable Diffusion 1.5"),
            new Entry("stabilityai/stable-diffusion-2-1", "sd2", Task.TEXT_TO_IMAGE, "Stable Diffusion 2.1 (v-prediction)"),
            new Entry("nota-ai/bk-sdm-base", "bk-sdm", Task.TEXT_TO_IMAGE, "BK-SDM base, SD 1.4 distilled"),
            new Entry("nota-ai/bk-sdm-small", "bk-sdm", Task.TEXT_TO_IMAGE, "BK-SDM small"),
            new Entry("nota-ai/bk-sdm-tiny", "bk-sdm", Task.TEXT_TO_IMAGE, "BK-SDM tiny"),
            new Entry("nota-ai/bk-sdm-v2-base", "bk-sdm", Task.TEXT_TO_IMAGE, "BK-SDM v2 base, SD 2.1-base distilled"),
            new Entry("nota-ai/bk-sdm-v2-small", "bk-sdm", Task.TEXT_TO_IMAGE, "BK-SDM v2 small"),
            new Entry("nota-ai/bk-sdm-v2-tiny", "bk-sdm", Task.TEXT_TO_IMAGE, "BK-SDM v2 tiny"),
            new Entry("etri-vilab/Ko-LLaVA-13b", "llava-v0", Task.VISION_CHAT, "Ko-LLaVA 13B, Korean image/video QA"),
            new Entry("llava-hf/llava-1.5-7b-hf", "llava", Task.VISION_CHAT, "LLaVA 1.5 7B (transformers layout)"),
            new Entry("llava-hf/llava-v1.6-vicuna-7b-hf", "llava-next", Task.VISION_CHAT,
                    "LLaVA-NeXT 7B (Vicuna; anyres tiles)"),
            new Entry("llava-hf/llava-v1.6-mistral-7b-hf", "llava-next", Task.VISION_CHAT,
                    "LLaVA-NeXT 7B (Mistral; anyres tiles)"),
            new Entry("liuhaotian/llava-v1.5-7b", "llava", Task.VISION_CHAT, "LLaVA 1.5 7B (original layout)"),
            new Entry("liuhaotian/llava-v1.6-vicuna-7b", "llava-next", Task.VISION_CHAT,
                    "LLaVA-NeXT 7B (Vicuna; original layout)"),
            new Entry("etri-lirs/kebyt5-small-preview", "t5", Task.TEXT_TO_TEXT, "KEByT5 small, byte-level Korean T5"),
            new Entry("etri-lirs/kebyt5-base-preview", "t5", Task.TEXT_TO_TEXT, "KEByT5 base"),
            new Entry("etri-lirs/kebyt5-large-preview", "t5", Task.TEXT_TO_TEXT, "KEByT5 large"),
            new Entry("etri-lirs/gbst-kebyt5-base-preview", "gbst-t5", Task.TEXT_TO_TEXT, "GBST-KEByT5 base"));

    private ModelCatalog() {
    }

    public static List<Entry> entries() {
        return ENTRIES;
    }

    public static Optional<Entry> find(String id) {
        return ENTRIES.stream().filter(e -> e.id().equalsIgnoreCase(id)).findFirst();
    }
}
