package koala4j.schedulers;

import koala4j.tensor.Tensor;

/**
 * diffusers {@code EulerAncestralDiscreteScheduler} (scheduling_euler_ancestral_discrete.py): an Euler step down
 * to σ_down, then fresh noise of scale σ_up, one draw of the sample's shape per step (the last step too).
 */
public final class EulerAncestral implements Scheduler {

    private final NoiseSchedule schedule;
    private final String spacing;
    private final int stepsOffset;
    private final Prediction prediction;

    public EulerAncestral(SchedulerConfig cfg) {
        this.schedule = NoiseSchedule.from(cfg, 0.0001, 0.02, "linear");
        this.spacing = cfg.choice("timestep_spacing", "linspace", Spacing.NAMES);
        this.stepsOffset = cfg.intOr("steps_offset", 0);
        this.prediction = Predictions.from(cfg);
    }

    @Override
    public String className() {
        return "EulerAncestralDiscreteScheduler";
    }

    @Override
    public Plan plan(int steps) {
        return EulerDiscrete.sigmaPlan(schedule, spacing, stepsOffset, steps, false, true, Double.NaN, Double.NaN);
    }

    @Override
    public Tensor scaleModelInput(StepState state, int index, Tensor sample) {
        return EulerDiscrete.scaleBySigma(sample, state.plan.sigmas()[index]);
    }

    @Override
    public Tensor step(StepState state, int index, Tensor modelOutput, Tensor sample) {
        double sigmaFrom = state.plan.sigmas()[index];
        double sigmaTo = state.plan.sigmas()[index + 1];
        double sigmaUp = Math.sqrt(sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo) / (sigmaFrom * sigmaFrom));
        double sigmaDown = Math.sqrt(sigmaTo * sigmaTo - sigmaUp * sigmaUp);
        Tensor predOriginal = Predictions.originalFromSigma(prediction, modelOutput, sample, sigmaFrom);
        Tensor derivative = sample.sub(predOriginal).mul((float) (1 / sigmaFrom));
        Tensor prev = sample.add(derivative.mul((float) (sigmaDown - sigmaFrom)));
        Tensor noise = state.draw(modelOutput);
        return prev.add(noise.mul((float) sigmaUp));
    }

    @Override
    public Tensor addNoise(Plan plan, int index, Tensor original, Tensor noise) {
        return original.add(noise.mul((float) plan.sigmas()[index]));
    }
}
