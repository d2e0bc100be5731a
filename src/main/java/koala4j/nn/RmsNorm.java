package koala4j.nn;

import koala4j.tensor.Tensor;

/** LlamaRMSNorm / T5LayerNorm: x * rsqrt(mean(x²) + eps) * weight; key {@code weight} [dim]. */
public final class RmsNorm extends Module implements Layer {

    private final float eps;
    private final Parameter weight;

    public RmsNorm(int dim, float eps) {
        this.eps = eps;
        this.weight = parameter("weight", dim);
    }

    @Override
    public Tensor forward(Tensor x) {
        return x.ops().rmsNorm(x, weight.get(), eps);
    }
}
