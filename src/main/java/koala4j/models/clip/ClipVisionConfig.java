package koala4j.models.clip;

import java.util.Optional;

import koala4j.io.json.Json;
import koala4j.io.json.Json.Kind;
import koala4j.tensor.Activation;

/**
 * transformers {@code CLIPVisionConfig} (models/clip/configuration_clip.py), also for {@code AltCLIPVisionConfig}
 * (models/altclip/configuration_altclip.py), which has the same fields and defaults. {@link #from} reads it from any
 * config.json a CLIP vision tower comes with:
 * <ul>
 * <li>a vision config ({@code model_type} "clip_vision_model" or "altclip_vision_model", or none), as
 * {@code CLIPVisionModel.save_pretrained} writes it;
 * <li>a {@code CLIPConfig} ("clip") or {@code AltCLIPConfig} ("altclip"): its {@code vision_config}, or its legacy
 * {@code vision_config_dict} when present (the reference then builds the whole vision config from that dict alone),
 * defaults when both are missing or null;
 * <li>a {@code LlavaConfig} ("llava", "llava_next", "llava_next_video", "llava_onevision", "video_llava",
 * "vipllava"): its {@code vision_config}; "llava" without one gets {@code LlavaConfig}'s default tower (CLIP
 * ViT-L/14 at 336 px). An original-layout LLaVA config ({@code mm_vision_tower}) names the tower's own folder
 * instead, which is the one to read.
 * </ul>
 */
public record ClipVisionConfig(int hiddenSize, int intermediateSize, int numHiddenLayers, int numAttentionHeads,
                               int imageSize, int patchSize, int numChannels, Activation hiddenAct,
                               float layerNormEps, int projectionDim) {

    public ClipVisionConfig {
        if (hiddenSize < 1 || numAttentionHeads < 1 || hiddenSize % numAttentionHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not divisible by num_attention_heads "
                    + numAttentionHeads);
        }
        if (patchSize < 1 || imageSize < patchSize || imageSize % patchSize != 0) {
            throw new IllegalArgumentException("image_size " + imageSize + " is not a multiple of patch_size "
                    + patchSize);
        }
    }

    /** Reads the vision part of {@code j}, whichever of the layouts in the class comment it has. */
    public static ClipVisionConfig from(Json j) {
        String modelType = j.stringOr("model_type", "clip_vision_model");
        switch (modelType) {
            case "clip_vision_model", "altclip_vision_model" -> {
                return fields(j);
            }
            case "clip", "altclip" -> {
                Optional<Json> legacy = j.objectOr("vision_config_dict");
                Optional<Json> vision = legacy.isPresent() ? legacy : j.objectOr("vision_config");
                return vision.map(ClipVisionConfig::nested).orElseGet(ClipVisionConfig::defaults);
            }
            case "llava", "llava_next", "llava_next_video", "llava_onevision", "video_llava", "vipllava" -> {
                Optional<Json> vision = j.objectOr("vision_config");
                if (vision.isPresent()) {
                    return nested(vision.get());
                }
                if (j.has("mm_vision_tower")) {
                    throw j.error("vision_config", "missing, and mm_vision_tower = "
                            + (j.kind("mm_vision_tower") == Kind.STRING ? Json.quote(j.string("mm_vision_tower"))
                            : j.kind("mm_vision_tower").toString().toLowerCase()),
                            "a vision_config object; an original-layout LLaVA config names its vision tower in"
                                    + " mm_vision_tower: read that folder's config.json");
                }
                if (!modelType.equals("llava")) {
                    throw j.error("vision_config", "missing", "a vision_config object (model_type " + modelType + ")");
                }
                // LlavaConfig.__init__: CONFIG_MAPPING["clip_vision_model"](intermediate_size=4096, hidden_size=1024,
                // patch_size=14, image_size=336, num_hidden_layers=24, num_attention_heads=16, projection_dim=768)
                return new ClipVisionConfig(1024, 4096, 24, 16, 336, 14, 3, Activation.QUICK_GELU, 1e-5f, 768);
            }
            default -> throw j.error("model_type", Json.quote(modelType), "a CLIP vision tower: clip_vision_model,"
                    + " altclip_vision_model, clip, altclip or a LLaVA config with a CLIP vision_config");
        }
    }

    /** CLIPVisionConfig() with no arguments: ViT-B/32 at 224 px. */
    private static ClipVisionConfig defaults() {
        return new ClipVisionConfig(768, 3072, 12, 12, 224, 32, 3, Activation.QUICK_GELU, 1e-5f, 512);
    }

    /** A nested {@code vision_config}: transformers builds it from its own model_type, CLIP's by default. */
    private static ClipVisionConfig nested(Json vision) {
        String type = vision.stringOr("model_type", "clip_vision_model");
        if (!type.equals("clip_vision_model") && !type.equals("altclip_vision_model")) {
            throw vision.error("model_type", Json.quote(type), "clip_vision_model or altclip_vision_model"
                    + " (the only vision towers koala4j implements)");
        }
        return fields(vision);
    }

    private static ClipVisionConfig fields(Json j) {
        String act = j.stringOr("hidden_act", "quick_gelu");
        Activation activation = switch (act) {
            case "quick_gelu" -> Activation.QUICK_GELU;
            case "gelu" -> Activation.GELU;
            case "gelu_new", "gelu_pytorch_tanh" -> Activation.GELU_TANH;
            case "relu" -> Activation.RELU;
            default -> throw j.error("hidden_act", Json.quote(act),
                    "quick_gelu, gelu, gelu_new, gelu_pytorch_tanh or relu");
        };
        int hidden = j.intOr("hidden_size", 768);
        int heads = j.intOr("num_attention_heads", 12);
        if (hidden % heads != 0) {
            throw j.error("num_attention_heads", Integer.toString(heads), "a divisor of hidden_size " + hidden);
        }
        int imageSize = j.intOr("image_size", 224);
        int patchSize = j.intOr("patch_size", 32);
        if (patchSize < 1 || imageSize < patchSize || imageSize % patchSize != 0) {
            throw j.error("patch_size", Integer.toString(patchSize), "a divisor of image_size " + imageSize);
        }
        return new ClipVisionConfig(hidden, j.intOr("intermediate_size", 3072), j.intOr("num_hidden_layers", 12),
                heads, imageSize, patchSize, j.intOr("num_channels", 3), activation,
                j.floatOr("layer_norm_eps", 1e-5f), j.intOr("projection_dim", 512));
    }

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }

    /** Patches per image side: image_size / patch_size. */
    public int gridSize() {
        return imageSize / patchSize;
    }

    /** Patch tokens per image, (image_size / patch_size)^2, without the class token. */
    public int numPatches() {
        return gridSize() * gridSize();
    }

    /** Rows of the position embedding: the patches plus the class token. */
    public int numPositions() {
        return numPatches() + 1;
    }
}
