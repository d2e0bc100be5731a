package koala4j.nn;

import java.util.Optional;
import java.util.Set;

import koala4j.tensor.Tensor;

/** Where a module's parameters come from: a checkpoint, by state-dict key. */
public interface WeightSource {

    /** The tensor stored under {@code key}, as stored (dtype and shape of the file). */
    Optional<Tensor> tensor(String key);

    Set<String> keys();

    /** Names the source in error messages, e.g. the folder or file. */
    String describe();
}
