package koala4j.models.t5;

import koala4j.nn.Embedding;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * transformers {@code T5Attention} (models/t5/modeling_t5.py): q, k, v, o without bias, no 1/sqrt(d) scaling
 * (T5 folds it into the initialisation), and in the first layer of each stack the relative position bias table
 * {@code relative_attention_bias} [num_buckets, nH] that every layer of the stack then shares.
 */
final class T5Attention extends Module {

    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear o;
    private final Embedding relativeAttentionBias;
    private final int heads;
    private final int headDim;
    private final boolean bidirectional;
    private final int numBuckets;
    private final int maxDistance;

    T5Attention(T5Config c, boolean hasRelativeAttentionBias, boolean isDecoder) {
        q = child("q", new Linear(c.dModel(), c.innerDim(), false));
        k = child("k", new Linear(c.dModel(), c.innerDim(), false));
        v = child("v", new Linear(c.dModel(), c.innerDim(), false));
        o = child("o", new Linear(c.innerDim(), c.dModel(), false));
        relativeAttentionBias = hasRelativeAttentionBias
                ? child("relative_attention_bias", new Embedding(c.relativeAttentionNumBuckets(), c.numHeads())) : null;
        heads = c.numHeads();
        headDim = c.dKv();
        bidirectional = !isDecoder;
        numBuckets = c.relativeAttentionNumBuckets();
        maxDistance = c.relativeAttentionMaxDistance();
    }

    /**
     * {@code T5Attention._relative_position_bucket} (after Mesh TensorFlow): exact buckets for small distances,
     * logarithmic ones up to {@code maxDistance}. The logarithmic branch is evaluated in float32 step by step as
     * torch does ({@code log(rp.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)},
     * then truncated), so distances that land exactly on a bucket edge (16, 32, 64 for ByT5) fall the same way.
     */
    static int relativePositionBucket(int relativePosition, boolean bidirectional, int numBuckets, int maxDistance) {
        int bucket = 0;
        int buckets = numBuckets;
        int distance;
        if (bidirectional) {
            buckets /= 2;
            if (relativePosition > 0) {
                bucket += buckets;
            }
            distance = Math.abs(relativePosition);
        } else {
            distance = -Math.min(relativePosition, 0);
        }
        int maxExact = buckets / 2;
        if (distance < maxExact) {
            return bucket + distance;
        }
        float ratio = (float) distance / (float) maxExact;
        float logRatio = (float) Math.log(ratio);
        float scaled = logRatio / (float) Math.log((double) maxDistance / maxExact) * (float) (buckets - maxExact);
        long large = maxExact + (long) scaled;
        return bucket + (int) Math.min(large, buckets - 1);
    }

    /**
     * {@code T5Attention.compute_bias}: [1, nH, Nq, Nk] for query positions {@code queryStart ..} against key
     * positions {@code 0 .. Nk-1} (relative position = key - query).
     */
    Tensor computeBias(Ops ops, int queryStart, int queryLength, int keyLength) {
        if (relativeAttentionBias == null) {
            throw new IllegalStateException("only the first layer of a T5 stack holds relative_attention_bias");
        }
        long[] buckets = new long[queryLength * keyLength];
        for (int i = 0; i < queryLength; i++) {
            for (int j = 0; j < keyLength; j++) {
                buckets[i * keyLength + j] = relativePositionBucket(j - (queryStart + i), bidirectional, numBuckets,
                        maxDistance);
            }
        }
        Tensor values = relativeAttentionBias.forward(ops.fromArray(buckets, queryLength, keyLength)); // [Nq, Nk, nH]
        return values.permute(2, 0, 1).contiguous().unsqueeze(0);                                        // [1, nH, Nq, Nk]
    }

    /** x [B, N, C] through {@code proj} into heads: [B, nH, N, D]. */
    private Tensor heads(Linear proj, Tensor x) {
        int b = x.size(0);
        int n = x.size(1);
        return proj.forward(x).reshape(b, n, heads, headDim).transpose(1, 2);
    }

    Tensor keys(Tensor x) {
        return heads(k, x);
    }

    Tensor values(Tensor x) {
        return heads(v, x);
    }

    Tensor queries(Tensor x) {
        return heads(q, x);
    }

    /**
     * softmax(q·kᵀ + bias) · v then {@code o}: q [B, nH, Nq, D], k/v [B, nH, Nk, D], bias broadcastable to
     * [B, nH, Nq, Nk] (position bias plus -inf where a key is padding) or null; returns [B, Nq, C].
     */
    Tensor attend(Tensor q, Tensor k, Tensor v, Tensor bias, boolean causal) {
        int b = q.size(0);
        int nq = q.size(2);
        Tensor a = q.ops().attention(q, k, v, bias, causal, 1f);                  // [B, nH, Nq, D]
        return o.forward(a.transpose(1, 2).reshape(b, nq, heads * headDim));       // [B, Nq, C]
    }

    /** Self-attention over x [B, N, C] itself. */
    Tensor forward(Tensor x, Tensor bias, boolean causal) {
        return attend(queries(x), keys(x), values(x), bias, causal);
    }
}
