package koala4j.tensor;

/** torch.nn.functional.interpolate modes that images and latents use. */
public enum ResizeMode {
    NEAREST, BILINEAR, BICUBIC
}
