package koala4j.models.t5;

import java.util.ArrayList;
import java.util.List;

import koala4j.nn.Embedding;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.Parameter;
import koala4j.nn.ModuleList;
import koala4j.tensor.Activation;
import koala4j.tensor.BinaryOp;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * ETRI's {@code GBSWT} (etri-crossmodal/gbswt5, gbswt5/gbst.py at 00fad64, itself after lucidrains/charformer-pytorch's
 * {@code GBST}): CharFormer's gradient-based subword tokenization in front of the T5 encoder. Steps as the
 * reference numbers them in {@code forward}:
 * <ol>
 *   <li>byte embeddings (the model's {@code shared} table), then {@code positional_convol}: right-pad the sequence by
 *       max_block-1, depthwise Conv1d (kernel max_block, bias), optional BatchNorm1d, pointwise Conv1d;</li>
 *   <li>pad the sequence to a multiple of lcm(block sizes) (zeros, mask False);</li>
 *   <li>for every block size m: the masked mean of each run of m positions, repeated back to every position;</li>
 *   <li>score each candidate with {@code cand_scoring} (Linear(C, 1)), masked to -FLT_MAX where a block holds
 *       no real byte, softmax over the candidates;</li>
 *   <li>score consensus attention (paper eq. 5): softmax(P·Pᵀ masked) · P;</li>
 *   <li>the score-weighted sum of the candidates;</li>
 *   <li>keep ceil(S/ds)·ds positions and mean-pool groups of ds (masked): the downsampled sequence and mask.</li>
 * </ol>
 * A null attention mask follows the reference's {@code mask is None} branch, where the padding of step 2 takes part
 * in the means and in the consensus (equivalent to a mask of ones over the padded length).
 */
final class Gbswt extends Module {

    /** The downsampled embeddings [B, N', C] and their mask [B, N'] (F32 1/0). */
    record Output(Tensor embeds, Tensor mask) {
    }

    private final Embedding embeds;
    private final Depthwise1dConv positionalConvol;
    private final Linear candScoring;
    private final GbstConfig config;
    private final int dim;

    Gbswt(T5Config c, Embedding shared) {
        embeds = shared;                                       // embed_tokens.embeds is tied to shared
        config = c.gbst();
        dim = c.dModel();
        ModuleList convol = child("positional_convol", new ModuleList());  // 0 Padding, 1 Rearrange, 3 Rearrange
        positionalConvol = convol.add(2, new Depthwise1dConv(dim, config.maxBlockSize(), config.batchNorm()));
        ModuleList scoring = child("cand_scoring", new ModuleList());      // 1 Rearrange('... () -> ...')
        candScoring = scoring.add(0, new Linear(dim, 1, true));
    }

    /** ids [B, S] (I32/I64), attention mask [B, S] (1/0) or null. */
    Output forward(Tensor ids, Tensor attentionMask) {
        Ops ops = ids.ops();
        int b = ids.size(0);
        int s = ids.size(1);
        int ds = config.downsampleFactor();
        int padded = ceilDiv(s, config.blockPadMultiple()) * config.blockPadMultiple();
        int kept = ceilDiv(s, ds) * ds;
        if (kept > padded) {
            throw new IllegalArgumentException("GBST downsample_factor " + ds + " keeps " + kept + " positions of a sequence"
                    + " padded to " + padded + " (a multiple of lcm" + config.blockSizes() + "); the reference fails there too");
        }
        // 1. embeddings and the positional depthwise convolution
        Tensor x = embeds.forward(ids.to(DType.I64));                                 // [B, S, C]
        x = positionalConvol.forward(x);                                              // [B, S, C]
        // 2. pad to a multiple of the block sizes' lcm
        x = padSequence(x, padded);                                                   // [B, S', C]
        Tensor mask = attentionMask == null ? ops.full(1f, DType.F32, b, padded)
                : padSequence(attentionMask.to(DType.F32).unsqueeze(2), padded).reshape(b, padded);  // [B, S']
        Tensor zero = ops.full(0f, DType.F32);
        Tensor lowest = ops.full(-Float.MAX_VALUE, DType.F32);
        // 3. candidate blocks: masked mean over each block, repeated to its positions
        List<Tensor> reprs = new ArrayList<>();
        List<Tensor> masks = new ArrayList<>();
        for (int m : config.blockSizes()) {
            int n = padded / m;
            Tensor blocks = x.reshape(b, n, m, dim);                                  // [B, S'/m, m, C]
            Tensor blockMask = mask.reshape(b, n, m, 1);                              // [B, S'/m, m, 1]
            Tensor count = blockMask.sum(2, false);                                   // [B, S'/m, 1]
            Tensor mean = blocks.mul(blockMask).sum(2, false).div(count.clamp(1f, Float.MAX_VALUE));  // [B, S'/m, C]
            reprs.add(mean.unsqueeze(2).expand(b, n, m, dim).reshape(b, padded, dim));             // [B, S', C]
            Tensor any = count.compare(BinaryOp.GT, zero);                            // [B, S'/m, 1]
            masks.add(any.expand(b, n, m).reshape(b, padded));                        // [B, S']
        }
        Tensor blockReprs = Tensor.stack(reprs, 2);                                   // [B, S', nBlk, C]
        Tensor blockMasks = Tensor.stack(masks, 2);                                   // [B, S', nBlk]
        int candidates = reprs.size();
        // 4. block scores
        Tensor scores = candScoring.forward(blockReprs).reshape(b, padded, candidates);  // [B, S', nBlk]
        scores = blockMasks.where(scores, lowest).softmax(2);                         // [B, S', nBlk]
        // 5. score consensus attention
        if (config.scoreConsensusAttn()) {
            Tensor sim = scores.matmul(scores.transpose(1, 2));                       // [B, S', S']
            Tensor cross = mask.unsqueeze(2).mul(mask.unsqueeze(1));                  // [B, S', S']
            scores = cross.where(sim, lowest).softmax(2).matmul(scores);              // [B, S', nBlk]
        }
        // 6. weighted sum of the candidates
        Tensor mixed = blockReprs.mul(scores.unsqueeze(3)).sum(2, false);             // [B, S', C]
        // 7. downsample by mean pooling over groups of ds
        int groups = kept / ds;
        Tensor grouped = mixed.slice(1, 0, kept).reshape(b, groups, ds, dim);         // [B, N', ds, C]
        Tensor groupMask = mask.slice(1, 0, kept).reshape(b, groups, ds, 1);          // [B, N', ds, 1]
        Tensor count = groupMask.sum(2, false);                                       // [B, N', 1]
        Tensor pooled = grouped.mul(groupMask).sum(2, false).div(count.clamp(1f, Float.MAX_VALUE));  // [B, N', C]
        Tensor outMask = count.compare(BinaryOp.GT, zero).reshape(b, groups);         // [B, N']
        return new Output(pooled, outMask);
    }

    /** Zeros appended along axis 1 up to {@code length} (F.pad with value 0 / False). */
    private static Tensor padSequence(Tensor x, int length) {
        int have = x.size(1);
        if (have == length) {
            return x;
        }
        int[] shape = x.shape();
        shape[1] = length - have;
        return Tensor.concat(List.of(x, x.ops().full(0f, DType.F32, shape)), 1);
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /**
     * gbst.py {@code Depthwise1dConv}: {@code convol} = Conv1d(C, C, k, groups=C), optional {@code bn} =
     * BatchNorm1d (eval: running statistics, eps 1e-5), {@code proj} = Conv1d(C, C, 1); as
     * {@code positional_convol} runs it: right-pad by k-1, [B, S, C] in and out.
     */
    static final class Depthwise1dConv extends Module {
        private final Conv1d convol;
        private final BatchNorm1d bn;
        private final Conv1d proj;
        private final int kernel;

        Depthwise1dConv(int dim, int kernel, boolean batchNorm) {
            this.kernel = kernel;
            convol = child("convol", new Conv1d(dim, dim, kernel, dim));
            bn = batchNorm ? child("bn", new BatchNorm1d(dim)) : null;
            proj = child("proj", new Conv1d(dim, dim, 1, 1));
        }

        Tensor forward(Tensor x) {
            Tensor padded = padSequence(x, x.size(1) + kernel - 1);                   // [B, S+k-1, C]
            Tensor h = convol.forward(padded.transpose(1, 2));                        // [B, C, S]
            if (bn != null) {
                h = bn.forward(h);
            }
            return proj.forward(h).transpose(1, 2);                                   // [B, S, C]
        }
    }

    /** torch.nn.Conv1d (stride 1, no padding): keys {@code weight} [out, in/groups, k], {@code bias} [out]. */
    static final class Conv1d extends Module {
        private final Parameter weight;
        private final Parameter bias;
        private final int groups;

        Conv1d(int in, int out, int kernel, int groups) {
            weight = parameter("weight", out, in / groups, kernel);
            bias = parameter("bias", out);
            this.groups = groups;
        }

        /** x [B, C, L] -> [B, out, L - k + 1], as conv2d over a height-1 image. */
        Tensor forward(Tensor x) {
            Tensor w = weight.get();
            Tensor w4 = w.reshape(w.size(0), w.size(1), 1, w.size(2));               // [out, in/g, 1, k]
            Tensor y = x.ops().conv2d(x.unsqueeze(2), w4, bias.get(), 1, 0, groups, Activation.NONE);
            return y.squeeze(2);                                                      // [B, out, L']
        }
    }

    /** torch.nn.BatchNorm1d in eval mode over [B, C, L]; {@code num_batches_tracked} is not used at inference. */
    static final class BatchNorm1d extends Module {
        private static final float EPS = 1e-5f;
        private final Parameter weight;
        private final Parameter bias;
        private final Parameter runningMean;
        private final Parameter runningVar;

        BatchNorm1d(int dim) {
            weight = parameter("weight", dim);
            bias = parameter("bias", dim);
            runningMean = parameter("running_mean", dim);
            runningVar = parameter("running_var", dim);
        }

        Tensor forward(Tensor x) {
            int c = x.size(1);
            Tensor scale = runningVar.get().to(DType.F32).add(EPS).rsqrt().mul(weight.get().to(DType.F32));  // [C]
            Tensor centred = x.sub(runningMean.get().to(DType.F32).reshape(1, c, 1));                      // [B, C, L]
            return centred.mul(scale.reshape(1, c, 1)).add(bias.get().to(DType.F32).reshape(1, c, 1));
        }
    }
}
