package koala4j.models.llama;

import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Q4;
import koala4j.tensor.quant.Q8;
import koala4j.tensor.quant.Q8Storage;

/**
 * The keys and values of every layer for one batch of sequences, preallocated to a capacity: per layer K and V of
 * [B, nKV, capacity, D] in F32 (as transformers keeps them for a float32 model), F16 (half the memory and half
 * the bytes a decoding step reads, as llama.cpp's default cache), Q8_0 or Q4_0 (llama.cpp's q8_0 / q4_0 cache
 * types: 34 or 18 bytes per 32 values of a head's row; D a multiple of 32), written in place
 * ({@link Tensor#copyFrom}, rounding or quantising there) at the positions a forward pass adds. Attention then reads
 * the filled prefix [0, length) as a view, with no copy. Memory: 2 * layers * B * nKV * capacity * D * 4 bytes in F32
 * (LLaMA-13B at 2048 positions: 3.4 GB; 7B at 4096: 4.3 GB), half that in F16, 17/64 of it in Q8_0, 9/64 in Q4_0.
 *
 * <p>One cache belongs to one generation at a time and is not thread-safe; the model itself is.
 */
public final class KvCache {

    private final DType dtype;
    private final Tensor[] keys;
    private final Tensor[] values;
    private final int batch;
    private final int capacity;
    private int length;

    KvCache(Ops ops, LlamaConfig c, int batch, int capacity, DType dtype) {
        if (batch < 1 || capacity < 1) {
            throw new IllegalArgumentException("KV cache for batch " + batch + " and capacity " + capacity
                    + ", expected both >= 1");
        }
        this.dtype = checkType(c, dtype);
        this.batch = batch;
        this.capacity = capacity;
        this.keys = new Tensor[c.numHiddenLayers()];
        this.values = new Tensor[c.numHiddenLayers()];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = ops.empty(dtype, batch, c.numKeyValueHeads(), capacity, c.headDim());
            values[i] = ops.empty(dtype, batch, c.numKeyValueHeads(), capacity, c.headDim());
        }
    }

    /** {@link #checkType(DType)} for this model: a Q8_0 or Q4_0 cache needs head_dim a multiple of 32. */
    static DType checkType(LlamaConfig c, DType dtype) {
        if (checkType(dtype).isQuantised() && c.headDim() % Q8Storage.BLOCK != 0) {
            throw new IllegalArgumentException("a " + dtype + " KV cache needs head_dim a multiple of "
                    + Q8Storage.BLOCK + " (blocks along each head's row); this model's head_dim is " + c.headDim()
                    + ": use f16 or f32");
        }
        return dtype;
    }

    /** The element types a cache can hold: F32, F16, Q8_0 and Q4_0. */
    public static DType checkType(DType dtype) {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.Q8_0 && dtype != DType.Q4_0) {
            throw new IllegalArgumentException("KV cache type " + dtype + ": expected F32, F16, Q8_0 or Q4_0");
        }
        return dtype;
    }

    /**
     * Parses a KV cache type as the command line gives it: {@code f32}, {@code f16}, {@code q8_0} or {@code q4_0}
     * (any case; null: F32); an error names {@code option} and the value.
     */
    public static DType parseType(String option, String name) {
        if (name == null) {
            return DType.F32;
        }
        return switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "float32" -> DType.F32;
            case "f16", "float16" -> DType.F16;
            case "q8_0", "q8" -> DType.Q8_0;
            case "q4_0", "q4" -> DType.Q4_0;
            default -> throw new IllegalArgumentException(option + " '" + name + "': expected f32, f16, q8_0 or q4_0 "
                    + "(KV cache element type)");
        };
    }

    /** Bytes one position takes in every layer's keys and values. */
    public static long bytesPerPosition(LlamaConfig c, DType dtype) {
        long values = 2L * c.numHiddenLayers() * c.numKeyValueHeads() * c.headDim();
        return switch (checkType(dtype)) {
            case Q8_0 -> Q8.bytesFor(values);
            case Q4_0 -> Q4.bytesFor(values);
            default -> values * dtype.byteSize();
        };
    }

    public DType dtype() {
        return dtype;
    }

    /** Positions filled so far (the next token's position). */
    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    public int batch() {
        return batch;
    }

    /** Forgets positions from {@code newLength} on (for example to reuse a shared prompt prefix); 0 clears it. */
    public void truncate(int newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("truncate to " + newLength + " of a cache holding " + length);
        }
        length = newLength;
    }

    /** Takes the first {@code n} positions of {@code from} (same model, same batch), dropping what this held. */
    public void copyPrefix(KvCache from, int n) {
        if (!sameLayers(from) || from.batch != batch) {
            throw new IllegalArgumentException("copying a KV cache of " + from.keys.length + " layers, batch "
                    + from.batch + ", " + from.dtype + " into one of " + keys.length + " layers, batch " + batch + ", "
                    + dtype + " (or other heads)");
        }
        if (n < 0 || n > from.length || n > capacity) {
            throw new IllegalArgumentException("copy " + n + " positions of a cache holding " + from.length
                    + " into one of capacity " + capacity);
        }
        for (int i = 0; i < keys.length; i++) {
            keys[i].slice(2, 0, n).copyFrom(from.keys[i].slice(2, 0, n));
            values[i].slice(2, 0, n).copyFrom(from.values[i].slice(2, 0, n));
        }
        length = n;
    }

    /**
     * Every row takes the filled positions of {@code from}'s only row (a cache of the same model with batch 1): a
     * prompt computed once, for several beams, as transformers' beams would each compute it.
     */
    public void broadcastFrom(KvCache from) {
        if (!sameLayers(from) || from.batch != 1 || from.length > capacity) {
            throw new IllegalArgumentException("broadcasting a KV cache of batch " + from.batch + ", " + from.length
                    + " positions, " + from.dtype + " into one of batch " + batch + ", capacity " + capacity + ", "
                    + dtype + " (expected batch 1 of the same model, fitting)");
        }
        int n = from.length;
        for (int i = 0; i < keys.length; i++) {
            for (int b = 0; b < batch; b++) {
                keys[i].slice(0, b, b + 1).slice(2, 0, n).copyFrom(from.keys[i].slice(2, 0, n));
                values[i].slice(0, b, b + 1).slice(2, 0, n).copyFrom(from.values[i].slice(2, 0, n));
            }
        }
        length = n;
    }

    /**
     * Row r takes what row {@code rows[r]} held (beam search moves the caches with their beams, as the reference's
     * {@code _reorder_cache}); rows that keep their own are not copied.
     */
    public void reorder(long[] rows) {
        if (rows.length != batch) {
            throw new IllegalArgumentException("reorder of " + rows.length + " rows for a KV cache of batch " + batch);
        }
        for (long r : rows) {
            if (r < 0 || r >= batch) {
                throw new IllegalArgumentException("reorder row " + r + " of a KV cache of batch " + batch);
            }
        }
        for (int i = 0; i < keys.length; i++) {
            reorder(keys[i], rows);
            reorder(values[i], rows);
        }
    }

    private void reorder(Tensor layer, long[] rows) {
        java.util.Map<Integer, Tensor> sources = new java.util.HashMap<>();
        for (int r = 0; r < rows.length; r++) {
            int from = (int) rows[r];
            if (from != r) {
                sources.computeIfAbsent(from, f -> {
                    Tensor view = layer.slice(0, f, f + 1).slice(2, 0, length);
                    Tensor copy = view.ops().empty(view.dtype(), view.shape());
                    copy.copyFrom(view);
                    return copy;
                });
            }
        }
        for (int r = 0; r < rows.length; r++) {
            if (rows[r] != r) {
                layer.slice(0, r, r + 1).slice(2, 0, length).copyFrom(sources.get((int) rows[r]));
            }
        }
    }

    /** Whether {@code from} holds the same layers, KV heads, head size and element type (batch aside). */
    private boolean sameLayers(KvCache from) {
        return from.keys.length == keys.length && from.dtype == dtype && (keys.length == 0
                || from.keys[0].size(1) == keys[0].size(1) && from.keys[0].size(3) == keys[0].size(3));
    }

    /** Checks that {@code n} more positions fit, before any layer writes. */
    void reserve(int n, int batchOfInput) {
        if (batchOfInput != batch) {
            throw new IllegalArgumentException("input batch " + batchOfInput + " for a KV cache of batch " + batch);
        }
        if (length + n > capacity) {
            throw new IllegalArgumentException("KV cache full: " + length + " positions + " + n + " new > capacity "
                    + capacity + " (give the cache room for prompt + max new tokens)");
        }
    }

    /**
     * Writes this step's k and v [B, nKV, N, D] of {@code layer} at positions [length, length+N) and returns the
     * filled keys and values [B, nKV, length+N, D] (views of the cache).
     */
    Tensor[] append(int layer, Tensor k, Tensor v) {
        int n = k.size(2);
        keys[layer].slice(2, length, length + n).copyFrom(k);
        values[layer].slice(2, length, length + n).copyFrom(v);
        return new Tensor[] {keys[layer].slice(2, 0, length + n), values[layer].slice(2, 0, length + n)};
    }

    /** Marks the N positions every layer has appended as filled. */
    void advance(int n) {
        length += n;
    }
}
