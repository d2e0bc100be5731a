package koala4j.pipelines;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import koala4j.models.llama.KvCache;
import koala4j.models.llama.LlamaForCausalLM;
import koala4j.tensor.Tensor;
import koala4j.tokenizers.TextTokenizer;
import koala4j.tokenizers.Tokenizer;

/**
 * Autoregressive generation with a LLaMA-family model, as transformers' {@code generate} runs it for one sequence:
 * the whole prompt in one forward pass (filling the KV cache), then one forward pass per new token over that token
 * alone, or, with {@link SamplingParams#lookup}, over that token and the tokens {@link PromptLookup} drafts after it
 * (the same tokens in fewer passes). Token choice: {@link Sampler}; stop conditions in this order after each token:
 * end-of-sequence id (unless ignored), a stop string in the decoded text, max new tokens.
 *
 * <p>The prompt is token ids, or input embeddings (LLaVA splices image features into them) with the ids that the
 * repetition penalty counts. Immutable; {@link #generate} may run on several threads at once, each call with its own
 * cache.
 */
public final class TextGeneration {

    /** Receives each token as it is chosen, on the generating thread. */
    @FunctionalInterface
    public interface TokenListener {
        /**
         * {@code id} is the new token; {@code textDelta} the text that became final with it (empty while a
         * multi-byte character or a possible stop string is incomplete, and for end-of-sequence tokens). After the
         * last token, text still held back (when generation ends without completing a stop string) comes in one
         * more call with id -1.
         */
        void onToken(int id, String textDelta);

        /**
         * How many most likely tokens {@link #onLogprobs} lists besides the chosen one; -1 (the default): no
         * log-probabilities are computed.
         */
        default int topLogprobs() {
            return -1;
        }

        /** Whether {@link #onPromptLogprobs} gets the prompt's tokens' log-probabilities (needs topLogprobs >= 0). */
        default boolean promptLogprobs() {
            return false;
        }

        /** The log-probabilities of the token {@link #onToken} gets next (each generated token, eos included). */
        default void onLogprobs(TokenLogprobs token) {
        }

        /**
         * Once before the first new token: one per prompt token, each given the ones before it; the first has
         * none (NaN, no alternatives).
         */
        default void onPromptLogprobs(List<TokenLogprobs> prompt) {
        }

        TokenListener NONE = (id, delta) -> {
        };
    }

    /**
     * A token's log-probability under the model's distribution at its position (log-softmax of the raw logits, before
     * any processor, temperature or warper: vLLM's default), and the {@code topIds.length} most likely tokens with
     * theirs, most likely first (equal ones by id).
     */
    public record TokenLogprobs(int id, float logprob, int[] topIds, float[] topLogprobs) {

        /** From one position's logits. */
        static TokenLogprobs of(float[] logits, int from, int vocab, int id, int top) {
            float[] row = from == 0 && logits.length == vocab ? logits : Arrays.copyOfRange(logits, from, from + vocab);
            float[] logp = LogitsProcessing.logSoftmax(row);
            int k = Math.min(top, vocab);
            int[] ids = new int[k];
            int size = 0;
            for (int i = 0; i < vocab && k > 0; i++) {
                // insertion into the k best so far (k <= 20): strictly greater moves up, so equal ones keep id order
                if (size < k || logp[i] > logp[ids[size - 1]]) {
                    int at = size < k ? size++ : size - 1;
                    while (at > 0 && logp[i] > logp[ids[at - 1]]) {
                        ids[at] = ids[at - 1];
                        at--;
                    }
                    ids[at] = i;
                }
            }
            float[] values = new float[k];
            for (int i = 0; i < k; i++) {
                values[i] = logp[ids[i]];
            }
            return new TokenLogprobs(id, logp[id], ids, values);
        }
    }

    /**
     * Why generation ended; {@code FORMAT}: the JSON object of a JSON {@link SamplingParams.Format} closed;
     * {@code MAX_TIME}: transformers' max_time passed (checked after each new token, so there is at least one).
     */
    public enum StopReason { EOS, STOP_STRING, MAX_NEW_TOKENS, FORMAT, MAX_TIME }

    /**
     * The decode passes of a generation, the tokens {@link PromptLookup} drafted for them and how many of those the
     * model chose; without prompt lookup every pass adds one token and nothing is drafted.
     */
    public record Drafts(int passes, int proposed, int accepted) {

        /** The share of drafted tokens kept (0 when none were drafted). */
        public double acceptance() {
            return proposed == 0 ? 0 : (double) accepted / proposed;
        }
    }

    /**
     * The new tokens (an end-of-sequence token included, as transformers returns it), their text (without
     * end-of-sequence tokens, cut before a stop string; empty without a tokenizer), why generation stopped, and
     * timings: the prompt pass, and the decode passes, which added {@code decodeSteps} positions (one per token
     * after the first); {@code drafts}: how many passes that took and how prompt lookup fared.
     */
    public record Result(int[] tokenIds, String text, StopReason stopReason, int promptTokens, Duration promptTime,
                         int decodeSteps, Duration decodeTime, int reusedPromptTokens, Drafts drafts) {

        /** Prompt positions computed per second (those taken from a {@link PromptCache} cost nothing). */
        public double promptTokensPerSecond() {
            return (promptTokens - reusedPromptTokens) / seconds(promptTime);
        }

        /** Tokens the decode passes added per second (one pass each without prompt lookup). */
        public double decodeTokensPerSecond() {
            return decodeSteps == 0 ? 0 : decodeSteps / seconds(decodeTime);
        }

        private static double seconds(Duration d) {
            return Math.max(d.toNanos(), 1) / 1e9;
        }
    }

    private final LlamaForCausalLM model;
    private final Tokenizer tokenizer;
    private final DecodeBatcher batcher;
    private volatile byte[][] tokenBytes;

    /** {@code tokenizer} may be null when no text and no stop strings are needed. */
    public TextGeneration(LlamaForCausalLM model, Tokenizer tokenizer) {
        this(model, tokenizer, null);
    }

    /**
     * With {@code batcher} (null: none), concurrent generations of this model decode together (beam search keeps
     * its own batch of beams).
     */
    public TextGeneration(LlamaForCausalLM model, Tokenizer tokenizer, DecodeBatcher batcher) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.batcher = batcher;
    }

    public Result generate(int[] promptIds, SamplingParams params, TokenListener listener, Cancel cancel) {
        return generate(embedIds(model, promptIds), promptIds, params, listener, cancel);
    }

    /** The input embeddings [1, N, C] of one sequence of token ids. */
    static Tensor embedIds(LlamaForCausalLM model, int[] ids) {
        return model.embed(model.ops().fromArray(Arrays.stream(ids).asLongStream().toArray(), 1, ids.length));
    }

    /**
     * Generates after {@code promptEmbeds} [1, N, C]; {@code promptIds} are the prompt's token ids for the repetition
     * penalty (their count need not be N: an image placeholder may stand for many embedding rows).
     */
    public Result generate(Tensor promptEmbeds, int[] promptIds, SamplingParams params, TokenListener listener,
                           Cancel cancel) {
        return generate(promptEmbeds, promptIds, params, listener, cancel, null);
    }

    /**
     * {@link #generate(Tensor, int[], SamplingParams, TokenListener, Cancel)} that resumes from {@code cache} (may be
     * null): the prompt positions whose embeddings equal the cached ones, from the start, are not computed again, and
     * the cache is left holding this prompt and the tokens generated after it for the next call. Beam search
     * ({@link SamplingParams#beams}) neither reads nor changes it.
     */
    public Result generate(Tensor promptEmbeds, int[] promptIds, SamplingParams params, TokenListener listener,
                           Cancel cancel, PromptCache promptCache) {
        return generate(promptEmbeds, promptIds, params, listener, cancel, promptCache,
                promptCache == null ? null : PromptCache.rows(promptEmbeds),
                promptIds.length == promptEmbeds.size(1) ? promptIds : null);
    }

    /** KV cache positions a generation needs: the prompt and every new token (at least one). */
    static int cacheCapacity(int promptLength, SamplingParams params) {
        return promptLength + Math.max(params.maxNewTokens(), 1);
    }

    /**
     * The same with the prompt's embedding rows ({@link PromptCache#rows}) already taken out, for the cache, and
     * {@code rowIds}, the token id of each embedding row (null when images stand among them), which the prompt's
     * log-probabilities need.
     */
    Result generate(Tensor promptEmbeds, int[] promptIds, SamplingParams params, TokenListener listener,
                    Cancel cancel, PromptCache promptCache, float[][] promptRows, int[] rowIds) {
        return generate(promptEmbeds, promptIds, params, listener, cancel, promptCache, promptRows, rowIds, null, null);
    }

    /**
     * Drafts tokens to follow a generation's answer so far (a {@link DraftModel}'s session); one forward pass of the
     * model checks them as it checks {@link PromptLookup}'s.
     */
    interface Drafter {

        /** Up to {@code limit} tokens to follow the prompt and {@code answer[0, count)}; none: an empty array. */
        int[] draft(int[] answer, int count, int limit);
    }

    /**
     * The same from {@code shared} (null: none), this prompt already computed by {@link #prefill}: a copy of its KV
     * cache and logits starts this generation, which computes nothing of the prompt ({@code promptCache}, when
     * given, only keeps what this generation leaves). With {@code drafter} (null: none) its drafts are checked
     * instead of prompt lookup's.
     */
    Result generate(Tensor promptEmbeds, int[] promptIds, SamplingParams params, TokenListener listener,
                    Cancel cancel, PromptCache promptCache, float[][] promptRows, int[] rowIds, Prompt shared,
                    Drafter drafter) {
        long started = System.nanoTime();                     // MaxTimeCriteria's clock starts before the prompt
        checkPromptEmbeds(promptEmbeds);
        if (!params.stopStrings().isEmpty() && tokenizer == null) {
            throw new IllegalArgumentException("stop strings " + params.stopStrings() + " need a tokenizer to decode");
        }
        int top = listener.topLogprobs();
        boolean promptLogprobs = top >= 0 && listener.promptLogprobs();
        if (params.beams().numBeams() > 1 && params.maxNewTokens() > 0) {
            checkBeams(params, List.of(listener));
            return beamSearch(promptEmbeds, promptIds, params, List.of(listener), cancel).getFirst();
        }
        JsonOutput json = params.format().json() ? new JsonOutput(tokenBytes(), params.format().schema()) : null;
        if (promptLogprobs && rowIds == null) {
            throw new IllegalArgumentException("prompt log-probabilities need a prompt of tokens only (one token per "
                    + "position; images stand among these " + promptEmbeds.size(1) + " positions)");
        }
        int n = promptEmbeds.size(1);
        int capacity = cacheCapacity(n, params);
        if (shared != null && (promptLogprobs || shared.cache().length() != n)) {
            throw new IllegalArgumentException("a computed prompt of " + shared.cache().length() + " positions for a "
                    + "prompt of " + n + (promptLogprobs ? " whose log-probabilities are asked for" : ""));
        }
        Sampler sampler = new Sampler(params, json);
        long maxTime = (long) (params.constraints().maxTime() * 1e9);
        Set<Integer> eos = new HashSet<>(params.eosTokenIds());
        StopStrings stops = new StopStrings(params.stopStrings());
        int[] history = Arrays.copyOf(promptIds, promptIds.length + params.maxNewTokens());
        int historyLength = promptIds.length;
        int[] out = new int[params.maxNewTokens()];
        int count = 0;
        StopReason reason = StopReason.MAX_NEW_TOKENS;
        Streamer streamer = new Streamer(stops);

        Prompt prompt = shared != null ? shared.copy(model, capacity)
                : prompt(promptEmbeds, capacity, promptCache, promptRows, promptLogprobs ? rowIds : null, top,
                        listener, params.maxNewTokens() > 0, cancel);
        KvCache cache = prompt.cache();
        int promptPositions = cache.length();      // n, or none when no token is to follow the prompt
        float[] rows = prompt.logits();            // [R, V]: the logits after each position the last pass added
        int vocab = rows == null ? 0 : rows.length;
        int[] drafts = NO_DRAFTS;                  // the tokens after the first that the last pass took as input
        PromptLookup lookup = params.lookup();
        int passes = 0;
        int proposed = 0;
        int accepted = 0;
        long t1 = System.nanoTime();
        try (DecodeBatcher.Seat seat = batcher == null ? null : batcher.seat()) {
            while (count < params.maxNewTokens()) {
                cancel.check();
                StopReason stop = null;
                int id = -1;
                int used = 0;                      // rows whose token was chosen
                while (used <= drafts.length) {
                    float[] logits = drafts.length == 0 ? rows
                            : Arrays.copyOfRange(rows, used * vocab, (used + 1) * vocab);
                    id = sampler.next(logits, history, historyLength, promptIds.length);
                    if (top >= 0) {
                        listener.onLogprobs(TokenLogprobs.of(logits, 0, vocab, id, top));
                    }
                    out[count++] = id;
                    history[historyLength++] = id;
                    used++;
                    if (json != null) {
                        json.advance(id);
                    }
                    stop = emit(id, eos, params, streamer, listener);
                    if (stop == null && json != null && json.complete()) {
                        stop = StopReason.FORMAT;
                    }
                    if (stop == null && maxTime > 0 && System.nanoTime() - started > maxTime) {
                        stop = StopReason.MAX_TIME;
                    }
                    if (stop != null || count == params.maxNewTokens() || used > drafts.length
                            || drafts[used - 1] != id) {
                        break;
                    }
                    accepted++;                    // the next row's input was this token
                }
                // positions after the last chosen token's input hold rejected drafts
                cache.truncate(cache.length() - (drafts.length + 1 - used));
                if (stop != null) {
                    reason = stop;
                    break;
                }
                if (count == params.maxNewTokens()) {
                    break;
                }
                int limit = draftLimit(params, count, cache);
                drafts = drafter != null ? drafter.draft(out, count, limit)
                        : lookup.enabled() ? lookup.draft(history, historyLength, limit, eos) : NO_DRAFTS;
                if (drafts.length == 0) {
                    rows = batcher != null ? batcher.step(id, cache) : model.forwardIds(
                            model.ops().fromArray(new long[] {id}, 1, 1), cache, true).toFloatArray();
                } else {
                    long[] input = new long[drafts.length + 1];
                    input[0] = id;
                    for (int j = 0; j < drafts.length; j++) {
                        input[j + 1] = drafts[j];
                    }
                    rows = model.forwardIds(model.ops().fromArray(input, 1, input.length), cache, false).toFloatArray();
                    proposed += drafts.length;
                }
                passes++;
            }
        }
        long t2 = System.nanoTime();
        int fed = cache.length() - promptPositions;
        if (promptCache != null && params.maxNewTokens() > 0) {
            promptCache.keep(cache, promptRows, model, Arrays.copyOf(out, fed), prompt.widest());
        }
        return new Result(Arrays.copyOf(out, count), finish(streamer, listener), reason, n, prompt.time(),
                fed, Duration.ofNanos(t2 - t1), prompt.reused(), new Drafts(passes, proposed, accepted));
    }

    private static final int[] NO_DRAFTS = new int[0];

    /**
     * Drafts one pass may check after the {@code count}-th new token: the pass gives at most one token more than it
     * has drafts, and it stays within the positions where the model's rope frequencies do not depend on the length
     * of the call (there a pass over several positions would rotate them unlike one token at a time).
     */
    private int draftLimit(SamplingParams params, int count, KvCache cache) {
        long ropeRoom = (long) model.ropeLengthDependentAbove() - cache.length() - 1;
        return (int) Math.max(0, Math.min(params.maxNewTokens() - count - 1, ropeRoom));
    }

    /**
     * A prompt in a KV cache: the cache, the last position's logits [V] (null when no token is to follow), how many
     * positions came from a {@link PromptCache}, the longest prompt computed in one call among those that made its
     * positions, and how long computing the others took.
     */
    record Prompt(KvCache cache, float[] logits, int reused, int widest, Duration time) {

        /** The same in a KV cache of its own with room for {@code capacity} positions. */
        Prompt copy(LlamaForCausalLM model, int capacity) {
            KvCache own = model.newCache(1, capacity);
            own.copyPrefix(cache, cache.length());
            return new Prompt(own, logits == null ? null : logits.clone(), reused, widest, time);
        }
    }

    /**
     * Computes a prompt once for several generations from it ({@link #generate} with {@code shared}), in a KV cache
     * with room for {@code capacity} positions: from {@code promptCache} (may be null) as a generation would, which
     * holds none of it afterwards (a generation's {@link PromptCache#keep} gives it positions again).
     */
    Prompt prefill(Tensor promptEmbeds, int capacity, PromptCache promptCache, float[][] promptRows, Cancel cancel) {
        return prompt(promptEmbeds, capacity, promptCache, promptRows, null, -1, TokenListener.NONE, true, cancel);
    }

    /**
     * The prompt's positions in a new KV cache or in {@code promptCache}'s, reusing what it shares; with
     * {@code scoredIds} (each position's token) every position's logits are computed and their log-probabilities
     * go to {@code listener}; {@code logits}: whether the last position's are wanted at all. {@code cancel} is
     * checked before each chunk of the model's {@link LlamaForCausalLM#prefillChunk} positions.
     */
    private Prompt prompt(Tensor promptEmbeds, int capacity, PromptCache promptCache, float[][] promptRows,
                          int[] scoredIds, int top, TokenListener listener, boolean logits, Cancel cancel) {
        int n = promptEmbeds.size(1);
        int reused = 0;
        int widest = n;
        KvCache cache;
        if (promptCache == null) {
            cache = model.newCache(1, capacity);
        } else {
            // positions taken from the cache have no logits: scoring the prompt computes all of it
            reused = scoredIds != null ? 0 : promptCache.sharedPrefix(promptRows, promptCache.reusable(model, n));
            widest = reused == 0 ? n : Math.max(n, promptCache.widestCall);
            cache = promptCache.take(model, capacity, reused);
        }
        long t0 = System.nanoTime();
        Tensor uncached = reused == 0 ? promptEmbeds : promptEmbeds.slice(1, reused, n);
        float[] last = null;                                                                 // [V]
        if (scoredIds != null) {
            float[] all = model.forward(uncached, cache, false, cancel::check).toFloatArray();  // [1, N, V]
            int vocab = all.length / n;
            List<TokenLogprobs> scored = new ArrayList<>(n);
            scored.add(new TokenLogprobs(scoredIds[0], Float.NaN, new int[0], new float[0]));
            for (int i = 1; i < n; i++) {
                scored.add(TokenLogprobs.of(all, (i - 1) * vocab, vocab, scoredIds[i], top));
            }
            listener.onPromptLogprobs(scored);
            last = Arrays.copyOfRange(all, (n - 1) * vocab, n * vocab);
        } else if (logits) {
            last = model.forward(uncached, cache, true, cancel::check).toFloatArray();          // [1, 1, V]
        }
        return new Prompt(cache, last, reused, widest, Duration.ofNanos(System.nanoTime() - t0));
    }

    /** Every token's bytes for JSON output, built on first use. */
    private byte[][] tokenBytes() {
        byte[][] table = tokenBytes;
        if (table == null) {
            if (!(tokenizer instanceof TextTokenizer text)) {
                throw new IllegalArgumentException("JSON output needs the model's tokenizer (its tokens' bytes)");
            }
            tokenBytes = table = JsonOutput.table(text);
        }
        return table;
    }

    /** Hands one new token to the listener (its text through the streamer); why to stop after it, or null. */
    private StopReason emit(int id, Set<Integer> eos, SamplingParams params, Streamer streamer,
                            TokenListener listener) {
        boolean isEos = eos.contains(id);
        if (isEos && !params.ignoreEos()) {
            listener.onToken(id, "");
            return StopReason.EOS;
        }
        if (tokenizer != null && !isEos) {
            streamer.add(id);
            listener.onToken(id, streamer.advance(tokenizer, false));
            return streamer.stopped() ? StopReason.STOP_STRING : null;
        }
        listener.onToken(id, "");
        return null;
    }

    /** The text held back for a possible stop string, then the whole output text ("" without a tokenizer). */
    private String finish(Streamer streamer, TokenListener listener) {
        if (tokenizer == null) {
            return "";
        }
        String rest = streamer.advance(tokenizer, true);
        if (!rest.isEmpty()) {
            listener.onToken(-1, rest);
        }
        return streamer.text();
    }

    /**
     * transformers' beam search ({@link BeamSearch}) after the prompt: the prompt is computed once and its keys and
     * values copied to every beam (the reference computes it per beam, to the same values); the processors work on
     * each beam's log-probabilities with {@code promptIds} + the beam's tokens as its sequence, and the search ends
     * at eos or max_new_tokens as there. The best hypothesis then goes to the listener token by token at the end
     * (nothing streams while beams compete), where stop strings cut it as they cut a greedy reply.
     */
    private List<Result> beamSearch(Tensor promptEmbeds, int[] promptIds, SamplingParams params,
                                    List<TokenListener> listeners, Cancel cancel) {
        int beams = params.beams().numBeams();
        int n = promptEmbeds.size(1);
        int capacity = cacheCapacity(n, params);
        checkBeamMemory(beams, capacity);
        long t0 = System.nanoTime();
        KvCache prompt = model.newCache(1, n);
        float[] first = model.forward(promptEmbeds, prompt, true, cancel::check).toFloatArray();  // [V]
        KvCache cache = model.newCache(beams, capacity);
        cache.broadcastFrom(prompt);
        long t1 = System.nanoTime();
        int vocab = first.length;
        int[] decodeSteps = {0};
        BeamSearch.Decoder decoder = new BeamSearch.Decoder() {
            private boolean started;

            @Override
            public float[] step(long[] last) {
                if (!started) {
                    started = true;
                    float[] all = new float[beams * vocab];
                    for (int b = 0; b < beams; b++) {
                        System.arraycopy(first, 0, all, b * vocab, vocab);
                    }
                    return all;
                }
                decodeSteps[0]++;
                return model.forwardIds(model.ops().fromArray(last, beams, 1), cache, true).toFloatArray();
            }

            @Override
            public void reorder(long[] rows) {
                cache.reorder(rows);
            }
        };
        List<Integer> eosIds = params.ignoreEos() ? List.of() : params.eosTokenIds();
        var settings = new BeamSearch.Settings(beams, promptIds.length + params.maxNewTokens(),
                params.beams().lengthPenalty(), params.beams().earlyStopping(), eosIds,
                eosIds.isEmpty() ? -1 : eosIds.getFirst(), params.doSample(), params.seed());
        long[] promptLong = Arrays.stream(promptIds).asLongStream().toArray();
        long[][] top = BeamSearch.runTop(decoder, new long[][] {promptLong}, vocab, settings,
                (scores, sequence, length, keep) -> process(scores, sequence, length, promptIds.length, params, keep),
                Progress.NONE, cancel, listeners.size())[0];
        long t2 = System.nanoTime();

        Set<Integer> eos = new HashSet<>(params.eosTokenIds());
        List<Result> results = new ArrayList<>(top.length);
        for (int h = 0; h < top.length; h++) {
            long[] hypothesis = top[h];
            TokenListener listener = listeners.get(h);
            Streamer streamer = new Streamer(new StopStrings(params.stopStrings()));
            int[] out = new int[hypothesis.length - promptIds.length];
            int count = 0;
            StopReason reason = StopReason.MAX_NEW_TOKENS;
            for (int i = promptIds.length; i < hypothesis.length; i++) {
                int id = (int) hypothesis[i];
                out[count++] = id;
                StopReason stop = emit(id, eos, params, streamer, listener);
                if (stop != null) {
                    reason = stop;
                    break;
                }
            }
            results.add(new Result(Arrays.copyOf(out, count), finish(streamer, listener), reason, n,
                    Duration.ofNanos(t1 - t0), decodeSteps[0], Duration.ofNanos(t2 - t1), 0,
                    new Drafts(decodeSteps[0], 0, 0)));
        }
        return results;
    }

    /**
     * generate(num_beams=B, num_return_sequences=R) with R = {@code listeners.size()} (1 to B): the R best finished
     * hypotheses of one beam search after {@code promptEmbeds} [1, N, C], best first, hypothesis i streamed to
     * {@code listeners.get(i)} at the end. Every result carries the whole search's timings.
     */
    public List<Result> beamHypotheses(Tensor promptEmbeds, int[] promptIds, SamplingParams params,
                                       List<TokenListener> listeners, Cancel cancel) {
        checkPromptEmbeds(promptEmbeds);
        int beams = params.beams().numBeams();
        if (listeners.isEmpty() || listeners.size() > beams) {
            throw new IllegalArgumentException("num_return_sequences " + listeners.size() + " with num_beams " + beams
                    + ": expected 1 to num_beams (the best hypotheses of one beam search)");
        }
        if (beams == 1 || params.maxNewTokens() == 0) {
            return listeners.stream().map(l -> generate(promptEmbeds, promptIds, params, l, cancel)).toList();
        }
        checkBeams(params, listeners);
        return beamSearch(promptEmbeds, promptIds, params, listeners, cancel);
    }

    /** One sequence's prompt embeddings: [1, N >= 1, C]. */
    private static void checkPromptEmbeds(Tensor promptEmbeds) {
        if (promptEmbeds.rank() != 3 || promptEmbeds.size(0) != 1 || promptEmbeds.size(1) == 0) {
            throw new IllegalArgumentException("prompt embeddings of shape "
                    + Arrays.toString(promptEmbeds.shape()) + ", expected [1, N >= 1, C]");
        }
    }

    /** What beam search does not do: per-token log-probabilities, JSON output, max_time. */
    private static void checkBeams(SamplingParams params, List<TokenListener> listeners) {
        int beams = params.beams().numBeams();
        if (listeners.stream().anyMatch(l -> l.topLogprobs() >= 0)) {
            throw new IllegalArgumentException("log-probabilities with num_beams " + beams
                    + ": not supported (beam search scores whole hypotheses; use one beam)");
        }
        if (params.format().json()) {
            throw new IllegalArgumentException("JSON output with num_beams " + beams
                    + ": not supported (use one beam)");
        }
        if (params.constraints().maxTime() > 0) {
            throw new IllegalArgumentException("max_time with num_beams " + beams + ": not supported (use one beam)");
        }
    }

    /**
     * A clear error, before anything is allocated, when the beams' KV caches (one per beam) and per-step scores
     * (logits, log-probabilities, accumulated scores: beams x vocab floats each) cannot fit in the free heap.
     */
    private void checkBeamMemory(int beams, int capacity) {
        var c = model.config();
        double cache = (double) KvCache.bytesPerPosition(c, model.kvCacheType()) * capacity * beams;
        double scores = 3.0 * beams * c.vocabSize() * Float.BYTES;
        double free = freeHeapBytes();
        if (cache + scores > free) {
            throw new IllegalArgumentException(("num_beams %d: the beams' KV caches (%d positions each) and scores need "
                    + "%.2f GB, the Java heap has %.2f GB free (fewer beams, fewer new tokens or a larger -Xmx)")
                    .formatted(beams, capacity, (cache + scores) / 1e9, free / 1e9));
        }
    }

    /** Bytes the Java heap can still grow into (its maximum less what is in use; KV caches live there). */
    static long freeHeapBytes() {
        Runtime rt = Runtime.getRuntime();
        return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    }

    /**
     * The processors of one beam's log-probabilities, in generate()'s order: those of {@link Sampler#process} with
     * the prompt + the beam's tokens as the sequence, then (beam sampling) the warpers keeping at least
     * {@code minTokensToKeep}, then renormalize_logits' log-softmax, which changes the beams' scores.
     */
    private static void process(float[] scores, long[] sequence, int length, int promptLength, SamplingParams params,
                                int minTokensToKeep) {
        int[] history = new int[length];
        for (int i = 0; i < length; i++) {
            history[i] = (int) sequence[i];
        }
        Sampler.process(scores, history, length, promptLength, params);
        if (params.doSample()) {
            Sampler.warp(scores, params, minTokensToKeep);
        }
        if (params.processors().renormalizeLogits()) {
            System.arraycopy(LogitsProcessing.logSoftmax(scores), 0, scores, 0, scores.length);
        }
    }

    /**
     * The keys and values of one model's last generation, with the input embedding of every position they hold, so
     * that a next prompt starting with the same embeddings (the same conversation one turn later, or the same
     * system prompt and image) resumes after them instead of computing them again, as llama.cpp's prompt cache
     * does. Positions are compared by their exact embedding, so a changed image or token invalidates everything
     * after it. Holds one KV cache (2 * layers * KV heads * head dim * 4 bytes per position) until {@link #clear}.
     * Used by one generation at a time; not thread-safe.
     */
    public static final class PromptCache {
        private KvCache kv;
        private float[][] rows = new float[0][];
        private int promptLength;
        /** The longest prompt computed in one forward call among those that computed the held positions. */
        private int widestCall;

        /** Positions a next prompt can reuse. */
        public int length() {
            return rows.length;
        }

        /** How many of those positions were the last reply's prompt (the rest are its answer). */
        int promptLength() {
            return promptLength;
        }

        /** Forgets the positions and frees the KV cache. */
        public void clear() {
            kv = null;
            rows = new float[0][];
            promptLength = 0;
            widestCall = 0;
        }

        /**
         * How many leading positions of an n-position prompt may come from this cache: n - 1 (the last position is
         * always computed, its logits choose the first new token), or none when the model's rope frequencies depend
         * on the sequence length (dynamic NTK, LongRoPE) and this prompt or the call that computed the cached keys
         * reaches past the length where they start to: one call over the whole prompt, as the reference makes,
         * would rotate every position differently.
         */
        int reusable(LlamaForCausalLM model, int n) {
            if (rows.length == 0 || n <= 1) {
                return 0;
            }
            return Math.max(n, widestCall) > model.ropeLengthDependentAbove() ? 0 : n - 1;
        }

        /**
         * Holds the first {@code shared} positions of {@code source} (copied keys and values) in a KV cache with room
         * for {@code capacity}, dropping what this held: another conversation's prefix (a system prompt) without
         * taking over that conversation's cache.
         */
        void forkFrom(PromptCache source, int shared, LlamaForCausalLM model, int capacity) {
            KvCache target = kv != null && kv.capacity() >= capacity ? kv : model.newCache(1, capacity);
            target.copyPrefix(source.kv, shared);
            kv = target;
            rows = Arrays.copyOf(source.rows, shared);
            promptLength = shared;
            widestCall = source.widestCall;
        }

        static float[][] rows(Tensor embeds) {
            int n = embeds.size(1);
            int c = embeds.size(2);
            float[] all = embeds.toFloatArray();
            float[][] out = new float[n][];
            for (int i = 0; i < n; i++) {
                out[i] = Arrays.copyOfRange(all, i * c, (i + 1) * c);
            }
            return out;
        }

        /** Leading positions of {@code prompt} equal to the cached ones, at most {@code limit}. */
        int sharedPrefix(float[][] prompt, int limit) {
            int max = Math.min(Math.min(rows.length, prompt.length), limit);
            int i = 0;
            while (i < max && Arrays.equals(rows[i], prompt[i])) {
                i++;
            }
            return i;
        }

        /**
         * The KV cache to generate into, holding the first {@code reused} cached positions and room for
         * {@code capacity}; the positions are forgotten until {@link #keep} (a failed generation leaves none).
         */
        KvCache take(LlamaForCausalLM model, int capacity, int reused) {
            rows = new float[0][];
            promptLength = 0;
            if (kv != null && kv.capacity() >= capacity) {
                kv.truncate(reused);
                return kv;
            }
            KvCache fresh = model.newCache(1, capacity);
            if (reused > 0) {
                fresh.copyPrefix(kv, reused);
            }
            kv = fresh;
            return fresh;
        }

        /**
         * After a generation: the cache holds the prompt and the {@code fed} tokens after it; {@code widest} is the
         * longest prompt computed in one call among those that made its positions.
         */
        void keep(KvCache cache, float[][] prompt, LlamaForCausalLM model, int[] fed, int widest) {
            float[][] all = Arrays.copyOf(prompt, prompt.length + fed.length);
            if (fed.length > 0) {
                System.arraycopy(rows(embedIds(model, fed)), 0, all, prompt.length, fed.length);
            }
            if (cache.length() != all.length) {
                throw new IllegalStateException("KV cache holds " + cache.length() + " positions, expected "
                        + all.length);
            }
            kv = cache;
            rows = all;
            promptLength = prompt.length;
            widestCall = widest;
        }
    }

    /**
     * The decoded output so far and how much of it the listener has seen. Text becomes final when it no longer
     * ends in an incomplete character (U+FFFD from a partial UTF-8 byte sequence) and cannot be the start of a
     * stop string.
     */
    private static final class Streamer {
        private final StopStrings stops;
        private int[] ids = new int[16];
        private int count;
        private String text = "";
        private int emitted;
        private int searched;
        private boolean stopped;

        Streamer(StopStrings stops) {
            this.stops = stops;
        }

        void add(int id) {
            if (count == ids.length) {
                ids = Arrays.copyOf(ids, 2 * count);
            }
            ids[count++] = id;
        }

        boolean stopped() {
            return stopped;
        }

        String text() {
            return text;
        }

        /** Decodes everything, checks stop strings, returns the newly final text ({@code flush}: all of it). */
        String advance(Tokenizer tokenizer, boolean flush) {
            if (!stopped) {
                String decoded = tokenizer.decode(Arrays.copyOf(ids, count));
                int at = stops.isEmpty() ? -1 : stops.find(decoded, searched);
                searched = decoded.length();
                if (at >= 0) {
                    decoded = decoded.substring(0, at);
                    stopped = true;
                    flush = true;
                }
                text = decoded;
            }
            int end = text.length();
            if (!flush) {
                int run = count;
                while (run > 0 && tokenizer.openEnded(ids[run - 1])) {
                    run--;
                }
                if (run < count && !stopped) {
                    // a trailing run of byte tokens may still turn into U+FFFDs: only what precedes it is final
                    String before = tokenizer.decode(Arrays.copyOf(ids, run));
                    int common = 0;
                    while (common < Math.min(before.length(), end) && before.charAt(common) == text.charAt(common)) {
                        common++;
                    }
                    end = common;
                }
                while (end > emitted && text.charAt(end - 1) == '\uFFFD') {
                    end--;
                }
                end -= stops.pendingSuffix(text.substring(0, end));
            }
            if (end <= emitted) {
                return "";
            }
            String delta = text.substring(emitted, end);
            emitted = end;
            return delta;
        }
    }
}
