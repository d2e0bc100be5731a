package koala4j.models.unet;

import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

import koala4j.models.blocks.Downsample2D;
import koala4j.models.blocks.ResnetBlock2D;
import koala4j.models.blocks.Upsample2D;
import koala4j.nn.Module;
import koala4j.nn.ModuleList;
import koala4j.tensor.Tensor;

/**
 * The down, mid and up blocks of diffusers' unet_2d_blocks.py that the SD/SDXL/KOALA/BK-SDM checkpoints use.
 * A block without attention is the same class with no transformers; the keys follow the reference either way:
 * {@code resnets.i}, {@code attentions.i}, {@code downsamplers.0.conv}, {@code upsamplers.0.conv}.
 */
final class UNetBlocks {

    private UNetBlocks() {
    }

    /** DownBlock2D (no attention) and CrossAttnDownBlock2D. */
    static final class DownBlock extends Module {
        private final List<ResnetBlock2D> resnets = new ArrayList<>();
        private final List<Transformer2DModel> attentions = new ArrayList<>();
        private final Downsample2D downsampler;

        DownBlock(UNetConfig c, int block, int in, int out, boolean crossAttention, boolean addDownsample) {
            ModuleList resnetList = child("resnets", new ModuleList());
            ModuleList attentionList = crossAttention ? child("attentions", new ModuleList()) : null;
            int heads = c.numAttentionHeads().get(block);
            for (int i = 0; i < c.layersPerBlock().get(block); i++) {
                resnets.add(resnetList.add(i, new ResnetBlock2D(i == 0 ? in : out, out, c.timeEmbedDim(), c.normNumGroups(),
                        c.normEps(), 1f)));
                if (crossAttention) {
                    attentions.add(attentionList.add(i, new Transformer2DModel(heads, out / heads, out,
                            c.downDepths().get(block).get(i), c.crossAttentionDim().get(block), c.normNumGroups(),
                            c.useLinearProjection())));
                }
            }
            if (addDownsample) {
                ModuleList list = child("downsamplers", new ModuleList());
                downsampler = list.add(0, new Downsample2D(out, out, c.downsamplePadding()));
            } else {
                downsampler = null;
            }
        }

        /** Appends each layer's output (and the downsampled one) to {@code skips}; returns the last. */
        Tensor forward(Tensor x, Tensor temb, Tensor context, List<Tensor> skips) {
            Tensor h = x;
            for (int i = 0; i < resnets.size(); i++) {
                h = resnets.get(i).forward(h, temb);
                if (!attentions.isEmpty()) {
                    h = attentions.get(i).forward(h, context);
                }
                skips.add(h);
            }
            if (downsampler != null) {
                h = downsampler.forward(h);
                skips.add(h);
            }
            return h;
        }
    }

    /** UNetMidBlock2DCrossAttn (resnet, then attention + resnet per layer) and UNetMidBlock2D without attention. */
    static final class MidBlock extends Module {
        private final List<ResnetBlock2D> resnets = new ArrayList<>();
        private final List<Transformer2DModel> attentions = new ArrayList<>();

        MidBlock(UNetConfig c, boolean crossAttention) {
            int channels = c.blockOutChannels().getLast();
            int last = c.blockOutChannels().size() - 1;
            ModuleList resnetList = child("resnets", new ModuleList());
            resnets.add(resnetList.add(0, new ResnetBlock2D(channels, channels, c.timeEmbedDim(), c.normNumGroups(),
                    c.normEps(), c.midBlockScaleFactor())));
            if (crossAttention) {
                ModuleList attentionList = child("attentions", new ModuleList());
                int heads = c.numAttentionHeads().get(last);
                attentions.add(attentionList.add(0, new Transformer2DModel(heads, channels / heads, channels,
                        c.midDepth().getFirst(), c.crossAttentionDim().get(last), c.normNumGroups(), c.useLinearProjection())));
                resnets.add(resnetList.add(1, new ResnetBlock2D(channels, channels, c.timeEmbedDim(), c.normNumGroups(),
                        c.normEps(), c.midBlockScaleFactor())));
            }
        }

        Tensor forward(Tensor x, Tensor temb, Tensor context) {
            Tensor h = resnets.getFirst().forward(x, temb);
            for (int i = 0; i < attentions.size(); i++) {
                h = attentions.get(i).forward(h, context);
                h = resnets.get(i + 1).forward(h, temb);
            }
            return h;
        }
    }

    /** UpBlock2D (no attention) and CrossAttnUpBlock2D: each layer concatenates one skip tensor first. */
    static final class UpBlock extends Module {
        private final List<ResnetBlock2D> resnets = new ArrayList<>();
        private final List<Transformer2DModel> attentions = new ArrayList<>();
        private final Upsample2D upsampler;

        UpBlock(UNetConfig c, int block, int in, int out, int prevOut, boolean crossAttention, boolean addUpsample) {
            int reversedBlock = c.blockOutChannels().size() - 1 - block;
            int layers = c.layersPerBlock().get(reversedBlock) + 1;
            int heads = c.numAttentionHeads().get(reversedBlock);
            ModuleList resnetList = child("resnets", new ModuleList());
            ModuleList attentionList = crossAttention ? child("attentions", new ModuleList()) : null;
            for (int i = 0; i < layers; i++) {
                int skip = i == layers - 1 ? in : out;
                int resnetIn = i == 0 ? prevOut : out;
                resnets.add(resnetList.add(i, new ResnetBlock2D(resnetIn + skip, out, c.timeEmbedDim(), c.normNumGroups(),
                        c.normEps(), 1f)));
                if (crossAttention) {
                    attentions.add(attentionList.add(i, new Transformer2DModel(heads, out / heads, out,
                            c.upDepths().get(block).get(i), c.crossAttentionDim().get(reversedBlock), c.normNumGroups(),
                            c.useLinearProjection())));
                }
            }
            if (addUpsample) {
                ModuleList list = child("upsamplers", new ModuleList());
                upsampler = list.add(0, new Upsample2D(out, out));
            } else {
                upsampler = null;
            }
        }

        int layers() {
            return resnets.size();
        }

        /** Pops one skip per layer from the end of {@code skips}; upsamples to {@code upsampleSize} when given. */
        Tensor forward(Tensor x, Tensor temb, Tensor context, Deque<Tensor> skips, int[] upsampleSize) {
            Tensor h = x;
            for (int i = 0; i < resnets.size(); i++) {
                Tensor skip = skips.removeLast();
                h = Tensor.concat(List.of(h, skip), 1);                             // [B, C + Cskip, H, W]
                h = resnets.get(i).forward(h, temb);
                if (!attentions.isEmpty()) {
                    h = attentions.get(i).forward(h, context);
                }
            }
            if (upsampler != null) {
                h = upsampleSize == null ? upsampler.forward(h) : upsampler.forward(h, upsampleSize[0], upsampleSize[1]);
            }
            return h;
        }
    }
}
