package koala4j.models.t5;

import static koala4j.testing.Close.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.json.Json;
import koala4j.io.json.JsonException;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * GBSWT (ETRI gbswt5/gbst.py at 00fad64) against a plain double-precision re-implementation written from the same
 * reference, line by line, here in the test. No golden file exists for GBST-KEByT5 (it needs trust_remote_code and
 * einops), so this checks our tensor formulation against a direct reading of the reference, not against torch.
 * Random weights (T5 init scales, BatchNorm statistics random), float32 vs float64: |Δ| <= 2e-5 + 1e-4·|ref|.
 */
class GbstTest {

    private final Ops ops = new CpuOps();

    private static T5Config config(String gbstFields) {
        return T5Config.from(Json.parse("{\"model_type\": \"gbswt5\", \"d_model\": 16, \"d_kv\": 4, \"d_ff\": 24, "
                + "\"num_layers\": 2, \"num_decoder_layers\": 1, \"num_heads\": 4, \"feed_forward_proj\": \"gated-gelu\", "
                + "\"tie_word_embeddings\": false, \"decoder_start_token_id\": 0, " + gbstFields + "}", "config.json"));
    }

    record Case(String fields, long[][] ids, boolean withMask) {
    }

    @Test
    void defaultBlocksWithPaddingMask() {
        check(new Case("\"downsample_factor\": 1", new long[][] {rowOf(20, 3), rowOf(13, 9)}, true));
    }

    @Test
    void kebyt5LargeBlocksDownsampledByThreeWithBatchNorm() {
        // GBST-KEByT5-large's card: blocks (1, 2, 3, 6, 9), downsampled to 1/3
        check(new Case("\"subword_blocks\": [[1, 0], [2, 0], [3, 0], [6, 0], [9, 0]], \"downsample_factor\": 3, "
                + "\"gbst_batchnorm\": true", new long[][] {rowOf(25, 5), rowOf(7, 1)}, true));
    }

    @Test
    void noMaskAndNoConsensus() {
        check(new Case("\"max_subword_block_size\": 4, \"subword_blocks\": null, \"downsample_factor\": 2, "
                + "\"score_consensus_attn\": false", new long[][] {rowOf(11, 2)}, false));
    }

    @Test
    void configErrorsNameTheField() {
        JsonException e = assertThrows(JsonException.class, () -> config("\"subword_blocks\": [[3, 1]]"));
        assertEquals(true, e.getMessage().contains("subword_blocks"), e.getMessage());
        assertThrows(JsonException.class, () -> config("\"max_subword_block_size\": 4"));   // both given (default blocks)
        assertThrows(JsonException.class, () -> config("\"downsample_factor\": 12"));       // > largest block 9
    }

    /** The encoder sees the downsampled sequence; the decoder's cross-attention uses the downsampled mask. */
    @Test
    void downsampledEncoderFeedsTheDecoder() {
        T5Config c = config("\"subword_blocks\": [[1, 0], [2, 0], [3, 0], [6, 0], [9, 0]], \"downsample_factor\": 3");
        T5ForConditionalGeneration model = new T5ForConditionalGeneration(c);
        assertEquals(List.of(), model.loadWeights(new RandomT5Weights(model, 7, ops)).unexpectedKeys());
        long[][] rows = {rowOf(20, 3), rowOf(8, 9)};
        var encoded = model.encode(ids(rows), mask(rows));
        assertArrayEquals(new int[] {2, 7, 16}, encoded.lastHiddenState().shape());
        // row 1 has 8 bytes: groups of 3 keep positions 0..8, so 3 groups, then 4 of padding
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, encoded.attentionMask().toFloatArray());
        // row 0 (the longest, nothing padded) alone must decode exactly as inside the batch. (A shorter row does not:
        // the positional convolution of gbst.py looks ahead into the pad ids of a batch, as the reference does.)
        var alone = model.encode(ids(new long[][] {rows[0]}), mask(new long[][] {rows[0]}));
        var full = model.decode(ops.fromArray(new long[] {0, 50, 60, 0, 50, 60}, 2, 3), encoded).logits();
        var single = model.decode(ops.fromArray(new long[] {0, 50, 60}, 1, 3), alone).logits();
        assertClose(single.toFloatArray(), full.slice(0, 0, 1).toFloatArray(), 1e-5, 1e-5, "row 0 logits");
    }

    private void check(Case c) {
        T5Config config = config(c.fields());
        T5ForConditionalGeneration model = new T5ForConditionalGeneration(config);
        RandomT5Weights weights = new RandomT5Weights(model, 42, ops);
        model.loadWeights(weights);
        Gbswt gbst = model.encoderEmbedding();
        Tensor mask = c.withMask() ? mask(c.ids()) : null;
        Gbswt.Output out = gbst.forward(ids(c.ids()), mask);
        Reference ref = new Reference(config, weights.tensors());
        double[][][] expected = ref.forward(c.ids(), c.withMask());
        int rows = expected.length;
        int n = expected[0].length;
        assertArrayEquals(new int[] {rows, n, config.dModel()}, out.embeds().shape(), "downsampled shape");
        assertClose(flatten(expected), out.embeds().toFloatArray(), 2e-5, 1e-4, "GBST embeddings");
        assertArrayEquals(ref.outMask, out.mask().toFloatArray(), "downsampled mask");
    }

    /** Ids 3..258 (bytes), right-padded with 0 to the longest row by {@link #ids}. */
    private static long[] rowOf(int length, int salt) {
        long[] row = new long[length];
        for (int i = 0; i < length; i++) {
            row[i] = 3 + (i * 37 + salt * 11) % 256;
        }
        row[length - 1] = 1;
        return row;
    }

    private Tensor ids(long[][] rows) {
        int s = 0;
        for (long[] r : rows) {
            s = Math.max(s, r.length);
        }
        long[] flat = new long[rows.length * s];
        for (int b = 0; b < rows.length; b++) {
            System.arraycopy(rows[b], 0, flat, b * s, rows[b].length);
        }
        return ops.fromArray(flat, rows.length, s);
    }

    private Tensor mask(long[][] rows) {
        int s = 0;
        for (long[] r : rows) {
            s = Math.max(s, r.length);
        }
        long[] flat = new long[rows.length * s];
        for (int b = 0; b < rows.length; b++) {
            java.util.Arrays.fill(flat, b * s, b * s + rows[b].length, 1);
        }
        return ops.fromArray(flat, rows.length, s);
    }

    private static float[] flatten(double[][][] x) {
        int n = 0;
        for (double[][] a : x) {
            for (double[] r : a) {
                n += r.length;
            }
        }
        float[] out = new float[n];
        int at = 0;
        for (double[][] a : x) {
            for (double[] r : a) {
                for (double v : r) {
                    out[at++] = (float) v;
                }
            }
        }
        return out;
    }

    /** gbst.py GBSWT.forward, read literally, in float64 loops. */
    static final class Reference {
        final T5Config c;
        final Map<String, Tensor> w;
        float[] outMask;

        Reference(T5Config c, Map<String, Tensor> weights) {
            this.c = c;
            this.w = weights;
        }

        private double[] get(String key) {
            float[] f = w.get(key).toFloatArray();
            double[] d = new double[f.length];
            for (int i = 0; i < f.length; i++) {
                d[i] = f[i];
            }
            return d;
        }

        double[][][] forward(long[][] rows, boolean withMask) {
            GbstConfig g = c.gbst();
            int dim = c.dModel();
            int k = g.maxBlockSize();
            int s = 0;
            for (long[] r : rows) {
                s = Math.max(s, r.length);
            }
            int lcm = g.blockPadMultiple();
            int padded = (s + lcm - 1) / lcm * lcm;
            int ds = g.downsampleFactor();
            int kept = (s + ds - 1) / ds * ds;
            double[] emb = get("shared.weight");
            double[] w1 = get("encoder.embed_tokens.positional_convol.2.convol.weight");   // [D, 1, K]
            double[] b1 = get("encoder.embed_tokens.positional_convol.2.convol.bias");
            double[] w2 = get("encoder.embed_tokens.positional_convol.2.proj.weight");     // [D, D, 1]
            double[] b2 = get("encoder.embed_tokens.positional_convol.2.proj.bias");
            double[] ws = get("encoder.embed_tokens.cand_scoring.0.weight");
            double bs = get("encoder.embed_tokens.cand_scoring.0.bias")[0];
            double[][][] result = new double[rows.length][][];
            outMask = new float[rows.length * (kept / ds)];
            for (int b = 0; b < rows.length; b++) {
                // embeddings (padding id 0 past the row) and the mask, F.pad'ed with False
                double[][] x = new double[s + k - 1][dim];
                double[] m = new double[padded];
                for (int i = 0; i < s; i++) {
                    long id = i < rows[b].length ? rows[b][i] : 0;
                    for (int ch = 0; ch < dim; ch++) {
                        x[i][ch] = emb[(int) id * dim + ch];
                    }
                    m[i] = !withMask || i < rows[b].length ? 1 : 0;
                }
                if (!withMask) {
                    java.util.Arrays.fill(m, 1);          // mask None: the padding takes part
                }
                // Padding((0,0,0,k-1)), depthwise conv (k taps), [bn], 1x1 proj
                double[][] y = new double[padded][dim];
                for (int i = 0; i < s; i++) {
                    double[] conv = new double[dim];
                    for (int ch = 0; ch < dim; ch++) {
                        double acc = b1[ch];
                        for (int t = 0; t < k; t++) {
                            acc += w1[ch * k + t] * x[i + t][ch];
                        }
                        if (g.batchNorm()) {
                            double mean = get("encoder.embed_tokens.positional_convol.2.bn.running_mean")[ch];
                            double var = get("encoder.embed_tokens.positional_convol.2.bn.running_var")[ch];
                            acc = (acc - mean) / Math.sqrt(var + 1e-5)
                                    * get("encoder.embed_tokens.positional_convol.2.bn.weight")[ch]
                                    + get("encoder.embed_tokens.positional_convol.2.bn.bias")[ch];
                        }
                        conv[ch] = acc;
                    }
                    for (int o = 0; o < dim; o++) {
                        double acc = b2[o];
                        for (int ch = 0; ch < dim; ch++) {
                            acc += w2[o * dim + ch] * conv[ch];
                        }
                        y[i][o] = acc;                    // rows s..padded stay 0 (pad_to_multiple)
                    }
                }
                int nb = g.blockSizes().size();
                double[][][] reprs = new double[padded][nb][dim];
                boolean[][] bmask = new boolean[padded][nb];
                for (int bi = 0; bi < nb; bi++) {
                    int size = g.blockSizes().get(bi);
                    for (int start = 0; start < padded; start += size) {
                        double count = 0;
                        double[] sum = new double[dim];
                        for (int i = start; i < start + size; i++) {
                            count += m[i];
                            for (int ch = 0; ch < dim; ch++) {
                                sum[ch] += m[i] * y[i][ch];
                            }
                        }
                        for (int i = start; i < start + size; i++) {
                            for (int ch = 0; ch < dim; ch++) {
                                reprs[i][bi][ch] = count == 0 ? 0 : sum[ch] / Math.max(count, 1);
                            }
                            bmask[i][bi] = count > 0;
                        }
                    }
                }
                double[][] scores = new double[padded][nb];
                for (int i = 0; i < padded; i++) {
                    for (int bi = 0; bi < nb; bi++) {
                        double v = bs;
                        for (int ch = 0; ch < dim; ch++) {
                            v += ws[ch] * reprs[i][bi][ch];
                        }
                        scores[i][bi] = bmask[i][bi] ? v : -Float.MAX_VALUE;
                    }
                    softmax(scores[i]);
                }
                if (g.scoreConsensusAttn()) {
                    double[][] mixed = new double[padded][nb];
                    for (int i = 0; i < padded; i++) {
                        double[] sim = new double[padded];
                        for (int j = 0; j < padded; j++) {
                            double dot = 0;
                            for (int bi = 0; bi < nb; bi++) {
                                dot += scores[i][bi] * scores[j][bi];
                            }
                            sim[j] = m[i] * m[j] != 0 ? dot : -Float.MAX_VALUE;
                        }
                        softmax(sim);
                        for (int j = 0; j < padded; j++) {
                            for (int bi = 0; bi < nb; bi++) {
                                mixed[i][bi] += sim[j] * scores[j][bi];
                            }
                        }
                    }
                    scores = mixed;
                }
                double[][] out = new double[padded][dim];
                for (int i = 0; i < padded; i++) {
                    for (int bi = 0; bi < nb; bi++) {
                        for (int ch = 0; ch < dim; ch++) {
                            out[i][ch] += reprs[i][bi][ch] * scores[i][bi];
                        }
                    }
                }
                double[][] pooled = new double[kept / ds][dim];
                for (int gi = 0; gi < kept / ds; gi++) {
                    double count = 0;
                    for (int i = gi * ds; i < (gi + 1) * ds; i++) {
                        count += m[i];
                        for (int ch = 0; ch < dim; ch++) {
                            pooled[gi][ch] += m[i] * out[i][ch];
                        }
                    }
                    for (int ch = 0; ch < dim; ch++) {
                        pooled[gi][ch] = count == 0 ? 0 : pooled[gi][ch] / Math.max(count, 1);
                    }
                    outMask[b * (kept / ds) + gi] = count > 0 ? 1 : 0;
                }
                result[b] = pooled;
            }
            return result;
        }

        private static void softmax(double[] v) {
            double max = Double.NEGATIVE_INFINITY;
            for (double x : v) {
                max = Math.max(max, x);
            }
            double sum = 0;
            for (int i = 0; i < v.length; i++) {
                v[i] = Math.exp(v[i] - max);
                sum += v[i];
            }
            for (int i = 0; i < v.length; i++) {
                v[i] /= sum;
            }
        }
    }
}
