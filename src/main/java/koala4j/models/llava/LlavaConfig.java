package koala4j.models.llava;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import koala4j.io.json.Json;
import koala4j.models.llama.LlamaConfig;
import koala4j.tensor.Activation;

/**
 * A LLaVA config.json in either of the two published layouts.
 * <ul>
 * <li>{@link Layout#TRANSFORMERS}: transformers {@code LlavaConfig} (models/llava/configuration_llava.py) with
 * {@code text_config}, {@code vision_config}, {@code image_token_index}, {@code vision_feature_layer},
 * {@code vision_feature_select_strategy}, {@code projector_hidden_act}, {@code multimodal_projector_bias},
 * {@code image_seq_length} (llava-hf/llava-1.5-7b-hf); and {@code LlavaNextConfig} (models/llava_next), the same
 * fields plus {@code image_grid_pinpoints} (llava-hf/llava-v1.6-vicuna-7b-hf).</li>
 * <li>{@link Layout#ORIGINAL}: the LLaVA repository's {@code LlavaLlamaForCausalLM} (llava/model/llava_arch.py and
 * the v0 code Ko-LLaVA ships): the LLaMA fields at the top level plus {@code mm_vision_tower},
 * {@code mm_hidden_size}, {@code mm_projector_type} (default linear), {@code mm_vision_select_layer},
 * {@code mm_vision_select_feature} (default patch), {@code mm_use_im_start_end}, {@code mm_use_im_patch_token}
 * (etri-vilab/Ko-LLaVA-13b, liuhaotian/llava-v1.5-7b), and LLaVA-NeXT's {@code image_aspect_ratio} anyres with
 * {@code image_grid_pinpoints} and {@code mm_patch_merge_type} spatial_unpad (liuhaotian/llava-v1.6-vicuna-7b).</li>
 * </ul>
 *
 * @param visionFeatureLayers hidden-state indices of the vision tower whose outputs feed the projector
 * @param dropClsToken        "default" / "patch": drop the first (CLS) row of the tower's features
 * @param projectorDepth      Linear layers in the projector (transformers: 2; original: 1 for linear, N for mlpNx_gelu)
 * @param visionHiddenSize    width of one selected layer (vision_config.hidden_size / mm_hidden_size)
 * @param visionTower         ORIGINAL: mm_vision_tower (a hub id or a path); TRANSFORMERS: null (the tower's weights
 *                            are in the same checkpoint under vision_tower.*)
 * @param visionConfig        TRANSFORMERS: vision_config (a CLIPVisionConfig); ORIGINAL: null
 * @param imageTokenIndex     TRANSFORMERS: image_token_index; ORIGINAL: -200, the placeholder id LLaVA's
 *                            tokenizer_image_token puts where "&lt;image&gt;" was (used unless patch tokens are)
 * @param imageGridPinpoints  LLaVA-NeXT: the anyres resolutions {height, width} (image_grid_pinpoints); null for
 *                            LLaVA and LLaVA-1.5, whose images are one tile
 */
public record LlavaConfig(Layout layout, LlamaConfig textConfig, List<Integer> visionFeatureLayers,
                          boolean dropClsToken, int projectorDepth, Activation projectorAct, boolean projectorBias,
                          int visionHiddenSize, String visionTower, Json visionConfig, int imageTokenIndex,
                          int imageSeqLength, boolean useImStartEnd, boolean useImPatchToken,
                          List<int[]> imageGridPinpoints) {

    /** Which code wrote the checkpoint; it decides the weight keys and the image-token convention. */
    public enum Layout { TRANSFORMERS, ORIGINAL }

    /** LLaVA's IMAGE_TOKEN_INDEX (llava/constants.py). */
    public static final int ORIGINAL_IMAGE_PLACEHOLDER = -200;

    private static final Pattern MLP_GELU = Pattern.compile("^mlp(\\d+)x_gelu$");

    public LlavaConfig {
        visionFeatureLayers = List.copyOf(visionFeatureLayers);
        imageGridPinpoints = imageGridPinpoints == null ? null : List.copyOf(imageGridPinpoints);
    }

    /** A LLaVA / LLaVA-1.5 config (no anyres grid). */
    public LlavaConfig(Layout layout, LlamaConfig textConfig, List<Integer> visionFeatureLayers, boolean dropClsToken,
                       int projectorDepth, Activation projectorAct, boolean projectorBias, int visionHiddenSize,
                       String visionTower, Json visionConfig, int imageTokenIndex, int imageSeqLength,
                       boolean useImStartEnd, boolean useImPatchToken) {
        this(layout, textConfig, visionFeatureLayers, dropClsToken, projectorDepth, projectorAct, projectorBias,
                visionHiddenSize, visionTower, visionConfig, imageTokenIndex, imageSeqLength, useImStartEnd,
                useImPatchToken, null);
    }

    /** LLaVA-NeXT: images are cut into tiles (anyres) and packed with an image_newline row. */
    public boolean anyres() {
        return imageGridPinpoints != null;
    }

    /** True when config.json is a LLaVA config of either layout. */
    public static boolean isLlava(Json j) {
        List<String> arch = j.has("architectures") && !j.isNull("architectures") ? j.stringList("architectures")
                : List.of();
        return arch.contains("LlavaForConditionalGeneration") || arch.contains("LlavaNextForConditionalGeneration")
                || arch.contains("LlavaLlamaForCausalLM")
                || j.has("mm_vision_tower") || j.has("text_config") && j.has("vision_config");
    }

    public static LlavaConfig from(Json j) {
        List<String> arch = j.has("architectures") && !j.isNull("architectures") ? j.stringList("architectures")
                : List.of();
        if (arch.contains("LlavaLlamaForCausalLM") || j.has("mm_vision_tower")) {
            return original(j);
        }
        if (arch.contains("LlavaForConditionalGeneration") || arch.contains("LlavaNextForConditionalGeneration")
                || j.has("text_config")) {
            return transformers(j);
        }
        throw j.error("architectures", arch.toString(), "LlavaForConditionalGeneration, "
                + "LlavaNextForConditionalGeneration or LlavaLlamaForCausalLM (or an mm_vision_tower field)");
    }

    private static LlavaConfig transformers(Json j) {
        Json text = j.objectOr("text_config").orElseThrow(() -> j.error("text_config", "missing",
                "the language model's config (a LlamaConfig)"));
        String textType = text.stringOr("model_type", "llama");
        if (!textType.equals("llama") && !textType.equals("mistral")) {
            throw text.error("model_type", "\"" + textType + "\"", "\"llama\" or \"mistral\" (the language models this"
                    + " port runs)");
        }
        Json vision = j.objectOr("vision_config").orElseThrow(() -> j.error("vision_config", "missing",
                "the vision tower's config (a CLIPVisionConfig)"));
        List<Integer> layers = switch (j.kind("vision_feature_layer")) {
            case MISSING -> List.of(-2);
            case NUMBER -> List.of(j.intValue("vision_feature_layer"));
            case LIST -> j.intList("vision_feature_layer");
            default -> throw j.error("vision_feature_layer", j.kind("vision_feature_layer").toString(),
                    "a layer index or a list of them");
        };
        String strategy = j.stringOr("vision_feature_select_strategy", "default");
        if (!strategy.equals("default") && !strategy.equals("full")) {
            throw j.error("vision_feature_select_strategy", "\"" + strategy + "\"", "\"default\" or \"full\"");
        }
        String act = j.stringOr("projector_hidden_act", "gelu");
        List<String> arch = j.has("architectures") && !j.isNull("architectures") ? j.stringList("architectures")
                : List.of();
        boolean next = arch.contains("LlavaNextForConditionalGeneration") || j.stringOr("model_type", "").equals("llava_next");
        if (next && !strategy.equals("default")) {
            // pack_image_features lays the tiles' features out on a grid without the CLS row
            throw j.error("vision_feature_select_strategy", "\"" + strategy + "\"", "\"default\" for LLaVA-NeXT");
        }
        return new LlavaConfig(Layout.TRANSFORMERS, LlamaConfig.from(text), layers, strategy.equals("default"), 2,
                activation(j, "projector_hidden_act", act), j.boolOr("multimodal_projector_bias", true),
                vision.intOr("hidden_size", 768), null, vision, j.intOr("image_token_index", 32000),
                j.intOr("image_seq_length", 576), false, false,
                next ? AnyResGrid.pinpoints(j, "image_grid_pinpoints") : null);
    }

    private static LlavaConfig original(Json j) {
        String type = j.stringOr("mm_projector_type", "linear");
        int depth;
        Matcher m = MLP_GELU.matcher(type);
        if (type.equals("linear")) {
            depth = 1;
        } else if (m.matches()) {
            depth = Integer.parseInt(m.group(1));
        } else {
            throw j.error("mm_projector_type", "\"" + type + "\"", "linear or mlpNx_gelu (e.g. mlp2x_gelu)");
        }
        String select = j.stringOr("mm_vision_select_feature", "patch");
        if (!select.equals("patch") && !select.equals("cls_patch")) {
            throw j.error("mm_vision_select_feature", "\"" + select + "\"", "patch or cls_patch");
        }
        String tower = j.stringOpt("mm_vision_tower").orElseThrow(() -> j.error("mm_vision_tower", "missing",
                "the vision tower's hub id or path, e.g. openai/clip-vit-large-patch14"));
        return new LlavaConfig(Layout.ORIGINAL, LlamaConfig.from(j), List.of(j.intOr("mm_vision_select_layer", -1)),
                select.equals("patch"), depth, Activation.GELU, true, j.intValue("mm_hidden_size"), tower, null,
                ORIGINAL_IMAGE_PLACEHOLDER, 0, j.boolOr("mm_use_im_start_end", false),
                j.boolOr("mm_use_im_patch_token", true), originalPinpoints(j));
    }

    /**
     * LLaVA-NeXT in the original layout (liuhaotian/llava-v1.6-*): image_aspect_ratio "anyres" with
     * mm_patch_merge_type "spatial_unpad", as the released models set them; the grid's image_grid_pinpoints there
     * are [width, height] pairs (llava/mm_utils.py reads them so), returned as {height, width} like transformers'
     * in the same order, so that ties go to the same entry. Null for one-tile images ("pad", "square", none).
     */
    private static List<int[]> originalPinpoints(Json j) {
        String ratio = j.stringOr("image_aspect_ratio", "square");
        if (!ratio.startsWith("anyres")) {
            return null;
        }
        if (!ratio.equals("anyres")) {
            throw j.error("image_aspect_ratio", Json.quote(ratio), "pad, square or anyres (LLaVA-NeXT; the anyres_max"
                    + " variants of later LLaVA releases are not implemented)");
        }
        String merge = j.stringOr("mm_patch_merge_type", "flat");
        if (!merge.equals("spatial_unpad")) {
            throw j.error("mm_patch_merge_type", Json.quote(merge), "spatial_unpad with image_aspect_ratio anyres (the"
                    + " released LLaVA-NeXT models' setting; flat and spatial are not implemented)");
        }
        List<int[]> widthHeight = AnyResGrid.pinpoints(j, "image_grid_pinpoints", "[width, height]");
        return widthHeight.stream().map(p -> new int[] {p[1], p[0]}).toList();
    }

    private static Activation activation(Json j, String key, String name) {
        return switch (name) {
            case "gelu" -> Activation.GELU;
            case "gelu_new", "gelu_pytorch_tanh" -> Activation.GELU_TANH;
            case "quick_gelu" -> Activation.QUICK_GELU;
            case "relu" -> Activation.RELU;
            case "silu" -> Activation.SILU;
            default -> throw j.error(key, "\"" + name + "\"", "gelu, gelu_new, gelu_pytorch_tanh, quick_gelu, relu or silu");
        };
    }

    /** Input width of the projector: one selected layer's width times the number of selected layers. */
    public int projectorInputSize() {
        return visionHiddenSize * visionFeatureLayers.size();
    }

    /**
     * ORIGINAL layout: the vision tower as a folder when mm_vision_tower names one (relative paths resolve against
     * the model folder, as the golden kollava_v0 does), else empty: it is a hub id to resolve.
     */
    public Optional<Path> localVisionTower(Path modelFolder) {
        if (visionTower == null) {
            return Optional.empty();
        }
        Path p = modelFolder.resolve(visionTower).normalize();
        return Files.isDirectory(p) ? Optional.of(p) : Optional.empty();
    }
}
