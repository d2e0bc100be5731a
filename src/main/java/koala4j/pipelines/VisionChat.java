package koala4j.pipelines;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

import koala4j.io.hub.HubClient;
import koala4j.io.json.Json;
import koala4j.io.video.SampledVideo;
import koala4j.io.video.VideoReader;
import koala4j.models.Checkpoint;
import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaConfig;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.models.llava.LlavaConfig;
import koala4j.models.llava.LlavaModel;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Quantization;
import koala4j.tokenizers.ChatTemplate;
import koala4j.tokenizers.LlavaConversation;
import koala4j.tokenizers.PromptFormat;
import koala4j.tokenizers.TextTokenizer;
import koala4j.tokenizers.Tokenizers;

/**
 * Image and video question answering (and plain chat or completion) with a LLaMA-family model folder as published:
 * <ul>
 * <li>transformers {@code LlavaForConditionalGeneration} (llava-hf): the CLIP tower inside the checkpoint under
 * {@code vision_tower.}, the LlavaProcessor's preprocessor_config.json and chat template, the fast tokenizer;</li>
 * <li>LLaVA's {@code LlavaLlamaForCausalLM} (etri-vilab/Ko-LLaVA-13b, liuhaotian/llava-v1.5-*): the tower in the
 * folder or hub repo {@code mm_vision_tower} names (a relative path resolves against the model folder) with its own
 * preprocessor_config.json, images padded to squares when {@code image_aspect_ratio} is "pad", the slow
 * SentencePiece tokenizer (builder.py's {@code use_fast=False}), LLaVA's conversation templates;</li>
 * <li>{@code LlamaForCausalLM}: text only.</li>
 * </ul>
 * Prompt format ({@link PromptFormat#select}): a {@code --template} name, else the chat template the folder ships,
 * else (LLaVA) the conversation template LLaVA's cli.py infers from the model name (Ko-LLaVA-13b: llava_v0, with
 * {@code mm_use_im_start_end} from config.json); a plain LLaMA folder without a chat template only completes raw
 * prompts. Image placeholders expand as the model's code does it (see {@link ChatPrompts}).
 *
 * <p>Immutable and thread-safe after {@link #load}: each call builds its own prompt, embeddings and KV cache. The
 * checkpoints stay mapped until {@link #close}.
 */
public final class VisionChat implements AutoCloseable {

    /** The files of a model folder that loading reads, as hub allow-patterns. */
    public static final List<String> FILES = List.of("config.json", "generation_config.json", "tokenizer.model",
            "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
            "chat_template.jinja", "chat_template.json", "processor_config.json", "preprocessor_config.json",
            "model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors");

    /** The files of a separate vision tower repo (a CLIPVisionModel or CLIPModel). */
    public static final List<String> TOWER_FILES = List.of("config.json", "preprocessor_config.json", "processor_config.json",
            "model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors");

    /** LLaVA's serve/cli.py default; used when generation_config.json sets no max_new_tokens. */
    public static final int DEFAULT_MAX_NEW_TOKENS = 512;

    /** How the folder was recognised. */
    public enum Architecture {
        /** transformers LlavaForConditionalGeneration. */
        LLAVA_TRANSFORMERS,
        /** LLaVA's LlavaLlamaForCausalLM (v0 / Ko-LLaVA, v1.5). */
        LLAVA_ORIGINAL,
        /** LlamaForCausalLM, text only. */
        LLAMA
    }

    /**
     * Load-time choices.
     *
     * @param template    a conversation template name ({@link LlavaConversation#templateNames()}) instead of the
     *                    folder's chat template or the name-based choice; null for those
     * @param visionTower original layout: a folder or hub id instead of config.json's mm_vision_tower; null: as
     *                    configured
     * @param frames      frames sampled per video ({@link #readVideo})
     * @param hub         resolves a vision tower given as a hub id; null: only local folders
     * @param promptCacheSlots conversations whose KV caches are kept for their next prompt ({@link PromptCacheSlots}:
     *                    a reply resumes from the slot sharing the longest prefix with it; image features are
     *                    cached as well); 0: every reply computes its whole prompt
     * @param kvCache     the language model's KV cache element type: F32 (as transformers), F16 (half the memory,
     *                    keys and values rounded to F16), Q8_0 (34 bytes per 32 values) or Q4_0 (18 bytes per 32);
     *                    null: F32
     * @param prefillChunk the most prompt positions computed in one pass ({@link LlamaForCausalLM#prefillChunk})
     * @param lookup      prompt lookup decoding for every reply ({@link PromptLookup#NONE}: off) instead of what
     *                    the folder's generation_config.json sets (prompt_lookup_num_tokens); null: the folder's
     * @param draft       a draft model for speculative decoding, loaded with the model (its quantisation, KV cache
     *                    type and prefill chunk) and closed with it ({@link #draftModel(DraftModel)}); null: none
     */
    public record Options(Quantization quantization, String template, String visionTower, int frames, HubClient hub,
                          int promptCacheSlots, DType kvCache, int prefillChunk, PromptLookup lookup,
                          DraftModel.Source draft) {

        public Options {
            if (quantization == null) {
                quantization = Quantization.NONE;
            }
            kvCache = KvCache.checkType(kvCache == null ? DType.F32 : kvCache);
            if (frames < 1) {
                throw new IllegalArgumentException("frames per video " + frames + ": expected at least 1");
            }
            if (promptCacheSlots < 0) {
                throw new IllegalArgumentException("prompt cache slots " + promptCacheSlots + ": expected 0 (off) or more");
            }
            if (prefillChunk < 1) {
                throw new IllegalArgumentException("prefill chunk of " + prefillChunk + " positions: expected at least 1");
            }
        }

        /** No draft model. */
        public Options(Quantization quantization, String template, String visionTower, int frames, HubClient hub,
                       int promptCacheSlots, DType kvCache, int prefillChunk, PromptLookup lookup) {
            this(quantization, template, visionTower, frames, hub, promptCacheSlots, kvCache, prefillChunk, lookup,
                    null);
        }

        /** Prompt lookup as the folder's generation_config.json sets it. */
        public Options(Quantization quantization, String template, String visionTower, int frames, HubClient hub,
                       int promptCacheSlots, DType kvCache, int prefillChunk) {
            this(quantization, template, visionTower, frames, hub, promptCacheSlots, kvCache, prefillChunk, null);
        }

        /** Prompts computed {@link LlamaForCausalLM#DEFAULT_PREFILL_CHUNK} positions at a time. */
        public Options(Quantization quantization, String template, String visionTower, int frames, HubClient hub,
                       int promptCacheSlots, DType kvCache) {
            this(quantization, template, visionTower, frames, hub, promptCacheSlots, kvCache,
                    LlamaForCausalLM.DEFAULT_PREFILL_CHUNK);
        }

        /** An F32 KV cache. */
        public Options(Quantization quantization, String template, String visionTower, int frames, HubClient hub,
                       int promptCacheSlots) {
            this(quantization, template, visionTower, frames, hub, promptCacheSlots, DType.F32);
        }

        /** {@code promptCache}: one cached conversation, or none. */
        public Options(Quantization quantization, String template, String visionTower, int frames, HubClient hub,
                       boolean promptCache) {
            this(quantization, template, visionTower, frames, hub, promptCache ? 1 : 0);
        }

        public static Options defaults() {
            return new Options(Quantization.NONE, null, null, VideoReader.DEFAULT_FRAMES, null, 1, DType.F32);
        }
    }

    /** A prompt that fills the model's context (max_position_embeddings), refused when replies stay within it. */
    public static final class ContextLengthExceeded extends IllegalArgumentException {
        private final int promptTokens;
        private final int contextLength;

        ContextLengthExceeded(int promptTokens, int contextLength) {
            super(("the prompt takes %d positions (images included), and the model's context (max_position_embeddings) "
                    + "is %d: expected at most %d, to leave room for the answer").formatted(promptTokens, contextLength,
                    contextLength - 1));
            this.promptTokens = promptTokens;
            this.contextLength = contextLength;
        }

        public int promptTokens() {
            return promptTokens;
        }

        public int contextLength() {
            return contextLength;
        }
    }

    /**
     * One answer: the prompt text (with one {@code <image>} per image or frame), the prompt ids as the model saw them
     * (image tokens expanded; -200 placeholders for LLaVA-1.5's original layout), the new ids (an end-of-sequence id
     * included, as transformers returns it), their text, the images encoded and the time that took, and the
     * generation's own result (stop reason, timings).
     */
    public record Reply(String prompt, int[] promptIds, int[] outputIds, String text, int images, Duration visionTime,
                        TextGeneration.Result generation) {

        public TextGeneration.StopReason stopReason() {
            return generation.stopReason();
        }
    }

    private final Path folder;
    private final Architecture architecture;
    private final Checkpoint checkpoint;
    private final LlamaForCausalLM languageModel;
    private final LlavaModel llava;
    private final VisionEncoder vision;
    private final TextTokenizer tokenizer;
    private final PromptFormat format;
    private final ChatPrompts.Expansion expansion;
    private final SamplingParams defaults;
    private final TextGeneration generation;
    private final int frames;
    private final boolean promptCacheEnabled;
    /** Recent replies' keys and values, reused by a next prompt that starts the same way (a later turn); or null. */
    private final PromptCacheSlots promptCaches;
    /** Concurrent replies (the server's chat lane) decode their tokens together. */
    private final DecodeBatcher batcher;
    /** Drafts tokens for every reply ({@link #draftModel(DraftModel)}); null: none. */
    private volatile DraftModel draft;
    /** The draft model {@link Options#draft} loaded, closed with this one. */
    private DraftModel ownedDraft;
    private final java.util.concurrent.atomic.LongAdder drafted = new java.util.concurrent.atomic.LongAdder();
    private final java.util.concurrent.atomic.LongAdder draftsKept = new java.util.concurrent.atomic.LongAdder();
    /**
     * Projected features of recently seen images by a digest of their pixels (not the pixels themselves, which
     * can be megabytes), so a later turn about the same picture skips the tower.
     */
    private final Map<String, Tensor> imageFeatures = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Tensor> eldest) {
            return size() > IMAGE_FEATURES_KEPT;
        }
    };
    private static final int IMAGE_FEATURES_KEPT = 16;

    private VisionChat(Path folder, Architecture architecture, Checkpoint checkpoint, LlamaForCausalLM languageModel,
                       LlavaModel llava, VisionEncoder vision, TextTokenizer tokenizer, PromptFormat format,
                       ChatPrompts.Expansion expansion, SamplingParams defaults, Options options) {
        this.folder = folder;
        this.architecture = architecture;
        this.checkpoint = checkpoint;
        this.languageModel = languageModel;
        languageModel.kvCacheType(options.kvCache());
        languageModel.prefillChunk(options.prefillChunk());
        this.llava = llava;
        this.vision = vision;
        this.tokenizer = tokenizer;
        this.format = format;
        this.expansion = expansion;
        this.defaults = options.lookup() == null ? defaults : defaults.withLookup(options.lookup());
        this.batcher = new DecodeBatcher(languageModel, DecodeBatcher.DEFAULT_MAX_BATCH);
        this.generation = new TextGeneration(languageModel, tokenizer, batcher);
        this.frames = options.frames();
        this.promptCacheEnabled = options.promptCacheSlots() > 0;
        this.promptCaches = promptCacheEnabled ? new PromptCacheSlots(options.promptCacheSlots()) : null;
    }

    /**
     * Loads a model folder (see the class comment for the layouts).
     *
     * @param modelName the name or hub id the user gave (the conversation template is inferred from its last path
     *                  element); null: the folder's name
     * @throws IllegalArgumentException naming the file and field when the folder is not a LLaMA-family model this
     *                                  class runs, or a piece (tokenizer, tower, processor config) is missing
     */
    public static VisionChat load(Path folder, String modelName, Options options, Ops ops) {
        VisionChat chat = loadModel(folder, modelName, options, ops);
        if (options.draft() != null) {
            try {
                chat.ownedDraft = DraftModel.load(options.draft(), options, ops);
                chat.draftModel(chat.ownedDraft);
            } catch (RuntimeException e) {
                chat.close();
                throw e;
            }
        }
        return chat;
    }

    private static VisionChat loadModel(Path folder, String modelName, Options options, Ops ops) {
        Checkpoint ckpt = Checkpoint.open(folder, null, ops);
        VisionEncoder vision = null;
        try {
            Json config = ckpt.config();
            if (LlavaConfig.isLlava(config)) {
                LlavaConfig lc = LlavaConfig.from(config);
                boolean original = lc.layout() == LlavaConfig.Layout.ORIGINAL;
                TextTokenizer tok = Tokenizers.loadText(folder, original ? Tokenizers.Kind.SLOW : Tokenizers.Kind.AUTO);
                LlavaModel.ImageTokens tokens = original ? originalTokens(lc, tok) : LlavaModel.ImageTokens.of(lc, folder);
                LlavaModel llava = LlavaModel.load(ckpt, options.quantization(), tokens);
                ChatPrompts.Expansion expansion;
                if (original) {
                    vision = VisionEncoder.original(folder, config, lc, options.visionTower(), options.hub(), ops);
                    expansion = tokens.imageToken() == LlavaConfig.ORIGINAL_IMAGE_PLACEHOLDER
                            ? new ChatPrompts.Placeholder(LlavaConfig.ORIGINAL_IMAGE_PLACEHOLDER)
                            : new ChatPrompts.Repeat(LlavaConversation.IMAGE_PATCH_TOKEN);
                } else {
                    if (options.visionTower() != null) {
                        throw new IllegalArgumentException("vision tower " + options.visionTower() + ": " + folder
                                + " is a transformers LlavaForConditionalGeneration, whose tower is inside its checkpoint"
                                + " (vision_tower.*); a separate tower applies to original-layout LLaVA folders only");
                    }
                    vision = VisionEncoder.inCheckpoint(ckpt, lc);
                    expansion = new ChatPrompts.Repeat(tok.idToToken(lc.imageTokenIndex()));
                }
                PromptFormat format = PromptFormat.select(folder, modelName, options.template());
                if (format instanceof LlavaConversation conv) {
                    format = conv.withImStartEnd(lc.useImStartEnd());
                }
                return new VisionChat(folder, original ? Architecture.LLAVA_ORIGINAL : Architecture.LLAVA_TRANSFORMERS,
                        ckpt, llava.languageModel(), llava, vision, tok, format, expansion,
                        defaults(folder, lc.textConfig().eosTokenIds()), options);
            }
            if (isLlama(config)) {
                LlamaForCausalLM lm = LlamaForCausalLM.load(ckpt, options.quantization());
                TextTokenizer tok = Tokenizers.loadText(folder, Tokenizers.Kind.AUTO);
                PromptFormat format = options.template() != null
                        ? PromptFormat.select(folder, modelName, options.template())
                        : ChatTemplate.fromFolder(folder).orElse(null);
                return new VisionChat(folder, Architecture.LLAMA, ckpt, lm, null, null, tok, format,
                        new ChatPrompts.Repeat(LlavaConversation.IMAGE_TOKEN), defaults(folder, lm.config().eosTokenIds()),
                        options);
            }
            throw config.error("model_type", Json.quote(config.stringOr("model_type", "(none)")), "llava "
                    + "(LlavaForConditionalGeneration or LlavaLlamaForCausalLM) or llama (LlamaForCausalLM)");
        } catch (RuntimeException e) {
            if (vision != null) {
                vision.close();
            }
            ckpt.close();
            throw e;
        }
    }

    /**
     * What {@link #load} would load from {@code folder}, from its config.json alone (no weights read), so that callers
     * can refuse images for a text-only model before loading it.
     *
     * @throws IllegalArgumentException naming config.json when it is not a model this class runs
     */
    public static Architecture architectureOf(Path folder) {
        Path file = folder.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(file + ": missing (every model folder has its config.json)");
        }
        Json config = Json.read(file);
        if (LlavaConfig.isLlava(config)) {
            return LlavaConfig.from(config).layout() == LlavaConfig.Layout.ORIGINAL ? Architecture.LLAVA_ORIGINAL
                    : Architecture.LLAVA_TRANSFORMERS;
        }
        if (isLlama(config)) {
            return Architecture.LLAMA;
        }
        throw config.error("model_type", Json.quote(config.stringOr("model_type", "(none)")), "llava "
                + "(LlavaForConditionalGeneration, LlavaNextForConditionalGeneration or LlavaLlamaForCausalLM) or llama"
                + " (LlamaForCausalLM, MistralForCausalLM)");
    }

    private static boolean isLlama(Json config) {
        List<String> arch = config.has("architectures") && !config.isNull("architectures")
                ? config.stringList("architectures") : List.of();
        return arch.contains("LlamaForCausalLM") || arch.contains("MistralForCausalLM")
                || arch.isEmpty() && List.of("llama", "mistral").contains(config.stringOr("model_type", ""));
    }

    /** The ids LLaVA added to the tokenizer (builder.py / initialize_vision_tokenizer), as the tokenizer has them. */
    private static LlavaModel.ImageTokens originalTokens(LlavaConfig c, TextTokenizer tok) {
        int start = c.useImStartEnd() ? requiredToken(tok, LlavaConversation.IM_START_TOKEN, "mm_use_im_start_end") : -1;
        int end = c.useImStartEnd() ? requiredToken(tok, LlavaConversation.IM_END_TOKEN, "mm_use_im_start_end") : -1;
        int image = c.useImPatchToken() ? requiredToken(tok, LlavaConversation.IMAGE_PATCH_TOKEN, "mm_use_im_patch_token")
                : LlavaConfig.ORIGINAL_IMAGE_PLACEHOLDER;
        return new LlavaModel.ImageTokens(image, start, end);
    }

    private static int requiredToken(TextTokenizer tok, String token, String field) {
        OptionalInt id = tok.tokenId(token);
        if (id.isEmpty()) {
            throw new IllegalArgumentException(tok.folder() + ": the tokenizer has no " + token + " token, which config.json's "
                    + field + " needs (LLaVA adds it: added_tokens.json)");
        }
        return id.getAsInt();
    }

    /**
     * generation_config.json (else config.json) as {@link SamplingParams#fromGenerationConfig} reads it, with
     * {@link #DEFAULT_MAX_NEW_TOKENS} when the file sets no max_new_tokens.
     */
    private static SamplingParams defaults(Path folder, List<Integer> configEos) {
        Path file = folder.resolve("generation_config.json");
        Json g = Files.isRegularFile(file) ? Json.read(file) : Json.parse("{}", "generation_config.json (absent)");
        SamplingParams p = SamplingParams.fromGenerationConfig(g, configEos);
        return g.has("max_new_tokens") ? p : p.withMaxNewTokens(DEFAULT_MAX_NEW_TOKENS);
    }

    /**
     * The bytes a LLaMA / LLaVA folder holds once loaded: its weight files, with the language model's Linear weights
     * at their Q8_0 / Q4_0 size when {@code quantization} copies them (the mapped originals are then no longer read).
     * A separate vision tower folder and KV caches are not counted.
     */
    public static long estimatedBytes(Path folder, Quantization quantization) {
        long files = PipelineFiles.checkpointBytes(folder);
        if (quantization == Quantization.NONE) {
            return files;
        }
        Json config = Json.read(folder.resolve("config.json"));
        LlamaConfig text = LlavaConfig.isLlava(config) ? LlavaConfig.from(config).textConfig()
                : LlamaConfig.from(config);
        String dtype = config.stringOr("torch_dtype", config.stringOr("dtype", "float16"));
        long linear = text.linearParameters();
        long stored = linear * (dtype.equals("float32") ? 4 : 2);
        long quantised = quantization == Quantization.Q8_0 ? koala4j.tensor.quant.Q8.bytesFor(linear)
                : koala4j.tensor.quant.Q4.bytesFor(linear);
        return Math.max(0, files - stored) + quantised;
    }

    public Architecture architecture() {
        return architecture;
    }

    public Path folder() {
        return folder;
    }

    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    /** The bytes token {@code id} stands for ({@link TextTokenizer#tokenBytes}), as log-probabilities show tokens. */
    public byte[] tokenBytes(int id) {
        return tokenizer.tokenBytes(id);
    }

    /** {@link TextTokenizer#tokenText}: a token's bytes as text, {@code bytes:\\xNN...} when they are not UTF-8. */
    public static String tokenText(byte[] bytes) {
        return TextTokenizer.tokenText(bytes);
    }

    /** How much the decoding steps of concurrent replies were shared ({@link DecodeBatcher}). */
    public DecodeBatcher.Stats decodeStats() {
        return batcher.stats();
    }

    /**
     * An embedding of {@code text} as llama.cpp's {@code --pooling mean} makes one (its {@code /v1/embeddings} then
     * scales it to length 1): the text tokenized as given (BOS as the tokenizer adds it), the language model's final
     * hidden states (after its last norm, transformers' {@code hidden_states[-1]}) averaged over the positions.
     *
     * @return the vector and the token ids it came from
     * @throws IllegalArgumentException when the tokens do not fit the model's context
     */
    public Embedding embed(String text, Cancel cancel) {
        int[] ids = tokenizer.encode(text, true);
        if (ids.length == 0) {
            throw new IllegalArgumentException("an empty input: nothing to embed (the tokenizer adds no BOS)");
        }
        int positions = languageModel.config().maxPositionEmbeddings();
        if (ids.length > positions) {
            throw new IllegalArgumentException("the input takes " + ids.length + " tokens, and the model's context "
                    + "(max_position_embeddings) is " + positions + ": expected at most " + positions);
        }
        cancel.check();
        KvCache cache = languageModel.newCache(1, ids.length);
        Tensor hidden = languageModel.lastHiddenState(TextGeneration.embedIds(languageModel, ids), cache); // [1, N, C]
        return new Embedding(hidden.mean(1, false).toFloatArray(), ids);
    }

    /** A text's embedding and its token ids. */
    public record Embedding(float[] vector, int[] ids) {
    }

    /** Prompt lookup over every reply so far: tokens drafted, and those the model chose too. */
    public record DraftTotals(long proposed, long accepted) {
    }

    public DraftTotals draftTotals() {
        return new DraftTotals(drafted.sum(), draftsKept.sum());
    }

    private void count(TextGeneration.Result r) {
        drafted.add(r.drafts().proposed());
        draftsKept.add(r.drafts().accepted());
    }

    public LlamaForCausalLM languageModel() {
        return languageModel;
    }

    /** Whether the model takes images and videos (a LLaVA model). */
    public boolean acceptsImages() {
        return llava != null;
    }

    /** The prompt format chat turns are rendered with; empty for a LLaMA folder without one (raw prompts only). */
    public Optional<PromptFormat> promptFormat() {
        return Optional.ofNullable(format);
    }

    /**
     * The folder's generation settings, plus the conversation template's stop string for a LLaVA template (cli.py
     * stops at {@code ###} for v0, {@code </s>} for v1).
     */
    public SamplingParams defaults() {
        if (format instanceof LlavaConversation conv) {
            List<String> stops = new ArrayList<>(defaults.stopStrings());
            stops.add(conv.stopString());
            return defaults.withStopStrings(stops);
        }
        return defaults;
    }

    /** The defaults without the template's stop string (for raw completion); generation_config.json's stay. */
    public SamplingParams rawDefaults() {
        return defaults;
    }

    /**
     * generation_config.json's num_return_sequences (1 when absent or null): answers per prompt, as generate()
     * returns them for the CLI's --prompt.
     *
     * @throws koala4j.io.json.JsonException naming the file and field for a value below 1
     */
    public int numReturnSequences() {
        Path file = folder.resolve("generation_config.json");
        if (!Files.isRegularFile(file)) {
            return 1;
        }
        Json g = Json.read(file);
        if (!g.has("num_return_sequences") || g.isNull("num_return_sequences")) {
            return 1;
        }
        int n = g.intValue("num_return_sequences");
        if (n < 1) {
            throw g.error("num_return_sequences", Integer.toString(n), "at least 1");
        }
        return n;
    }

    /**
     * Speculative decoding from now on: {@code draft} (null: none, the caller keeps and closes it) drafts tokens for
     * every reply and completion, in place of prompt lookup; answers stay the same. Beam search does without.
     *
     * @throws IllegalArgumentException when the draft model's tokenizer spells a shared id otherwise
     */
    public void draftModel(DraftModel draft) {
        if (draft != null) {
            draft.checkCompatible(tokenizer);
        }
        this.draft = draft;
    }

    /** Frames per video, as loaded. */
    public int frames() {
        return frames;
    }

    /** What was loaded, for logs: architecture, prompt format, vision tower. */
    public String describe() {
        DraftModel d = draft;
        return architecture + " " + folder + "; prompt format: " + (format == null ? "none (raw prompts only)"
                : format.describe()) + (vision == null ? "" : "; " + vision.describe())
                + (d == null ? "" : "; draft model " + d.folder() + " (up to " + d.settings().max()
                + " tokens a pass, p >= " + d.settings().pMin() + ")");
    }

    /**
     * {@link #frames()} frames of a video, evenly spaced ({@code np.linspace(0, total - 1, N, dtype=int)}), decoded
     * by {@link VideoReader} (GIF in Java, other formats with ffmpeg).
     *
     * @throws IOException naming the file when it is missing or cannot be decoded
     */
    public Conversation.Video readVideo(Path file) throws IOException {
        return readVideo(file, frames);
    }

    /** {@code frames} evenly spaced frames of a video (see {@link #readVideo(Path)}). */
    public static Conversation.Video readVideo(Path file, int frames) throws IOException {
        SampledVideo v = VideoReader.create().sample(file, frames);
        return new Conversation.Video(v.frames(), v.indices(), v.totalFrames(), file.getFileName().toString());
    }

    /**
     * Answers the last user turn of {@code conversation}: the whole history rendered with the prompt format, its
     * images encoded, then generation with {@code params}, each token to {@code listener} as it is chosen.
     *
     * @throws IllegalArgumentException images for a text-only model, no prompt format, placeholders that do not pair
     *                                  with the images
     */
    public Reply reply(Conversation conversation, SamplingParams params, TextGeneration.TokenListener listener,
                       Cancel cancel) {
        return reply(conversation, params, listener, cancel, false);
    }

    /**
     * {@link #reply(Conversation, SamplingParams, TextGeneration.TokenListener, Cancel)}; with {@code withinContext}
     * the prompt and the answer stay inside the model's max_position_embeddings, as llama.cpp's server and the OpenAI
     * API keep them: a prompt that fills it is refused ({@link ContextLengthExceeded}) and generation stops at its
     * last position (a max-new-tokens stop), except under dynamic NTK rope scaling, which exists to go past it.
     * Without, as transformers does, generation goes on past it (the rotary positions extrapolate and answers
     * degrade; the CLI warns).
     */
    public Reply reply(Conversation conversation, SamplingParams params, TextGeneration.TokenListener listener,
                       Cancel cancel, boolean withinContext) {
        return replies(conversation, List.of(new Choice(params, listener, reply -> { })), cancel, withinContext)
                .getFirst();
    }

    /**
     * One of several answers to the same prompt (OpenAI's {@code n}): its sampling parameters (a seed of its own makes
     * sampled answers differ), where its tokens go, and what to do with it as soon as it is complete.
     */
    public record Choice(SamplingParams params, TextGeneration.TokenListener listener,
                         java.util.function.Consumer<Reply> ended) {
    }

    /**
     * Several answers to the last user turn, as {@link #reply(Conversation, SamplingParams,
     * TextGeneration.TokenListener, Cancel, boolean)} gives one. The prompt is computed once and the answers
     * decode together (one batch per token through the {@link DecodeBatcher}, as many at a time as a batch takes
     * and the Java heap holds KV caches for), each in a copy of the prompt's KV cache; with the prompt's
     * log-probabilities they run one after another instead, later ones reusing the prompt through the prompt cache.
     * With beam search (the first choice's parameters) the choices are the best hypotheses of one search, best
     * first, as generate()'s num_return_sequences gives them (at most num_beams). Each choice's {@code ended} runs
     * on the thread that made it, as soon as it is complete.
     */
    public List<Reply> replies(Conversation conversation, List<Choice> choices, Cancel cancel, boolean withinContext) {
        if (format == null) {
            throw new IllegalArgumentException(folder + " has no chat template (chat_template.jinja, or chat_template in "
                    + "tokenizer_config.json): complete raw prompts (--raw), or name a conversation template (--template "
                    + "NAME, one of " + LlavaConversation.templateNames() + ")");
        }
        List<koala4j.io.image.Image> images = conversation.images();
        checkImages(images.size());
        String prompt = ChatPrompts.render(format, conversation, tokenizer, llava != null);
        return run(prompt, images, ChatPrompts.addSpecialTokens(prompt, tokenizer), choices, cancel, withinContext);
    }

    /**
     * Completes {@code prompt} as given (no template; BOS added as {@code tokenizer(prompt)} does). With visuals,
     * the prompt must hold one {@code <image>} per image or video frame where their features go (for a Ko-LLaVA v0
     * model write {@code <im_start><image><im_end>}; the placeholder expands into the patch tokens).
     */
    public Reply complete(String prompt, List<? extends Conversation.Visual> visuals, SamplingParams params,
                          TextGeneration.TokenListener listener, Cancel cancel) {
        return complete(prompt, visuals, params, listener, cancel, false);
    }

    /**
     * {@link #complete(String, List, SamplingParams, TextGeneration.TokenListener, Cancel)}, with the context limit
     * of {@link #reply(Conversation, SamplingParams, TextGeneration.TokenListener, Cancel, boolean)}.
     */
    public Reply complete(String prompt, List<? extends Conversation.Visual> visuals, SamplingParams params,
                          TextGeneration.TokenListener listener, Cancel cancel, boolean withinContext) {
        return completions(prompt, visuals, List.of(new Choice(params, listener, reply -> { })), cancel,
                withinContext).getFirst();
    }

    /** Several completions of one raw prompt, as {@link #replies} answers a conversation several times. */
    public List<Reply> completions(String prompt, List<? extends Conversation.Visual> visuals, List<Choice> choices,
                                   Cancel cancel, boolean withinContext) {
        List<koala4j.io.image.Image> images = new ArrayList<>();
        visuals.forEach(v -> images.addAll(v.frames()));
        checkImages(images.size());
        return run(prompt, images, true, choices, cancel, withinContext);
    }

    private void checkImages(int count) {
        if (count > 0 && llava == null) {
            throw new IllegalArgumentException(folder + " is a text-only LlamaForCausalLM: it takes no images or videos"
                    + " (" + count + " given); use a LLaVA model folder");
        }
    }

    private List<Reply> run(String prompt, List<koala4j.io.image.Image> images, boolean addSpecialTokens,
                            List<Choice> choices, Cancel cancel, boolean withinContext) {
        if (choices.isEmpty()) {
            throw new IllegalArgumentException("no choices to generate: expected at least one");
        }
        long t0 = System.nanoTime();
        List<Tensor> rows = images.isEmpty() ? List.of()
                : promptCacheEnabled ? encode(images, cancel) : vision.encode(images, llava, cancel);  // [P, C] each
        Duration visionTime = Duration.ofNanos(System.nanoTime() - t0);
        int[] counts = rows.stream().mapToInt(r -> r.size(0)).toArray();
        int[] ids = ChatPrompts.tokenize(prompt, counts, expansion, tokenizer, addSpecialTokens);
        if (ids.length == 0) {
            throw new IllegalArgumentException("an empty prompt: nothing to generate from (the tokenizer adds no BOS)");
        }
        cancel.check();
        Tensor embeds;
        int[] penalized = ids;
        if (llava == null) {
            embeds = TextGeneration.embedIds(languageModel, ids);                             // [1, N, C]
        } else {
            embeds = llava.inputEmbeds(ids, rows);                                            // [1, N', C]
            // LLaVA-1.5 generates from inputs_embeds alone: its repetition penalty sees the new tokens only
            if (expansion instanceof ChatPrompts.Placeholder) {
                penalized = new int[0];
            }
        }
        int n = embeds.size(1);
        List<SamplingParams> params = new ArrayList<>(choices.stream().map(Choice::params).toList());
        // dynamic NTK scaling exists to run past max_position_embeddings: no limit there
        var scaling = languageModel.config().ropeScaling();
        if (withinContext && (scaling == null || scaling.type() != LlamaConfig.RopeType.DYNAMIC)) {
            int positions = languageModel.config().maxPositionEmbeddings();
            if (n >= positions) {
                throw new ContextLengthExceeded(n, positions);
            }
            params.replaceAll(p -> p.withMaxNewTokens(Math.min(p.maxNewTokens(), positions - n)));
        }
        int capacity = params.stream().mapToInt(p -> TextGeneration.cacheCapacity(n, p)).max().orElseThrow();
        int[] rowIds = images.isEmpty() && ids.length == n ? ids : null;
        // a reply resumes from what a free slot shares with it; with every slot busy it computes its whole prompt
        float[][] rowsOfPrompt = promptCacheEnabled ? TextGeneration.PromptCache.rows(embeds) : null;
        PromptCacheSlots.Lease lease = promptCacheEnabled ? promptCaches.acquire(rowsOfPrompt, languageModel, capacity)
                : null;
        TextGeneration.PromptCache cache = lease == null ? null : lease.cache();
        int[] promptIds = penalized;
        // counted, made a reply and handed to its choice as soon as it is complete
        java.util.function.BiFunction<Integer, TextGeneration.Result, Reply> ended = (i, r) -> {
            count(r);
            Reply reply = new Reply(prompt, ids, r.tokenIds(), r.text(), images.size(), visionTime, r);
            choices.get(i).ended().accept(reply);
            return reply;
        };
        try {
            if (choices.size() > 1 && params.getFirst().beams().numBeams() > 1) {
                // generate()'s num_return_sequences: the best hypotheses of one search, not the same search again
                List<TextGeneration.Result> results = generation.beamHypotheses(embeds, promptIds, params.getFirst(),
                        choices.stream().map(Choice::listener).toList(), cancel);
                List<Reply> replies = new ArrayList<>();
                for (int i = 0; i < choices.size(); i++) {
                    replies.add(ended.apply(i, results.get(i)));
                }
                return replies;
            }
            DraftModel drafts = draft;
            int shared = drafts == null ? 0 : drafts.sharedVocabulary(tokenizer, languageModel.config().vocabSize());
            java.util.function.IntFunction<TextGeneration.Drafter> drafter = i -> drafts == null ? null
                    : drafts.session(ids, params.get(i).maxNewTokens(), shared);
            if (!together(choices, params)) {
                List<Reply> replies = new ArrayList<>();
                for (int i = 0; i < choices.size(); i++) {
                    replies.add(ended.apply(i, generation.generate(embeds, promptIds, params.get(i),
                            choices.get(i).listener(), cancel, cache, rowsOfPrompt, rowIds, null, drafter.apply(i))));
                }
                return replies;
            }
            TextGeneration.Prompt computed = generation.prefill(embeds, capacity, cache, rowsOfPrompt, cancel);
            // the first choice leaves its answer in the prompt cache, for the conversation's next turn
            return Choices.run(choices.size(), parallelChoices(choices.size(), capacity), cancel, (i, stop) ->
                    ended.apply(i, generation.generate(embeds, promptIds, params.get(i), choices.get(i).listener(),
                            stop, i == 0 ? cache : null, rowsOfPrompt, rowIds, computed, drafter.apply(i))));
        } finally {
            if (lease != null) {
                promptCaches.release(lease);
            }
        }
    }

    /**
     * Whether the choices can share one computed prompt and decode together: more than one, no beam search (its own
     * batch of beams), no prompt log-probabilities (every position's logits, computed per generation).
     */
    private static boolean together(List<Choice> choices, List<SamplingParams> params) {
        if (choices.size() < 2) {
            return false;
        }
        for (int i = 0; i < choices.size(); i++) {
            TextGeneration.TokenListener l = choices.get(i).listener();
            if (params.get(i).beams().numBeams() > 1 || l.topLogprobs() >= 0 && l.promptLogprobs()) {
                return false;
            }
        }
        return true;
    }

    /**
     * Choices decoding at once: a batch's worth at most, and as many KV caches of {@code capacity} positions as half
     * the free Java heap holds (at least one; the rest wait for a free thread).
     */
    private int parallelChoices(int choices, int capacity) {
        long perChoice = KvCache.bytesPerPosition(languageModel.config(), languageModel.kvCacheType()) * capacity;
        long fit = (long) (TextGeneration.freeHeapBytes() / 2 / perChoice);
        return (int) Math.max(1, Math.min(Math.min(choices, DecodeBatcher.DEFAULT_MAX_BATCH), fit));
    }

    /** The projected features of each image, from {@link #imageFeatures} or the tower (new ones in one batch). */
    private List<Tensor> encode(List<koala4j.io.image.Image> images, Cancel cancel) {
        List<String> keys = images.stream().map(VisionChat::digest).toList();
        Map<String, Tensor> found = new java.util.HashMap<>();
        List<koala4j.io.image.Image> missing = new ArrayList<>();
        List<String> missingKeys = new ArrayList<>();
        synchronized (imageFeatures) {
            for (int i = 0; i < images.size(); i++) {
                Tensor known = imageFeatures.get(keys.get(i));
                if (known != null) {
                    found.put(keys.get(i), known);
                } else if (!missingKeys.contains(keys.get(i))) {
                    missing.add(images.get(i));
                    missingKeys.add(keys.get(i));
                }
            }
        }
        if (!missing.isEmpty()) {
            List<Tensor> encoded = vision.encode(missing, llava, cancel);
            synchronized (imageFeatures) {
                for (int i = 0; i < missing.size(); i++) {
                    found.put(missingKeys.get(i), encoded.get(i));
                    imageFeatures.put(missingKeys.get(i), encoded.get(i));
                }
            }
        }
        return keys.stream().map(found::get).toList();
    }

    private static String digest(koala4j.io.image.Image image) {
        try {
            var sha = java.security.MessageDigest.getInstance("SHA-256");
            sha.update(java.nio.ByteBuffer.allocate(12).putInt(image.width()).putInt(image.height())
                    .putInt(image.channels()).array());
            return java.util.HexFormat.of().formatHex(sha.digest(image.pixels()));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }

    /** Forgets the cached conversations' keys and values and the cached image features (frees their memory). */
    public void clearCaches() {
        if (promptCaches != null) {
            promptCaches.clear();
        }
        synchronized (imageFeatures) {
            imageFeatures.clear();
        }
    }

    @Override
    public void close() {
        if (ownedDraft != null) {
            ownedDraft.close();
        }
        if (vision != null) {
            vision.close();
        }
        checkpoint.close();
    }
}
