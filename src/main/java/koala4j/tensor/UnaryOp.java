package koala4j.tensor;

/** Elementwise functions of one tensor (and an optional scalar argument), torch names in comments. */
public enum UnaryOp {
    NEG, // torch.neg
    ABS, // torch.abs
    EXP, // torch.exp
    LOG, // torch.log
    SQRT, // torch.sqrt
    RSQRT, // torch.rsqrt
    TANH, // torch.tanh
    SIGMOID, // torch.sigmoid
    SIN, // torch.sin
    COS, // torch.cos
    SQUARE, // torch.square
    RECIPROCAL, // torch.reciprocal
    POW_SCALAR, // torch.pow(x, arg)
    ADD_SCALAR, // x + arg
    MUL_SCALAR, // x * arg
    RSUB_SCALAR, // arg - x
    CLAMP_MIN, // torch.clamp(x, min=arg)
    CLAMP_MAX; // torch.clamp(x, max=arg)

    /** Reference formula in double precision; backends are tested against it. */
    public float apply(float x, float arg) {
        return switch (this) {
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case EXP -> (float) Math.exp(x);
            case LOG -> (float) Math.log(x);
            case SQRT -> (float) Math.sqrt(x);
            case RSQRT -> (float) (1.0 / Math.sqrt(x));
            case TANH -> (float) Math.tanh(x);
            case SIGMOID -> (float) (1.0 / (1.0 + Math.exp(-x)));
            case SIN -> (float) Math.sin(x);
            case COS -> (float) Math.cos(x);
            case SQUARE -> x * x;
            case RECIPROCAL -> 1f / x;
            case POW_SCALAR -> (float) Math.pow(x, arg);
            case ADD_SCALAR -> x + arg;
            case MUL_SCALAR -> x * arg;
            case RSUB_SCALAR -> arg - x;
            case CLAMP_MIN -> Float.isNaN(x) ? x : Math.max(x, arg);
            case CLAMP_MAX -> Float.isNaN(x) ? x : Math.min(x, arg);
        };
    }
}
