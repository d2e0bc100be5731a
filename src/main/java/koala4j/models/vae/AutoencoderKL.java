package koala4j.models.vae;

import java.util.ArrayList;
import java.util.List;

import koala4j.io.json.Json;
import koala4j.models.blocks.Attention;
import koala4j.models.blocks.Downsample2D;
import koala4j.models.blocks.ResnetBlock2D;
import koala4j.models.blocks.Upsample2D;
import koala4j.nn.Conv2d;
import koala4j.nn.GroupNorm;
import koala4j.nn.Module;
import koala4j.nn.ModuleList;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/**
 * diffusers {@code AutoencoderKL} (models/autoencoders/autoencoder_kl.py, vae.py): encoder to the diagonal
 * Gaussian's moments, decoder from latents; {@code decodeTiled} bounds memory for large images.
 */
public final class AutoencoderKL extends Module {

    /** The config fields these checkpoints use, with diffusers' defaults. */
    public record Config(int inChannels, int outChannels, List<Integer> blockOutChannels, int layersPerBlock,
                         int latentChannels, int normNumGroups, float scalingFactor,
                         boolean forceUpcast, boolean useQuantConv, boolean usePostQuantConv, boolean midAttention,
                         int sampleSize, List<Double> latentsMean, List<Double> latentsStd) {

        public static Config from(Json j) {
            List<Integer> channels = j.intListOr("block_out_channels", List.of(64));
            for (String key : List.of("down_block_types", "up_block_types")) {
                if (j.has(key)) {
                    List<String> types = j.stringList(key);
                    String want = key.startsWith("down") ? "DownEncoderBlock2D" : "UpDecoderBlock2D";
                    if (types.size() != channels.size() || types.stream().anyMatch(t -> !t.equals(want))) {
                        throw new IllegalArgumentException(j.file() + ": " + key + " = " + types + ", expected "
                                + channels.size() + " x " + want);
                    }
                }
            }
            String act = j.stringOr("act_fn", "silu");
            if (!act.equals("silu")) {
                throw new IllegalArgumentException(j.file() + ": act_fn \"" + act + "\", expected silu");
            }
            return new Config(j.intOr("in_channels", 3), j.intOr("out_channels", 3), channels,
                    j.intOr("layers_per_block", 1), j.intOr("latent_channels", 4), j.intOr("norm_num_groups", 32),
                    j.floatOr("scaling_factor", 0.18215f),
                    j.boolOr("force_upcast", true), j.boolOr("use_quant_conv", true), j.boolOr("use_post_quant_conv", true),
                    j.boolOr("mid_block_add_attention", true), j.isNull("sample_size") ? 512 : j.intOr("sample_size", 512),
                    perChannel(j, "latents_mean"), perChannel(j, "latents_std"));
        }

        /** latents_mean / latents_std: null (the usual) or one value per latent channel. */
        private static List<Double> perChannel(Json j, String key) {
            if (!j.has(key) || j.isNull(key)) {
                return null;
            }
            List<Double> values = j.doubleList(key);
            int channels = j.intOr("latent_channels", 4);
            if (values.size() != channels) {
                throw new IllegalArgumentException(j.file() + ": " + key + " has " + values.size() + " values, expected "
                        + channels + " (latent_channels)");
            }
            return List.copyOf(values);
        }

        /** 2^(blocks-1): how much smaller the latent is than the image. */
        public int scaleFactor() {
            return 1 << (blockOutChannels.size() - 1);
        }
    }

    /** The posterior's mean and log-variance (clamped to [-30, 20]) per latent channel. */
    public record Posterior(Tensor mean, Tensor logvar) {
        public Tensor std() {
            return logvar.mul(0.5f).exp();
        }

        /** mean + std · noise, as DiagonalGaussianDistribution.sample. */
        public Tensor sample(Tensor noise) {
            return mean.add(std().mul(noise));
        }
    }

    private final Config config;
    private final Encoder encoder;
    private final Decoder decoder;
    private final Conv2d quantConv;
    private final Conv2d postQuantConv;

    public AutoencoderKL(Config c) {
        this.config = c;
        encoder = child("encoder", new Encoder(c));
        decoder = child("decoder", new Decoder(c));
        int z = c.latentChannels();
        quantConv = c.useQuantConv() ? child("quant_conv", new Conv2d(2 * z, 2 * z, 1, 1, 0)) : null;
        postQuantConv = c.usePostQuantConv() ? child("post_quant_conv", new Conv2d(z, z, 1, 1, 0)) : null;
    }

    public Config config() {
        return config;
    }

    /** image [B, 3, H, W] in [-1, 1] -> the latent distribution [B, z, H/f, W/f]. */
    public Posterior encode(Tensor image) {
        Tensor moments = encoder.forward(image);                                   // [B, 2z, h, w]
        if (quantConv != null) {
            moments = quantConv.forward(moments);
        }
        List<Tensor> parts = moments.chunk(2, 1);
        return new Posterior(parts.get(0).contiguous(), parts.get(1).clamp(-30f, 20f));
    }

    /** The raw encoder output (before quant_conv), for tests. */
    public Tensor encoderOutput(Tensor image) {
        return encoder.forward(image);
    }

    /** latents [B, z, h, w] (already divided by the scaling factor) -> image [B, 3, h·f, w·f] in about [-1, 1]. */
    public Tensor decode(Tensor latents) {
        Tensor z = postQuantConv == null ? latents : postQuantConv.forward(latents);
        return decoder.forward(z);
    }

    /** post_quant_conv alone, for tests. */
    public Tensor postQuantConv(Tensor latents) {
        return postQuantConv == null ? latents : postQuantConv.forward(latents);
    }

    /**
     * diffusers' tiled_decode: overlapping latent tiles decoded one at a time and blended linearly across the
     * overlap, so memory depends on the tile, not the image. {@code tileLatent} is the tile size in latent pixels
     * (diffusers: sample_size / f), overlap 25 %.
     */
    public Tensor decodeTiled(Tensor latents, int tileLatent) {
        int f = config.scaleFactor();
        int h = latents.size(2);
        int w = latents.size(3);
        if (h <= tileLatent && w <= tileLatent) {
            return decode(latents);
        }
        int overlap = (int) (tileLatent * (1 - 0.25));                           // stride between tiles
        int tileSample = tileLatent * f;
        int blend = (int) (tileSample * 0.25);
        int limit = tileSample - blend;
        List<List<Tensor>> rows = new ArrayList<>();
        for (int i = 0; i < h; i += overlap) {
            List<Tensor> row = new ArrayList<>();
            for (int j = 0; j < w; j += overlap) {
                Tensor tile = latents.slice(2, i, i + tileLatent).slice(3, j, j + tileLatent).contiguous();
                row.add(decode(tile));
            }
            rows.add(row);
        }
        List<Tensor> resultRows = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) {
            List<Tensor> resultRow = new ArrayList<>();
            for (int j = 0; j < rows.get(i).size(); j++) {
                Tensor tile = rows.get(i).get(j);
                if (i > 0) {
                    tile = blendVertical(rows.get(i - 1).get(j), tile, blend);
                }
                if (j > 0) {
                    tile = blendHorizontal(rows.get(i).get(j - 1), tile, blend);
                }
                resultRow.add(tile.slice(2, 0, limit).slice(3, 0, limit));
            }
            resultRows.add(Tensor.concat(resultRow, 3));
        }
        Tensor out = Tensor.concat(resultRows, 2);
        return out.slice(2, 0, h * f).slice(3, 0, w * f).contiguous();
    }

    /** diffusers blend_v: b's first rows fade in over a's last rows. */
    private static Tensor blendVertical(Tensor a, Tensor b, int extent) {
        int e = Math.min(Math.min(a.size(2), b.size(2)), extent);
        if (e == 0) {
            return b;
        }
        float[] weights = new float[e];
        for (int y = 0; y < e; y++) {
            weights[y] = (float) y / e;
        }
        Tensor wB = b.ops().fromArray(weights, 1, 1, e, 1);
        Tensor top = a.slice(2, a.size(2) - e, a.size(2)).mul(wB.rsub(1f)).add(b.slice(2, 0, e).mul(wB));
        return Tensor.concat(List.of(top, b.slice(2, e, b.size(2))), 2);
    }

    /** diffusers blend_h: b's first columns fade in over a's last columns. */
    private static Tensor blendHorizontal(Tensor a, Tensor b, int extent) {
        int e = Math.min(Math.min(a.size(3), b.size(3)), extent);
        if (e == 0) {
            return b;
        }
        float[] weights = new float[e];
        for (int x = 0; x < e; x++) {
            weights[x] = (float) x / e;
        }
        Tensor wB = b.ops().fromArray(weights, 1, 1, 1, e);
        Tensor left = a.slice(3, a.size(3) - e, a.size(3)).mul(wB.rsub(1f)).add(b.slice(3, 0, e).mul(wB));
        return Tensor.concat(List.of(left, b.slice(3, e, b.size(3))), 3);
    }

    /** UNetMidBlock2D with one single-head spatial attention (keys resnets.0, attentions.0, resnets.1). */
    static final class MidBlock extends Module {
        private final List<ResnetBlock2D> resnets = new ArrayList<>();
        private final Attention attention;

        MidBlock(int channels, int groups, boolean withAttention) {
            ModuleList resnetList = child("resnets", new ModuleList());
            resnets.add(resnetList.add(0, new ResnetBlock2D(channels, channels, 0, groups, 1e-6f, 1f)));
            if (withAttention) {
                attention = child("attentions", new ModuleList()).add(0, new Attention(channels, channels, 1, channels,
                        true, groups, 1e-6f));
            } else {
                attention = null;
            }
            resnets.add(resnetList.add(1, new ResnetBlock2D(channels, channels, 0, groups, 1e-6f, 1f)));
        }

        Tensor forward(Tensor x) {
            Tensor h = resnets.get(0).forward(x, null);
            if (attention != null) {
                h = attention.forwardSpatial(h);
            }
            return resnets.get(1).forward(h, null);
        }
    }

    static final class Encoder extends Module {
        private final Conv2d convIn;
        private final List<List<ResnetBlock2D>> blockResnets = new ArrayList<>();
        private final List<Downsample2D> downsamplers = new ArrayList<>();
        private final MidBlock midBlock;
        private final GroupNorm convNormOut;
        private final Conv2d convOut;

        Encoder(Config c) {
            List<Integer> ch = c.blockOutChannels();
            convIn = child("conv_in", new Conv2d(c.inChannels(), ch.getFirst(), 3, 1, 1));
            ModuleList blocks = child("down_blocks", new ModuleList());
            int out = ch.getFirst();
            for (int i = 0; i < ch.size(); i++) {
                int in = out;
                out = ch.get(i);
                ModuleList block = blocks.add(i, new ModuleList());
                ModuleList resnetList = block.add("resnets", new ModuleList());
                List<ResnetBlock2D> resnets = new ArrayList<>();
                for (int l = 0; l < c.layersPerBlock(); l++) {
                    resnets.add(resnetList.add(l, new ResnetBlock2D(l == 0 ? in : out, out, 0, c.normNumGroups(), 1e-6f, 1f)));
                }
                blockResnets.add(resnets);
                downsamplers.add(i < ch.size() - 1
                        ? block.add("downsamplers", new ModuleList()).add(0, new Downsample2D(out, out, 0)) : null);
            }
            midBlock = child("mid_block", new MidBlock(ch.getLast(), c.normNumGroups(), c.midAttention()));
            convNormOut = child("conv_norm_out", new GroupNorm(c.normNumGroups(), ch.getLast(), 1e-6f, true));
            convOut = child("conv_out", new Conv2d(ch.getLast(), 2 * c.latentChannels(), 3, 1, 1));
        }

        Tensor forward(Tensor x) {
            Tensor h = convIn.forward(x);
            for (int i = 0; i < blockResnets.size(); i++) {
                for (ResnetBlock2D r : blockResnets.get(i)) {
                    h = r.forward(h, null);
                }
                if (downsamplers.get(i) != null) {
                    h = downsamplers.get(i).forward(h);
                }
            }
            h = midBlock.forward(h);
            return convOut.forward(convNormOut.forward(h, Activation.SILU));
        }
    }

    static final class Decoder extends Module {
        private final Conv2d convIn;
        private final MidBlock midBlock;
        private final List<List<ResnetBlock2D>> blockResnets = new ArrayList<>();
        private final List<Upsample2D> upsamplers = new ArrayList<>();
        private final GroupNorm convNormOut;
        private final Conv2d convOut;

        Decoder(Config c) {
            List<Integer> ch = c.blockOutChannels();
            int blocks = ch.size();
            convIn = child("conv_in", new Conv2d(c.latentChannels(), ch.getLast(), 3, 1, 1));
            midBlock = child("mid_block", new MidBlock(ch.getLast(), c.normNumGroups(), c.midAttention()));
            ModuleList upList = child("up_blocks", new ModuleList());
            int out = ch.getLast();
            for (int i = 0; i < blocks; i++) {
                int prev = out;
                out = ch.get(blocks - 1 - i);
                ModuleList block = upList.add(i, new ModuleList());
                ModuleList resnetList = block.add("resnets", new ModuleList());
                List<ResnetBlock2D> resnets = new ArrayList<>();
                for (int l = 0; l < c.layersPerBlock() + 1; l++) {
                    resnets.add(resnetList.add(l, new ResnetBlock2D(l == 0 ? prev : out, out, 0, c.normNumGroups(), 1e-6f, 1f)));
                }
                blockResnets.add(resnets);
                upsamplers.add(i < blocks - 1 ? block.add("upsamplers", new ModuleList()).add(0, new Upsample2D(out, out)) : null);
            }
            convNormOut = child("conv_norm_out", new GroupNorm(c.normNumGroups(), ch.getFirst(), 1e-6f, true));
            convOut = child("conv_out", new Conv2d(ch.getFirst(), c.outChannels(), 3, 1, 1));
        }

        Tensor forward(Tensor z) {
            Tensor h = midBlock.forward(convIn.forward(z));
            for (int i = 0; i < blockResnets.size(); i++) {
                for (ResnetBlock2D r : blockResnets.get(i)) {
                    h = r.forward(h, null);
                }
                if (upsamplers.get(i) != null) {
                    h = upsamplers.get(i).forward(h);
                }
            }
            return convOut.forward(convNormOut.forward(h, Activation.SILU));
        }
    }

}
