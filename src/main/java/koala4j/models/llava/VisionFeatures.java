package koala4j.models.llava;

import koala4j.tensor.Tensor;

/**
 * The vision tower as LLaVA uses it: pixel values in, the hidden states of the layer(s) the LLaVA config selects out
 * ({@link LlavaConfig#visionFeatureLayers()}: transformers' vision_feature_layer / LLaVA's mm_vision_select_layer,
 * -2 in every released model), with the CLS row still in. When several layers are selected, their states are
 * concatenated along the channel dim in the listed order. Dropping the CLS row is the LLaVA model's job
 * ({@link LlavaConfig#dropClsToken()}).
 *
 * <p>The integration backs this with {@code koala4j.models.clip.ClipVisionModel}; implementations must be safe to
 * call from several threads at once.
 */
@FunctionalInterface
public interface VisionFeatures {

    /** pixelValues [B, 3, H, W] (normalised as the tower's preprocessor_config.json says) -> [B, 1 + patches, Cv]. */
    Tensor features(Tensor pixelValues);
}
