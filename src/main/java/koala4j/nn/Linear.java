package koala4j.nn;

import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/** torch.nn.Linear: keys {@code weight} [out, in] and, when present, {@code bias} [out]. */
public final class Linear extends Module implements Layer {

    private final Parameter weight;
    private final Parameter bias;

    public Linear(int in, int out, boolean bias) {
        this.weight = parameter("weight", out, in);
        this.bias = bias ? parameter("bias", out) : null;
    }

    public Linear(int in, int out) {
        this(in, out, true);
    }

    @Override
    public Tensor forward(Tensor x) {
        return forward(x, Activation.NONE);
    }

    /** x · Wᵀ + b with the activation fused into the GEMM epilogue. */
    public Tensor forward(Tensor x, Activation act) {
        return x.ops().linear(x, weight.get(), bias == null ? null : bias.get(), act);
    }

    public int inFeatures() {
        return weight.shape()[1];
    }

    public int outFeatures() {
        return weight.shape()[0];
    }

    public Parameter weight() {
        return weight;
    }
}
