package koala4j.models.blocks;

import koala4j.nn.Conv2d;
import koala4j.nn.Module;
import koala4j.tensor.ResizeMode;
import koala4j.tensor.Tensor;

/** diffusers {@code Upsample2D} with use_conv: nearest 2x (or to a given size), then a 3x3 conv {@code conv}. */
public final class Upsample2D extends Module {

    private final Conv2d conv;

    public Upsample2D(int channels, int out) {
        this.conv = child("conv", new Conv2d(channels, out, 3, 1, 1));
    }

    /** x [B, C, H, W] -> [B, C', 2H, 2W], or [B, C', height, width] when a size is given (odd skip sizes). */
    public Tensor forward(Tensor x, int height, int width) {
        Tensor up = height == 2 * x.size(2) && width == 2 * x.size(3) || height <= 0
                ? x.ops().upsampleNearest2x(x)
                : x.ops().resize(x, height, width, ResizeMode.NEAREST, false, false);
        return conv.forward(up);
    }

    public Tensor forward(Tensor x) {
        return forward(x, -1, -1);
    }
}
