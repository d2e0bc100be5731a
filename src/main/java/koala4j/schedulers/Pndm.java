package koala4j.schedulers;

import java.util.List;

import koala4j.tensor.Tensor;

/**
 * diffusers {@code PNDMScheduler} (scheduling_pndm.py) in its PLMS form (skip_prk_steps = true, as SD 1.x ships
 * it): the plan has steps + 1 entries, the second-to-last timestep repeated, and the model is called for each.
 */
public final class Pndm implements Scheduler {

    private final NoiseSchedule schedule;
    private final String spacing;
    private final int stepsOffset;
    private final double finalAlphaCumprod;
    private final Prediction prediction;

    public Pndm(SchedulerConfig cfg) {
        this.schedule = NoiseSchedule.from(cfg, 0.0001, 0.02, "linear");
        this.spacing = cfg.choice("timestep_spacing", "leading", Spacing.NAMES);
        this.stepsOffset = cfg.intOr("steps_offset", 0);
        this.finalAlphaCumprod = cfg.boolOr("set_alpha_to_one", false) ? 1.0 : schedule.alphasCumprod[0];
        if (!cfg.boolOr("skip_prk_steps", false)) {
            throw new IllegalArgumentException(cfg.json().file() + ": skip_prk_steps = false (Runge-Kutta warm-up) is "
                    + "not supported; SD 1.x configs set it to true");
        }
        this.prediction = Predictions.from(cfg);
        if (prediction == Prediction.SAMPLE) {
            throw new IllegalArgumentException(cfg.json().file() + ": prediction_type = sample is not supported by PNDM");
        }
    }

    @Override
    public String className() {
        return "PNDMScheduler";
    }

    @Override
    public Plan plan(int steps) {
        Spacing.checkSteps(steps, schedule.trainSteps);
        int n = schedule.trainSteps;
        double[] ascending = new double[steps];
        switch (spacing) {
            case "linspace" -> {
                double step = steps == 1 ? 0 : (double) (n - 1) / (steps - 1);
                for (int i = 0; i < steps; i++) {
                    ascending[i] = NoiseSchedule.roundHalfEven(i == steps - 1 && steps > 1 ? n - 1 : i * step);
                }
            }
            case "leading" -> {
                int ratio = n / steps;
                for (int i = 0; i < steps; i++) {
                    ascending[i] = (double) i * ratio + stepsOffset;
                }
            }
            default -> {
                double ratio = (double) n / steps;
                for (int i = 0; i < steps; i++) {
                    ascending[steps - 1 - i] = NoiseSchedule.roundHalfEven(n - i * ratio) - 1;
                }
            }
        }
        // plms: concat(t[:-1], t[-2:-1], t[-1:])[::-1]
        double[] plms = new double[steps + 1];
        int k = 0;
        for (int i = 0; i < steps - 1; i++) {
            plms[k++] = ascending[i];
        }
        plms[k++] = steps >= 2 ? ascending[steps - 2] : ascending[0];
        plms[k] = ascending[steps - 1];
        double[] t = new double[steps + 1];
        for (int i = 0; i <= steps; i++) {
            t[i] = plms[steps - i];
        }
        return new Plan(steps, t, new double[0], 1.0, 0);
    }

    @Override
    public Tensor scaleModelInput(StepState state, int index, Tensor sample) {
        return sample;
    }

    @Override
    public Tensor step(StepState state, int index, Tensor modelOutput, Tensor sample) {
        int ratio = schedule.trainSteps / state.plan.steps();
        int timestep = (int) state.plan.timesteps()[index];
        int prevTimestep = timestep - ratio;
        List<Tensor> ets = state.history;
        if (state.counter != 1) {
            while (ets.size() > 3) {
                ets.removeFirst();
            }
            ets.add(modelOutput);
        } else {
            prevTimestep = timestep;
            timestep = timestep + ratio;
        }
        Tensor output;
        Tensor x = sample;
        int size = ets.size();
        if (size == 1 && state.counter == 0) {
            output = modelOutput;
            state.pending = sample;
        } else if (size == 1 && state.counter == 1) {
            output = modelOutput.add(ets.get(size - 1)).mul(0.5f);
            x = state.pending;
            state.pending = null;
        } else if (size == 2) {
            output = ets.get(1).mul(3f).sub(ets.get(0)).mul(0.5f);
        } else if (size == 3) {
            output = ets.get(2).mul(23f).sub(ets.get(1).mul(16f)).add(ets.get(0).mul(5f)).mul(1f / 12f);
        } else {
            output = ets.get(size - 1).mul(55f).sub(ets.get(size - 2).mul(59f)).add(ets.get(size - 3).mul(37f))
                    .sub(ets.get(size - 4).mul(9f)).mul(1f / 24f);
        }
        Tensor prev = previousSample(x, timestep, prevTimestep, output);
        state.counter++;
        return prev;
    }

    /** PNDM's _get_prev_sample (formula (9) of the PNDM paper). */
    private Tensor previousSample(Tensor sample, int timestep, int prevTimestep, Tensor modelOutput) {
        double alphaProd = schedule.alphaProd(timestep, finalAlphaCumprod);
        double alphaPrev = schedule.alphaProd(prevTimestep, finalAlphaCumprod);
        double betaProd = 1 - alphaProd;
        double betaPrev = 1 - alphaPrev;
        Tensor eps = prediction == Prediction.V_PREDICTION
                ? modelOutput.mul((float) Math.sqrt(alphaProd)).add(sample.mul((float) Math.sqrt(betaProd)))
                : modelOutput;
        double sampleCoeff = Math.sqrt(alphaPrev / alphaProd);
        double denom = alphaProd * Math.sqrt(betaPrev) + Math.sqrt(alphaProd * betaProd * alphaPrev);
        return sample.mul((float) sampleCoeff).sub(eps.mul((float) ((alphaPrev - alphaProd) / denom)));
    }

    @Override
    public Tensor addNoise(Plan plan, int index, Tensor original, Tensor noise) {
        double a = schedule.alphasCumprod[(int) plan.timesteps()[index]];
        return original.mul((float) Math.sqrt(a)).add(noise.mul((float) Math.sqrt(1 - a)));
    }
}
