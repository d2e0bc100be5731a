package koala4j.models.t5;

import java.util.ArrayList;
import java.util.List;

import koala4j.nn.Embedding;
import koala4j.nn.Module;
import koala4j.nn.RmsNorm;
import koala4j.nn.ModuleList;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * transformers {@code T5Stack} (models/t5/modeling_t5.py): blocks, then {@code final_layer_norm}. The relative
 * position bias is computed once per pass from block 0's table and shared by every block (T5's "position_bias"
 * handed from layer to layer). The encoder stack of a GBST checkpoint has ETRI's {@code GBSWT5Stack} embedding,
 * {@link Gbswt}, under {@code embed_tokens}; the token embeddings themselves are the model's {@code shared} table.
 */
final class T5Stack extends Module {

    final Gbswt embedTokens;
    final List<T5Block> blocks = new ArrayList<>();
    final RmsNorm finalLayerNorm;

    T5Stack(T5Config c, boolean isDecoder, Embedding shared) {
        embedTokens = !isDecoder && c.gbst() != null ? child("embed_tokens", new Gbswt(c, shared)) : null;
        ModuleList block = child("block", new ModuleList());
        int layers = isDecoder ? c.numDecoderLayers() : c.numLayers();
        for (int i = 0; i < layers; i++) {
            blocks.add(block.add(i, new T5Block(c, i == 0, isDecoder)));
        }
        finalLayerNorm = child("final_layer_norm", new RmsNorm(c.dModel(), c.layerNormEpsilon()));
    }

    /** [1, nH, Nq, Nk] for queries at positions {@code queryStart ..}. */
    Tensor positionBias(Ops ops, int queryStart, int queryLength, int keyLength) {
        return blocks.getFirst().selfAttention.attention.computeBias(ops, queryStart, queryLength, keyLength);
    }

    /**
     * Whole-sequence pass over embeddings [B, N, C]. Returns the reference's {@code hidden_states}: the input of
     * every block, then the final-norm output (so {@code getLast()} is {@code last_hidden_state}).
     */
    List<Tensor> forward(Tensor embeds, Tensor selfBias, boolean causal, Tensor encoderStates, Tensor crossBias) {
        List<Tensor> hidden = new ArrayList<>(blocks.size() + 1);
        Tensor h = embeds;
        for (T5Block block : blocks) {
            hidden.add(h);
            h = block.forward(h, selfBias, causal, encoderStates, crossBias);        // [B, N, C]
        }
        hidden.add(finalLayerNorm.forward(h));
        return hidden;
    }
}
