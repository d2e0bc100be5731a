package koala4j.nn;

import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/** torch.nn.GroupNorm: keys {@code weight} and {@code bias} [channels] when affine. */
public final class GroupNorm extends Module implements Layer {

    private final int groups;
    private final float eps;
    private final Parameter weight;
    private final Parameter bias;

    public GroupNorm(int groups, int channels, float eps, boolean affine) {
        if (groups < 1 || channels % groups != 0) {
            throw new IllegalArgumentException(channels + " channels do not split into " + groups + " groups");
        }
        this.groups = groups;
        this.eps = eps;
        this.weight = affine ? parameter("weight", channels) : null;
        this.bias = affine ? parameter("bias", channels) : null;
    }

    @Override
    public Tensor forward(Tensor x) {
        return forward(x, Activation.NONE);
    }

    /** Normalises, then applies {@code act} in the same pass (ResnetBlock2D's norm + SiLU). */
    public Tensor forward(Tensor x, Activation act) {
        return x.ops().groupNorm(x, groups, weight == null ? null : weight.get(), bias == null ? null : bias.get(),
                eps, act);
    }
}
