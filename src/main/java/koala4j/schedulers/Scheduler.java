package koala4j.schedulers;

import koala4j.tensor.Tensor;

/**
 * One diffusers scheduler algorithm. Planning is pure; the per-request state (multistep history, noise source)
 * lives in a {@link StepState}, so one scheduler instance serves any number of requests at once.
 */
public interface Scheduler {

    /** The diffusers class this follows, e.g. "EulerDiscreteScheduler". */
    String className();

    /** set_timesteps(steps). */
    Plan plan(int steps);

    /** One request's state for a plan; {@code noise} feeds ancestral and consistency schedulers. */
    default StepState begin(Plan plan, NoiseSource noise) {
        return new StepState(plan, noise);
    }

    /** scale_model_input for the entry {@code index} of the plan. */
    Tensor scaleModelInput(StepState state, int index, Tensor sample);

    /** step(): the sample for the next entry, from the model output at entry {@code index}. */
    Tensor step(StepState state, int index, Tensor modelOutput, Tensor sample);

    /** add_noise for img2img: {@code original} noised to the level of the plan entry {@code index}. */
    Tensor addNoise(Plan plan, int index, Tensor original, Tensor noise);

    /** How many plan entries one denoising step uses (diffusers' scheduler.order; 1 for all here). */
    default int order() {
        return 1;
    }

    /** What the model predicts, from the config's prediction_type. */
    enum Prediction { EPSILON, V_PREDICTION, SAMPLE }
}
