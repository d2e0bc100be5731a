package koala4j.pipelines;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.tensor.Ops;
import koala4j.tokenizers.TextTokenizer;

/**
 * A small language model that drafts tokens for a larger one (speculative decoding: llama.cpp's {@code -md} with
 * {@code --draft-max} / {@code --draft-p-min}, transformers' {@code assistant_model}): the draft model continues the
 * sequence greedily, up to {@code max} tokens and while its likeliest token has at least probability {@code pMin},
 * and the target checks all of them in one forward pass (see {@link TextGeneration}), keeping them up to the first
 * it would not have chosen. The answer is the target's own, token for token and draw for draw; only the number of
 * target passes changes. The draft sees the prompt's token ids (image positions as its unknown token) and the
 * answer so far, not the images. Any LLaMA-family folder (a LLaVA folder drafts with its language model) whose
 * tokenizer spells every shared id as the target's does.
 */
public final class DraftModel implements AutoCloseable {

    /**
     * @param max  drafted tokens per target pass at most (llama.cpp's --draft-max, default 16)
     * @param pMin drafting stops before a token the draft model gives less than this probability (llama.cpp's
     *             --draft-p-min, default 0.75; 0 drafts {@code max} tokens whatever their probability)
     */
    public record Settings(int max, double pMin) {

        public static final int DEFAULT_MAX = 16;
        public static final double DEFAULT_P_MIN = 0.75;

        public Settings {
            if (max < 1 || !(pMin >= 0 && pMin <= 1)) {
                throw new IllegalArgumentException(String.format(Locale.ROOT, "draft of %d tokens at probability %s "
                        + "or more: expected at least 1 token and a probability from 0 to 1", max, pMin));
            }
        }

        /**
         * The settings of the command-line options {@code maxOption} and {@code pMinOption} (null: the default) that
         * go with {@code modelOption} (null: no draft model, then the two must be absent), which does not go with
         * {@code lookupOption} drafting {@code lookup} tokens (null or 0: off).
         */
        public static Settings fromOptions(String modelOption, String model, String maxOption, Integer max,
                                           String pMinOption, Double pMin, String lookupOption, Integer lookup) {
            if (model == null && (max != null || pMin != null)) {
                throw new IllegalArgumentException((max != null ? maxOption : pMinOption) + " needs " + modelOption);
            }
            if (model != null && lookup != null && lookup > 0) {
                throw new IllegalArgumentException(modelOption + " and " + lookupOption + " " + lookup + ": both "
                        + "draft tokens; choose one");
            }
            return fromOptions(maxOption, max, pMinOption, pMin);
        }

        /** The settings of the command-line options {@code maxOption} and {@code pMinOption} (null: the default). */
        public static Settings fromOptions(String maxOption, Integer max, String pMinOption, Double pMin) {
            if (max != null && max < 1) {
                throw new IllegalArgumentException(maxOption + " " + max + ": expected at least 1 drafted token");
            }
            if (pMin != null && !(pMin >= 0 && pMin <= 1)) {
                throw new IllegalArgumentException(pMinOption + " " + pMin + ": expected a probability from 0 to 1");
            }
            return new Settings(max != null ? max : DEFAULT_MAX, pMin != null ? pMin : DEFAULT_P_MIN);
        }
    }

    /**
     * Where a draft model comes from: a folder ({@code name} as the user gave it, e.g. a hub id; null: the folder's
     * name) and the drafting settings.
     */
    public record Source(Path folder, String name, Settings settings) {

        public Source {
            java.util.Objects.requireNonNull(folder, "draft model folder");
            java.util.Objects.requireNonNull(settings, "draft settings");
        }
    }

    private final VisionChat loaded;
    private final LlamaForCausalLM model;
    private final Settings settings;

    private DraftModel(VisionChat loaded, Settings settings) {
        this.loaded = loaded;
        this.model = loaded.languageModel();
        this.settings = settings;
    }

    /** Loads the draft model's folder as {@code chat} loads a model ({@code options}: quantisation, KV cache type). */
    public static DraftModel load(Path folder, String name, VisionChat.Options options, Settings settings, Ops ops) {
        return new DraftModel(VisionChat.load(folder, name, options, ops), settings);
    }

    /**
     * Loads {@code source} for a model loaded with {@code target}'s options: the same quantisation, KV cache type,
     * prefill chunk and hub client (and, for an original-layout LLaVA folder, which loads with its tower, the same
     * --vision-tower), no prompt cache, no prompt lookup.
     */
    static DraftModel load(Source source, VisionChat.Options target, Ops ops) {
        String tower = VisionChat.architectureOf(source.folder()) == VisionChat.Architecture.LLAVA_ORIGINAL
                ? target.visionTower() : null;
        return load(source.folder(), source.name(), new VisionChat.Options(target.quantization(), null, tower,
                target.frames(), target.hub(), 0, target.kvCache(), target.prefillChunk(), PromptLookup.NONE),
                source.settings(), ops);
    }

    /** The folder it was loaded from. */
    public Path folder() {
        return loaded.folder();
    }

    public Settings settings() {
        return settings;
    }

    public LlamaForCausalLM languageModel() {
        return model;
    }

    /** What was loaded, for the user. */
    public String describe() {
        return loaded.describe();
    }

    /**
     * Refuses a target whose tokenizer spells some id both know otherwise than the draft model's (llama.cpp checks
     * the same before drafting): drafts would then be other tokens than the draft model meant.
     *
     * @throws IllegalArgumentException naming both folders and the first id that differs
     */
    void checkCompatible(TextTokenizer target) {
        TextTokenizer own = loaded.tokenizer();
        int shared = Math.min(own.size(), target.size());
        for (int id = 0; id < shared; id++) {
            if (!Arrays.equals(own.tokenBytes(id), target.tokenBytes(id))) {
                throw new IllegalArgumentException(String.format(Locale.ROOT, "draft model %s: token %d is '%s' there "
                        + "and '%s' in %s; a draft model needs the target's vocabulary", loaded.folder(), id,
                        TextTokenizer.tokenText(own.tokenBytes(id)), TextTokenizer.tokenText(target.tokenBytes(id)),
                        target.folder()));
            }
        }
    }

    /** Ids the drafts may hold: both tokenizers and both models know them. */
    int sharedVocabulary(TextTokenizer target, int targetVocab) {
        return Math.min(Math.min(loaded.tokenizer().size(), target.size()),
                Math.min(targetVocab, model.config().vocabSize()));
    }

    /**
     * A drafter for one generation after {@code promptIds} (one id per target position; ids outside the shared
     * vocabulary, such as image positions, read as the draft tokenizer's unknown token, else 0), with a KV cache of
     * its own for the prompt, up to {@code maxNewTokens} answer tokens and a draft.
     */
    TextGeneration.Drafter session(int[] promptIds, int maxNewTokens, int shared) {
        int unknown = loaded.tokenizer().unkId().orElse(0);
        int[] prompt = new int[promptIds.length];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = promptIds[i] >= 0 && promptIds[i] < shared ? promptIds[i] : unknown;
        }
        return new Session(prompt, maxNewTokens, shared, unknown);
    }

    /** The draft model's side of one generation: its cache holds a prefix of prompt + answer + its own drafts. */
    private final class Session implements TextGeneration.Drafter {

        private final int[] prompt;
        private final int shared;
        private final int unknown;
        private final int[] cached;              // the token of each position in the cache
        private KvCache cache;

        Session(int[] prompt, int maxNewTokens, int shared, int unknown) {
            this.prompt = prompt;
            this.shared = shared;
            this.unknown = unknown;
            this.cached = new int[prompt.length + maxNewTokens + settings.max() + 1];
        }

        @Override
        public int[] draft(int[] answer, int count, int limit) {
            int k = Math.min(settings.max(), limit);
            if (k <= 0) {
                return new int[0];
            }
            if (cache == null) {
                cache = model.newCache(1, cached.length);
            }
            int length = prompt.length + count;
            int keep = 0;
            int held = cache.length();
            while (keep < held && keep < length - 1 && cached[keep] == token(answer, keep)) {
                keep++;
            }
            cache.truncate(keep);
            long[] input = new long[length - keep];
            for (int i = keep; i < length; i++) {
                input[i - keep] = token(answer, i);
                cached[i] = token(answer, i);
            }
            int[] drafts = new int[k];
            int made = 0;
            float[] logits = forward(input);
            while (true) {
                int best = 0;
                for (int v = 1; v < logits.length; v++) {
                    if (logits[v] > logits[best]) {
                        best = v;
                    }
                }
                if (best >= shared || settings.pMin() > 0 && probability(logits, best) < settings.pMin()) {
                    break;
                }
                drafts[made++] = best;
                if (made == k) {
                    break;
                }
                cached[cache.length()] = best;
                logits = forward(new long[] {best});
            }
            return Arrays.copyOf(drafts, made);
        }

        private int token(int[] answer, int position) {
            if (position < prompt.length) {
                return prompt[position];
            }
            int id = answer[position - prompt.length];
            return id >= 0 && id < shared ? id : unknown;
        }

        private float[] forward(long[] ids) {
            return model.forwardIds(model.ops().fromArray(ids, 1, ids.length), cache, true).toFloatArray();
        }
    }

    /** softmax(logits)[id], in double. */
    private static double probability(float[] logits, int id) {
        double max = logits[id];
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        return 1 / sum;
    }

    @Override
    public void close() {
        loaded.close();
    }
}
