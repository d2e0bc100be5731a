package koala4j.tensor;

/**
 * The memory behind one or more tensors. A backend creates the storages it computes on; host storage is shared
 * by every backend for weights read from disk.
 */
public interface Storage {
    Device device();

    DType dtype();

    /** Size in elements of {@link #dtype()}. */
    long size();
}
