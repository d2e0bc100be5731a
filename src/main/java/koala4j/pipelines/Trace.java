package koala4j.pipelines;

import koala4j.tensor.Tensor;

/**
 * Receives a pipeline's named intermediates (prompt embeddings, each step's UNet input and output, latents),
 * for golden tests and debugging. Names follow the golden cases: {@code prompt_embeds}, {@code unet_input.3}.
 */
@FunctionalInterface
public interface Trace {

    void record(String name, Tensor value);

    Trace NONE = (name, value) -> {
    };
}
