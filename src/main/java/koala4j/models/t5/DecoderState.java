package koala4j.models.t5;

import java.util.Arrays;

import koala4j.tensor.Tensor;

/**
 * The per-request state of incremental decoding: for every decoder layer a self-attention key/value cache
 * preallocated for {@link #capacity()} positions and written one position per step ({@link Tensor#copyFrom}), and
 * the cross-attention keys/values projected once from the encoder output. Each step therefore does O(1) new
 * projection work and attends over the cached prefix. Made by
 * {@link T5ForConditionalGeneration#startDecoding}; owned by one request, not thread-safe.
 *
 * <p>Rows come in groups of {@link #groupSize()} (the beams of one input); all rows of a group share one encoder
 * output, which is why {@link #reorder} may move rows only within their group.
 */
public final class DecoderState {

    /** One decoder layer's caches: self K/V [B, nH, capacity, D], cross K/V [B, nH, Ns, D]. */
    static final class Layer {
        final Tensor selfK;
        final Tensor selfV;
        final Tensor crossK;
        final Tensor crossV;

        Layer(Tensor selfK, Tensor selfV, Tensor crossK, Tensor crossV) {
            this.selfK = selfK;
            this.selfV = selfV;
            this.crossK = crossK;
            this.crossV = crossV;
        }
    }

    final Layer[] layers;
    /** [B, 1, 1, Ns]: -inf over encoder padding; null when there is none. */
    final Tensor crossBias;
    private final int batch;
    private final int groupSize;
    private final int capacity;
    private int length;

    DecoderState(Layer[] layers, Tensor crossBias, int batch, int groupSize, int capacity) {
        this.layers = layers;
        this.crossBias = crossBias;
        this.batch = batch;
        this.groupSize = groupSize;
        this.capacity = capacity;
    }

    /** Positions already decoded (the next step writes position {@code length()}). */
    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    /** Rows decoded together: inputs times beams. */
    public int batch() {
        return batch;
    }

    /** Rows per input (the number of beams). */
    public int groupSize() {
        return groupSize;
    }

    void advance() {
        length++;
    }

    /**
     * Beam search's cache reordering ({@code EncoderDecoderCache.reorder_cache}): row r continues from row
     * {@code sourceRows[r]}. Copies the cached prefix only (O(length) per layer).
     */
    public void reorder(long[] sourceRows) {
        if (sourceRows.length != batch) {
            throw new IllegalArgumentException("reorder with " + sourceRows.length + " rows, expected " + batch);
        }
        boolean identity = true;
        for (int r = 0; r < batch; r++) {
            long src = sourceRows[r];
            if (src < 0 || src >= batch || src / groupSize != r / groupSize) {
                throw new IllegalArgumentException("reorder " + Arrays.toString(sourceRows) + ": row " + r
                        + " would continue row " + src + ", outside its group of " + groupSize + " beams");
            }
            identity &= src == r;
        }
        if (identity || length == 0) {
            return;
        }
        Tensor index = layers[0].selfK.ops().fromArray(sourceRows, batch);
        for (Layer layer : layers) {
            for (Tensor cache : new Tensor[] {layer.selfK, layer.selfV}) {
                Tensor prefix = cache.slice(2, 0, length);                       // [B, nH, t, D]
                prefix.copyFrom(prefix.indexSelect(0, index));
            }
        }
    }
}
