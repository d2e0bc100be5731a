package koala4j.models.unet;

import koala4j.tensor.Tensor;

/**
 * diffusers {@code get_timestep_embedding} (models/embeddings.py) as {@code Timesteps} calls it: sinusoids of
 * the timesteps at frequencies exp(-ln(10000)·i/(half - shift)), in float32 as torch computes them, [cos, sin]
 * when flip_sin_to_cos.
 */
final class Timesteps {

    private final int dim;
    private final boolean flipSinToCos;
    private final float freqShift;

    Timesteps(int dim, boolean flipSinToCos, float freqShift) {
        this.dim = dim;
        this.flipSinToCos = flipSinToCos;
        this.freqShift = freqShift;
    }

    /** t [N] -> [N, dim]. */
    Tensor forward(Tensor timesteps) {
        float[] t = timesteps.toFloatArray();
        int half = dim / 2;
        float[] freq = new float[half];
        float logPeriod = (float) -Math.log(10000);
        for (int i = 0; i < half; i++) {
            float exponent = logPeriod * i / (half - freqShift);
            freq[i] = (float) Math.exp(exponent);
        }
        float[] out = new float[t.length * dim];
        for (int n = 0; n < t.length; n++) {
            for (int i = 0; i < half; i++) {
                float arg = t[n] * freq[i];
                float sin = (float) Math.sin(arg);
                float cos = (float) Math.cos(arg);
                out[n * dim + i] = flipSinToCos ? cos : sin;
                out[n * dim + half + i] = flipSinToCos ? sin : cos;
            }
        }
        return timesteps.ops().fromArray(out, t.length, dim);
    }
}
