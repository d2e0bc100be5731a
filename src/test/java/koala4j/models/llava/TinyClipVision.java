package koala4j.models.llava;

import java.util.List;

import koala4j.io.json.Json;
import koala4j.models.clip.ClipEncoderLayer;
import koala4j.nn.Conv2d;
import koala4j.nn.Embedding;
import koala4j.nn.LayerNorm;
import koala4j.nn.Module;
import koala4j.nn.Parameter;
import koala4j.tensor.Activation;
import koala4j.tensor.Tensor;

/**
 * TEST ONLY: transformers' CLIPVisionModel up to the hidden state LLaVA selects, so the LLaVA tests can start from
 * pixel values. The product implementation is koala4j.models.clip.ClipVisionModel (another change); this stand-in
 * exists so the composition can be tested before it lands. Keys vision_model.{embeddings, pre_layrnorm,
 * encoder.layers.N, post_layernorm}.
 */
final class TinyClipVision extends Module implements VisionFeatures {

    private final VisionModel visionModel;
    private final int layer;

    TinyClipVision(Json c, int layer) {
        visionModel = child("vision_model", new VisionModel(c));
        this.layer = layer;
    }

    /** hidden_states[layer] (hidden_states[0] = pre_layrnorm(embeddings)), [B, 1 + P, C]. */
    @Override
    public Tensor features(Tensor pixelValues) {
        VisionModel v = visionModel;
        int b = pixelValues.size(0);
        Tensor patches = v.embeddings.patchEmbedding.forward(pixelValues);                  // [B, C, g, g]
        int c = patches.size(1);
        patches = patches.reshape(b, c, -1).transpose(1, 2);                                // [B, P, C]
        Tensor cls = v.embeddings.classEmbedding.get().reshape(1, 1, c).expand(b, 1, c);     // [B, 1, C]
        Tensor h = Tensor.concat(List.of(cls.contiguous(), patches.contiguous()), 1);        // [B, 1+P, C]
        long[] positions = new long[h.size(1)];
        for (int i = 0; i < positions.length; i++) {
            positions[i] = i;
        }
        h = h.add(v.embeddings.positionEmbedding.forward(h.ops().fromArray(positions, 1, positions.length)));
        h = v.preLayrnorm.forward(h);
        int states = v.layers.size() + 1;
        int index = layer < 0 ? states + layer : layer;
        for (int i = 0; i < index; i++) {
            h = v.layers.get(i).forward(h);
        }
        return h;
    }

    static final class VisionModel extends Module {
        final Embeddings embeddings;
        final LayerNorm preLayrnorm;
        final List<ClipEncoderLayer> layers = new java.util.ArrayList<>();

        VisionModel(Json c) {
            int hidden = c.intValue("hidden_size");
            float eps = c.floatOr("layer_norm_eps", 1e-5f);
            embeddings = child("embeddings", new Embeddings(c));
            preLayrnorm = child("pre_layrnorm", new LayerNorm(hidden, eps));
            Encoder encoder = child("encoder", new Encoder());
            for (int i = 0; i < c.intValue("num_hidden_layers"); i++) {
                layers.add(encoder.layers.add(i, new ClipEncoderLayer(hidden, c.intValue("intermediate_size"),
                        c.intValue("num_attention_heads"), Activation.QUICK_GELU, eps, false)));
            }
            child("post_layernorm", new LayerNorm(hidden, eps));    // not on LLaVA's path; claims its keys
        }
    }

    static final class Encoder extends Module {
        final Numbered layers = child("layers", new Numbered());
    }

    static final class Numbered extends Module {
        <M extends Module> M add(int index, M m) {
            return child(Integer.toString(index), m);
        }
    }

    static final class Embeddings extends Module {
        final Conv2d patchEmbedding;
        final Parameter classEmbedding;
        final Embedding positionEmbedding;

        Embeddings(Json c) {
            int hidden = c.intValue("hidden_size");
            int patch = c.intValue("patch_size");
            int grid = c.intValue("image_size") / patch;
            classEmbedding = parameter("class_embedding", hidden);
            patchEmbedding = child("patch_embedding", new Conv2d(3, hidden, patch, patch, 0, 1, false));
            positionEmbedding = child("position_embedding", new Embedding(grid * grid + 1, hidden));
        }
    }
}
