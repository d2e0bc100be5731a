package koala4j.schedulers;

/**
 * The pure result of {@code set_timesteps}: the model is called once per entry of {@code timesteps}.
 * {@code sigmas} has one more entry than the sigma-based schedulers step through and is empty for the others.
 * {@code beginIndex} is where an img2img run starts (0 for text-to-image).
 */
public record Plan(int steps, double[] timesteps, double[] sigmas, double initNoiseSigma, int beginIndex) {

    public int length() {
        return timesteps.length;
    }

    /** The plan an img2img run with {@code strength} uses: diffusers' get_timesteps (drop the first steps). */
    public Plan withStrength(double strength, int order) {
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength " + strength + ": expected a value in (0, 1]");
        }
        int initTimestep = Math.min((int) (steps * strength), steps);
        int start = Math.max(steps - initTimestep, 0) * order;
        if (start >= timesteps.length) {
            throw new IllegalArgumentException("strength " + strength + " with " + steps
                    + " steps leaves no denoising step; raise --strength or --steps");
        }
        return new Plan(steps, timesteps, sigmas, initNoiseSigma, start);
    }
}
