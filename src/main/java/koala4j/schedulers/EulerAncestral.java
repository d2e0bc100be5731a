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
        Spacing.checkSteps(steps, schedule.trainSteps);
        double[] timesteps = Spacing.timesteps(spacing, schedule.trainSteps, steps, stepsOffset, false);
        float[] trainSigmas = schedule.sigmas();
        double[] all = new double[steps + 1];
        double max = 0;
        for (int i = 0; i < steps; i++) {
            all[i] = (float) NoiseSchedule.interp(timesteps[i], trainSigmas);
            max = Math.max(max, all[i]);
        }
        double initSigma = spacing.equals("leading") ? (float) Math.sqrt(max * max + 1) : max;
        return new Plan(steps, timesteps, all, initSigma, 0);
    }

    @Override
    public Tensor scaleModelInput(StepState state, int index, Tensor sample) {
        double sigma = state.plan.sigmas()[index];
        return sample.mul((float) (1 / Math.sqrt(sigma * sigma + 1)));
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
