package koala4j.server;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import koala4j.io.image.Image;
import koala4j.io.image.Images;
import koala4j.io.image.Png;
import koala4j.pipelines.Cancel;
import koala4j.pipelines.GenerationRequest;
import koala4j.pipelines.Progress;
import koala4j.pipelines.TextToImage;

/** A diffusers pipeline folder run by {@link TextToImage}, loaded through the shared {@link ModelPool}. */
final class LocalImageModel implements ImageModel {

    private final String id;
    private final String displayName;
    private final Path folder;
    private final String unavailableReason;
    private final ModelPool pool;
    private final Limits limits;

    /** {@code folder} null with a reason: listed, but not usable (e.g. a hub id that could not be resolved). */
    LocalImageModel(String id, String displayName, Path folder, String unavailableReason, ModelPool pool, Limits limits) {
        this.id = id;
        this.displayName = displayName;
        this.folder = folder;
        this.unavailableReason = unavailableReason;
        this.pool = pool;
        this.limits = limits;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public String displayName() {
        return displayName;
    }

    @Override
    public String provider() {
        return "local";
    }

    @Override
    public String unavailableReason() {
        return unavailableReason;
    }

    @Override
    public Limits limits() {
        return limits;
    }

    Path folder() {
        return folder;
    }

    @Override
    public Output generate(Spec spec, Progress progress, Cancel cancel) {
        try (ModelPool.Lease lease = pool.acquire(id, folder)) {
            cancel.check();
            TextToImage pipeline = lease.pipeline();
            GenerationRequest request = new GenerationRequest(List.of(spec.prompt()), spec.negativePrompt(), spec.steps(),
                    spec.guidance(), spec.scheduler(), null, spec.width(), spec.height(), spec.seed(), spec.n(), 0.0, null,
                    0, 0, 1.0);
            TextToImage.Result result = pipeline.generate(request, progress, cancel);
            List<byte[]> pngs = new ArrayList<>();
            List<String> revised = new ArrayList<>();
            for (float[] chw : result.imagesChw()) {
                Image image = Images.fromFloatChw(chw, 3, result.height(), result.width(), true);
                pngs.add(Png.encode(image, text(spec, result)));
                revised.add(null);
            }
            return new Output(pngs, revised, result.negativePrompt(), result.seed(), result.steps(), result.guidance(),
                    result.scheduler(), result.width(), result.height());
        }
    }

    /** The same PNG text chunks as {@code koala4j generate} writes (the model only when it may be shown). */
    private Map<String, String> text(Spec spec, TextToImage.Result r) {
        Map<String, String> text = new LinkedHashMap<>();
        text.put("parameters", spec.prompt() + "\n"
                + (r.negativePrompt() != null ? "Negative prompt: " + r.negativePrompt() + "\n" : "")
                + String.format(Locale.ROOT, "Steps: %d, Sampler: %s, CFG scale: %s, Seed: %d, Size: %dx%d", r.steps(),
                        r.scheduler(), r.guidance(), r.seed(), r.width(), r.height())
                + (spec.tagModel() ? ", Model: " + id : ""));
        text.put("prompt", spec.prompt());
        if (r.negativePrompt() != null) {
            text.put("negative_prompt", r.negativePrompt());
        }
        text.put("seed", Long.toString(r.seed()));
        text.put("steps", Integer.toString(r.steps()));
        text.put("guidance", Double.toString(r.guidance()));
        text.put("scheduler", r.scheduler());
        if (spec.tagModel()) {
            text.put("model", id);
        }
        text.put("size", r.width() + "x" + r.height());
        text.put("software", "koala4j");
        return text;
    }
}
