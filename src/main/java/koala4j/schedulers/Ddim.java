package koala4j.schedulers;

import koala4j.tensor.Tensor;

/** diffusers {@code DDIMScheduler} (scheduling_ddim.py), eta 0 unless given; clip_sample as configured. */
public final class Ddim implements Scheduler {

    private final NoiseSchedule schedule;
    private final String spacing;
    private final int stepsOffset;
    private final double finalAlphaCumprod;
    private final boolean clipSample;
    private final double clipRange;
    private final double eta;
    private final Prediction prediction;

    public Ddim(SchedulerConfig cfg) {
        this(cfg, 0.0);
    }

    public Ddim(SchedulerConfig cfg, double eta) {
        this.schedule = NoiseSchedule.from(cfg, 0.0001, 0.02, "linear");
        this.spacing = cfg.choice("timestep_spacing", "leading", Spacing.NAMES);
        this.stepsOffset = cfg.intOr("steps_offset", 0);
        this.finalAlphaCumprod = cfg.boolOr("set_alpha_to_one", true) ? 1.0 : schedule.alphasCumprod[0];
        this.clipSample = cfg.boolOr("clip_sample", true);
        this.clipRange = cfg.doubleOr("clip_sample_range", 1.0);
        if (cfg.boolOr("thresholding", false)) {
            throw new IllegalArgumentException(cfg.json().file() + ": thresholding = true is not supported");
        }
        if (eta < 0) {
            throw new IllegalArgumentException("eta = " + eta + ", expected >= 0");
        }
        this.eta = eta;
        this.prediction = Predictions.from(cfg);
    }

    @Override
    public String className() {
        return "DDIMScheduler";
    }

    @Override
    public Plan plan(int steps) {
        Spacing.checkSteps(steps, schedule.trainSteps);
        double[] t = Spacing.timesteps(spacing, schedule.trainSteps, steps, stepsOffset, true);
        return new Plan(steps, t, new double[0], 1.0, 0);
    }

    @Override
    public Tensor scaleModelInput(StepState state, int index, Tensor sample) {
        return sample;
    }

    @Override
    public Tensor step(StepState state, int index, Tensor modelOutput, Tensor sample) {
        int t = (int) state.plan.timesteps()[index];
        int prevT = t - schedule.trainSteps / state.plan.steps();
        double alphaProd = schedule.alphaProd(t, finalAlphaCumprod);
        double alphaPrev = schedule.alphaProd(prevT, finalAlphaCumprod);
        Tensor[] x0Eps = Predictions.originalAndEpsilon(prediction, modelOutput, sample, alphaProd);
        Tensor x0 = x0Eps[0];
        Tensor eps = x0Eps[1];
        if (clipSample) {
            x0 = x0.clamp((float) -clipRange, (float) clipRange);
        }
        double variance = (1 - alphaPrev) / (1 - alphaProd) * (1 - alphaProd / alphaPrev);
        double std = eta * Math.sqrt(variance);
        Tensor direction = eps.mul((float) Math.sqrt(1 - alphaPrev - std * std));
        Tensor prev = x0.mul((float) Math.sqrt(alphaPrev)).add(direction);
        if (eta > 0) {
            prev = prev.add(state.draw(modelOutput).mul((float) std));
        }
        return prev;
    }

    @Override
    public Tensor addNoise(Plan plan, int index, Tensor original, Tensor noise) {
        double a = schedule.alphasCumprod[(int) plan.timesteps()[index]];
        return original.mul((float) Math.sqrt(a)).add(noise.mul((float) Math.sqrt(1 - a)));
    }
}
