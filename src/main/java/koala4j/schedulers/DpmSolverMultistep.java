package koala4j.schedulers;

import java.util.List;

import koala4j.tensor.Tensor;

/**
 * diffusers {@code DPMSolverMultistepScheduler} (scheduling_dpmsolver_multistep.py) with algorithm_type
 * dpmsolver++ (DPM++ 2M with solver_order 2), midpoint or heun second-order updates, optional Karras sigmas,
 * lower_order_final for short schedules.
 */
public final class DpmSolverMultistep implements Scheduler {

    private final NoiseSchedule schedule;
    private final String spacing;
    private final int stepsOffset;
    private final boolean karras;
    private final int solverOrder;
    private final boolean midpoint;
    private final boolean lowerOrderFinal;
    private final boolean eulerAtFinal;
    private final boolean finalSigmaZero;
    private final Prediction prediction;

    public DpmSolverMultistep(SchedulerConfig cfg) {
        this.schedule = NoiseSchedule.from(cfg, 0.0001, 0.02, "linear");
        this.spacing = cfg.choice("timestep_spacing", "linspace", Spacing.NAMES);
        this.stepsOffset = cfg.intOr("steps_offset", 0);
        this.karras = cfg.boolOr("use_karras_sigmas", false);
        this.solverOrder = cfg.intOr("solver_order", 2);
        if (solverOrder < 1 || solverOrder > 2) {
            throw new IllegalArgumentException(cfg.json().file() + ": solver_order = " + solverOrder + ", expected 1 or 2");
        }
        cfg.choice("algorithm_type", "dpmsolver++", List.of("dpmsolver++"));
        this.midpoint = cfg.choice("solver_type", "midpoint", List.of("midpoint", "heun")).equals("midpoint");
        this.lowerOrderFinal = cfg.boolOr("lower_order_final", true);
        this.eulerAtFinal = cfg.boolOr("euler_at_final", false);
        this.finalSigmaZero = cfg.choice("final_sigmas_type", "zero", List.of("zero", "sigma_min")).equals("zero");
        if (cfg.boolOr("thresholding", false)) {
            throw new IllegalArgumentException(cfg.json().file() + ": thresholding = true is not supported");
        }
        if (cfg.boolOr("use_lu_lambdas", false) || cfg.boolOr("use_exponential_sigmas", false)
                || cfg.boolOr("use_beta_sigmas", false)) {
            throw new IllegalArgumentException(cfg.json().file()
                    + ": use_lu_lambdas / use_exponential_sigmas / use_beta_sigmas are not supported");
        }
        this.prediction = Predictions.from(cfg);
    }

    @Override
    public String className() {
        return "DPMSolverMultistepScheduler";
    }

    @Override
    public Plan plan(int steps) {
        int n = schedule.trainSteps;
        Spacing.checkSteps(steps, n);
        double[] timesteps = new double[steps];
        switch (spacing) {
            case "linspace" -> {
                // np.linspace(0, N - 1, steps + 1).round()[::-1][:-1]
                double step = (double) (n - 1) / steps;
                for (int i = 0; i < steps; i++) {
                    int k = steps - i;
                    double v = k == steps ? n - 1 : k * step;
                    timesteps[i] = NoiseSchedule.roundHalfEven(v);
                }
            }
            case "leading" -> {
                int ratio = n / (steps + 1);
                for (int i = 0; i < steps; i++) {
                    timesteps[i] = (double) (steps - i) * ratio + stepsOffset;
                }
            }
            default -> {
                double ratio = (double) n / steps;
                for (int i = 0; i < steps; i++) {
                    timesteps[i] = NoiseSchedule.roundHalfEven(n - i * ratio) - 1;
                }
            }
        }
        float[] trainSigmas = schedule.sigmas();
        float[] logSigmas = NoiseSchedule.log(trainSigmas);
        double[] sigmas = new double[steps + 1];
        if (karras) {
            double[] k = NoiseSchedule.karras(trainSigmas[0], trainSigmas[n - 1], steps);
            for (int i = 0; i < steps; i++) {
                sigmas[i] = (float) k[i];
                timesteps[i] = NoiseSchedule.roundHalfEven(NoiseSchedule.sigmaToT(k[i], logSigmas));
            }
            sigmas[steps] = finalSigmaZero ? 0 : (float) k[steps - 1];
        } else {
            for (int i = 0; i < steps; i++) {
                sigmas[i] = (float) NoiseSchedule.interp(timesteps[i], trainSigmas);
            }
            sigmas[steps] = finalSigmaZero ? 0
                    : (float) Math.sqrt((1 - schedule.alphasCumprod[0]) / (double) schedule.alphasCumprod[0]);
        }
        return new Plan(steps, timesteps, sigmas, 1.0, 0);
    }

    @Override
    public Tensor scaleModelInput(StepState state, int index, Tensor sample) {
        return sample;
    }

    /** α_t and σ_t of the VP sample for a Karras sigma. */
    private static double alpha(double sigma) {
        return 1 / Math.sqrt(sigma * sigma + 1);
    }

    private static double lambda(double sigma) {
        double a = alpha(sigma);
        return Math.log(a) - Math.log(sigma * a);
    }

    @Override
    public Tensor step(StepState state, int index, Tensor modelOutput, Tensor sample) {
        double[] sigmas = state.plan.sigmas();
        int length = state.plan.length();
        // convert_model_output: the data prediction x0
        double sigma = sigmas[index];
        Tensor x0 = switch (prediction) {
            case EPSILON -> sample.sub(modelOutput.mul((float) (sigma * alpha(sigma)))).mul((float) (1 / alpha(sigma)));
            case SAMPLE -> modelOutput;
            case V_PREDICTION -> sample.mul((float) alpha(sigma)).sub(modelOutput.mul((float) (sigma * alpha(sigma))));
        };
        state.history.add(x0);
        if (state.history.size() > solverOrder) {
            state.history.removeFirst();
        }
        boolean finalLower = index == length - 1
                && (eulerAtFinal || lowerOrderFinal && length < 15 || finalSigmaZero);
        boolean secondLower = index == length - 2 && lowerOrderFinal && length < 15;
        Tensor prev;
        double sigmaT = sigmas[index + 1];
        double alphaT = alpha(sigmaT);
        double h = lambda(sigmaT) - lambda(sigma);
        double expm = Math.exp(-h) - 1.0;                               // exp(-h) - 1
        if (solverOrder == 1 || state.lowerOrderSteps < 1 || finalLower) {
            // first order: x_t = (σ_t/σ_s)·x - α_t(e^{-h} - 1)·x0
            prev = sample.mul((float) (sigmaT * alphaT / (sigma * alpha(sigma)))).sub(x0.mul((float) (alphaT * expm)));
        } else {
            double sigmaS1 = sigmas[index - 1];
            double h0 = lambda(sigma) - lambda(sigmaS1);
            double r0 = h0 / h;
            Tensor m0 = state.history.get(state.history.size() - 1);
            Tensor m1 = state.history.get(state.history.size() - 2);
            Tensor d1 = m0.sub(m1).mul((float) (1 / r0));
            Tensor base = sample.mul((float) (sigmaT * alphaT / (sigma * alpha(sigma)))).sub(m0.mul((float) (alphaT * expm)));
            prev = midpoint ? base.sub(d1.mul((float) (0.5 * alphaT * expm)))
                    : base.sub(d1.mul((float) (alphaT * (expm / h + 1.0))));
        }
        if (state.lowerOrderSteps < solverOrder) {
            state.lowerOrderSteps++;
        }
        return prev;
    }

    @Override
    public Tensor addNoise(Plan plan, int index, Tensor original, Tensor noise) {
        double sigma = plan.sigmas()[index];
        double a = alpha(sigma);
        return original.mul((float) a).add(noise.mul((float) (sigma * a)));
    }
}
