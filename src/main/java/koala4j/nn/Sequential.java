package koala4j.nn;

import java.util.Map;
import java.util.TreeMap;

import koala4j.tensor.Tensor;

/**
 * torch.nn.Sequential / ModuleList with the reference's indices, gaps included: a Dropout or activation at
 * index 1 has no weights, so nothing is registered there and keys stay "net.0.*", "net.2.*".
 */
public final class Sequential extends Module implements Layer {

    private final TreeMap<Integer, Layer> layers = new TreeMap<>();

    /** Registers {@code module} at {@code index}; returns this for chaining. */
    public <M extends Module & Layer> Sequential at(int index, M module) {
        child(Integer.toString(index), module);
        layers.put(index, module);
        return this;
    }

    /** A stateless step (activation, dropout at inference) at {@code index}, which has no keys. */
    public Sequential function(int index, Layer function) {
        if (layers.putIfAbsent(index, function) != null) {
            throw new IllegalArgumentException("index " + index + " used twice");
        }
        return this;
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor h = x;
        for (Map.Entry<Integer, Layer> e : layers.entrySet()) {
            h = e.getValue().forward(h);
        }
        return h;
    }

    public int size() {
        return layers.size();
    }
}
