package koala4j.tensor;

/** Reductions over one axis. */
public enum ReduceOp {
    SUM, MEAN, MAX, MIN
}
