package koala4j.nn;

import koala4j.tensor.Tensor;

/** torch.nn.LayerNorm over the last dim: keys {@code weight} and {@code bias} [dim] when affine. */
public final class LayerNorm extends Module implements Layer {

    private final float eps;
    private final Parameter weight;
    private final Parameter bias;

    public LayerNorm(int dim, float eps, boolean affine, boolean bias) {
        this.eps = eps;
        this.weight = affine ? parameter("weight", dim) : null;
        this.bias = affine && bias ? parameter("bias", dim) : null;
    }

    public LayerNorm(int dim, float eps) {
        this(dim, eps, true, true);
    }

    @Override
    public Tensor forward(Tensor x) {
        return x.ops().layerNorm(x, weight == null ? null : weight.get(), bias == null ? null : bias.get(), eps);
    }
}
