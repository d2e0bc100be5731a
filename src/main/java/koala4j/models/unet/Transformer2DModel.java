package koala4j.models.unet;

import java.util.ArrayList;
import java.util.List;

import koala4j.models.blocks.Attention;
import koala4j.nn.Conv2d;
import koala4j.nn.GroupNorm;
import koala4j.nn.LayerNorm;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.ModuleList;
import koala4j.nn.Sequential;
import koala4j.tensor.Tensor;

/**
 * diffusers {@code Transformer2DModel} for continuous inputs (models/transformers/transformer_2d.py): GroupNorm
 * (eps 1e-6), proj_in (1x1 conv, or linear with use_linear_projection), a stack of BasicTransformerBlocks,
 * proj_out, residual.
 */
final class Transformer2DModel extends Module {

    private final GroupNorm norm;
    private final Module projIn;
    private final Module projOut;
    private final List<BasicTransformerBlock> blocks = new ArrayList<>();
    private final boolean linearProjection;
    private final int inner;

    Transformer2DModel(int heads, int headDim, int channels, int depth, int contextDim, int groups, boolean linearProjection) {
        this.inner = heads * headDim;
        this.linearProjection = linearProjection;
        norm = child("norm", new GroupNorm(groups, channels, 1e-6f, true));
        projIn = child("proj_in", linearProjection ? new Linear(channels, inner) : new Conv2d(channels, inner, 1, 1, 0));
        ModuleList list = child("transformer_blocks", new ModuleList());
        for (int d = 0; d < depth; d++) {
            blocks.add(list.add(d, new BasicTransformerBlock(inner, heads, headDim, contextDim)));
        }
        projOut = child("proj_out", linearProjection ? new Linear(inner, channels) : new Conv2d(inner, channels, 1, 1, 0));
    }

    /** x [B, C, H, W], context [B, M, Cc] -> [B, C, H, W]. */
    Tensor forward(Tensor x, Tensor context) {
        int b = x.size(0);
        int c = x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        Tensor hidden = norm.forward(x);                                          // [B, C, H, W]
        if (linearProjection) {
            hidden = hidden.permute(0, 2, 3, 1).reshape(b, h * w, c);              // [B, HW, C]
            hidden = ((Linear) projIn).forward(hidden);                           // [B, HW, inner]
        } else {
            hidden = ((Conv2d) projIn).forward(hidden);                           // [B, inner, H, W]
            hidden = hidden.permute(0, 2, 3, 1).reshape(b, h * w, inner);          // [B, HW, inner]
        }
        for (BasicTransformerBlock block : blocks) {
            hidden = block.forward(hidden, context);
        }
        Tensor out;
        if (linearProjection) {
            out = ((Linear) projOut).forward(hidden);                             // [B, HW, C]
            out = out.reshape(b, h, w, c).permute(0, 3, 1, 2);                    // [B, C, H, W]
        } else {
            out = hidden.reshape(b, h, w, inner).permute(0, 3, 1, 2);             // [B, inner, H, W]
            out = ((Conv2d) projOut).forward(out.contiguous());                   // [B, C, H, W]
        }
        return out.add(x);
    }

    /** diffusers {@code BasicTransformerBlock}: self-attention, cross-attention, GEGLU feed-forward, pre-norm. */
    static final class BasicTransformerBlock extends Module {
        private final LayerNorm norm1;
        private final Attention attn1;
        private final LayerNorm norm2;
        private final Attention attn2;
        private final LayerNorm norm3;
        private final FeedForward ff;

        BasicTransformerBlock(int dim, int heads, int headDim, int contextDim) {
            norm1 = child("norm1", new LayerNorm(dim, 1e-5f));
            attn1 = child("attn1", new Attention(dim, dim, heads, headDim, false, 0, 0f));
            norm2 = child("norm2", new LayerNorm(dim, 1e-5f));
            attn2 = child("attn2", new Attention(dim, contextDim, heads, headDim, false, 0, 0f));
            norm3 = child("norm3", new LayerNorm(dim, 1e-5f));
            ff = child("ff", new FeedForward(dim, dim * 4));
        }

        /** x [B, N, C], context [B, M, Cc] -> [B, N, C]. */
        Tensor forward(Tensor x, Tensor context) {
            Tensor h = attn1.forward(norm1.forward(x), null).add(x);
            h = attn2.forward(norm2.forward(h), context).add(h);
            return ff.forward(norm3.forward(h)).add(h);
        }
    }

    /** diffusers {@code FeedForward} with GEGLU: net.0.proj (dim -> 2·inner), net.2 (inner -> dim). */
    static final class FeedForward extends Module {
        private final Sequential net;

        FeedForward(int dim, int inner) {
            net = child("net", new Sequential().at(0, new Geglu(dim, inner)).at(2, new Linear(inner, dim)));
        }

        Tensor forward(Tensor x) {
            return net.forward(x);                                               // [B, N, C]
        }
    }

    /** diffusers {@code GEGLU}: proj to 2·inner, then hidden * gelu(gate). */
    static final class Geglu extends Module implements koala4j.nn.Layer {
        private final Linear proj;

        Geglu(int dim, int inner) {
            proj = child("proj", new Linear(dim, inner * 2));
        }

        @Override
        public Tensor forward(Tensor x) {
            return x.ops().geglu(proj.forward(x));                               // [B, N, inner]
        }
    }

}
