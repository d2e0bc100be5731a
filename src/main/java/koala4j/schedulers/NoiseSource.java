package koala4j.schedulers;

/**
 * Where a stochastic scheduler's noise comes from: one call per draw, in the pipeline's order. With a
 * {@code TorchGenerator} this reproduces diffusers' {@code randn_tensor(shape, generator)} draws exactly.
 */
@FunctionalInterface
public interface NoiseSource {

    /** {@code numel} standard normal values, as torch.randn of that many elements would give them. */
    float[] randn(int numel);

    /** For deterministic schedulers: any draw is a bug. */
    NoiseSource NONE = numel -> {
        throw new IllegalStateException("this scheduler was given no noise source");
    };
}
