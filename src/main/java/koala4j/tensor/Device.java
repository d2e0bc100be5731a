package koala4j.tensor;

/** Where a tensor's storage lives. */
public enum Device {
    CPU,
    CUDA
}
