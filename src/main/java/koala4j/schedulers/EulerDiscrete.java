package koala4j.schedulers;

import java.util.List;

import koala4j.tensor.Tensor;

/**
 * diffusers {@code EulerDiscreteScheduler} (schedulers/scheduling_euler_discrete.py): Karras et al.'s Euler method
 * on sigmas, optionally with Karras sigmas; s_churn = 0 as the pipelines call it.
 */
public final class EulerDiscrete implements Scheduler {

    private final NoiseSchedule schedule;
    private final String spacing;
    private final int stepsOffset;
    private final boolean karras;
    private final boolean finalSigmaZero;
    private final double sigmaMin;
    private final double sigmaMax;
    private final Prediction prediction;

    public EulerDiscrete(SchedulerConfig cfg) {
        this.schedule = NoiseSchedule.from(cfg, 0.0001, 0.02, "linear");
        this.spacing = cfg.choice("timestep_spacing", "linspace", Spacing.NAMES);
        this.stepsOffset = cfg.intOr("steps_offset", 0);
        this.karras = cfg.boolOr("use_karras_sigmas", false);
        this.finalSigmaZero = cfg.choice("final_sigmas_type", "zero", List.of("zero", "sigma_min")).equals("zero");
        this.sigmaMin = cfg.doubleOr("sigma_min", Double.NaN);
        this.sigmaMax = cfg.doubleOr("sigma_max", Double.NaN);
        cfg.choice("interpolation_type", "linear", List.of("linear"));
        cfg.choice("timestep_type", "discrete", List.of("discrete"));
        if (cfg.boolOr("use_exponential_sigmas", false) || cfg.boolOr("use_beta_sigmas", false)) {
            throw new IllegalArgumentException(cfg.json().file() + ": use_exponential_sigmas / use_beta_sigmas are not supported");
        }
        this.prediction = Predictions.from(cfg);
    }

    @Override
    public String className() {
        return "EulerDiscreteScheduler";
    }

    @Override
    public Plan plan(int steps) {
        return sigmaPlan(schedule, spacing, stepsOffset, steps, karras, finalSigmaZero, sigmaMin, sigmaMax);
    }

    /**
     * The Karras-sigma plan both Euler schedulers build: training sigmas interpolated at the spaced timesteps
     * (or Karras sigmas between their extremes, mapped back to fractional timesteps), a final sigma, and
     * init_noise_sigma = max sigma (sqrt(max² + 1) with 'leading' spacing).
     */
    static Plan sigmaPlan(NoiseSchedule schedule, String spacing, int stepsOffset, int steps, boolean karras,
                          boolean finalSigmaZero, double sigmaMin, double sigmaMax) {
        Spacing.checkSteps(steps, schedule.trainSteps);
        double[] timesteps = Spacing.timesteps(spacing, schedule.trainSteps, steps, stepsOffset, false);
        float[] trainSigmas = schedule.sigmas();
        double[] sigmas = new double[steps];
        for (int i = 0; i < steps; i++) {
            sigmas[i] = NoiseSchedule.interp(timesteps[i], trainSigmas);
        }
        if (karras) {
            float[] logSigmas = NoiseSchedule.log(trainSigmas);
            // the config's sigma_min / sigma_max, when set, replace the schedule's extremes (diffusers' _convert_to_karras)
            sigmas = NoiseSchedule.karras(Double.isNaN(sigmaMin) ? sigmas[steps - 1] : sigmaMin,
                    Double.isNaN(sigmaMax) ? sigmas[0] : sigmaMax, steps);
            for (int i = 0; i < steps; i++) {
                timesteps[i] = (float) NoiseSchedule.sigmaToT(sigmas[i], logSigmas);
            }
        }
        double[] all = new double[steps + 1];
        double max = 0;
        for (int i = 0; i < steps; i++) {
            all[i] = (float) sigmas[i];
            max = Math.max(max, all[i]);
        }
        all[steps] = finalSigmaZero ? 0 : (float) sigmas[steps - 1];
        double initSigma = spacing.equals("leading") ? (float) Math.sqrt(max * max + 1) : max;
        return new Plan(steps, timesteps, all, initSigma, 0);
    }

    /** sample / sqrt(σ² + 1): the Karras-sigma schedulers' scale_model_input. */
    static Tensor scaleBySigma(Tensor sample, double sigma) {
        return sample.mul((float) (1 / Math.sqrt(sigma * sigma + 1)));
    }

    @Override
    public Tensor scaleModelInput(StepState state, int index, Tensor sample) {
        return scaleBySigma(sample, state.plan.sigmas()[index]);
    }

    @Override
    public Tensor step(StepState state, int index, Tensor modelOutput, Tensor sample) {
        double sigma = state.plan.sigmas()[index];
        Tensor predOriginal = Predictions.originalFromSigma(prediction, modelOutput, sample, sigma);
        Tensor derivative = sample.sub(predOriginal).mul((float) (1 / sigma));   // (x - x0) / σ
        double dt = state.plan.sigmas()[index + 1] - sigma;
        return sample.add(derivative.mul((float) dt));
    }

    @Override
    public Tensor addNoise(Plan plan, int index, Tensor original, Tensor noise) {
        return original.add(noise.mul((float) plan.sigmas()[index]));
    }
}
