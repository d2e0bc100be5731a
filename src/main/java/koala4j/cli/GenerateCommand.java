package koala4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import koala4j.backend.Backend;
import koala4j.backend.Backends;
import koala4j.io.hub.ConsoleProgress;
import koala4j.io.hub.HubClient;
import koala4j.io.hub.ModelLocator;
import koala4j.io.image.Image;
import koala4j.io.image.Images;
import koala4j.io.image.Png;
import koala4j.pipelines.GenerationRequest;
import koala4j.pipelines.PipelineFiles;
import koala4j.pipelines.Progress;
import koala4j.pipelines.TextToImage;
import koala4j.schedulers.Schedulers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code koala4j generate}: prompt(s) to PNG files with a diffusers pipeline folder or hub id. */
@Command(mixinStandardHelpOptions = true, name = "generate", description = "Generate images from a prompt (text-to-image, or image-to-image with --init-image).")
final class GenerateCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Pipeline folder or hub id, e.g. etri-vilab/koala-700m.")
    String model;

    @Option(names = "--prompt", required = true, description = "Prompt; repeat for a batch of prompts.")
    List<String> prompts;

    @Option(names = "--negative-prompt", description = "Negative prompt (default: the model family's).")
    String negativePrompt;

    @Option(names = "--steps", description = "Denoising steps (default: the model family's).")
    Integer steps;

    @Option(names = "--guidance", description = "Classifier-free guidance scale (default: the model family's).")
    Double guidance;

    @Option(names = "--guidance-rescale", defaultValue = "0", description = "guidance_rescale in [0, 1] (default 0).")
    double guidanceRescale;

    @Option(names = "--scheduler", description = "euler, euler-a, dpm++2m, dpm++2m-karras, ddim, pndm or lcm (default: the folder's).")
    String scheduler;

    @Option(names = "--timestep-spacing", description = "leading, trailing or linspace (default: the scheduler config's).")
    String timestepSpacing;

    @Option(names = "--width", description = "Width in pixels, a multiple of 8 (default: the UNet's sample size).")
    Integer width;

    @Option(names = "--height", description = "Height in pixels, a multiple of 8 (default: the UNet's sample size).")
    Integer height;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the torch-compatible generator (default 0).")
    long seed;

    @Option(names = "--num-images", defaultValue = "1", description = "Images per prompt (default 1).")
    int numImages;

    @Option(names = "--init-image", description = "Start from this image (img2img).")
    Path initImage;

    @Option(names = "--strength", defaultValue = "0.8", description = "img2img strength in (0, 1] (default 0.8).")
    double strength;

    @Option(names = "--out", defaultValue = "out.png", description = "Output PNG; batches get -1, -2, ... suffixes.")
    Path out;

    @Option(names = "--variant", description = "Weight variant to load, e.g. fp16.")
    String variant;

    @Option(names = "--family", description = "Model-card defaults to use: koala, koala-lightning, sdxl, ssd-1b, vega, sd, "
            + "bk-sdm (default: from the hub id; local folders get their pipeline class's generic defaults).")
    String family;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda.")
    String device;

    @Spec
    CommandSpec spec;

    @ParentCommand
    Main parent;

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        validate();
        Backend backend = Backends.select(device);
        err.println("backend " + backend.name() + " (" + backend.reason() + ")");
        HubClient hub = new HubClient(HubClient.Options.fromEnvironment(parent.env), new ConsoleProgress(System.err));
        Path folder = PipelineFiles.withTorchWeights(model, hub, ModelLocator.resolve(model, hub, PipelineFiles.patterns(variant)), variant);
        float[] initChw = null;
        int initW = 0;
        int initH = 0;
        if (initImage != null) {
            Image img = Images.read(initImage);
            initChw = Images.toFloatChw(img, true);
            initW = img.width();
            initH = img.height();
        }
        long loadStart = System.nanoTime();
        try (TextToImage pipeline = TextToImage.load(folder, model, family, variant, backend.ops())) {
            err.printf(Locale.ROOT, "loaded %s in %.1f s%n", folder, (System.nanoTime() - loadStart) / 1e9);
            GenerationRequest request = new GenerationRequest(prompts, negativePrompt, steps, guidance, scheduler,
                    timestepSpacing, width, height, seed, numImages, guidanceRescale, initChw, initW, initH, strength);
            TextToImage.Result result = pipeline.generate(request, new BarProgress(err), () -> false);
            List<Path> written = write(result, pipeline);
            for (Path p : written) {
                spec.commandLine().getOut().println(p);
            }
        }
        return 0;
    }

    private void validate() {
        if (steps != null && steps < 1) {
            throw new IllegalArgumentException("--steps " + steps + ": expected at least 1");
        }
        if (width != null && (width < 8 || width % 8 != 0)) {
            throw new IllegalArgumentException("--width " + width + ": expected a positive multiple of 8");
        }
        if (height != null && (height < 8 || height % 8 != 0)) {
            throw new IllegalArgumentException("--height " + height + ": expected a positive multiple of 8");
        }
        if (scheduler != null && !Schedulers.NAMES.contains(scheduler.toLowerCase(Locale.ROOT))) {
            throw new IllegalArgumentException("--scheduler " + scheduler + ": expected one of " + String.join(", ", Schedulers.NAMES));
        }
        if (timestepSpacing != null && !List.of("leading", "trailing", "linspace").contains(timestepSpacing)) {
            throw new IllegalArgumentException("--timestep-spacing " + timestepSpacing + ": expected leading, trailing or linspace");
        }
        if (numImages < 1) {
            throw new IllegalArgumentException("--num-images " + numImages + ": expected at least 1");
        }
        if (guidance != null && guidance < 0) {
            throw new IllegalArgumentException("--guidance " + guidance + ": expected a value >= 0");
        }
        if (!out.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".png")) {
            throw new IllegalArgumentException("--out " + out + ": expected a .png file name");
        }
        if (out.getParent() != null && !Files.isDirectory(out.getParent())) {
            throw new IllegalArgumentException("--out " + out + ": folder " + out.getParent() + " does not exist");
        }
    }

    private List<Path> write(TextToImage.Result result, TextToImage pipeline) throws java.io.IOException {
        List<Path> written = new ArrayList<>();
        int count = result.imagesChw().size();
        for (int i = 0; i < count; i++) {
            Image image = Images.fromFloatChw(result.imagesChw().get(i), 3, result.height(), result.width(), true);
            String prompt = prompts.get(i / numImages);
            Map<String, String> text = new LinkedHashMap<>();
            String sampler = result.scheduler();
            text.put("parameters", prompt + "\n"
                    + (result.negativePrompt() != null ? "Negative prompt: " + result.negativePrompt() + "\n" : "")
                    + String.format(Locale.ROOT, "Steps: %d, Sampler: %s, CFG scale: %s, Seed: %d, Size: %dx%d, Model: %s",
                            result.steps(), sampler, trim(result.guidance()), result.seed(), result.width(), result.height(), model));
            text.put("prompt", prompt);
            if (result.negativePrompt() != null) {
                text.put("negative_prompt", result.negativePrompt());
            }
            text.put("seed", Long.toString(result.seed()));
            text.put("steps", Integer.toString(result.steps()));
            text.put("guidance", trim(result.guidance()));
            text.put("scheduler", sampler);
            text.put("model", model);
            text.put("size", result.width() + "x" + result.height());
            text.put("software", "koala4j");
            Path target = count == 1 ? out : suffixed(out, i + 1);
            Png.write(target, image, text);
            written.add(target);
        }
        return written;
    }

    private static String trim(double v) {
        return v == Math.rint(v) ? String.format(Locale.ROOT, "%.1f", v) : Double.toString(v);
    }

    private static Path suffixed(Path file, int index) {
        String name = file.getFileName().toString();
        String stem = name.substring(0, name.length() - 4);
        return file.resolveSibling(stem + "-" + index + ".png");
    }

    /** A one-line progress bar per step and the time of each stage, on stderr. */
    static final class BarProgress implements Progress {
        private final PrintWriter err;
        private final boolean terminal = System.console() != null;

        BarProgress(PrintWriter err) {
            this.err = err;
        }

        @Override
        public void step(int step, int total) {
            int width = 30;
            int filled = total == 0 ? width : step * width / total;
            String bar = "#".repeat(filled) + ".".repeat(width - filled);
            if (terminal) {
                err.print("\rdenoising [" + bar + "] " + step + "/" + total + (step == total ? "\n" : ""));
            } else {
                err.println("denoising [" + bar + "] " + step + "/" + total);
            }
            err.flush();
        }

        @Override
        public void stage(String name, Duration elapsed) {
            err.printf(Locale.ROOT, "%s: %.2f s%n", name, elapsed.toNanos() / 1e9);
            err.flush();
        }
    }
}
