package koala4j.models.unet;

import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/** diffusers {@code TimestepEmbedding}: linear_1, SiLU, linear_2; optional cond_proj (LCM-distilled UNets). */
final class TimestepEmbedding extends Module {

    private final Linear linear1;
    private final Linear linear2;
    private final Linear condProj;

    TimestepEmbedding(int in, int dim, int condProjDim) {
        linear1 = child("linear_1", new Linear(in, dim));
        linear2 = child("linear_2", new Linear(dim, dim));
        condProj = condProjDim > 0 ? child("cond_proj", new Linear(condProjDim, in, false)) : null;
    }

    /** sample [B, in], condition [B, condProjDim] or null -> [B, dim]. */
    Tensor forward(Tensor sample, Tensor condition) {
        Tensor x = sample;
        if (condition != null) {
            if (condProj == null) {
                throw new IllegalArgumentException("a timestep condition was given but the UNet config has no time_cond_proj_dim");
            }
            x = x.add(condProj.forward(condition));
        }
        return linear2.forward(linear1.forward(x, Activation.SILU));
    }
}
