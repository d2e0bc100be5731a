package koala4j.schedulers;

import java.util.List;

/** diffusers' timestep_spacing for the schedulers that take {@code steps} timesteps (Euler, DDIM, PNDM). */
final class Spacing {

    static final List<String> NAMES = List.of("linspace", "leading", "trailing");

    private Spacing() {
    }

    /** Descending timesteps, as floats (Euler keeps them fractional for 'linspace'). */
    static double[] timesteps(String spacing, int trainSteps, int steps, int stepsOffset, boolean integer) {
        double[] t = new double[steps];
        switch (spacing) {
            case "linspace" -> {
                for (int i = 0; i < steps; i++) {
                    // np.linspace(0, N - 1, steps, dtype=float32)[::-1]
                    double v = steps == 1 ? 0 : i * ((double) (trainSteps - 1) / (steps - 1));
                    if (i == steps - 1) {
                        v = trainSteps - 1;
                    }
                    t[steps - 1 - i] = integer ? NoiseSchedule.roundHalfEven(v) : (float) v;
                }
            }
            case "leading" -> {
                int ratio = trainSteps / steps;
                for (int i = 0; i < steps; i++) {
                    t[steps - 1 - i] = (double) i * ratio + stepsOffset;
                }
            }
            case "trailing" -> {
                double ratio = (double) trainSteps / steps;
                // np.arange(N, 0, -ratio).round() - 1
                for (int i = 0; i < steps; i++) {
                    t[i] = NoiseSchedule.roundHalfEven(trainSteps - i * ratio) - 1;
                }
            }
            default -> throw new IllegalArgumentException("timestep_spacing " + spacing + ", expected " + NAMES);
        }
        return t;
    }

    static void checkSteps(int steps, int trainSteps) {
        if (steps < 1 || steps > trainSteps) {
            throw new IllegalArgumentException("steps = " + steps + ": expected 1 .. " + trainSteps
                    + " (num_train_timesteps)");
        }
    }
}
