package koala4j.models.llama;

import java.util.List;

import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.RmsNorm;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/**
 * transformers {@code LlamaDecoderLayer} (models/llama/modeling_llama.py): pre-norm self-attention and SwiGLU MLP,
 * each with a residual. Keys input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
 * mlp.{gate,up,down}_proj.
 */
final class LlamaDecoderLayer extends Module {

    private final int index;
    private final RmsNorm inputLayernorm;
    private final LlamaAttention selfAttn;
    private final RmsNorm postAttentionLayernorm;
    private final LlamaMlp mlp;

    LlamaDecoderLayer(LlamaConfig c, int index) {
        this.index = index;
        selfAttn = child("self_attn", new LlamaAttention(c));
        mlp = child("mlp", new LlamaMlp(c));
        inputLayernorm = child("input_layernorm", new RmsNorm(c.hiddenSize(), c.rmsNormEps()));
        postAttentionLayernorm = child("post_attention_layernorm", new RmsNorm(c.hiddenSize(), c.rmsNormEps()));
    }

    /** x [B, N, C] at positions [cache.length(), +N) -> [B, N, C]; writes this layer's keys and values to the cache. */
    /** {@code mask}: an additive attention mask on top of the causal one (Mistral's sliding window), or null. */
    Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache, Tensor mask) {
        Tensor h = x.add(selfAttn.forward(inputLayernorm.forward(x), cos, sin, cache, index, mask));   // [B, N, C]
        return h.add(mlp.forward(postAttentionLayernorm.forward(h)));                             // [B, N, C]
    }

    /**
     * One new token of each of S sequences, x [S, 1, C], each at its own position in its own cache ({@code cos},
     * {@code sin} [S, 1, 1, D]; {@code masks[i]}: sequence i's sliding-window mask or null): the linear layers run
     * on all S rows at once (each weight read once for all of them), attention per sequence.
     */
    Tensor forwardBatch(Tensor x, Tensor cos, Tensor sin, List<KvCache> caches, Tensor[] masks) {
        Tensor h = x.add(selfAttn.forwardBatch(inputLayernorm.forward(x), cos, sin, caches, index, masks));
        return h.add(mlp.forward(postAttentionLayernorm.forward(h)));
    }

    List<Linear> linears() {
        return List.of(selfAttn.qProj, selfAttn.kProj, selfAttn.vProj, selfAttn.oProj, mlp.gateProj, mlp.upProj,
                mlp.downProj);
    }

    /** {@code LlamaAttention}: GQA with RoPE on q and k, scale head_dim^-0.5, causal. */
    static final class LlamaAttention extends Module {
        final Linear qProj;
        final Linear kProj;
        final Linear vProj;
        final Linear oProj;
        private final int heads;
        private final int kvHeads;
        private final int headDim;

        LlamaAttention(LlamaConfig c) {
            heads = c.numAttentionHeads();
            kvHeads = c.numKeyValueHeads();
            headDim = c.headDim();
            qProj = child("q_proj", new Linear(c.hiddenSize(), heads * headDim, c.attentionBias()));
            kProj = child("k_proj", new Linear(c.hiddenSize(), kvHeads * headDim, c.attentionBias()));
            vProj = child("v_proj", new Linear(c.hiddenSize(), kvHeads * headDim, c.attentionBias()));
            oProj = child("o_proj", new Linear(heads * headDim, c.hiddenSize(), c.attentionBias()));
        }

        Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache, int layer, Tensor mask) {
            int b = x.size(0);
            int n = x.size(1);
            Tensor q = qProj.forward(x).reshape(b, n, heads, headDim).transpose(1, 2);      // [B, nH, N, D]
            Tensor k = kProj.forward(x).reshape(b, n, kvHeads, headDim).transpose(1, 2);    // [B, nKV, N, D]
            Tensor v = vProj.forward(x).reshape(b, n, kvHeads, headDim).transpose(1, 2);    // [B, nKV, N, D]
            q = RotaryEmbedding.apply(q, cos, sin);
            k = RotaryEmbedding.apply(k, cos, sin);
            Tensor[] kv = cache.append(layer, k, v);                                        // 2 x [B, nKV, L+N, D]
            // causal is bottom-right aligned: query i (position L+i) sees keys 0 .. L+i
            Tensor o = x.ops().attention(q, kv[0], kv[1], mask, true, (float) (1 / Math.sqrt(headDim))); // [B, nH, N, D]
            return oProj.forward(o.transpose(1, 2).reshape(b, n, heads * headDim));          // [B, N, C]
        }

        Tensor forwardBatch(Tensor x, Tensor cos, Tensor sin, List<KvCache> caches, int layer, Tensor[] masks) {
            int s = x.size(0);
            Tensor q = RotaryEmbedding.apply(qProj.forward(x).reshape(s, 1, heads, headDim).transpose(1, 2), cos, sin);
            Tensor k = RotaryEmbedding.apply(kProj.forward(x).reshape(s, 1, kvHeads, headDim).transpose(1, 2), cos,
                    sin);                                                                    // [S, nKV, 1, D]
            Tensor v = vProj.forward(x).reshape(s, 1, kvHeads, headDim).transpose(1, 2);
            float scale = (float) (1 / Math.sqrt(headDim));
            List<Tensor> outs = new java.util.ArrayList<>(s);
            for (int i = 0; i < s; i++) {
                Tensor[] kv = caches.get(i).append(layer, k.slice(0, i, i + 1), v.slice(0, i, i + 1));
                outs.add(x.ops().attention(q.slice(0, i, i + 1), kv[0], kv[1], masks[i], true, scale)); // [1, nH, 1, D]
            }
            Tensor o = Tensor.concat(outs, 0);                                               // [S, nH, 1, D]
            return oProj.forward(o.transpose(1, 2).reshape(s, 1, heads * headDim));          // [S, 1, C]
        }
    }

    /** {@code LlamaMLP}: down_proj(act(gate_proj(x)) * up_proj(x)). */
    static final class LlamaMlp extends Module {
        final Linear gateProj;
        final Linear upProj;
        final Linear downProj;
        private final Activation act;

        LlamaMlp(LlamaConfig c) {
            gateProj = child("gate_proj", new Linear(c.hiddenSize(), c.intermediateSize(), c.mlpBias()));
            upProj = child("up_proj", new Linear(c.hiddenSize(), c.intermediateSize(), c.mlpBias()));
            downProj = child("down_proj", new Linear(c.intermediateSize(), c.hiddenSize(), c.mlpBias()));
            act = c.hiddenAct();
        }

        Tensor forward(Tensor x) {
            Tensor gated = gateProj.forward(x, act).mul(upProj.forward(x));                 // [B, N, I]
            return downProj.forward(gated);                                                 // [B, N, C]
        }
    }
}
