package koala4j.nn;

import java.util.Arrays;

import koala4j.tensor.Tensor;

/**
 * One named weight of a module with the shape its configuration implies. Empty until the module tree is loaded;
 * after that it holds the checkpoint's tensor as stored (an mmap view, any floating dtype).
 */
public final class Parameter {

    private final int[] shape;
    private volatile Tensor value;

    Parameter(int[] shape) {
        this.shape = shape.clone();
    }

    public int[] shape() {
        return shape.clone();
    }

    /** The loaded tensor; an error if the module was never loaded. */
    public Tensor get() {
        Tensor v = value;
        if (v == null) {
            throw new IllegalStateException("parameter of shape " + Arrays.toString(shape) + " used before loading");
        }
        return v;
    }

    public boolean isLoaded() {
        return value != null;
    }

    /** Sets the value; its shape must be the declared one. */
    public void set(Tensor tensor) {
        if (!Arrays.equals(tensor.shape(), shape)) {
            throw new IllegalArgumentException("shape " + Arrays.toString(tensor.shape()) + ", expected "
                    + Arrays.toString(shape));
        }
        this.value = tensor;
    }
}
