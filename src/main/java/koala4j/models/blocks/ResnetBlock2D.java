package koala4j.models.blocks;

import koala4j.nn.Conv2d;
import koala4j.nn.GroupNorm;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/**
 * diffusers {@code ResnetBlock2D} (models/resnet.py) with time_embedding_norm "default" and SiLU: used by the
 * UNet (with a time embedding) and the VAE (without: temb channels 0).
 */
public final class ResnetBlock2D extends Module {

    private final GroupNorm norm1;
    private final Conv2d conv1;
    private final Linear timeEmbProj;
    private final GroupNorm norm2;
    private final Conv2d conv2;
    private final Conv2d convShortcut;
    private final float outputScaleFactor;

    public ResnetBlock2D(int in, int out, int tembChannels, int groups, float eps, float outputScaleFactor) {
        norm1 = child("norm1", new GroupNorm(groups, in, eps, true));
        conv1 = child("conv1", new Conv2d(in, out, 3, 1, 1));
        timeEmbProj = tembChannels > 0 ? child("time_emb_proj", new Linear(tembChannels, out)) : null;
        norm2 = child("norm2", new GroupNorm(groups, out, eps, true));
        conv2 = child("conv2", new Conv2d(out, out, 3, 1, 1));
        convShortcut = in != out ? child("conv_shortcut", new Conv2d(in, out, 1, 1, 0)) : null;
        this.outputScaleFactor = outputScaleFactor;
    }

    /** x [B, Cin, H, W], temb [B, T] or null -> [B, Cout, H, W]. */
    public Tensor forward(Tensor x, Tensor temb) {
        Tensor h = conv1.forward(norm1.forward(x, Activation.SILU));           // [B, Cout, H, W]
        if (timeEmbProj != null && temb != null) {
            Tensor t = timeEmbProj.forward(temb.silu());                       // [B, Cout]
            h = h.add(t.unsqueeze(-1).unsqueeze(-1));
        }
        h = conv2.forward(norm2.forward(h, Activation.SILU));                  // [B, Cout, H, W]
        Tensor shortcut = convShortcut == null ? x : convShortcut.forward(x);
        Tensor out = shortcut.add(h);
        return outputScaleFactor == 1f ? out : out.mul(1f / outputScaleFactor);
    }
}
