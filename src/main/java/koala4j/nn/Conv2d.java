package koala4j.nn;

import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/** torch.nn.Conv2d with square kernels: keys {@code weight} [out, in/groups, k, k] and {@code bias} [out]. */
public final class Conv2d extends Module implements Layer {

    private final Parameter weight;
    private final Parameter bias;
    private final int stride;
    private final int padding;
    private final int groups;

    public Conv2d(int in, int out, int kernel, int stride, int padding, int groups, boolean bias) {
        if (groups < 1 || in % groups != 0 || out % groups != 0) {
            throw new IllegalArgumentException("conv2d with " + in + " in and " + out + " out channels cannot use "
                    + groups + " groups");
        }
        this.weight = parameter("weight", out, in / groups, kernel, kernel);
        this.bias = bias ? parameter("bias", out) : null;
        this.stride = stride;
        this.padding = padding;
        this.groups = groups;
    }

    public Conv2d(int in, int out, int kernel, int stride, int padding) {
        this(in, out, kernel, stride, padding, 1, true);
    }

    @Override
    public Tensor forward(Tensor x) {
        return forward(x, Activation.NONE);
    }

    public Tensor forward(Tensor x, Activation act) {
        return x.ops().conv2d(x, weight.get(), bias == null ? null : bias.get(), stride, padding, groups, act);
    }
}
