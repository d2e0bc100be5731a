package koala4j.tensor;

/**
 * Pointwise activations that kernels can fuse into their epilogue (GEMM, conv, GroupNorm).
 * Each constant names the reference function whose formula it follows.
 */
public enum Activation {
    /** Identity. */
    NONE,
    /** torch.nn.functional.relu. */
    RELU,
    /** torch.nn.functional.silu: x * sigmoid(x). */
    SILU,
    /** torch.nn.functional.gelu(approximate='none'): x * 0.5 * (1 + erf(x / sqrt 2)). */
    GELU,
    /** torch.nn.functional.gelu(approximate='tanh'), also transformers' gelu_new / gelu_pytorch_tanh. */
    GELU_TANH,
    /** transformers' quick_gelu (OpenAI CLIP): x * sigmoid(1.702 x). */
    QUICK_GELU;

    /** Reference scalar formula in double precision; kernels are tested against it. */
    public float apply(float x) {
        return switch (this) {
            case NONE -> x;
            case RELU -> x > 0 ? x : 0f;
            case SILU -> (float) (x / (1.0 + Math.exp(-x)));
            case GELU -> (float) (0.5 * x * (1.0 + Erf.erf(x / Math.sqrt(2.0))));
            case GELU_TANH -> (float) (0.5 * x * (1.0 + Math.tanh(
                    Math.sqrt(2.0 / Math.PI) * (x + 0.044715 * (double) x * x * x))));
            case QUICK_GELU -> (float) (x / (1.0 + Math.exp(-1.702 * x)));
        };
    }
}
