package koala4j.models.t5;

import koala4j.nn.Layer;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.RmsNorm;
import koala4j.nn.ModuleList;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/**
 * transformers {@code T5Block} (models/t5/modeling_t5.py): {@code layer.0} self-attention, {@code layer.1}
 * cross-attention (decoder only), then the feed-forward layer; each sub-layer is pre-norm (T5LayerNorm) with a
 * residual. Dropout is the identity at inference.
 */
final class T5Block extends Module {

    final T5LayerSelfAttention selfAttention;
    final T5LayerCrossAttention crossAttention;
    final T5LayerFF feedForward;

    T5Block(T5Config c, boolean hasRelativeAttentionBias, boolean isDecoder) {
        ModuleList layer = child("layer", new ModuleList());
        selfAttention = layer.add(0, new T5LayerSelfAttention(c, hasRelativeAttentionBias, isDecoder));
        crossAttention = isDecoder ? layer.add(1, new T5LayerCrossAttention(c)) : null;
        feedForward = layer.add(isDecoder ? 2 : 1, new T5LayerFF(c));
    }

    /**
     * Whole-sequence pass: x [B, N, C]; selfBias [1|B, nH, N, N]; for the decoder the encoder states [B, Ns, C] and
     * crossBias [B, 1, 1, Ns] (or null).
     */
    Tensor forward(Tensor x, Tensor selfBias, boolean causal, Tensor encoderStates, Tensor crossBias) {
        Tensor h = selfAttention.forward(x, selfBias, causal);                             // [B, N, C]
        if (crossAttention != null) {
            Tensor k = crossAttention.attention.keys(encoderStates);                      // [B, nH, Ns, D]
            Tensor v = crossAttention.attention.values(encoderStates);                    // [B, nH, Ns, D]
            h = crossAttention.forward(h, k, v, crossBias);                               // [B, N, C]
        }
        return feedForward.forward(h);                                                    // [B, N, C]
    }

    /** One decoder position against the layer's caches (see {@link DecoderState}); x [B, 1, C]. */
    Tensor step(Tensor x, DecoderState.Layer cache, int position, Tensor selfBias, Tensor crossBias) {
        Tensor h = selfAttention.step(x, cache, position, selfBias);                       // [B, 1, C]
        h = crossAttention.forward(h, cache.crossK, cache.crossV, crossBias);             // [B, 1, C]
        return feedForward.forward(h);                                                    // [B, 1, C]
    }

    /** {@code T5LayerSelfAttention}: keys {@code SelfAttention.*}, {@code layer_norm.weight}. */
    static final class T5LayerSelfAttention extends Module {
        final T5Attention attention;
        final RmsNorm layerNorm;

        T5LayerSelfAttention(T5Config c, boolean hasRelativeAttentionBias, boolean isDecoder) {
            attention = child("SelfAttention", new T5Attention(c, hasRelativeAttentionBias, isDecoder));
            layerNorm = child("layer_norm", new RmsNorm(c.dModel(), c.layerNormEpsilon()));
        }

        Tensor forward(Tensor x, Tensor bias, boolean causal) {
            return x.add(attention.forward(layerNorm.forward(x), bias, causal));
        }

        /** Writes this position's key and value into the cache, then attends over positions 0..position. */
        Tensor step(Tensor x, DecoderState.Layer cache, int position, Tensor bias) {
            Tensor normed = layerNorm.forward(x);                                         // [B, 1, C]
            cache.selfK.slice(2, position, position + 1).copyFrom(attention.keys(normed));   // [B, nH, 1, D]
            cache.selfV.slice(2, position, position + 1).copyFrom(attention.values(normed));
            Tensor k = cache.selfK.slice(2, 0, position + 1);                            // [B, nH, t+1, D]
            Tensor v = cache.selfV.slice(2, 0, position + 1);
            return x.add(attention.attend(attention.queries(normed), k, v, bias, false));
        }
    }

    /** {@code T5LayerCrossAttention}: keys {@code EncDecAttention.*}, {@code layer_norm.weight}. */
    static final class T5LayerCrossAttention extends Module {
        final T5Attention attention;
        final RmsNorm layerNorm;

        T5LayerCrossAttention(T5Config c) {
            attention = child("EncDecAttention", new T5Attention(c, false, true));
            layerNorm = child("layer_norm", new RmsNorm(c.dModel(), c.layerNormEpsilon()));
        }

        /** k/v [B, nH, Ns, D] projected once from the encoder output; bias [B, 1, 1, Ns] hides padding. */
        Tensor forward(Tensor x, Tensor k, Tensor v, Tensor bias) {
            Tensor q = attention.queries(layerNorm.forward(x));                           // [B, nH, N, D]
            return x.add(attention.attend(q, k, v, bias, false));
        }
    }

    /** {@code T5LayerFF}: keys {@code DenseReluDense.*}, {@code layer_norm.weight}. */
    static final class T5LayerFF extends Module {
        final Layer dense;
        final RmsNorm layerNorm;

        T5LayerFF(T5Config c) {
            if (c.gatedAct()) {
                dense = child("DenseReluDense", new T5DenseGatedActDense(c));
            } else {
                dense = child("DenseReluDense", new T5DenseActDense(c));
            }
            layerNorm = child("layer_norm", new RmsNorm(c.dModel(), c.layerNormEpsilon()));
        }

        Tensor forward(Tensor x) {
            return x.add(dense.forward(layerNorm.forward(x)));
        }
    }

    /** {@code T5DenseGatedActDense} (T5 v1.1, ByT5): wo(act(wi_0 x) * wi_1 x). */
    static final class T5DenseGatedActDense extends Module implements Layer {
        final Linear wi0;
        final Linear wi1;
        final Linear wo;
        final Activation act;

        T5DenseGatedActDense(T5Config c) {
            wi0 = child("wi_0", new Linear(c.dModel(), c.dFf(), false));
            wi1 = child("wi_1", new Linear(c.dModel(), c.dFf(), false));
            wo = child("wo", new Linear(c.dFf(), c.dModel(), false));
            act = c.denseAct();
        }

        @Override
        public Tensor forward(Tensor x) {
            Tensor gate = wi0.forward(x, act);                                            // [B, N, F]
            return wo.forward(gate.mul(wi1.forward(x)));                                  // [B, N, C]
        }
    }

    /** {@code T5DenseActDense} (original T5): wo(act(wi x)). */
    static final class T5DenseActDense extends Module implements Layer {
        final Linear wi;
        final Linear wo;
        final Activation act;

        T5DenseActDense(T5Config c) {
            wi = child("wi", new Linear(c.dModel(), c.dFf(), false));
            wo = child("wo", new Linear(c.dFf(), c.dModel(), false));
            act = c.denseAct();
        }

        @Override
        public Tensor forward(Tensor x) {
            return wo.forward(wi.forward(x, act));
        }
    }
}
