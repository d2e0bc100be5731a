package koala4j.models.llama;

import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * transformers {@code LlamaRotaryEmbedding} with the rope types of modeling_rope_utils.py (default, linear,
 * dynamic NTK, llama3), in HF's rotate_half layout: the two halves of each head are the pair (not interleaved
 * pairs as in Meta's original code). Computed in float32 as HF does: inv_freq in float32, positions as float,
 * freqs = inv_freq * position (one float product), cos/sin of cat(freqs, freqs). Immutable.
 */
final class RotaryEmbedding {

    private final LlamaConfig config;
    private final int dim;
    /** inv_freq for sequences up to max_position_embeddings (dynamic NTK recomputes it beyond that). */
    private final float[] invFreq;

    RotaryEmbedding(LlamaConfig config) {
        this.config = config;
        this.dim = config.headDim();
        this.invFreq = inverseFrequencies(config, config.maxPositionEmbeddings());
    }

    /**
     * {@code rope_init_fn}: 1 / base^(2i/dim) in float32, then the scaling of the rope type. seqLen matters only
     * for dynamic NTK (modeling_rope_utils._compute_dynamic_ntk_parameters).
     */
    static float[] inverseFrequencies(LlamaConfig c, int seqLen) {
        int dim = c.headDim();
        LlamaConfig.RopeScaling s = c.ropeScaling();
        float base = (float) c.ropeTheta();
        if (s != null && s.type() == LlamaConfig.RopeType.DYNAMIC) {
            // transformers passes seq_len as an int64 tensor, so this runs on float32 tensors step by step
            int max = c.maxPositionEmbeddings();
            float grown = (float) s.factor() * Math.max(seqLen, max) / max - (float) (s.factor() - 1);
            grown = (float) Math.pow(grown, (float) ((double) dim / (dim - 2)));
            base = base * grown;
        }
        // torch: base ** (arange(0, dim, 2).float() / dim) in float32, then 1.0 / that
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            float exponent = (float) (2 * i) / (float) dim;
            inv[i] = 1f / (float) Math.pow(base, exponent);
        }
        if (s == null) {
            return inv;
        }
        switch (s.type()) {
            case LINEAR -> {
                for (int i = 0; i < inv.length; i++) {
                    inv[i] = inv[i] / (float) s.factor();
                }
            }
            case LLAMA3 -> llama3(inv, s);
            default -> {
                // DEFAULT and DYNAMIC: nothing more
            }
        }
        return inv;
    }

    /**
     * _compute_llama3_parameters: keep high frequencies, divide low ones by factor, interpolate in between. torch
     * evaluates it on float32 tensors with float32 scalars ({@code a / t} as {@code t.reciprocal() * a}); so does this.
     */
    private static void llama3(float[] inv, LlamaConfig.RopeScaling s) {
        float factor = (float) s.factor();
        float oldLen = s.originalMaxPositionEmbeddings();
        float low = (float) s.lowFreqFactor();
        float lowWavelen = (float) (s.originalMaxPositionEmbeddings() / s.lowFreqFactor());
        float highWavelen = (float) (s.originalMaxPositionEmbeddings() / s.highFreqFactor());
        float twoPi = (float) (2 * Math.PI);
        for (int i = 0; i < inv.length; i++) {
            float f = inv[i];
            float wavelen = (1f / f) * twoPi;
            float scaled = wavelen > lowWavelen ? f / factor : f;
            float smooth = ((1f / wavelen) * oldLen - low) / (float) (s.highFreqFactor() - s.lowFreqFactor());
            float smoothed = (1f - smooth) * scaled / factor + smooth * scaled;
            boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            inv[i] = medium ? smoothed : scaled;
        }
    }

    /**
     * cos and sin [N, D] for positions start .. start+n-1 (the same for every sequence of the batch). Dynamic NTK
     * uses the frequencies for the longest position so far, as transformers' dynamic_rope_update does within one
     * generation.
     */
    Tensor[] cosSin(Ops ops, int start, int n) {
        float[] inv = invFreq;
        LlamaConfig.RopeScaling s = config.ropeScaling();
        if (s != null && s.type() == LlamaConfig.RopeType.DYNAMIC && start + n > config.maxPositionEmbeddings()) {
            inv = inverseFrequencies(config, start + n);
        }
        float[] positions = new float[n];
        for (int i = 0; i < n; i++) {
            positions[i] = start + i;
        }
        Tensor freqs = ops.fromArray(positions, n, 1).mul(ops.fromArray(inv, 1, dim / 2));   // [N, D/2]
        Tensor emb = Tensor.concat(java.util.List.of(freqs, freqs), 1);                       // [N, D]
        return new Tensor[] {emb.cos(), emb.sin()};
    }

    /** q·cos + rotate_half(q)·sin, rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]); x [B, nH, N, D]. */
    static Tensor apply(Tensor x, Tensor cos, Tensor sin) {
        int half = x.size(-1) / 2;
        Tensor rotated = Tensor.concat(java.util.List.of(x.slice(-1, half, 2 * half).neg(), x.slice(-1, 0, half)), -1);
        return x.mul(cos).add(rotated.mul(sin));                                               // [B, nH, N, D]
    }
}
