package koala4j.pipelines;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import koala4j.io.json.Json;
import koala4j.models.Checkpoint;
import koala4j.models.clip.ClipTextConfig;
import koala4j.models.clip.ClipTextModel;
import koala4j.models.unet.UNet2DConditionModel;
import koala4j.models.unet.UNetConfig;
import koala4j.models.vae.AutoencoderKL;
import koala4j.schedulers.Plan;
import koala4j.schedulers.Scheduler;
import koala4j.schedulers.SchedulerConfig;
import koala4j.schedulers.Schedulers;
import koala4j.schedulers.StepState;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.rng.TorchGenerator;
import koala4j.tokenizers.ClipTokenizer;

/**
 * diffusers' {@code StableDiffusionXLPipeline} / {@code StableDiffusionPipeline} (and their img2img forms) over a
 * pipeline folder as published: model_index.json with unet/, vae/, text_encoder(_2)/, tokenizer(_2)/, scheduler/.
 * Loaded once, then safe to call from several threads (every request has its own scheduler state and generator).
 */
public final class TextToImage implements AutoCloseable {

    /** Result: images as CHW floats in [-1, 1] from the VAE, plus what was actually used. */
    public record Result(List<float[]> imagesChw, int width, int height, int steps, double guidance, String scheduler,
                         String negativePrompt, long seed, Duration textEncoding, Duration denoising, Duration decoding) {
    }

    private final Path folder;
    private final String modelName;
    private final boolean xl;
    private final boolean forceZerosForEmptyPrompt;
    private final Ops ops;
    private final List<Checkpoint> checkpoints = new ArrayList<>();
    private final PromptEncoder prompts;
    private final UNet2DConditionModel unet;
    private final AutoencoderKL vae;
    private final SchedulerConfig schedulerConfig;
    private final Scheduler defaultScheduler;
    private final FamilyDefaults defaults;

    private TextToImage(Path folder, String modelName, String family, String variant, Ops ops) {
        this.folder = folder;
        this.modelName = modelName;
        this.ops = ops;
        Path indexFile = folder.resolve("model_index.json");
        if (!Files.isRegularFile(indexFile)) {
            throw new IllegalArgumentException(indexFile + ": missing; a diffusers pipeline folder starts with model_index.json");
        }
        Json index = Json.read(indexFile);
        String cls = index.string("_class_name");
        switch (cls) {
            case "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline" -> xl = true;
            case "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline" -> xl = false;
            default -> throw new IllegalArgumentException(indexFile + ": _class_name \"" + cls
                    + "\" is not supported, expected StableDiffusionXLPipeline or StableDiffusionPipeline");
        }
        this.forceZerosForEmptyPrompt = xl && index.boolOr("force_zeros_for_empty_prompt", true);
        expectComponent(index, "unet", "UNet2DConditionModel");
        expectComponent(index, "vae", "AutoencoderKL");
        if (xl && index.has("text_encoder") && !index.isNull("text_encoder") && !isNullPair(index, "text_encoder")) {
            expectComponent(index, "text_encoder", "CLIPTextModel");
        }
        try {
            Checkpoint unetCkpt = open("unet", variant);
            this.unet = new UNet2DConditionModel(UNetConfig.from(unetCkpt.config()));
            unet.load(unetCkpt);
            Checkpoint vaeCkpt = open("vae", variant);
            this.vae = new AutoencoderKL(AutoencoderKL.Config.from(vaeCkpt.config()));
            vae.load(vaeCkpt);
            boolean hasFirst = Files.isDirectory(folder.resolve("text_encoder")) && !isNullPair(index, "text_encoder");
            if (!xl && !hasFirst) {
                throw new IllegalArgumentException(folder + ": a StableDiffusionPipeline needs text_encoder/ and tokenizer/");
            }
            this.prompts = new PromptEncoder(xl,
                    hasFirst ? ClipTokenizer.load(requireDir("tokenizer")) : null,
                    hasFirst ? loadText("text_encoder", variant) : null,
                    xl ? ClipTokenizer.load(requireDir("tokenizer_2")) : null,
                    xl ? loadText("text_encoder_2", variant) : null, ops);
            Path schedulerFile = requireDir("scheduler").resolve("scheduler_config.json");
            if (!Files.isRegularFile(schedulerFile)) {
                throw new IllegalArgumentException(schedulerFile + ": missing");
            }
            this.schedulerConfig = SchedulerConfig.of(Json.read(schedulerFile));
            this.defaultScheduler = Schedulers.byClassName(schedulerConfig.className(), schedulerConfig);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        this.defaults = FamilyDefaults.forModel(modelName, family, xl);
        checkAddedEmbedding();
    }

    /**
     * Loads the pipeline folder ({@code variant} null or "fp16"). {@code modelName} is what the user named (a hub id
     * or a path); with {@code family} (null for automatic) it picks the model-card defaults.
     */
    public static TextToImage load(Path folder, String modelName, String family, String variant, Ops ops) {
        return new TextToImage(folder, modelName, family, variant, ops);
    }

    private static boolean isNullPair(Json index, String key) {
        if (!index.has(key) || index.isNull(key)) {
            return true;
        }
        var node = index.node().get(key);
        return node.isArray() && node.size() == 2 && node.get(0).isNull();
    }

    private static void expectComponent(Json index, String key, String cls) {
        var node = index.node().get(key);
        if (node == null || !node.isArray() || node.size() != 2 || !cls.equals(node.get(1).asText())) {
            throw new IllegalArgumentException(index.file() + ": " + key + " = " + node + ", expected [\"...\", \"" + cls + "\"]");
        }
    }

    private Path requireDir(String name) {
        Path dir = folder.resolve(name);
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException(dir + ": missing subfolder of the pipeline");
        }
        return dir;
    }

    private Checkpoint open(String component, String variant) {
        Checkpoint c = Checkpoint.open(requireDir(component), variant, ops);
        checkpoints.add(c);
        return c;
    }

    private ClipTextModel loadText(String component, String variant) {
        Checkpoint c = open(component, variant);
        ClipTextModel model = new ClipTextModel(ClipTextConfig.from(c.config()));
        model.load(ClipTextModel.textKeys(c));
        return model;
    }

    /** SDXL's add_embedding input must be 6 time ids x addition_time_embed_dim + the pooled projection width. */
    private void checkAddedEmbedding() {
        UNetConfig c = unet.config();
        if (!c.textTimeEmbedding()) {
            return;
        }
        if (!prompts.hasPooledProjection()) {
            throw new IllegalArgumentException(folder.resolve("unet/config.json") + ": addition_embed_type text_time needs text_encoder_2");
        }
        int projectionDim = prompts.pooledProjectionDim();
        int expected = 6 * c.additionTimeEmbedDim() + projectionDim;
        if (expected != c.projectionClassEmbeddingsInputDim()) {
            throw new IllegalArgumentException(folder.resolve("unet/config.json") + ": projection_class_embeddings_input_dim "
                    + c.projectionClassEmbeddingsInputDim() + ", expected " + expected + " (6 x addition_time_embed_dim "
                    + c.additionTimeEmbedDim() + " + text_encoder_2 projection_dim " + projectionDim + ")");
        }
    }

    public FamilyDefaults defaults() {
        return defaults;
    }

    public boolean isXl() {
        return xl;
    }

    /** The scheduler a request runs with: its CLI name over the folder's own config, else the family's or the folder's. */
    public Scheduler scheduler(String name, String spacing) {
        String n = name != null ? name : defaults.scheduler();
        String s = spacing != null ? spacing : name == null ? defaults.timestepSpacing() : null;
        if (n == null) {
            return s == null ? defaultScheduler : Schedulers.byClassName(schedulerConfig.className(),
                    schedulerConfig.with("timestep_spacing", s));
        }
        return Schedulers.byName(n, schedulerConfig, s);
    }

    /** Latent-to-image scale: 2^(VAE blocks - 1). */
    public int vaeScaleFactor() {
        return vae.config().scaleFactor();
    }

    public int defaultSize() {
        return unet.config().sampleSize() * vaeScaleFactor();
    }

    /** Runs one request. */
    public Result generate(GenerationRequest request, Progress progress, Cancel cancel) {
        return generate(request, null, Trace.NONE, progress, cancel);
    }

    /**
     * As {@link #generate(GenerationRequest, Progress, Cancel)}, starting from the given latents (diffusers'
     * {@code latents=} argument: [B, C, h, w] values, multiplied by init_noise_sigma) instead of drawing them,
     * and reporting intermediates to {@code trace}.
     */
    public Result generate(GenerationRequest request, float[] initialLatents, Trace trace, Progress progress,
                           Cancel cancel) {
        request.validate();
        int steps = request.steps() != null ? request.steps() : defaults.steps();
        double guidance = request.guidance() != null ? request.guidance() : defaults.guidance();
        String negative = request.negativePrompt() != null ? request.negativePrompt() : defaults.negativePrompt();
        int f = vaeScaleFactor();
        int width = request.width() != null ? request.width()
                : request.initImageChw() != null ? request.initWidth() / f * f : defaultSize();
        int height = request.height() != null ? request.height()
                : request.initImageChw() != null ? request.initHeight() / f * f : defaultSize();
        if (width % f != 0 || height % f != 0 || width < f || height < f) {
            throw new IllegalArgumentException("size " + width + "x" + height + ": expected multiples of " + f
                    + " (the VAE's scale factor)");
        }
        Scheduler scheduler = scheduler(request.scheduler(), request.timestepSpacing());
        boolean cfg = guidance > 1 && unet.config().timeCondProjDim() == 0;
        int perPrompt = request.imagesPerPrompt();
        int batch = request.prompts().size() * perPrompt;

        // 1. text
        long t0 = System.nanoTime();
        PromptEncoder.Conditioning positive = prompts.encode(request.prompts(), perPrompt);
        PromptEncoder.Conditioning negativeCond = null;
        if (cfg) {
            boolean zeros = negative == null && forceZerosForEmptyPrompt;
            if (zeros) {
                negativeCond = positive.zerosLike();
            } else {
                List<String> negatives = new ArrayList<>();
                for (int i = 0; i < request.prompts().size(); i++) {
                    negatives.add(negative == null ? "" : negative);
                }
                negativeCond = prompts.encode(negatives, perPrompt);
            }
        }
        trace.record("prompt_embeds", positive.context());
        if (positive.pooled() != null) {
            trace.record("pooled_prompt_embeds", positive.pooled());
        }
        if (negativeCond != null) {
            trace.record("negative_prompt_embeds", negativeCond.context());
            if (negativeCond.pooled() != null) {
                trace.record("negative_pooled_prompt_embeds", negativeCond.pooled());
            }
        }
        Duration textTime = Duration.ofNanos(System.nanoTime() - t0);
        progress.stage("text encoding", textTime);
        cancel.check();

        // 2. latents
        long t1 = System.nanoTime();
        TorchGenerator generator = new TorchGenerator(request.seed());
        Plan plan = scheduler.plan(steps);
        int latentChannels = unet.config().inChannels();
        int[] latentShape = {batch, latentChannels, height / f, width / f};
        Tensor latents;
        if (request.initImageChw() != null) {
            plan = plan.withStrength(request.strength(), scheduler.order());
            latents = initialLatentsFromImage(request, batch, width, height, generator, scheduler, plan, latentShape);
        } else {
            Tensor start;
            if (initialLatents != null) {
                if (initialLatents.length != Tensor.numel(latentShape)) {
                    throw new IllegalArgumentException("initial latents of " + initialLatents.length + " values, expected "
                            + java.util.Arrays.toString(latentShape));
                }
                start = ops.fromArray(initialLatents, latentShape);
            } else {
                start = randn(generator, latentShape);
            }
            latents = start.mul((float) plan.initNoiseSigma());
        }
        StepState state = scheduler.begin(plan, n -> generator.randn(n));
        Tensor context = cfg ? Tensor.concat(List.of(negativeCond.context(), positive.context()), 0) : positive.context();
        UNet2DConditionModel.AddedConditions added = null;
        if (unet.config().textTimeEmbedding()) {
            Tensor timeIds = timeIds(batch, height, width);
            Tensor pooled = cfg ? Tensor.concat(List.of(negativeCond.pooled(), positive.pooled()), 0) : positive.pooled();
            added = new UNet2DConditionModel.AddedConditions(pooled, cfg ? Tensor.concat(List.of(timeIds, timeIds), 0) : timeIds);
            trace.record("add_time_ids", added.timeIds());
        }
        Tensor timestepCond = unet.config().timeCondProjDim() > 0
                ? guidanceEmbedding(guidance - 1, unet.config().timeCondProjDim(), batch) : null;
        int total = plan.length() - plan.beginIndex();
        for (int i = plan.beginIndex(); i < plan.length(); i++) {
            cancel.check();
            Tensor input = cfg ? Tensor.concat(List.of(latents, latents), 0) : latents;
            input = scheduler.scaleModelInput(state, i, input);
            Tensor t = ops.fromArray(new float[] {(float) plan.timesteps()[i]}, 1);
            trace.record("unet_input." + (i - plan.beginIndex()), input);
            Tensor noise = unet.forward(input, t, context, added, timestepCond);                  // [2B or B, C, h, w]
            trace.record("unet_noise_pred." + (i - plan.beginIndex()), noise);
            if (cfg) {
                Tensor uncond = noise.slice(0, 0, batch);
                Tensor text = noise.slice(0, batch, 2 * batch);
                Tensor guided = uncond.add(text.sub(uncond).mul((float) guidance));
                if (request.guidanceRescale() > 0) {
                    guided = rescale(guided, text, request.guidanceRescale());
                }
                noise = guided;
            }
            latents = scheduler.step(state, i, noise, latents);
            trace.record("latents_after_step." + (i - plan.beginIndex()), latents);
            progress.step(i - plan.beginIndex() + 1, total);
        }
        Duration denoiseTime = Duration.ofNanos(System.nanoTime() - t1);
        progress.stage("denoising", denoiseTime);
        cancel.check();

        // 3. decode
        long t2 = System.nanoTime();
        AutoencoderKL.Config vc = vae.config();
        // the SDXL pipeline un-normalises with latents_mean/std when the VAE config has them; shift_factor belongs
        // to other pipelines (SD3) and is not applied here, as in diffusers
        Tensor z = xl && vc.latentsMean() != null && vc.latentsStd() != null
                ? latents.mul(channelVector(vc.latentsStd(), 1f / vc.scalingFactor())).add(channelVector(vc.latentsMean(), 1f))
                : latents.mul(1f / vc.scalingFactor());
        trace.record("vae_decode_input", z);
        // diffusers decodes whole unless tiling is enabled; above 1024x1024 pixels we tile so memory stays bounded
        int tile = Math.max(vc.sampleSize() / f, 32);
        Tensor images = (long) z.size(2) * z.size(3) > 128L * 128 ? vae.decodeTiled(z, tile) : vae.decode(z); // [B, 3, H, W]
        trace.record("image", images);
        List<float[]> out = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            out.add(images.select(0, b).toFloatArray());
        }
        Duration decodeTime = Duration.ofNanos(System.nanoTime() - t2);
        progress.stage("decoding", decodeTime);
        return new Result(out, width, height, steps, guidance, scheduler.className(), negative, request.seed(), textTime,
                denoiseTime, decodeTime);
    }

    private Tensor randn(TorchGenerator generator, int[] shape) {
        return ops.fromArray(generator.randn(Tensor.numel(shape)), shape);
    }

    /** img2img: encode, sample the posterior (first draw), noise to the starting level (second draw). */
    private Tensor initialLatentsFromImage(GenerationRequest r, int batch, int width, int height, TorchGenerator generator,
                                           Scheduler scheduler, Plan plan, int[] latentShape) {
        if (r.initWidth() != width || r.initHeight() != height) {
            throw new IllegalArgumentException("init image is " + r.initWidth() + "x" + r.initHeight()
                    + ", expected " + width + "x" + height + " (resize it or omit --width/--height)");
        }
        Tensor image = ops.fromArray(r.initImageChw(), 1, 3, height, width);
        AutoencoderKL.Posterior posterior = vae.encode(image);
        Tensor sampled = posterior.sample(randn(generator, posterior.mean().shape()));
        AutoencoderKL.Config vc = vae.config();
        Tensor init = xl && vc.latentsMean() != null && vc.latentsStd() != null
                ? sampled.sub(channelVector(vc.latentsMean(), 1f)).div(channelVector(vc.latentsStd(), 1f / vc.scalingFactor()))
                : sampled.mul(vc.scalingFactor());
        List<Tensor> copies = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            copies.add(init);
        }
        Tensor initBatch = Tensor.concat(copies, 0);
        Tensor noise = randn(generator, latentShape);
        return scheduler.addNoise(plan, plan.beginIndex(), initBatch, noise);
    }

    /**
     * diffusers' get_guidance_scale_embedding for guidance-distilled (LCM) UNets: sinusoids of w·1000 at
     * frequencies exp(-ln(10000)·i/(half-1)), [sin, cos], float32 as torch computes them; [batch, dim].
     */
    private Tensor guidanceEmbedding(double w, int dim, int batch) {
        int half = dim / 2;
        float step = (float) Math.log(10000.0) / (half - 1);
        float scaled = (float) w * 1000f;
        float[] row = new float[dim];
        for (int i = 0; i < half; i++) {
            float arg = scaled * (float) Math.exp(i * -step);
            row[i] = (float) Math.sin(arg);
            row[half + i] = (float) Math.cos(arg);
        }
        float[] all = new float[batch * dim];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(row, 0, all, b * dim, dim);
        }
        return ops.fromArray(all, batch, dim);
    }

    /** Per-channel values as a [1, C, 1, 1] tensor, times {@code scale}. */
    private Tensor channelVector(List<Double> values, float scale) {
        float[] v = new float[values.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (values.get(i) * scale);
        }
        return ops.fromArray(v, 1, v.length, 1, 1);
    }

    /** diffusers rescale_noise_cfg (Lin et al. 2023, section 3.4). */
    private static Tensor rescale(Tensor cfg, Tensor text, double factor) {
        int b = cfg.size(0);
        Tensor stdText = text.reshape(b, -1).var(1, 1, true).sqrt();                 // [B, 1]
        Tensor stdCfg = cfg.reshape(b, -1).var(1, 1, true).sqrt();
        int[] shape = cfg.shape();
        Tensor rescaled = cfg.reshape(b, -1).mul(stdText.div(stdCfg)).reshape(shape);
        return rescaled.mul((float) factor).add(cfg.mul((float) (1 - factor)));
    }

    /** SDXL add_time_ids: original size, crop (0, 0), target size. */
    private Tensor timeIds(int batch, int height, int width) {
        float[] ids = new float[batch * 6];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(new float[] {height, width, 0, 0, height, width}, 0, ids, b * 6, 6);
        }
        return ops.fromArray(ids, batch, 6);
    }

    public String modelName() {
        return modelName;
    }

    @Override
    public void close() {
        for (Checkpoint c : checkpoints) {
            c.close();
        }
        checkpoints.clear();
    }
}
