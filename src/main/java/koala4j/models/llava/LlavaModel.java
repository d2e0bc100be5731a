package koala4j.models.llava;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import koala4j.io.json.Json;
import koala4j.models.Checkpoint;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.nn.Layer;
import koala4j.nn.Module;
import koala4j.nn.Parameter;
import koala4j.nn.WeightException;
import koala4j.nn.WeightSource;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Quantization;

/**
 * A LLaVA model without its vision tower: the projector, the image-token merge and the LLaMA language model, for
 * both checkpoint layouts (see {@link LlavaConfig}). The tower comes in as a {@link VisionFeatures}.
 * <ul>
 * <li>transformers {@code LlavaForConditionalGeneration} (models/llava/modeling_llava.py): keys
 * {@code multi_modal_projector.linear_1/2.*}, {@code language_model.model.*}, {@code language_model.lm_head.weight}
 * (the tower's {@code vision_tower.*} are left to the tower's loader); the prompt repeats the image token once per
 * feature row and each of those positions gets one row, in order (masked_scatter).</li>
 * <li>LLaVA's {@code LlavaLlamaForCausalLM}: keys {@code model.*}, {@code lm_head.weight} and
 * {@code model.mm_projector.*}; with patch tokens (v0, Ko-LLaVA) the run of &lt;im_patch&gt; tokens after each
 * &lt;im_start&gt; (or each run of them without start/end tokens) is replaced by one image's rows; without patch
 * tokens (LLaVA-1.5) each -200 placeholder expands into one image's rows.</li>
 * </ul>
 * Immutable after loading; safe to use from several threads.
 */
public final class LlavaModel {

    /**
     * The ids the merge looks for. {@code imageToken}: transformers' image_token_index, LLaVA's &lt;im_patch&gt; id,
     * or the -200 placeholder; {@code imStart}/{@code imEnd}: &lt;im_start&gt;/&lt;im_end&gt; ids, -1 when unused.
     */
    public record ImageTokens(int imageToken, int imStart, int imEnd) {

        /**
         * What the config implies: transformers' image_token_index; for the original layout the ids of the tokens
         * LLaVA adds to the tokenizer, read from the folder's added_tokens.json (or the placeholder when the model
         * uses no patch tokens). A tokenizer that knows the ids can be used instead (see
         * {@link LlavaModel#load(Checkpoint, Quantization, ImageTokens)}).
         */
        public static ImageTokens of(LlavaConfig c, Path modelFolder) {
            if (c.layout() == LlavaConfig.Layout.TRANSFORMERS) {
                return new ImageTokens(c.imageTokenIndex(), -1, -1);
            }
            Path added = modelFolder.resolve("added_tokens.json");
            Json tokens = Files.isRegularFile(added) ? Json.read(added) : null;
            int start = -1;
            int end = -1;
            if (c.useImStartEnd()) {
                start = addedId(tokens, added, "<im_start>");
                end = addedId(tokens, added, "<im_end>");
            }
            int image = c.useImPatchToken() ? addedId(tokens, added, "<im_patch>") : LlavaConfig.ORIGINAL_IMAGE_PLACEHOLDER;
            return new ImageTokens(image, start, end);
        }

        private static int addedId(Json tokens, Path file, String token) {
            if (tokens == null || !tokens.has(token)) {
                throw new IllegalArgumentException(file + ": no id for " + token + ", which the LLaVA config uses "
                        + "(mm_use_im_start_end / mm_use_im_patch_token); pass the ids from the tokenizer instead");
            }
            return tokens.intValue(token);
        }
    }

    private final LlavaConfig config;
    private final LlamaForCausalLM languageModel;
    private final Layer projector;
    private final ImageTokens tokens;
    private final Parameter imageNewline;

    private LlavaModel(LlavaConfig config, LlamaForCausalLM languageModel, Layer projector, ImageTokens tokens,
                       Parameter imageNewline) {
        this.config = config;
        this.languageModel = languageModel;
        this.projector = projector;
        this.tokens = tokens;
        this.imageNewline = imageNewline;
    }

    /** Loads from a LLaVA folder; image token ids from the config (and added_tokens.json). */
    public static LlavaModel load(Checkpoint checkpoint, Quantization quantization) {
        LlavaConfig c = LlavaConfig.from(checkpoint.config());
        return load(checkpoint, quantization, ImageTokens.of(c, checkpoint.folder()));
    }

    /**
     * Loads the projector and the language model (its Linear weights quantised when asked). Keys that belong to
     * neither are an error, except the vision tower's ({@code vision_tower.*}, {@code model.vision_tower.*}).
     */
    public static LlavaModel load(Checkpoint checkpoint, Quantization quantization, ImageTokens tokens) {
        LlavaConfig c = LlavaConfig.from(checkpoint.config());
        int hidden = c.textConfig().hiddenSize();
        LlavaModel model;
        Set<String> unexpected = new TreeSet<>();
        if (c.layout() == LlavaConfig.Layout.TRANSFORMERS) {
            WeightSource source = transformersKeys(checkpoint);
            var root = new LlavaForConditionalGeneration(c);
            unexpected.addAll(root.load(source).unexpectedKeys());
            model = new LlavaModel(c, root.languageModel, root.projector, tokens, root.imageNewline);
        } else {
            LlamaForCausalLM lm = new LlamaForCausalLM(c.textConfig());
            Module projector = LlavaMultiModalProjector.original(c.projectorInputSize(), hidden, c.projectorDepth());
            Set<String> notLm = new TreeSet<>(lm.load(checkpoint).unexpectedKeys());
            Set<String> notProjector = new TreeSet<>(projector.load(checkpoint, "model.mm_projector.").unexpectedKeys());
            OriginalNewline newline = null;
            if (c.anyres()) {
                newline = new OriginalNewline(hidden);
                newline.load(checkpoint, "model.");   // it claims model.image_newline; the rest is checked below
            }
            for (String key : checkpoint.keys()) {
                boolean mine = key.startsWith("model.mm_projector.") && !notProjector.contains(key)
                        || newline != null && key.equals("model.image_newline");
                if (notLm.contains(key) && !mine) {
                    unexpected.add(key);
                }
            }
            model = new LlavaModel(c, lm, (Layer) projector, tokens, newline == null ? null : newline.imageNewline);
        }
        unexpected.removeIf(k -> k.startsWith("vision_tower.") || k.startsWith("model.vision_tower.")
                || k.endsWith("rotary_emb.inv_freq"));
        if (!unexpected.isEmpty()) {
            throw new WeightException(checkpoint.describe(), unexpected.iterator().next(), unexpected.size()
                    + " key(s) that a " + c.layout() + " LLaVA does not have: "
                    + (unexpected.size() <= 8 ? unexpected : new ArrayList<>(unexpected).subList(0, 8) + " ..."));
        }
        model.languageModel.quantize(quantization);
        return model;
    }

    /**
     * The checkpoint with transformers' newer LLaVA keys ({@code model.language_model.*}, {@code model.vision_tower.*},
     * {@code model.multi_modal_projector.*}, {@code lm_head.*}), when it has them, seen under the hub keys
     * ({@code language_model.model.*}, {@code vision_tower.*}, {@code multi_modal_projector.*},
     * {@code language_model.lm_head.*}) that this class and the tower's loader use; otherwise the checkpoint itself.
     */
    public static WeightSource transformersKeys(WeightSource source) {
        if (!source.keys().contains("model.language_model.embed_tokens.weight")) {
            return source;
        }
        return WeightSource.renamed(source, LlavaModel::legacyKey, LlavaModel::newKey);
    }

    private static String newKey(String legacy) {
        if (legacy.equals("image_newline")) {
            return "model.image_newline";
        }
        if (legacy.startsWith("language_model.model.")) {
            return "model.language_model." + legacy.substring("language_model.model.".length());
        }
        if (legacy.startsWith("language_model.lm_head.")) {
            return legacy.substring("language_model.".length());
        }
        if (legacy.startsWith("vision_tower.") || legacy.startsWith("multi_modal_projector.")) {
            return "model." + legacy;
        }
        return legacy;
    }

    private static String legacyKey(String key) {
        if (key.equals("model.image_newline")) {
            return "image_newline";
        }
        if (key.startsWith("model.language_model.")) {
            return "language_model.model." + key.substring("model.language_model.".length());
        }
        if (key.startsWith("lm_head.")) {
            return "language_model." + key;
        }
        if (key.startsWith("model.vision_tower.") || key.startsWith("model.multi_modal_projector.")) {
            return key.substring("model.".length());
        }
        return key;
    }

    public LlavaConfig config() {
        return config;
    }

    public LlamaForCausalLM languageModel() {
        return languageModel;
    }

    public ImageTokens imageTokens() {
        return tokens;
    }

    /**
     * The image embeddings of a batch of images: the tower's selected layer(s), the CLS row dropped when the config
     * says so, then the projector. pixelValues [B, 3, H, W] -> [B, P, C].
     */
    public Tensor imageEmbeds(VisionFeatures tower, Tensor pixelValues) {
        return projectImageFeatures(tower.features(pixelValues));
    }

    /** towerOutput [B, 1 + P, Cv] (what {@link VisionFeatures} returns) -> [B, P, C] ([B, 1 + P, C] for full / cls_patch). */
    public Tensor projectImageFeatures(Tensor towerOutput) {
        if (towerOutput.rank() != 3 || towerOutput.size(2) != config.projectorInputSize()) {
            throw new IllegalArgumentException("vision features of shape "
                    + java.util.Arrays.toString(towerOutput.shape()) + ", expected [B, 1 + patches, "
                    + config.projectorInputSize() + "] (" + config.visionFeatureLayers().size() + " layer(s) of "
                    + config.visionHiddenSize() + ")");
        }
        Tensor selected = config.dropClsToken() ? towerOutput.slice(1, 1, towerOutput.size(1)) : towerOutput;
        return projector.forward(selected);                                          // [B, P, C]
    }

    /**
     * The language model's input embeddings for one prompt: embed_tokens of the ids with the image rows merged in
     * (see the class comment for the two conventions). images: one [P, C] (or [1, P, C]) per image, in prompt order.
     * Returns [1, N', C]; N' = N unless -200 placeholders expand.
     */
    /**
     * LLaVA-NeXT's pack_image_features for one image: {@code projected} [1 + rows * cols, T, C] holds the base
     * image's T feature rows, then each tile's (tiles row by row, T = side * side positions each, row by row). The
     * tiles' positions are laid out as one (rows * side) x (cols * side) grid, the padding the image processor added
     * is cut off again ({@link AnyResGrid#unpad}), and every grid row is followed by image_newline:
     * [T + kept rows * (kept columns + 1), C], the base image's rows first.
     */
    public Tensor packImageFeatures(Tensor projected, int imageHeight, int imageWidth, int rows, int cols) {
        if (imageNewline == null) {
            throw new IllegalStateException("not a LLaVA-NeXT model: its image features are not packed");
        }
        int tiles = projected.size(0);
        int t = projected.size(1);
        int c = projected.size(2);
        int side = (int) Math.round(Math.sqrt(t));
        if (projected.rank() != 3 || side * side != t || tiles != 1 + rows * cols) {
            throw new IllegalArgumentException("image features of shape " + java.util.Arrays.toString(projected.shape())
                    + ", expected [1 + " + rows + " x " + cols + " tiles, a square number of positions, C]");
        }
        float[] all = projected.toFloatArray();
        float[] newline = imageNewline.get().toFloatArray();
        AnyResGrid.Unpadded u = AnyResGrid.unpad(imageHeight, imageWidth, rows * side, cols * side,
                config.layout() == LlavaConfig.Layout.TRANSFORMERS);
        int keptRows = u.rowEnd() - u.rowStart();
        int keptCols = u.colEnd() - u.colStart();
        int n = t + keptRows * (keptCols + 1);
        float[] out = new float[n * c];
        System.arraycopy(all, 0, out, 0, t * c);
        int pos = t;
        for (int y = u.rowStart(); y < u.rowEnd(); y++) {
            for (int x = u.colStart(); x < u.colEnd(); x++) {
                int tile = 1 + (y / side) * cols + x / side;
                int within = (y % side) * side + x % side;
                System.arraycopy(all, (tile * t + within) * c, out, pos++ * c, c);
            }
            System.arraycopy(newline, 0, out, pos++ * c, c);
        }
        return projected.ops().fromArray(out, n, c);                               // [N, C]
    }

    public Tensor inputEmbeds(int[] ids, List<Tensor> images) {
        List<Tensor> rows = new ArrayList<>(images.size());
        for (Tensor image : images) {
            Tensor r = image.rank() == 3 ? image.squeeze(0) : image;
            if (r.rank() != 2 || r.size(1) != config.textConfig().hiddenSize()) {
                throw new IllegalArgumentException("image embeddings of shape " + java.util.Arrays.toString(image.shape())
                        + ", expected [P, " + config.textConfig().hiddenSize() + "]");
            }
            rows.add(r);
        }
        List<ImageMerge.Span> spans = ImageMerge.spans(config, tokens, ids, rows.stream().mapToInt(t -> t.size(0)).toArray());
        long[] safe = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            safe[i] = ids[i] < 0 ? 0 : ids[i];   // the -200 placeholder has no embedding row; it is replaced below
        }
        Tensor text = languageModel.embed(languageModel.ops().fromArray(safe, 1, ids.length));  // [1, N, C]
        if (spans.isEmpty()) {
            return text;
        }
        List<Tensor> parts = new ArrayList<>();
        int at = 0;
        for (ImageMerge.Span s : spans) {
            if (s.start() > at) {
                parts.add(text.slice(1, at, s.start()));
            }
            parts.add(rows.get(s.image()).slice(0, s.rowFrom(), s.rowTo()).unsqueeze(0));  // [1, rows, C]
            at = s.start() + s.length();
        }
        if (at < ids.length) {
            parts.add(text.slice(1, at, ids.length));
        }
        return Tensor.concat(parts, 1);                                              // [1, N', C]
    }

    /** The original layout's LLaVA-NeXT row after every grid row of an image ({@code model.image_newline}). */
    private static final class OriginalNewline extends Module {
        final Parameter imageNewline;

        OriginalNewline(int hidden) {
            imageNewline = parameter("image_newline", hidden);
        }
    }

    /** transformers' module tree (the keys of a hub LLaVA folder, minus the vision tower's). */
    static final class LlavaForConditionalGeneration extends Module {
        final LlavaMultiModalProjector projector;
        final LlamaForCausalLM languageModel;
        /** LLaVA-NeXT: the row appended after every row of an image's tile grid; null otherwise. */
        final Parameter imageNewline;

        LlavaForConditionalGeneration(LlavaConfig c) {
            projector = child("multi_modal_projector", new LlavaMultiModalProjector(c.projectorInputSize(),
                    c.textConfig().hiddenSize(), c.projectorAct(), c.projectorBias()));
            languageModel = child("language_model", new LlamaForCausalLM(c.textConfig()));
            imageNewline = c.anyres() ? parameter("image_newline", c.textConfig().hiddenSize()) : null;
        }
    }
}
