package koala4j.models.blocks;

import koala4j.nn.Conv2d;
import koala4j.nn.Module;
import koala4j.tensor.Tensor;

/**
 * diffusers {@code Downsample2D} with use_conv: a stride-2 3x3 conv under the key {@code conv}. With padding 0
 * the reference pads right and bottom by one first (the VAE encoder does this).
 */
public final class Downsample2D extends Module {

    private final Conv2d conv;
    private final int padding;

    public Downsample2D(int channels, int out, int padding) {
        this.conv = child("conv", new Conv2d(channels, out, 3, 2, padding));
        this.padding = padding;
    }

    public Tensor forward(Tensor x) {
        if (padding == 0) {
            x = padRightBottom(x);
        }
        return conv.forward(x);
    }

    /** F.pad(x, (0, 1, 0, 1)) with zeros. */
    private static Tensor padRightBottom(Tensor x) {
        int b = x.size(0);
        int c = x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        Tensor zerosW = x.ops().full(0f, x.dtype(), b, c, h, 1);
        Tensor wider = Tensor.concat(java.util.List.of(x, zerosW), 3);          // [B, C, H, W+1]
        Tensor zerosH = x.ops().full(0f, x.dtype(), b, c, 1, w + 1);
        return Tensor.concat(java.util.List.of(wider, zerosH), 2);             // [B, C, H+1, W+1]
    }
}
