package koala4j.schedulers;

import java.util.ArrayList;
import java.util.List;

import koala4j.tensor.Tensor;

/** One request's mutable scheduler state: the plan, the noise source and the multistep history. Not shared. */
public final class StepState {

    final Plan plan;
    final NoiseSource noise;
    final List<Tensor> history = new ArrayList<>();
    Tensor pending;
    int counter;
    int lowerOrderSteps;

    StepState(Plan plan, NoiseSource noise) {
        this.plan = plan;
        this.noise = noise;
    }

    public Plan plan() {
        return plan;
    }

    Tensor draw(Tensor like) {
        float[] values = noise.randn(Math.toIntExact(like.numel()));
        return like.ops().fromArray(values, like.shape());
    }
}
