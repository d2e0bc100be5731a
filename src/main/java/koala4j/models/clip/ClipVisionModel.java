package koala4j.models.clip;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import koala4j.models.Checkpoint;
import koala4j.nn.Conv2d;
import koala4j.nn.Embedding;
import koala4j.nn.LayerNorm;
import koala4j.nn.Module;
import koala4j.nn.ModuleList;
import koala4j.nn.Parameter;
import koala4j.nn.WeightException;
import koala4j.nn.WeightSource;
import koala4j.tensor.Tensor;

/**
 * transformers {@code CLIPVisionModel} (models/clip/modeling_clip.py): keys {@code vision_model.embeddings.*}
 * ({@code patch_embedding.weight} [C, 3, P, P] without bias, {@code class_embedding} [C],
 * {@code position_embedding.weight} [N+1, C]), {@code vision_model.pre_layrnorm.*} (sic),
 * {@code vision_model.encoder.layers.i.*} and {@code vision_model.post_layernorm.*}. The same tower is the vision half
 * of {@code CLIPModel}, of {@code AltCLIPModel} ({@code AltCLIPVisionTransformer} is a copy of CLIP's, under the same
 * {@code vision_model.*} keys) and of LLaVA ({@code vision_tower.vision_model.*} in the llava-hf layout). Folders
 * saved by transformers 5 store the tower without {@code vision_model.} (see {@link #towerKeys}).
 * Bidirectional attention, no mask. Thread-safe once loaded.
 */
public final class ClipVisionModel extends Module {

    /** The key every CLIP vision tower has, used to find where the tower sits in a bigger checkpoint. */
    static final String ANCHOR = "vision_model.embeddings.patch_embedding.weight";

    /**
     * Which tokens of a hidden state a multimodal model takes. {@code PATCH} drops the class token: transformers'
     * LLaVA {@code vision_feature_select_strategy="default"}, original LLaVA {@code mm_vision_select_feature="patch"}.
     * {@code FULL} keeps it: "full" and "cls_patch".
     */
    public enum FeatureSelect {
        PATCH, FULL;

        /** From a config value: "default" or "patch" -> PATCH; "full" or "cls_patch" -> FULL. */
        public static FeatureSelect of(String strategy) {
            return switch (strategy) {
                case "default", "patch" -> PATCH;
                case "full", "cls_patch" -> FULL;
                default -> throw new IllegalArgumentException("vision feature select strategy \"" + strategy
                        + "\": expected default, patch (drop the class token), full or cls_patch (keep it)");
            };
        }
    }

    /**
     * What {@code CLIPVisionModel(pixel_values, output_hidden_states=True)} returns: hidden_states[0] is the output of
     * pre_layrnorm, hidden_states[i] that of encoder layer i (no final norm); last_hidden_state is hidden_states[-1]
     * (CLIP's vision tower does not normalise it); pooled = post_layernorm(last_hidden_state[:, 0]).
     */
    public record Output(List<Tensor> hiddenStates, Tensor lastHiddenState, Tensor pooled) {

        /** hidden_states[-2]: LLaVA's vision_feature_layer / mm_vision_select_layer default. */
        public Tensor penultimate() {
            return hiddenStates.get(hiddenStates.size() - 2);
        }
    }

    private final ClipVisionConfig config;
    private final VisionTransformer visionModel;

    public ClipVisionModel(ClipVisionConfig config) {
        this.config = config;
        this.visionModel = child("vision_model", new VisionTransformer(config));
    }

    public ClipVisionConfig config() {
        return config;
    }

    /**
     * The tower of a checkpoint folder: its config.json (any layout {@link ClipVisionConfig#from} reads) and the
     * weights found by {@link #prefixIn} ({@code vision_model.*}, or e.g. {@code vision_tower.vision_model.*});
     * the text tower and projections of a CLIPModel / AltCLIPModel, and a LLaVA's language model, are left alone.
     */
    public static ClipVisionModel load(Checkpoint checkpoint) {
        ClipVisionModel model = new ClipVisionModel(ClipVisionConfig.from(checkpoint.config()));
        WeightSource source = towerKeys(checkpoint);
        model.loadTower(source, prefixIn(source));
        return model;
    }

    /**
     * {@code source} with a tower that transformers 5 stored without its {@code vision_model.} level
     * ({@code embeddings.*}, {@code vision_tower.embeddings.*}) seen under that level, as {@link #prefixIn} and
     * {@link #loadTower} expect; the source itself otherwise.
     */
    public static WeightSource towerKeys(WeightSource source) {
        return ClipKeys.nested(source, ANCHOR.substring(ClipKeys.VISION.length()), ClipKeys.VISION,
                ClipKeys.VISION_PARTS);
    }

    /**
     * The prefix in front of {@code vision_model.} in {@code source}: "" for CLIPVisionModel, CLIPModel and
     * AltCLIPModel checkpoints, "vision_tower." for llava-hf ones, whatever one key ending in
     * {@code vision_model.embeddings.patch_embedding.weight} has in front. None, or several, is an error.
     */
    public static String prefixIn(WeightSource source) {
        Set<String> prefixes = new TreeSet<>();
        for (String key : source.keys()) {
            if (key.endsWith(ANCHOR) && (key.length() == ANCHOR.length()
                    || key.charAt(key.length() - ANCHOR.length() - 1) == '.')) {
                prefixes.add(key.substring(0, key.length() - ANCHOR.length()));
            }
        }
        if (prefixes.size() != 1) {
            throw new WeightException(source.describe(), ANCHOR, prefixes.isEmpty()
                    ? "no key ends in " + ANCHOR + ": not a CLIP vision tower checkpoint"
                    : "several CLIP vision towers under the prefixes " + prefixes + ", expected one");
        }
        return prefixes.iterator().next();
    }

    /**
     * Loads the tower's parameters from {@code prefix + "vision_model.*"}. Returns the keys under that path that no
     * parameter claimed, except the {@code embeddings.position_ids} buffer older checkpoints carry; keys elsewhere
     * (a text tower, {@code visual_projection}, {@code logit_scale}, a language model) are not reported.
     */
    public LoadReport loadTower(WeightSource source, String prefix) {
        LoadReport all = load(source, prefix);
        String tower = prefix + "vision_model.";
        List<String> unexpected = new ArrayList<>();
        for (String key : all.unexpectedKeys()) {
            if (key.startsWith(tower) && !key.equals(tower + "embeddings.position_ids")) {
                unexpected.add(key);
            }
        }
        return new LoadReport(List.copyOf(unexpected));
    }

    /** pixel values [B, 3, H, W] (H = W = image_size) -> every output of the reference. */
    public Output forward(Tensor pixelValues) {
        checkPixels(pixelValues);
        List<Tensor> hidden = visionModel.encode(pixelValues, config.numHiddenLayers());   // L+1 x [B, N+1, C]
        Tensor last = hidden.getLast();                                                   // [B, N+1, C]
        Tensor pooled = visionModel.postLayernorm.forward(last.select(1, 0));           // [B, C]
        return new Output(hidden, last, pooled);
    }

    /** {@code CLIPVisionEmbeddings}: class token and patches plus positions, before pre_layrnorm. */
    public Tensor embeddings(Tensor pixelValues) {
        checkPixels(pixelValues);
        return visionModel.embeddings.forward(pixelValues);
    }

    /** {@link #features(Tensor, int[], FeatureSelect)} for one layer, e.g. {@code features(pixels, -2, PATCH)}. */
    public Tensor features(Tensor pixelValues, int layer, FeatureSelect select) {
        return features(pixelValues, new int[] {layer}, select);
    }

    /**
     * The image features a LLaVA model projects, as transformers {@code LlavaModel.get_image_features} selects them:
     * hidden_states[layer] (negative counts from the end: -1 is the last layer, -2 the penultimate), without the
     * class token for {@code PATCH}; several layers are concatenated along the channels in the order given. Only the
     * encoder layers up to the deepest one selected are run.
     *
     * @return [B, N, C * layers.length], N = num_patches (PATCH) or num_patches + 1 (FULL)
     */
    public Tensor features(Tensor pixelValues, int[] layers, FeatureSelect select) {
        if (layers.length == 0) {
            throw new IllegalArgumentException("vision feature layers: none given");
        }
        int count = config.numHiddenLayers() + 1;
        int[] resolved = new int[layers.length];
        int deepest = 0;
        for (int i = 0; i < layers.length; i++) {
            resolved[i] = layers[i] < 0 ? layers[i] + count : layers[i];
            if (resolved[i] < 0 || resolved[i] >= count) {
                throw new IllegalArgumentException("vision feature layer " + layers[i] + ": expected -" + count
                        + " to " + (count - 1) + " (hidden states of a " + config.numHiddenLayers() + "-layer tower)");
            }
            deepest = Math.max(deepest, resolved[i]);
        }
        checkPixels(pixelValues);
        List<Tensor> hidden = visionModel.encode(pixelValues, deepest);                  // deepest+1 x [B, N+1, C]
        List<Tensor> pool = new ArrayList<>();
        for (int layer : resolved) {
            Tensor h = hidden.get(layer);                                                 // [B, N+1, C]
            pool.add(select == FeatureSelect.PATCH ? h.slice(1, 1, h.size(1)) : h);       // [B, N, C]
        }
        return pool.size() == 1 ? pool.getFirst().contiguous() : Tensor.concat(pool, 2); // [B, N, C*layers]
    }

    private void checkPixels(Tensor pixelValues) {
        int[] s = pixelValues.shape();
        if (s.length != 4 || s[1] != config.numChannels() || s[2] != config.imageSize() || s[3] != config.imageSize()) {
            // CLIPVisionEmbeddings raises too unless interpolate_pos_encoding, which koala4j does not implement.
            throw new IllegalArgumentException("pixel values of shape " + Arrays.toString(s) + ", expected [B, "
                    + config.numChannels() + ", " + config.imageSize() + ", " + config.imageSize()
                    + "] (num_channels, image_size of the vision config)");
        }
    }

    /** {@code CLIPVisionTransformer}: embeddings, pre_layrnorm, encoder, post_layernorm. */
    static final class VisionTransformer extends Module {
        final VisionEmbeddings embeddings;
        final LayerNorm preLayrnorm;
        final List<ClipEncoderLayer> layers;
        final LayerNorm postLayernorm;

        VisionTransformer(ClipVisionConfig c) {
            embeddings = child("embeddings", new VisionEmbeddings(c));
            preLayrnorm = child("pre_layrnorm", new LayerNorm(c.hiddenSize(), c.layerNormEps()));
            layers = child("encoder", new Encoder(c)).layers;
            postLayernorm = child("post_layernorm", new LayerNorm(c.hiddenSize(), c.layerNormEps()));
        }

        /** hidden_states[0..upTo]: pre_layrnorm(embeddings), then the outputs of encoder layers 1..upTo. */
        List<Tensor> encode(Tensor pixelValues, int upTo) {
            Tensor h = preLayrnorm.forward(embeddings.forward(pixelValues));               // [B, N+1, C]
            List<Tensor> states = new ArrayList<>();
            states.add(h);
            for (int i = 0; i < upTo; i++) {
                h = layers.get(i).forward(h);                                               // [B, N+1, C]
                states.add(h);
            }
            return states;
        }
    }

    /** {@code CLIPEncoder}: the numbered {@code layers}, bidirectional. */
    static final class Encoder extends Module {
        final List<ClipEncoderLayer> layers = new ArrayList<>();

        Encoder(ClipVisionConfig c) {
            var list = child("layers", new ModuleList());
            for (int i = 0; i < c.numHiddenLayers(); i++) {
                layers.add(list.add(i, new ClipEncoderLayer(c.hiddenSize(), c.intermediateSize(),
                        c.numAttentionHeads(), c.hiddenAct(), c.layerNormEps(), false)));
            }
        }
    }

    /** {@code CLIPVisionEmbeddings}. */
    static final class VisionEmbeddings extends Module {
        final Conv2d patchEmbedding;
        final Parameter classEmbedding;
        final Embedding positionEmbedding;
        private final int hidden;

        VisionEmbeddings(ClipVisionConfig c) {
            hidden = c.hiddenSize();
            patchEmbedding = child("patch_embedding", new Conv2d(c.numChannels(), c.hiddenSize(), c.patchSize(),
                    c.patchSize(), 0, 1, false));
            classEmbedding = parameter("class_embedding", c.hiddenSize());
            positionEmbedding = child("position_embedding", new Embedding(c.numPositions(), c.hiddenSize()));
        }

        /** [B, 3, H, W] -> [B, N+1, C]: [class; patches] + positions. */
        Tensor forward(Tensor pixelValues) {
            int b = pixelValues.size(0);
            Tensor patches = patchEmbedding.forward(pixelValues);                           // [B, C, H/P, W/P]
            patches = patches.flatten(2, 3).transpose(1, 2);                                // [B, N, C]
            Tensor cls = classEmbedding.get().to(patches.dtype()).reshape(1, 1, hidden)
                    .expand(b, 1, hidden);                                                  // [B, 1, C]
            Tensor tokens = Tensor.concat(List.of(cls, patches), 1);                        // [B, N+1, C]
            Tensor positions = positionEmbedding.weight().get().to(patches.dtype());         // [N+1, C]
            return tokens.add(positions);                                                   // [B, N+1, C]
        }
    }
}
