package koala4j.models.clip;

import koala4j.nn.LayerNorm;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/**
 * transformers {@code CLIPEncoderLayer}: pre-norm self-attention and MLP with residuals. Shared by the text
 * tower (causal) and the vision tower (bidirectional).
 */
public final class ClipEncoderLayer extends Module {

    private final LayerNorm layerNorm1;
    private final ClipAttention selfAttn;
    private final LayerNorm layerNorm2;
    private final Linear fc1;
    private final Linear fc2;
    private final Activation act;

    public ClipEncoderLayer(int hidden, int intermediate, int heads, Activation act, float eps, boolean causal) {
        this.selfAttn = child("self_attn", new ClipAttention(hidden, heads, causal));
        this.layerNorm1 = child("layer_norm1", new LayerNorm(hidden, eps));
        var mlp = child("mlp", new Mlp(hidden, intermediate));
        this.fc1 = mlp.fc1;
        this.fc2 = mlp.fc2;
        this.layerNorm2 = child("layer_norm2", new LayerNorm(hidden, eps));
        this.act = act;
    }

    /** x [B, N, C] -> [B, N, C]. */
    public Tensor forward(Tensor x) {
        Tensor h = x.add(selfAttn.forward(layerNorm1.forward(x)));             // [B, N, C]
        Tensor m = fc2.forward(fc1.forward(layerNorm2.forward(h), act));       // [B, N, C]
        return h.add(m);
    }

    static final class Mlp extends Module {
        final Linear fc1;
        final Linear fc2;

        Mlp(int hidden, int intermediate) {
            fc1 = child("fc1", new Linear(hidden, intermediate));
            fc2 = child("fc2", new Linear(intermediate, hidden));
        }
    }

    /** {@code CLIPAttention}: q/k/v/out projections with bias, scale head_dim^-0.5. */
    static final class ClipAttention extends Module {
        private final Linear qProj;
        private final Linear kProj;
        private final Linear vProj;
        private final Linear outProj;
        private final int heads;
        private final boolean causal;

        ClipAttention(int hidden, int heads, boolean causal) {
            kProj = child("k_proj", new Linear(hidden, hidden));
            vProj = child("v_proj", new Linear(hidden, hidden));
            qProj = child("q_proj", new Linear(hidden, hidden));
            outProj = child("out_proj", new Linear(hidden, hidden));
            this.heads = heads;
            this.causal = causal;
        }

        Tensor forward(Tensor x) {
            int b = x.size(0);
            int n = x.size(1);
            int c = x.size(2);
            int headDim = c / heads;
            Tensor q = qProj.forward(x).reshape(b, n, heads, headDim).transpose(1, 2);   // [B, nH, N, D]
            Tensor k = kProj.forward(x).reshape(b, n, heads, headDim).transpose(1, 2);   // [B, nH, N, D]
            Tensor v = vProj.forward(x).reshape(b, n, heads, headDim).transpose(1, 2);   // [B, nH, N, D]
            Tensor o = x.ops().attention(q, k, v, null, causal, (float) (1 / Math.sqrt(headDim))); // [B, nH, N, D]
            return outProj.forward(o.transpose(1, 2).reshape(b, n, c));               // [B, N, C]
        }
    }
}
