package koala4j.models.blocks;


import koala4j.nn.GroupNorm;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.Sequential;
import koala4j.tensor.Tensor;

/**
 * diffusers {@code Attention} (models/attention_processor.py) with the default processor: to_q/to_k/to_v,
 * to_out.0 (to_out.1 is dropout), scale dim_head^-0.5. Cross-attention when a context is given. The VAE's
 * variant adds a {@code group_norm} and works on [B, C, H, W] with a residual.
 */
public final class Attention extends Module {

    private final Linear toQ;
    private final Linear toK;
    private final Linear toV;
    private final Linear toOut;
    private final GroupNorm groupNorm;
    private final int heads;
    private final int headDim;

    /**
     * @param qkvBias the UNet's transformer blocks have no q/k/v bias; the VAE's attention has one
     * @param normGroups 0 for none, else the VAE's group_norm groups
     */
    public Attention(int queryDim, int contextDim, int heads, int headDim, boolean qkvBias, int normGroups, float normEps) {
        int inner = heads * headDim;
        this.groupNorm = normGroups > 0 ? child("group_norm", new GroupNorm(normGroups, queryDim, normEps, true)) : null;
        this.toQ = child("to_q", new Linear(queryDim, inner, qkvBias));
        this.toK = child("to_k", new Linear(contextDim, inner, qkvBias));
        this.toV = child("to_v", new Linear(contextDim, inner, qkvBias));
        Linear out = new Linear(inner, queryDim, true);
        child("to_out", new Sequential().at(0, out));
        this.toOut = out;
        this.heads = heads;
        this.headDim = headDim;
    }

    /** Tokens x [B, N, C], context [B, M, Cc] or null for self-attention -> [B, N, C]. */
    public Tensor forward(Tensor x, Tensor context) {
        int b = x.size(0);
        int n = x.size(1);
        Tensor ctx = context == null ? x : context;
        int m = ctx.size(1);
        Tensor q = toQ.forward(x).reshape(b, n, heads, headDim).transpose(1, 2);      // [B, nH, N, D]
        Tensor k = toK.forward(ctx).reshape(b, m, heads, headDim).transpose(1, 2);    // [B, nH, M, D]
        Tensor v = toV.forward(ctx).reshape(b, m, heads, headDim).transpose(1, 2);    // [B, nH, M, D]
        Tensor o = x.ops().attention(q, k, v, null, false, (float) (1 / Math.sqrt(headDim))); // [B, nH, N, D]
        return toOut.forward(o.transpose(1, 2).reshape(b, n, heads * headDim));      // [B, N, C]
    }

    /** The VAE mid-block form: x [B, C, H, W] -> group_norm, attention over H*W tokens, residual. */
    public Tensor forwardSpatial(Tensor x) {
        int b = x.size(0);
        int c = x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        Tensor normed = groupNorm == null ? x : groupNorm.forward(x);
        Tensor tokens = normed.reshape(b, c, h * w).transpose(1, 2);                  // [B, HW, C]
        Tensor out = forward(tokens, null);                                          // [B, HW, C]
        return out.transpose(1, 2).reshape(b, c, h, w).add(x);
    }

}
