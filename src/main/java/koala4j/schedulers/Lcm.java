package koala4j.schedulers;

import koala4j.tensor.Tensor;

/**
 * diffusers {@code LCMScheduler} (scheduling_lcm.py): consistency-model steps on a skipped subset of the original
 * 50-step schedule, with fresh noise between steps (not after the last).
 */
public final class Lcm implements Scheduler {

    private static final double SIGMA_DATA = 0.5;

    private final NoiseSchedule schedule;
    private final int originalSteps;
    private final double timestepScaling;
    private final double finalAlphaCumprod;
    private final Prediction prediction;

    public Lcm(SchedulerConfig cfg) {
        this.schedule = NoiseSchedule.from(cfg, 0.00085, 0.012, "scaled_linear");
        this.originalSteps = cfg.intOr("original_inference_steps", 50);
        this.timestepScaling = cfg.doubleOr("timestep_scaling", 10.0);
        this.finalAlphaCumprod = cfg.boolOr("set_alpha_to_one", true) ? 1.0 : schedule.alphasCumprod[0];
        if (cfg.boolOr("thresholding", false) || cfg.boolOr("clip_sample", false)) {
            throw new IllegalArgumentException(cfg.json().file() + ": thresholding / clip_sample are not supported by LCM here");
        }
        if (originalSteps < 1 || originalSteps > schedule.trainSteps) {
            throw new IllegalArgumentException(cfg.json().file() + ": original_inference_steps = " + originalSteps
                    + ", expected 1 .. " + schedule.trainSteps);
        }
        this.prediction = Predictions.from(cfg);
    }

    @Override
    public String className() {
        return "LCMScheduler";
    }

    @Override
    public Plan plan(int steps) {
        int k = schedule.trainSteps / originalSteps;
        int count = originalSteps;
        if (steps < 1 || steps > count) {
            throw new IllegalArgumentException("steps = " + steps + ": LCM takes 1 .. " + count
                    + " (original_inference_steps)");
        }
        // lcm_origin_timesteps = [1..original] * k - 1, reversed; pick floor(linspace(0, len, steps, endpoint=False))
        double[] t = new double[steps];
        for (int i = 0; i < steps; i++) {
            int idx = (int) Math.floor(i * ((double) count / steps));
            int origin = count - 1 - idx;
            t[i] = (double) (origin + 1) * k - 1;
        }
        return new Plan(steps, t, new double[0], 1.0, 0);
    }

    @Override
    public Tensor scaleModelInput(StepState state, int index, Tensor sample) {
        return sample;
    }

    @Override
    public Tensor step(StepState state, int index, Tensor modelOutput, Tensor sample) {
        double[] t = state.plan.timesteps();
        int timestep = (int) t[index];
        int prevTimestep = index + 1 < t.length ? (int) t[index + 1] : timestep;
        double alphaProd = schedule.alphaProd(timestep, finalAlphaCumprod);
        double alphaPrev = schedule.alphaProd(prevTimestep, finalAlphaCumprod);
        double scaled = timestep * timestepScaling;
        double cSkip = SIGMA_DATA * SIGMA_DATA / (scaled * scaled + SIGMA_DATA * SIGMA_DATA);
        double cOut = scaled / Math.sqrt(scaled * scaled + SIGMA_DATA * SIGMA_DATA);
        Tensor x0 = Predictions.originalAndEpsilon(prediction, modelOutput, sample, alphaProd)[0];
        Tensor denoised = x0.mul((float) cOut).add(sample.mul((float) cSkip));
        if (index == t.length - 1) {
            return denoised;
        }
        Tensor noise = state.draw(modelOutput);
        return denoised.mul((float) Math.sqrt(alphaPrev)).add(noise.mul((float) Math.sqrt(1 - alphaPrev)));
    }

    @Override
    public Tensor addNoise(Plan plan, int index, Tensor original, Tensor noise) {
        double a = schedule.alphasCumprod[(int) plan.timesteps()[index]];
        return original.mul((float) Math.sqrt(a)).add(noise.mul((float) Math.sqrt(1 - a)));
    }
}
