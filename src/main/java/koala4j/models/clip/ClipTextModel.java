package koala4j.models.clip;

import java.util.ArrayList;
import java.util.List;

import koala4j.nn.Embedding;
import koala4j.nn.LayerNorm;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.ModuleList;
import koala4j.nn.WeightSource;
import koala4j.tensor.DType;
import koala4j.tensor.Tensor;

/**
 * transformers {@code CLIPTextModel} and {@code CLIPTextModelWithProjection} (models/clip/modeling_clip.py):
 * keys {@code text_model.*} and, with projection, {@code text_projection.weight}. Causal self-attention, no
 * padding mask (as diffusers calls it), pooled output at the EOS position.
 */
public final class ClipTextModel extends Module {

    /** All hidden states (embeddings first), the final-norm output, the pooled output and the projection. */
    public record Output(List<Tensor> hiddenStates, Tensor lastHiddenState, Tensor pooled, Tensor textEmbeds) {

        /** hidden_states[-2]: what SDXL feeds its UNet. */
        public Tensor penultimate() {
            return hiddenStates.get(hiddenStates.size() - 2);
        }
    }

    private final ClipTextConfig config;
    private final TextTransformer textModel;
    private final Linear textProjection;

    public ClipTextModel(ClipTextConfig config) {
        this.config = config;
        this.textModel = child("text_model", new TextTransformer(config));
        this.textProjection = config.withProjection()
                ? child("text_projection", new Linear(config.hiddenSize(), config.projectionDim(), false)) : null;
    }

    /**
     * {@code source} with a CLIPTextModel that transformers 5 stored without its {@code text_model.} level
     * ({@code embeddings.*}, {@code encoder.*}, {@code final_layer_norm.*}) seen under that level, which is what
     * this module loads; the source itself otherwise.
     */
    public static WeightSource textKeys(WeightSource source) {
        return ClipKeys.nested(source, "embeddings.token_embedding.weight", ClipKeys.TEXT, ClipKeys.TEXT_PARTS);
    }

    public ClipTextConfig config() {
        return config;
    }

    /** ids [B, N] (I64 or I32) -> every output the pipelines use. */
    public Output forward(Tensor inputIds) {
        if (inputIds.rank() != 2 || inputIds.size(1) > config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("input ids of shape " + java.util.Arrays.toString(inputIds.shape())
                    + ", expected [B, N] with N <= max_position_embeddings " + config.maxPositionEmbeddings());
        }
        List<Tensor> hidden = textModel.encode(inputIds);                      // N+1 x [B, N, C]
        Tensor last = textModel.finalLayerNorm.forward(hidden.getLast());       // [B, N, C]
        Tensor pooled = pool(last, inputIds);                                  // [B, C]
        Tensor embeds = textProjection == null ? null : textProjection.forward(pooled);
        return new Output(hidden, last, pooled, embeds);
    }

    /**
     * The EOS row of each sequence. With eos_token_id 2 (the legacy value real OpenAI/LAION configs carry)
     * transformers takes the position of the highest id; otherwise the first position holding eos_token_id.
     */
    private Tensor pool(Tensor last, Tensor inputIds) {
        long[] ids = inputIds.toLongArray();
        int batch = inputIds.size(0);
        int n = inputIds.size(1);
        long[] rows = new long[batch];
        for (int b = 0; b < batch; b++) {
            int pos = 0;
            if (config.eosTokenId() == 2) {
                for (int i = 1; i < n; i++) {
                    if (ids[b * n + i] > ids[b * n + pos]) {
                        pos = i;
                    }
                }
            } else {
                for (int i = 0; i < n; i++) {
                    if (ids[b * n + i] == config.eosTokenId()) {
                        pos = i;
                        break;
                    }
                }
            }
            rows[b] = (long) b * n + pos;
        }
        Tensor flat = last.reshape(batch * n, config.hiddenSize());             // [B*N, C]
        return flat.indexSelect(0, last.ops().fromArray(rows, batch));         // [B, C]
    }

    /** {@code CLIPTextTransformer}: embeddings, encoder, final_layer_norm. */
    static final class TextTransformer extends Module {
        final ClipTextEmbeddings embeddings;
        final Encoder encoder;
        final LayerNorm finalLayerNorm;

        TextTransformer(ClipTextConfig c) {
            embeddings = child("embeddings", new ClipTextEmbeddings(c));
            encoder = child("encoder", new Encoder(c));
            finalLayerNorm = child("final_layer_norm", new LayerNorm(c.hiddenSize(), c.layerNormEps()));
        }

        List<Tensor> encode(Tensor ids) {
            Tensor h = embeddings.forward(ids);                                 // [B, N, C]
            List<Tensor> states = new ArrayList<>();
            states.add(h);
            for (ClipEncoderLayer layer : encoder.layers) {
                h = layer.forward(h);
                states.add(h);
            }
            return states;
        }
    }

    static final class ClipTextEmbeddings extends Module {
        final Embedding tokenEmbedding;
        final Embedding positionEmbedding;

        ClipTextEmbeddings(ClipTextConfig c) {
            tokenEmbedding = child("token_embedding", new Embedding(c.vocabSize(), c.hiddenSize()));
            positionEmbedding = child("position_embedding", new Embedding(c.maxPositionEmbeddings(), c.hiddenSize()));
        }

        Tensor forward(Tensor ids) {
            int n = ids.size(1);
            long[] positions = new long[n];
            for (int i = 0; i < n; i++) {
                positions[i] = i;
            }
            Tensor tokens = tokenEmbedding.forward(ids.to(DType.I64));           // [B, N, C]
            Tensor pos = positionEmbedding.forward(ids.ops().fromArray(positions, 1, n)); // [1, N, C]
            return tokens.add(pos);
        }
    }

    static final class Encoder extends Module {
        final List<ClipEncoderLayer> layers = new ArrayList<>();

        Encoder(ClipTextConfig c) {
            var list = child("layers", new ModuleList());
            for (int i = 0; i < c.numHiddenLayers(); i++) {
                layers.add(list.add(i, new ClipEncoderLayer(c.hiddenSize(), c.intermediateSize(), c.numAttentionHeads(),
                        c.hiddenAct(), c.layerNormEps(), true)));
            }
        }
    }

}
