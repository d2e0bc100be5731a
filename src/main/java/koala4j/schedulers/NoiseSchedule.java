package koala4j.schedulers;

import java.util.List;

/**
 * The training noise schedule every diffusers scheduler builds in its constructor: betas, alphas_cumprod and the
 * Karras-style sigmas, in the float32 arithmetic torch uses (linspace with its halfway split, cumprod accumulated
 * in double), so timesteps and sigmas equal the reference's.
 */
final class NoiseSchedule {

    final int trainSteps;
    final float[] betas;
    final float[] alphasCumprod;

    private NoiseSchedule(int trainSteps, float[] betas) {
        this.trainSteps = trainSteps;
        this.betas = betas;
        this.alphasCumprod = new float[trainSteps];
        double acc = 1.0;
        for (int i = 0; i < trainSteps; i++) {
            acc *= 1f - betas[i];
            alphasCumprod[i] = (float) acc;
        }
    }

    /** Reads num_train_timesteps, beta_start, beta_end, beta_schedule and trained_betas with the class defaults. */
    static NoiseSchedule from(SchedulerConfig cfg, double betaStart, double betaEnd, String betaSchedule) {
        int n = cfg.intOr("num_train_timesteps", 1000);
        if (n < 2 || n > 100_000) {
            throw new IllegalArgumentException(cfg.json().file() + ": num_train_timesteps = " + n
                    + ", expected 2 .. 100000");
        }
        if (cfg.boolOr("rescale_betas_zero_snr", false)) {
            throw new IllegalArgumentException(cfg.json().file() + ": rescale_betas_zero_snr = true is not supported");
        }
        if (cfg.hasTrainedBetas()) {
            List<Double> trained = cfg.trainedBetas();
            if (trained.size() != n) {
                throw new IllegalArgumentException(cfg.json().file() + ": trained_betas has " + trained.size()
                        + " values, expected num_train_timesteps = " + n);
            }
            float[] betas = new float[n];
            for (int i = 0; i < n; i++) {
                betas[i] = trained.get(i).floatValue();
            }
            return new NoiseSchedule(n, betas);
        }
        double start = cfg.doubleOr("beta_start", betaStart);
        double end = cfg.doubleOr("beta_end", betaEnd);
        String schedule = cfg.choice("beta_schedule", betaSchedule, List.of("linear", "scaled_linear", "squaredcos_cap_v2"));
        float[] betas = switch (schedule) {
            case "linear" -> linspace((float) start, (float) end, n);
            case "scaled_linear" -> {
                float[] r = linspace((float) Math.sqrt(start), (float) Math.sqrt(end), n);
                for (int i = 0; i < n; i++) {
                    r[i] = r[i] * r[i];
                }
                yield r;
            }
            default -> cosineBetas(n);
        };
        return new NoiseSchedule(n, betas);
    }

    /** torch.linspace in float32: start + step*i for the first half, end - step*(n-1-i) for the second. */
    static float[] linspace(float start, float end, int n) {
        float[] out = new float[n];
        float step = (end - start) / (n - 1);
        int half = n / 2;
        for (int i = 0; i < n; i++) {
            out[i] = i < half ? start + step * i : end - step * (n - i - 1);
        }
        return out;
    }

    /** diffusers betas_for_alpha_bar with the cosine alpha_bar (Nichol & Dhariwal), max beta 0.999. */
    private static float[] cosineBetas(int n) {
        float[] betas = new float[n];
        for (int i = 0; i < n; i++) {
            double t1 = (double) i / n;
            double t2 = (double) (i + 1) / n;
            double b = 1 - alphaBar(t2) / alphaBar(t1);
            betas[i] = (float) Math.min(b, 0.999);
        }
        return betas;
    }

    private static double alphaBar(double t) {
        double c = Math.cos((t + 0.008) / 1.008 * Math.PI / 2);
        return c * c;
    }

    /** ((1 - ᾱ) / ᾱ) ** 0.5 per training timestep, in float32 as torch computes it. */
    float[] sigmas() {
        float[] s = new float[trainSteps];
        for (int i = 0; i < trainSteps; i++) {
            s[i] = (float) Math.sqrt((1f - alphasCumprod[i]) / alphasCumprod[i]);
        }
        return s;
    }

    static float[] log(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) Math.log(x[i]);
        }
        return out;
    }

    /** numpy.interp(x, arange(len(fp)), fp) for x inside [0, len-1]. */
    static double interp(double x, float[] fp) {
        if (x <= 0) {
            return fp[0];
        }
        if (x >= fp.length - 1) {
            return fp[fp.length - 1];
        }
        int lo = (int) Math.floor(x);
        double w = x - lo;
        return fp[lo] + (fp[lo + 1] - (double) fp[lo]) * w;
    }

    /** Karras et al. (2022) sigmas between the given extremes, rho 7, as diffusers' _convert_to_karras. */
    static double[] karras(double sigmaMin, double sigmaMax, int steps) {
        double rho = 7.0;
        double minInv = Math.pow(sigmaMin, 1 / rho);
        double maxInv = Math.pow(sigmaMax, 1 / rho);
        double[] out = new double[steps];
        for (int i = 0; i < steps; i++) {
            double ramp = steps == 1 ? 0 : (double) i / (steps - 1);
            out[i] = Math.pow(maxInv + ramp * (minInv - maxInv), rho);
        }
        return out;
    }

    /** diffusers _sigma_to_t: the fractional training timestep whose log-sigma interpolates to {@code sigma}. */
    static double sigmaToT(double sigma, float[] logSigmas) {
        double logSigma = Math.log(Math.max(sigma, 1e-10));
        int low = 0;
        for (int i = 0; i < logSigmas.length; i++) {
            if (logSigma - logSigmas[i] >= 0) {
                low = i;
            }
        }
        low = Math.min(low, logSigmas.length - 2);
        double lo = logSigmas[low];
        double hi = logSigmas[low + 1];
        double w = Math.clamp((lo - logSigma) / (lo - hi), 0.0, 1.0);
        return (1 - w) * low + w * (low + 1);
    }

    /** alphas_cumprod at an integer timestep, or the final value for a negative one. */
    double alphaProd(int timestep, double finalAlphaCumprod) {
        return timestep >= 0 ? alphasCumprod[timestep] : finalAlphaCumprod;
    }

    /** numpy's round (half to even) as diffusers' .round() does on timesteps. */
    static double roundHalfEven(double x) {
        return Math.rint(x);
    }
}
