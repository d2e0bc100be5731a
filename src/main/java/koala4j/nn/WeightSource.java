package koala4j.nn;

import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.UnaryOperator;

import koala4j.tensor.Tensor;

/** Where a module's parameters come from: a checkpoint, by state-dict key. */
public interface WeightSource {

    /** The tensor stored under {@code key}, as stored (dtype and shape of the file). */
    Optional<Tensor> tensor(String key);

    Set<String> keys();

    /** Names the source in error messages, e.g. the folder or file. */
    String describe();

    /**
     * {@code source} seen under other key names, as transformers' checkpoint conversion mappings rename keys:
     * {@code asSeen} maps a stored key to the name modules look up, {@code asStored} maps it back. The two must be
     * inverses on the stored keys.
     */
    static WeightSource renamed(WeightSource source, UnaryOperator<String> asSeen, UnaryOperator<String> asStored) {
        return new WeightSource() {
            @Override
            public Optional<Tensor> tensor(String key) {
                return source.tensor(asStored.apply(key));
            }

            @Override
            public Set<String> keys() {
                Set<String> out = new TreeSet<>();
                for (String k : source.keys()) {
                    out.add(asSeen.apply(k));
                }
                return out;
            }

            @Override
            public String describe() {
                return source.describe();
            }
        };
    }
}
