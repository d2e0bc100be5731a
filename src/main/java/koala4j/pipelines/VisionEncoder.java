package koala4j.pipelines;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import koala4j.io.hub.HubCache;
import koala4j.io.hub.HubClient;
import koala4j.io.hub.ModelLocator;
import koala4j.io.image.AnyResImageProcessor;
import koala4j.io.image.ClipImageProcessor;
import koala4j.io.image.Image;
import koala4j.io.image.PixelValues;
import koala4j.io.json.Json;
import koala4j.models.Checkpoint;
import koala4j.models.clip.ClipVisionModel;
import koala4j.models.llava.AnyResGrid;
import koala4j.models.llava.LlavaConfig;
import koala4j.models.llava.LlavaModel;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * The image side of a LLaVA model: image processor, CLIP vision tower and projector, from images to the rows that
 * replace the image tokens. LLaVA-1.5's {@code process_images} with {@code image_aspect_ratio == "pad"} first pads
 * each image to a square of the processor's mean colour ({@code expand2square}); otherwise the processor alone runs.
 * Immutable and thread-safe; the tower's own checkpoint (original layout) is closed with it.
 */
final class VisionEncoder implements AutoCloseable {

    /** Images through the tower in one batch at most (a video's 8 frames go together). */
    private static final int BATCH = 8;

    private final ClipVisionModel tower;
    /** LLaVA and LLaVA-1.5: one CLIP image per picture; null for LLaVA-NeXT. */
    private final ClipImageProcessor processor;
    /** LLaVA-NeXT: tiles per picture, and the model's own image_grid_pinpoints; null otherwise. */
    private final AnyResImageProcessor anyres;
    private final List<int[]> gridPinpoints;
    private final boolean padToSquare;
    private final int[] layers;
    private final Ops ops;
    private final Checkpoint towerCheckpoint;
    private final String description;

    private VisionEncoder(ClipVisionModel tower, ClipImageProcessor processor, AnyResImageProcessor anyres,
                          List<int[]> gridPinpoints, boolean padToSquare, int[] layers, Ops ops,
                          Checkpoint towerCheckpoint, String description) {
        this.tower = tower;
        this.processor = processor;
        this.anyres = anyres;
        this.gridPinpoints = gridPinpoints;
        this.padToSquare = padToSquare;
        this.layers = layers;
        this.ops = ops;
        this.towerCheckpoint = towerCheckpoint;
        this.description = description;
    }

    /**
     * transformers layout: the tower inside the LLaVA checkpoint ({@code vision_tower.*}, or the newer
     * {@code model.vision_tower.*}), the LlavaProcessor's image processor from the model folder (LLaVA-NeXT: the
     * LlavaNextProcessor's anyres tiling, the model's image_grid_pinpoints for the grid).
     */
    static VisionEncoder inCheckpoint(Checkpoint checkpoint, LlavaConfig c) {
        ClipVisionModel tower = ClipVisionModel.load(checkpoint);
        Json settings = processorConfig(checkpoint.folder(), c.anyres()
                ? "the LlavaNextProcessor's LlavaNextImageProcessor settings"
                : "the LlavaProcessor's CLIPImageProcessor settings");
        AnyResImageProcessor anyres = c.anyres()
                ? AnyResImageProcessor.from(settings, AnyResGrid.pinpoints(settings, "image_grid_pinpoints")) : null;
        return new VisionEncoder(tower, c.anyres() ? null : ClipImageProcessor.from(settings), anyres,
                c.imageGridPinpoints(), false, toArray(c.visionFeatureLayers()), checkpoint.ops(), null,
                "vision tower in " + checkpoint.folder());
    }

    /**
     * Original layout: the tower mm_vision_tower (or {@code override}) names, see {@link #towerFolder}; images padded
     * to squares when config.json's image_aspect_ratio is "pad".
     */
    static VisionEncoder original(Path modelFolder, Json config, LlavaConfig c, String override, HubClient hub, Ops ops) {
        if (override == null && c.visionTower() == null) {
            throw config.error("mm_vision_tower", "missing", "the vision tower's folder or hub id");
        }
        return separate(towerFolder(modelFolder, c, override, hub), c.visionFeatureLayers(),
                config.stringOr("image_aspect_ratio", "square").equals("pad"), c.imageGridPinpoints(), ops);
    }

    /**
     * mm_vision_tower (or the override) as a folder: a path relative to the model folder or absolute, else a hub id
     * resolved through the cache (downloading when online).
     */
    private static Path towerFolder(Path folder, LlavaConfig c, String override, HubClient hub) {
        String spec = override != null ? override : c.visionTower();
        Path local = folder.resolve(spec).normalize();
        if (Files.isDirectory(local)) {
            return local;
        }
        if (Files.isDirectory(Path.of(spec))) {
            return Path.of(spec);
        }
        String where = override != null ? "vision tower " + spec
                : folder.resolve("config.json") + ": mm_vision_tower " + Json.quote(spec);
        if (!HubCache.isRepoId(spec)) {
            throw new IllegalArgumentException(where + " is neither a folder (looked at " + local + ") nor a hub id");
        }
        if (hub == null) {
            throw new IllegalArgumentException(where + " is a hub id, and no hub client was given to resolve it");
        }
        return ModelLocator.resolve(spec, hub, VisionChat.TOWER_FILES);
    }

    /**
     * Original layout: the tower's own folder (a CLIPVisionModel or CLIPModel, as mm_vision_tower names it), its
     * preprocessor_config.json as the image processor ({@code CLIPImageProcessor.from_pretrained(vision_tower)}); with
     * {@code pinpoints} (LLaVA-NeXT's anyres, {height, width}) each image is cut into tiles of that processor's crop
     * size as llava/mm_utils.py's process_anyres_image does (the base image resized to a square first).
     */
    private static VisionEncoder separate(Path towerFolder, List<Integer> layers, boolean padToSquare,
                                          List<int[]> pinpoints, Ops ops) {
        Checkpoint ckpt = Checkpoint.open(towerFolder, null, ops);
        try {
            ClipVisionModel tower = ClipVisionModel.load(ckpt);
            ClipImageProcessor processor = ClipImageProcessor.from(processorConfig(towerFolder,
                    "the vision tower's CLIPImageProcessor settings (LLaVA loads them from mm_vision_tower)"));
            AnyResImageProcessor anyres = pinpoints == null ? null : new AnyResImageProcessor(processor, pinpoints);
            return new VisionEncoder(tower, anyres == null ? processor : null, anyres, pinpoints, padToSquare,
                    toArray(layers), ops, ckpt, "vision tower " + towerFolder);
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
    }

    /**
     * The image processor settings of a folder as transformers 5's get_image_processor_dict finds them: the
     * {@code image_processor} object of processor_config.json (where 5.x saves a processor's image processor), else
     * preprocessor_config.json.
     */
    private static Json processorConfig(Path folder, String what) {
        Path processorConfig = folder.resolve("processor_config.json");
        if (Files.isRegularFile(processorConfig)) {
            var nested = Json.read(processorConfig).objectOr("image_processor");
            if (nested.isPresent()) {
                return nested.get();
            }
        }
        Path config = folder.resolve("preprocessor_config.json");
        if (!Files.isRegularFile(config)) {
            throw new IllegalArgumentException(config + ": missing file (and " + processorConfig.getFileName()
                    + " has no \"image_processor\"); expected " + what);
        }
        return Json.read(config);
    }

    private static int[] toArray(List<Integer> layers) {
        return layers.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The projected rows of each image, in order: one [P, C] per image. */
    List<Tensor> encode(List<Image> images, LlavaModel llava, Cancel cancel) {
        if (anyres != null) {
            return encodeTiles(images, llava, cancel);
        }
        List<Tensor> out = new ArrayList<>(images.size());
        for (int from = 0; from < images.size(); from += BATCH) {
            cancel.check();
            List<Image> batch = new ArrayList<>();
            for (Image image : images.subList(from, Math.min(images.size(), from + BATCH))) {
                batch.add(padToSquare ? processor.expandToSquare(image) : image);
            }
            PixelValues pixels = processor.preprocess(batch);                               // [B, 3, H, W]
            Tensor features = tower.features(pixels.toTensor(ops), layers,
                    ClipVisionModel.FeatureSelect.FULL);                                    // [B, 1 + P, Cv * L]
            Tensor embeds = llava.projectImageFeatures(features);                           // [B, P, C]
            for (int b = 0; b < batch.size(); b++) {
                out.add(embeds.select(0, b));                                               // [P, C]
            }
        }
        return out;
    }

    /**
     * LLaVA-NeXT: each image cut into tiles ({@link AnyResImageProcessor}), all of its tiles through the tower in one
     * batch, projected, then packed into one grid of rows with image_newline ({@link LlavaModel#packImageFeatures}).
     */
    private List<Tensor> encodeTiles(List<Image> images, LlavaModel llava, Cancel cancel) {
        List<Tensor> out = new ArrayList<>(images.size());
        int tileSide = tower.config().imageSize();
        for (Image image : images) {
            cancel.check();
            AnyResImageProcessor.Tiles tiles = anyres.preprocess(image);
            int[] best = AnyResImageProcessor.selectBestResolution(tiles.imageHeight(), tiles.imageWidth(), gridPinpoints);
            int rows = best[0] / tileSide;
            int cols = best[1] / tileSide;
            if (rows != tiles.rows() || cols != tiles.cols()) {
                throw new IllegalArgumentException("the image processor cut a " + tiles.imageWidth() + "x"
                        + tiles.imageHeight() + " image into " + tiles.rows() + "x" + tiles.cols() + " tiles, the model's"
                        + " image_grid_pinpoints and vision image_size " + tileSide + " expect " + rows + "x" + cols
                        + ": the processor's and the model's settings disagree");
            }
            Tensor features = tower.features(tiles.pixels().toTensor(ops), layers,
                    ClipVisionModel.FeatureSelect.FULL);                                    // [1 + R*C, 1 + T, Cv * L]
            Tensor embeds = llava.projectImageFeatures(features);                           // [1 + R*C, T, C]
            out.add(llava.packImageFeatures(embeds, tiles.imageHeight(), tiles.imageWidth(), rows, cols));
        }
        return out;
    }

    String describe() {
        return description + (padToSquare ? " (images padded to squares: image_aspect_ratio pad)" : "");
    }

    @Override
    public void close() {
        if (towerCheckpoint != null) {
            towerCheckpoint.close();
        }
    }
}
