package koala4j.models.llama;

import java.util.ArrayList;
import java.util.List;

import koala4j.models.Checkpoint;
import koala4j.nn.Embedding;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.Parameter;
import koala4j.nn.RmsNorm;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Q8;
import koala4j.tensor.quant.Quantization;

/**
 * transformers {@code LlamaForCausalLM} (models/llama/modeling_llama.py): keys {@code model.embed_tokens},
 * {@code model.layers.N.*}, {@code model.norm} and {@code lm_head} (absent when tie_word_embeddings). The forward
 * pass takes input embeddings, so a LLaVA model can splice image features in, and a {@link KvCache} that it extends:
 * a prompt is one call over all its positions (computed a chunk at a time), then each new token is one call over one
 * position.
 *
 * <p>Immutable after {@link #load} (and {@link #quantize}); one instance serves any number of generations at once,
 * each with its own cache.
 */
public final class LlamaForCausalLM extends Module {

    /** llama.cpp's default n_ubatch. */
    public static final int DEFAULT_PREFILL_CHUNK = 512;

    /** Logits [B, N or 1, V] and, when asked for, hidden_states as transformers returns them (embeddings first). */
    public record Output(Tensor logits, List<Tensor> hiddenStates) {
    }

    private final LlamaConfig config;
    private final LlamaModel model;
    private final Linear lmHead;
    private final RotaryEmbedding rotary;
    /** lm_head weight when it is the (tied) embedding table quantised separately; null otherwise. */
    private volatile Tensor tiedHead;
    private volatile DType kvCacheType = DType.F32;
    private volatile int prefillChunk = DEFAULT_PREFILL_CHUNK;

    public LlamaForCausalLM(LlamaConfig config) {
        this.config = config;
        this.model = child("model", new LlamaModel(config));
        this.lmHead = config.tieWordEmbeddings() ? null
                : child("lm_head", new Linear(config.hiddenSize(), config.vocabSize(), false));
        this.rotary = new RotaryEmbedding(config);
    }

    /**
     * config.json and the weights of a transformers LLaMA folder; Linear weights quantised when asked. Unexpected
     * checkpoint keys are an error (a different architecture would otherwise load silently).
     */
    public static LlamaForCausalLM load(Checkpoint checkpoint, Quantization quantization) {
        LlamaForCausalLM lm = new LlamaForCausalLM(LlamaConfig.from(checkpoint.config()));
        LoadReport report = lm.load(checkpoint);
        List<String> unexpected = report.unexpectedKeys().stream()
                .filter(k -> !k.endsWith("rotary_emb.inv_freq")).toList();   // a buffer older checkpoints saved
        if (!unexpected.isEmpty()) {
            throw new koala4j.nn.WeightException(checkpoint.describe(), unexpected.getFirst(), unexpected.size()
                    + " key(s) that LlamaForCausalLM does not have: " + (unexpected.size() <= 8 ? unexpected
                    : unexpected.subList(0, 8) + " ..."));
        }
        lm.quantize(quantization);
        return lm;
    }

    public LlamaConfig config() {
        return config;
    }

    /**
     * The longest sequence whose positions all rotate by the same frequencies (dynamic NTK and LongRoPE change them
     * for a forward call reaching beyond it; {@link Integer#MAX_VALUE} for the other rope types). A prompt cache may
     * reuse keys only when neither the call that computed them nor the new prompt is longer.
     */
    public int ropeLengthDependentAbove() {
        return RotaryEmbedding.lengthDependentAbove(config);
    }

    /**
     * Casts every Linear weight (q/k/v/o, gate/up/down, lm_head) to the quantised dtype; embeddings and norms keep
     * their format. With tied embeddings lm_head gets its own quantised copy of the table. A no-op for
     * {@link Quantization#NONE} and for weights already in the format. Call once, before serving.
     */
    public void quantize(Quantization quantization) {
        if (quantization.dtype() == null) {
            return;
        }
        for (Linear linear : linears()) {
            Parameter w = linear.weight();
            if (w.get().dtype() != quantization.dtype()) {
                w.set(w.get().to(quantization.dtype()));
            }
        }
        if (lmHead == null && tiedHead == null) {
            tiedHead = model.embedTokens.weight().get().to(quantization.dtype());
        }
    }

    /** Every Linear of the model, lm_head last (when untied). */
    public List<Linear> linears() {
        List<Linear> out = new ArrayList<>();
        for (LlamaDecoderLayer layer : model.layers) {
            out.addAll(layer.linears());
        }
        if (lmHead != null) {
            out.add(lmHead);
        }
        return out;
    }

    /**
     * Bytes of weights one decoding step reads: every Linear weight (lm_head included) and norm, in their stored
     * format (Q8_0: 34 bytes per 32, Q4_0: 18); of the embedding table only one row.
     */
    public long weightBytesPerToken() {
        long bytes = 0;
        for (var e : namedParameters().entrySet()) {
            Tensor t = e.getValue().get();
            if (e.getValue() == model.embedTokens.weight()) {
                bytes += (long) config.hiddenSize() * t.dtype().byteSize();
            } else {
                bytes += bytesOf(t);
            }
        }
        return bytes + (tiedHead != null ? bytesOf(tiedHead)
                : lmHead == null ? bytesOf(model.embedTokens.weight().get()) : 0);
    }

    private static long bytesOf(Tensor t) {
        return switch (t.dtype()) {
            case Q8_0 -> Q8.bytesFor(t.numel());
            case Q4_0 -> koala4j.tensor.quant.Q4.bytesFor(t.numel());
            default -> t.numel() * t.dtype().byteSize();
        };
    }

    /** The ops the weights belong to (where inputs for this model are made). */
    public Ops ops() {
        return model.embedTokens.weight().get().ops();
    }

    /**
     * A cache for {@code batch} sequences of up to {@code capacity} positions (prompt + new tokens), of this model's
     * {@link #kvCacheType}.
     */
    public KvCache newCache(int batch, int capacity) {
        return newCache(batch, capacity, kvCacheType);
    }

    public KvCache newCache(int batch, int capacity, DType dtype) {
        return new KvCache(ops(), config, batch, capacity, dtype);
    }

    /** The element type of the caches {@link #newCache(int, int)} makes: F32 (the default), F16 or Q8_0. */
    public DType kvCacheType() {
        return kvCacheType;
    }

    /**
     * Sets the element type of the caches made from now on (F16: half the memory and half the bytes each decoding
     * step reads of them; keys and values rounded to F16, as llama.cpp's default cache; Q8_0: 34 bytes per 32
     * values, llama.cpp's q8_0 cache type, for head_dim a multiple of 32). A load-time choice: caches made before
     * keep theirs.
     */
    public void kvCacheType(DType dtype) {
        kvCacheType = KvCache.checkType(config, dtype);
    }

    /** embed_tokens: ids [B, N] (I32/I64) -> [B, N, C]. */
    public Tensor embed(Tensor ids) {
        return model.embedTokens.forward(ids.dtype() == DType.I64 ? ids : ids.to(DType.I64));
    }

    /** Logits for ids [B, N] at positions [cache.length(), +N); see {@link #forward(Tensor, KvCache, boolean)}. */
    public Tensor forwardIds(Tensor ids, KvCache cache, boolean lastOnly) {
        return forward(embed(ids), cache, lastOnly);
    }

    /**
     * Logits [B, N or 1, V] for input embeddings, the positions computed {@link #prefillChunk} at a time; see
     * {@link #forward(Tensor, KvCache, boolean, Runnable)}.
     */
    public Tensor forward(Tensor inputsEmbeds, KvCache cache, boolean lastOnly) {
        return forward(inputsEmbeds, cache, lastOnly, () -> { });
    }

    /**
     * Logits as {@link #forward(Tensor, KvCache, boolean, boolean)} gives them, the N positions computed in chunks of
     * at most {@link #prefillChunk} (llama.cpp's n_ubatch): each chunk attends to the keys the chunks before it left
     * in the cache, so a long prompt's activations and sliding-window masks stay the size of a chunk, and
     * {@code beforeEachChunk} runs before every chunk (a check that may throw to stop a long prompt). Positions whose
     * rotary frequencies depend on the call's length (dynamic NTK, LongRoPE beyond their original length) are
     * computed in one call, as the reference computes a prompt, so that they rotate by the same frequencies.
     */
    public Tensor forward(Tensor inputsEmbeds, KvCache cache, boolean lastOnly, Runnable beforeEachChunk) {
        checkEmbeds(inputsEmbeds);
        int n = inputsEmbeds.size(1);
        cache.reserve(n, inputsEmbeds.size(0));                            // the whole prompt fits, before any chunk
        int chunk = prefillChunk;
        if (n <= chunk || (long) cache.length() + n > ropeLengthDependentAbove()) {
            beforeEachChunk.run();
            return forward(inputsEmbeds, cache, lastOnly, false).logits();
        }
        List<Tensor> logits = new ArrayList<>();
        for (int start = 0; start < n; start += chunk) {
            beforeEachChunk.run();
            int end = Math.min(n, start + chunk);
            Tensor part = inputsEmbeds.slice(1, start, end);
            if (!lastOnly || end == n) {
                logits.add(forward(part, cache, lastOnly, false).logits());
            } else {
                layers(part, cache, null);
            }
        }
        return logits.size() == 1 ? logits.getFirst() : Tensor.concat(logits, 1);
    }

    /** The most positions one call of {@link #forward(Tensor, KvCache, boolean)} computes together. */
    public int prefillChunk() {
        return prefillChunk;
    }

    /**
     * Sets {@link #prefillChunk} (default {@value #DEFAULT_PREFILL_CHUNK}, llama.cpp's default n_ubatch): fewer
     * positions bound a long prompt's activation memory tighter and let a cancelled prompt stop sooner; each chunk
     * reads the weights once more.
     */
    public void prefillChunk(int positions) {
        if (positions < 1) {
            throw new IllegalArgumentException("prefill chunk of " + positions + " positions, expected at least 1");
        }
        prefillChunk = positions;
    }

    /**
     * Mistral's sliding window as an additive mask over the cached and new keys: query position p sees keys
     * (p - window, p] (the causal part is left to attention's causal flag); null when every key is inside.
     */
    private Tensor slidingWindowMask(Ops ops, int past, int n) {
        Integer w = config.slidingWindow();
        if (w == null || past + n <= w) {
            return null;
        }
        int keys = past + n;
        float[] mask = new float[n * keys];
        for (int i = 0; i < n; i++) {
            int lastHidden = past + i - w;                                      // keys at or before this are out
            for (int k = 0; k <= lastHidden && k < keys; k++) {
                mask[i * keys + k] = Float.NEGATIVE_INFINITY;
            }
        }
        return ops.fromArray(mask, 1, 1, n, keys);
    }

    /**
     * inputsEmbeds [B, N, C] at positions [cache.length(), +N) in one call: runs every layer, appends their keys and
     * values to the cache and advances it by N. {@code lastOnly}: logits of the last position only (transformers'
     * logits_to_keep=1, what generate asks for), [B, 1, V]; else all, [B, N, V].
     */
    public Output forward(Tensor inputsEmbeds, KvCache cache, boolean lastOnly, boolean hiddenStates) {
        checkEmbeds(inputsEmbeds);
        int n = inputsEmbeds.size(1);
        List<Tensor> states = hiddenStates ? new ArrayList<>() : null;
        Tensor h = layers(inputsEmbeds, cache, states);                                      // [B, N, C]
        if (lastOnly && states == null) {
            h = h.slice(1, n - 1, n);                                                      // [B, 1, C]
        }
        h = model.norm.forward(h);                                                         // [B, N, C]
        if (states != null) {
            states.add(h);
            if (lastOnly) {
                h = h.slice(1, n - 1, n);
            }
        }
        Tensor head = lmHead != null ? lmHead.weight().get()
                : tiedHead != null ? tiedHead : model.embedTokens.weight().get();
        Tensor logits = h.linear(head, null);                                              // [B, N, V]
        return new Output(logits, states == null ? List.of() : List.copyOf(states));
    }

    /**
     * The final hidden state [B, N, C] of inputsEmbeds at positions [cache.length(), +N) (after the last norm,
     * transformers' {@code hidden_states[-1]}), with no logits and no other layer's state kept; the cache advances
     * by N.
     */
    public Tensor lastHiddenState(Tensor inputsEmbeds, KvCache cache) {
        checkEmbeds(inputsEmbeds);
        return model.norm.forward(layers(inputsEmbeds, cache, null));
    }

    private void checkEmbeds(Tensor inputsEmbeds) {
        if (inputsEmbeds.rank() != 3 || inputsEmbeds.size(2) != config.hiddenSize()) {
            throw new IllegalArgumentException("input embeddings of shape "
                    + java.util.Arrays.toString(inputsEmbeds.shape()) + ", expected [B, N, " + config.hiddenSize() + "]");
        }
    }

    /**
     * inputsEmbeds [B, N, C] at positions [cache.length(), +N) through every layer: their keys and values appended to
     * the cache, which advances by N; the last layer's output [B, N, C] (before the final norm), each layer's input
     * added to {@code states} when given.
     */
    private Tensor layers(Tensor inputsEmbeds, KvCache cache, List<Tensor> states) {
        int n = inputsEmbeds.size(1);
        cache.reserve(n, inputsEmbeds.size(0));
        Tensor[] cosSin = rotary.cosSin(inputsEmbeds.ops(), cache.length(), n);             // 2 x [N, D]
        Tensor window = slidingWindowMask(inputsEmbeds.ops(), cache.length(), n);           // [1, 1, N, L+N] or null
        Tensor h = inputsEmbeds;
        for (LlamaDecoderLayer layer : model.layers) {
            if (states != null) {
                states.add(h);
            }
            h = layer.forward(h, cosSin[0], cosSin[1], cache, window);
        }
        cache.advance(n);
        return h;
    }

    /**
     * One decoding step of S independent sequences at once: {@code ids[i]} is sequence i's new token, at position
     * {@code caches.get(i).length()} of its own single-sequence cache (which advances by one). The linear layers and
     * lm_head run on all S rows together, so each weight is read once for the step, not S times; rotary positions,
     * sliding windows and attention stay per sequence. Logits [S, 1, V]; row i equals {@link #forwardIds} of ids[i]
     * with caches.get(i) up to the order of floating-point sums.
     */
    public Tensor decodeStep(long[] ids, List<KvCache> caches) {
        int s = ids.length;
        if (s == 0 || caches.size() != s) {
            throw new IllegalArgumentException("a decoding step of " + s + " ids with " + caches.size()
                    + " caches, expected one cache per id and at least one id");
        }
        Ops ops = ops();
        Tensor[] cos = new Tensor[s];
        Tensor[] sin = new Tensor[s];
        Tensor[] masks = new Tensor[s];
        for (int i = 0; i < s; i++) {
            KvCache c = caches.get(i);
            if (c.batch() != 1) {
                throw new IllegalArgumentException("cache " + i + " holds " + c.batch() + " sequences, expected 1");
            }
            c.reserve(1, 1);
            Tensor[] cs = rotary.cosSin(ops, c.length(), 1);                                 // 2 x [1, D]
            cos[i] = cs[0].reshape(1, 1, 1, cs[0].size(-1));
            sin[i] = cs[1].reshape(1, 1, 1, cs[1].size(-1));
            masks[i] = slidingWindowMask(ops, c.length(), 1);
        }
        Tensor cosAll = Tensor.concat(List.of(cos), 0);                                      // [S, 1, 1, D]
        Tensor sinAll = Tensor.concat(List.of(sin), 0);
        Tensor h = embed(ops.fromArray(ids, s, 1));                                          // [S, 1, C]
        for (LlamaDecoderLayer layer : model.layers) {
            h = layer.forwardBatch(h, cosAll, sinAll, caches, masks);
        }
        for (KvCache c : caches) {
            c.advance(1);
        }
        h = model.norm.forward(h);
        Tensor head = lmHead != null ? lmHead.weight().get()
                : tiedHead != null ? tiedHead : model.embedTokens.weight().get();
        return h.linear(head, null);                                                         // [S, 1, V]
    }

    /** {@code LlamaModel}: embed_tokens, layers, norm. */
    static final class LlamaModel extends Module {
        final Embedding embedTokens;
        final List<LlamaDecoderLayer> layers = new ArrayList<>();
        final RmsNorm norm;

        LlamaModel(LlamaConfig c) {
            embedTokens = child("embed_tokens", new Embedding(c.vocabSize(), c.hiddenSize()));
            var list = child("layers", new LayerList());
            for (int i = 0; i < c.numHiddenLayers(); i++) {
                layers.add(list.add(i, new LlamaDecoderLayer(c, i)));
            }
            norm = child("norm", new RmsNorm(c.hiddenSize(), c.rmsNormEps()));
        }
    }

    /** A numbered list of decoder layers ("layers.0", "layers.1", ...). */
    static final class LayerList extends Module {
        <M extends Module> M add(int index, M layer) {
            return child(Integer.toString(index), layer);
        }
    }
}
