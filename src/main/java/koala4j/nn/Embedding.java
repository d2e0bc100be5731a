package koala4j.nn;

import koala4j.tensor.Tensor;

/** torch.nn.Embedding: key {@code weight} [count, dim]; looks rows up by I32/I64 ids of any shape. */
public final class Embedding extends Module {

    private final Parameter weight;

    public Embedding(int count, int dim) {
        this.weight = parameter("weight", count, dim);
    }

    /** ids [...] -> [..., dim]. */
    public Tensor forward(Tensor ids) {
        return weight.get().embedding(ids);
    }

    public Parameter weight() {
        return weight;
    }
}
