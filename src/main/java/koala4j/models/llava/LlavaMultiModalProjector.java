package koala4j.models.llava;

import koala4j.nn.Layer;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.Sequential;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/**
 * transformers {@code LlavaMultiModalProjector} (models/llava/modeling_llava.py): keys {@code linear_1.*} and
 * {@code linear_2.*} with the projector activation between them. {@link #original} builds the LLaVA repository's
 * {@code build_vision_projector} (llava/model/multimodal_projector/builder.py) instead.
 */
final class LlavaMultiModalProjector extends Module implements Layer {

    private final Linear linear1;
    private final Linear linear2;
    private final Activation act;

    LlavaMultiModalProjector(int in, int hidden, Activation act, boolean bias) {
        linear1 = child("linear_1", new Linear(in, hidden, bias));
        linear2 = child("linear_2", new Linear(hidden, hidden, bias));
        this.act = act;
    }

    /** features [B, P, Cin] -> [B, P, C]. */
    @Override
    public Tensor forward(Tensor features) {
        return linear2.forward(linear1.forward(features, act));                     // [B, P, C]
    }

    /**
     * LLaVA's mm_projector: one Linear for "linear" (keys weight, bias), or nn.Sequential(Linear, GELU, Linear, ...)
     * for "mlpNx_gelu" (keys 0.*, 2.*, ...; the GELUs have none).
     */
    static Module original(int in, int hidden, int depth) {
        if (depth == 1) {
            return new Linear(in, hidden);
        }
        Sequential s = new Sequential().at(0, new Linear(in, hidden));
        for (int i = 1; i < depth; i++) {
            s.function(2 * i - 1, x -> x.activation(Activation.GELU));                // nn.GELU(): the erf form
            s.at(2 * i, new Linear(hidden, hidden));
        }
        return s;
    }
}
