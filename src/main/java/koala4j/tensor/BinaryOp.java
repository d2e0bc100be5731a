package koala4j.tensor;

/** Elementwise functions of two broadcast tensors. Comparisons give 1 or 0. */
public enum BinaryOp {
    ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, POW,
    EQ, NE, LT, LE, GT, GE;

    public boolean isComparison() {
        return ordinal() >= EQ.ordinal();
    }

    /** Reference formula; comparisons return 1f or 0f. maximum/minimum propagate NaN as torch does. */
    public float apply(float a, float b) {
        return switch (this) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            case DIV -> a / b;
            case MAXIMUM -> Float.isNaN(a) || Float.isNaN(b) ? Float.NaN : Math.max(a, b);
            case MINIMUM -> Float.isNaN(a) || Float.isNaN(b) ? Float.NaN : Math.min(a, b);
            case POW -> (float) Math.pow(a, b);
            case EQ -> a == b ? 1f : 0f;
            case NE -> a != b ? 1f : 0f;
            case LT -> a < b ? 1f : 0f;
            case LE -> a <= b ? 1f : 0f;
            case GT -> a > b ? 1f : 0f;
            case GE -> a >= b ? 1f : 0f;
        };
    }
}
