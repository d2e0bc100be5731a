package koala4j.models.unet;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;

import koala4j.nn.Conv2d;
import koala4j.nn.GroupNorm;
import koala4j.nn.Module;
import koala4j.nn.ModuleList;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/**
 * diffusers {@code UNet2DConditionModel} (models/unets/unet_2d_condition.py) for the SD 1.x/2.x, SDXL, SSD-1B,
 * Vega, KOALA and BK-SDM configurations: any block count, per-block heads, per-layer transformer depths, decoder
 * depths, with or without a mid block, SDXL's text_time added conditioning. Built from config.json alone.
 */
public final class UNet2DConditionModel extends Module {

    /** SDXL's added conditioning: pooled text embeddings [B, P] and time ids [B, 6]. */
    public record AddedConditions(Tensor textEmbeds, Tensor timeIds) {
    }

    private final UNetConfig config;
    private final Timesteps timeProj;
    private final TimestepEmbedding timeEmbedding;
    private final Timesteps addTimeProj;
    private final TimestepEmbedding addEmbedding;
    private final Conv2d convIn;
    private final List<UNetBlocks.DownBlock> downBlocks = new ArrayList<>();
    private final UNetBlocks.MidBlock midBlock;
    private final List<UNetBlocks.UpBlock> upBlocks = new ArrayList<>();
    private final GroupNorm convNormOut;
    private final Conv2d convOut;

    public UNet2DConditionModel(UNetConfig c) {
        this.config = c;
        List<Integer> channels = c.blockOutChannels();
        int blocks = channels.size();
        int c0 = channels.getFirst();
        timeProj = new Timesteps(c0, c.flipSinToCos(), c.freqShift());
        timeEmbedding = child("time_embedding", new TimestepEmbedding(c0, c.timeEmbedDim(), c.timeCondProjDim()));
        if (c.textTimeEmbedding()) {
            addTimeProj = new Timesteps(c.additionTimeEmbedDim(), c.flipSinToCos(), c.freqShift());
            addEmbedding = child("add_embedding", new TimestepEmbedding(c.projectionClassEmbeddingsInputDim(),
                    c.timeEmbedDim(), 0));
        } else {
            addTimeProj = null;
            addEmbedding = null;
        }
        convIn = child("conv_in", new Conv2d(c.inChannels(), c0, c.convInKernel(), 1, (c.convInKernel() - 1) / 2));
        ModuleList downList = child("down_blocks", new ModuleList());
        int out = c0;
        for (int i = 0; i < blocks; i++) {
            int in = out;
            out = channels.get(i);
            boolean cross = c.downBlockTypes().get(i).equals("CrossAttnDownBlock2D");
            downBlocks.add(downList.add(i, new UNetBlocks.DownBlock(c, i, in, out, cross, i < blocks - 1)));
        }
        midBlock = c.midBlockType() == null ? null
                : child("mid_block", new UNetBlocks.MidBlock(c, c.midBlockType().equals("UNetMidBlock2DCrossAttn")));
        ModuleList upList = child("up_blocks", new ModuleList());
        out = channels.getLast();
        for (int i = 0; i < blocks; i++) {
            int prevOut = out;
            out = channels.get(blocks - 1 - i);
            int in = channels.get(Math.max(blocks - 2 - i, 0));
            boolean cross = c.upBlockTypes().get(i).equals("CrossAttnUpBlock2D");
            upBlocks.add(upList.add(i, new UNetBlocks.UpBlock(c, i, in, out, prevOut, cross, i < blocks - 1)));
        }
        convNormOut = child("conv_norm_out", new GroupNorm(c.normNumGroups(), c0, c.normEps(), true));
        convOut = child("conv_out", new Conv2d(c0, c.outChannels(), c.convOutKernel(), 1, (c.convOutKernel() - 1) / 2));
    }

    public UNetConfig config() {
        return config;
    }

    /**
     * sample [B, Cin, H, W], timestep [B] (or [1], broadcast), context [B, M, Cc], added conditions for SDXL
     * (null otherwise), timestep condition [B, time_cond_proj_dim] or null -> noise prediction [B, Cout, H, W].
     */
    public Tensor forward(Tensor sample, Tensor timestep, Tensor context, AddedConditions added, Tensor timestepCond) {
        int batch = sample.size(0);
        Tensor t = timestep.numel() == batch ? timestep.reshape(batch) : timestep.reshape(1).expand(batch);
        // 1. time
        Tensor emb = timeEmbedding.forward(timeProj.forward(t), timestepCond);        // [B, T]
        if (addEmbedding != null) {
            if (added == null) {
                throw new IllegalArgumentException("this UNet (addition_embed_type text_time) needs text_embeds and time_ids");
            }
            Tensor timeIds = added.timeIds();                                         // [B, 6]
            Tensor timeEmbeds = addTimeProj.forward(timeIds.reshape(-1)).reshape(batch, -1); // [B, 6*A]
            Tensor addEmbeds = Tensor.concat(List.of(added.textEmbeds(), timeEmbeds), -1);  // [B, P]
            emb = emb.add(addEmbedding.forward(addEmbeds, null));
        }
        // 2. pre-process
        Tensor h = convIn.forward(sample);                                            // [B, C0, H, W]
        // 3. down
        List<Tensor> skips = new ArrayList<>();
        skips.add(h);
        for (UNetBlocks.DownBlock block : downBlocks) {
            h = block.forward(h, emb, context, skips);
        }
        // 4. mid
        if (midBlock != null) {
            h = midBlock.forward(h, emb, context);
        }
        // 5. up (skips consumed from the end; upsample to the next skip's size when it is not exactly 2x)
        Deque<Tensor> stack = new ArrayDeque<>(skips);
        for (int i = 0; i < upBlocks.size(); i++) {
            UNetBlocks.UpBlock block = upBlocks.get(i);
            int[] upsampleSize = null;
            if (i < upBlocks.size() - 1) {
                Tensor next = skipAfter(stack, block.layers());
                upsampleSize = new int[] {next.size(2), next.size(3)};
            }
            h = block.forward(h, emb, context, stack, upsampleSize);
        }
        // 6. post-process
        h = convNormOut.forward(h, Activation.SILU);
        return convOut.forward(h);                                                   // [B, Cout, H, W]
    }

    /** The skip tensor the next up block will see first, once {@code layers} have been popped. */
    private static Tensor skipAfter(Deque<Tensor> stack, int layers) {
        var it = stack.descendingIterator();
        Tensor t = null;
        for (int i = 0; i <= layers && it.hasNext(); i++) {
            t = it.next();
        }
        if (t == null) {
            throw new IllegalStateException("skip connections exhausted: " + Arrays.toString(new int[] {stack.size(), layers}));
        }
        return t;
    }
}
