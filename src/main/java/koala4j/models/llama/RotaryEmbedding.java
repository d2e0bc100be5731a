package koala4j.models.llama;

import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * transformers {@code LlamaRotaryEmbedding} with the rope types of modeling_rope_utils.py (default, linear,
 * dynamic NTK, llama3, YaRN, LongRoPE), in HF's rotate_half layout: the two halves of each head are the pair (not
 * interleaved pairs as in Meta's original code). Computed in float32 as HF does: inv_freq in float32, positions as
 * float, freqs = inv_freq * position (one float product), cos/sin of cat(freqs, freqs), each times the rope type's
 * attention factor (YaRN, LongRoPE). Immutable.
 */
final class RotaryEmbedding {

    private final LlamaConfig config;
    private final int dim;
    /** inv_freq for sequences up to {@link #lengthDependentAbove} (dynamic NTK and LongRoPE change it beyond). */
    private final float[] invFreq;
    /** LongRoPE's inv_freq beyond its original length; null for the other types. */
    private final float[] longInvFreq;
    private final float attentionScaling;

    RotaryEmbedding(LlamaConfig config) {
        this.config = config;
        this.dim = config.headDim();
        LlamaConfig.RopeScaling s = config.ropeScaling();
        this.invFreq = inverseFrequencies(config, Math.min(config.maxPositionEmbeddings(), lengthDependentAbove(config)));
        this.longInvFreq = s != null && s.type() == LlamaConfig.RopeType.LONGROPE
                ? inverseFrequencies(config, s.originalMaxPositionEmbeddings() + 1) : null;
        this.attentionScaling = s == null ? 1f : (float) s.attentionFactor();
    }

    /**
     * The longest sequence whose positions all get the same frequencies; a forward call reaching beyond it
     * (positions up to start + n) computes them for start + n: max_position_embeddings for dynamic NTK, the
     * original length for LongRoPE, unbounded for the other types. Keys cached by a call within it differ from what
     * one call over a longer sequence would compute, which is why a prompt cache must not reuse them then.
     */
    static int lengthDependentAbove(LlamaConfig c) {
        LlamaConfig.RopeScaling s = c.ropeScaling();
        if (s == null) {
            return Integer.MAX_VALUE;
        }
        return switch (s.type()) {
            case DYNAMIC -> c.maxPositionEmbeddings();
            case LONGROPE -> s.originalMaxPositionEmbeddings();
            default -> Integer.MAX_VALUE;
        };
    }

    /**
     * {@code rope_init_fn}: 1 / base^(2i/dim) in float32, then the scaling of the rope type. seqLen matters only
     * for dynamic NTK (modeling_rope_utils._compute_dynamic_ntk_parameters) and LongRoPE (long factors beyond the
     * original length).
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
        float[] powered = new float[dim / 2];
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            float exponent = (float) (2 * i) / (float) dim;
            powered[i] = (float) Math.pow(base, exponent);
            inv[i] = 1f / powered[i];
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
            case YARN -> yarn(inv, powered, s, c.ropeTheta(), dim);
            case LONGROPE -> {
                var factors = seqLen > s.originalMaxPositionEmbeddings() ? s.longFactor() : s.shortFactor();
                for (int i = 0; i < inv.length; i++) {
                    // 1 / (ext_factors * base^(2i/dim)), the factors rounded to float32 as torch.tensor does
                    inv[i] = 1f / (factors.get(i).floatValue() * powered[i]);
                }
            }
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
     * _compute_yarn_parameters: frequencies that turn fewer than beta_slow times over the original length are divided
     * by the factor, those turning more than beta_fast times kept, a linear ramp over the dimensions in between.
     * The correction range is computed in double as Python does; the rest on float32 tensors.
     */
    private static void yarn(float[] inv, float[] powered, LlamaConfig.RopeScaling s, double base, int dim) {
        double low = correctionDim(s.betaFast(), dim, base, s.originalMaxPositionEmbeddings());
        double high = correctionDim(s.betaSlow(), dim, base, s.originalMaxPositionEmbeddings());
        if (s.truncate()) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, dim - 1);
        if (low == high) {
            high += 0.001;   // as the reference, against a zero-width ramp
        }
        float factor = (float) s.factor();
        float lowF = (float) low;
        float width = (float) (high - low);
        for (int i = 0; i < inv.length; i++) {
            float extrapolation = inv[i];
            float interpolation = 1f / (factor * powered[i]);
            float ramp = Math.min(Math.max(((float) i - lowF) / width, 0f), 1f);
            float extrapolationFactor = 1f - ramp;
            inv[i] = interpolation * (1f - extrapolationFactor) + extrapolation * extrapolationFactor;
        }
    }

    /** The dimension whose frequency turns {@code rotations} times over {@code length} positions. */
    private static double correctionDim(double rotations, int dim, double base, int length) {
        return dim * Math.log(length / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
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
        } else if (longInvFreq != null && start + n > s.originalMaxPositionEmbeddings()) {
            inv = longInvFreq;
        }
        float[] positions = new float[n];
        for (int i = 0; i < n; i++) {
            positions[i] = start + i;
        }
        Tensor freqs = ops.fromArray(positions, n, 1).mul(ops.fromArray(inv, 1, dim / 2));   // [N, D/2]
        Tensor emb = Tensor.concat(java.util.List.of(freqs, freqs), 1);                       // [N, D]
        if (attentionScaling == 1f) {
            return new Tensor[] {emb.cos(), emb.sin()};
        }
        return new Tensor[] {emb.cos().mul(attentionScaling), emb.sin().mul(attentionScaling)};
    }

    /** q·cos + rotate_half(q)·sin, rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]); x [B, nH, N, D]. */
    static Tensor apply(Tensor x, Tensor cos, Tensor sin) {
        int half = x.size(-1) / 2;
        Tensor rotated = Tensor.concat(java.util.List.of(x.slice(-1, half, 2 * half).neg(), x.slice(-1, 0, half)), -1);
        return x.mul(cos).add(rotated.mul(sin));                                               // [B, nH, N, D]
    }
}
