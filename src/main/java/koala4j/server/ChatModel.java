package koala4j.server;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import koala4j.pipelines.Cancel;
import koala4j.pipelines.JsonSchema;

/**
 * A chat model behind {@code POST /v1/chat/completions} and {@code POST /v1/completions}: a vision-language model
 * (text and image parts) or a
 * text-to-text model. The server parses OpenAI messages into {@link Message}s (images from {@code data:} URLs only)
 * and streams whatever {@link #complete} hands to the callback as SSE chunks. Implementations are thread-safe.
 */
public interface ChatModel {

    String id();

    String displayName();

    /**
     * Loads the model now instead of at its first request ({@code serve --chat-preload}); a model that cannot be
     * loaded throws as its requests would (the cause attached).
     */
    default void load() {
    }

    /** Runs one completion; every piece of text goes to {@code stream} as it is produced (which may throw
     * {@link java.util.concurrent.CancellationException} when the client has gone: stop then). */
    Result complete(List<Message> messages, Params params, Stream stream) throws Exception;

    /**
     * {@code POST /v1/completions}: the prompt as given, without a chat template; streamed as {@link #complete}. A
     * model without a raw mode answers it as one user message.
     */
    default Result completeText(String prompt, Params params, Stream stream) throws Exception {
        return complete(List.of(new Message("user", List.of(new TextPart(prompt)))), params, stream);
    }

    /**
     * OpenAI's {@code n}: one answer per stream to the same messages, choice i with {@code params.withSeedOffset(i)}
     * (sampled answers differ, each reproducible) and its text to {@code streams.get(i)}, whose {@link Stream#end}
     * is told as soon as that answer is complete. Here one after another; a model may run them together.
     */
    default List<Result> completeChoices(List<Message> messages, Params params, List<Stream> streams)
            throws Exception {
        return oneByOne(params, streams, (p, stream) -> complete(messages, p, stream));
    }

    /** {@link #completeChoices} for {@link #completeText}'s raw prompt. */
    default List<Result> completeTextChoices(String prompt, Params params, List<Stream> streams) throws Exception {
        return oneByOne(params, streams, (p, stream) -> completeText(prompt, p, stream));
    }

    /** One answer of {@link #completeChoices}. */
    @FunctionalInterface
    interface Answer {
        Result run(Params params, Stream stream) throws Exception;
    }

    /** The choices one after another, choice i with {@code params.withSeedOffset(i)}, each stream told its end. */
    static List<Result> oneByOne(Params params, List<Stream> streams, Answer answer) throws Exception {
        List<Result> results = new ArrayList<>(streams.size());
        for (int i = 0; i < streams.size(); i++) {
            Result r = answer.run(params.withSeedOffset(i), streams.get(i));
            streams.get(i).end(r);
            results.add(r);
        }
        return results;
    }

    /**
     * {@code POST /v1/embeddings}: one vector for {@code input}, scaled to length 1 as OpenAI's embeddings are, and the
     * tokens the input took. A model without embeddings refuses (the default).
     */
    default Embedding embed(String input, Cancel cancel) throws Exception {
        throw ApiError.invalid("model", "model: '" + id() + "' does not make embeddings");
    }

    /** An embedding: its values and the tokens of its input. */
    record Embedding(float[] vector, int tokens) {

        /** {@code v} divided by its Euclidean length (all zeros stay zeros). */
        static Embedding unit(float[] v, int tokens) {
            double norm = 0;
            for (float x : v) {
                norm += (double) x * x;
            }
            double scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
            float[] unit = new float[v.length];
            for (int i = 0; i < v.length; i++) {
                unit[i] = (float) (v[i] * scale);
            }
            return new Embedding(unit, tokens);
        }
    }

    /** Whether {@link Params#responseFormat} is honoured (JSON output, and with it tool calls). */
    default boolean constrainsJson() {
        return true;
    }

    @FunctionalInterface
    interface Stream {
        void delta(String text);

        /**
         * With {@link Params#logprobs}: each new token's log-probabilities, in order, before the text it completes
         * reaches {@link #delta} (text may be held back for several tokens).
         */
        default void logprobs(TokenLogprob token) {
        }

        /** With {@link Params#promptLogprobs}: the prompt's tokens, once, before any new token. */
        default void promptLogprobs(List<TokenLogprob> prompt) {
        }

        /** The answer is complete (told by {@link #completeChoices}, not by {@link #complete}). */
        default void end(Result result) {
        }

        /**
         * Whether the request is still wanted (its client gone, its deadline passed): polled where no text is
         * produced (the prompt between chunks, image encoding, steps whose text is held back), so that a long prompt
         * stops too; the answer then ends with {@link java.util.concurrent.CancellationException}.
         */
        default Cancel cancel() {
            return Cancel.NEVER;
        }
    }

    /**
     * One token as OpenAI's and llama.cpp's log-probabilities show it: its text ({@code bytes:\\xNN...} when its bytes
     * are not UTF-8 on their own), its bytes, its log-probability under the model's raw distribution (null for a
     * prompt's first token, which nothing predicts) and the most likely tokens at its position.
     */
    record TokenLogprob(String token, byte[] bytes, Float logprob, List<TopLogprob> top) {
    }

    record TopLogprob(String token, byte[] bytes, float logprob) {
    }

    /** One part of a message's content. */
    sealed interface Part permits TextPart, ImagePart {
    }

    record TextPart(String text) implements Part {
    }

    /** An image as sent: its media type (image/png, image/jpeg, ...) and bytes. */
    record ImagePart(String mediaType, byte[] bytes) implements Part {
    }

    record Message(String role, List<Part> content) {
    }

    /**
     * OpenAI sampling parameters; null for the model's defaults. {@code stop}: up to 4 strings the answer ends before;
     * {@code frequencyPenalty}, {@code presencePenalty} (-2 to 2) and {@code logitBias} (token id to -100..100) as
     * OpenAI defines them; empty / null when not given. The extensions vLLM and llama.cpp's server take under the
     * same names: {@code topK} ({@code top_k}, 0 = off), {@code minP} ({@code min_p}), {@code repetitionPenalty}
     * ({@code repetition_penalty}, transformers' meaning) and {@code minTokens} ({@code min_tokens}: no end of
     * sequence before that many tokens). {@code logprobs}: each token's log-probability and this many alternatives
     * to the {@link Stream} (null: none); {@code promptLogprobs}: the prompt's too (legacy completions' echo).
     * {@code responseFormat}: OpenAI's {@code response_format} json_object ({@link JsonSchema#anyObject()}) or
     * json_schema: the answer one JSON object the schema allows; null: any text.
     */
    record Params(Integer maxTokens, Double temperature, Double topP, Long seed, List<String> stop,
                  Double frequencyPenalty, Double presencePenalty, Map<Integer, Float> logitBias, Integer topK,
                  Double minP, Double repetitionPenalty, Integer minTokens, Integer logprobs, boolean promptLogprobs,
                  JsonSchema responseFormat) {

        public Params {
            stop = stop == null ? List.of() : List.copyOf(stop);
            logitBias = logitBias == null ? Map.of() : Map.copyOf(logitBias);
            if (promptLogprobs && logprobs == null) {
                throw new IllegalArgumentException("prompt log-probabilities without logprobs");
            }
        }

        /** OpenAI's own fields only. */
        public Params(Integer maxTokens, Double temperature, Double topP, Long seed, List<String> stop,
                      Double frequencyPenalty, Double presencePenalty, Map<Integer, Float> logitBias) {
            this(maxTokens, temperature, topP, seed, stop, frequencyPenalty, presencePenalty, logitBias, null, null,
                    null, null, null, false, null);
        }

        /** The same with seed + offset (the seed 0 when none was given): the offset-th of several choices. */
        public Params withSeedOffset(int offset) {
            if (offset == 0) {
                return this;
            }
            return new Params(maxTokens, temperature, topP, (seed == null ? 0 : seed) + offset, stop, frequencyPenalty,
                    presencePenalty, logitBias, topK, minP, repetitionPenalty, minTokens, logprobs, promptLogprobs,
                    responseFormat);
        }

        /** Length, temperature, top_p and seed only. */
        public Params(Integer maxTokens, Double temperature, Double topP, Long seed) {
            this(maxTokens, temperature, topP, seed, List.of(), null, null, Map.of());
        }

        /** The parameters only some models take, by their OpenAI names, when given. */
        List<String> adjustmentsGiven() {
            List<String> given = new ArrayList<>();
            if (!stop.isEmpty()) {
                given.add("stop");
            }
            if (frequencyPenalty != null) {
                given.add("frequency_penalty");
            }
            if (presencePenalty != null) {
                given.add("presence_penalty");
            }
            if (!logitBias.isEmpty()) {
                given.add("logit_bias");
            }
            if (topK != null) {
                given.add("top_k");
            }
            if (minP != null) {
                given.add("min_p");
            }
            if (repetitionPenalty != null) {
                given.add("repetition_penalty");
            }
            if (minTokens != null) {
                given.add("min_tokens");
            }
            if (logprobs != null) {
                given.add("logprobs");
            }
            if (responseFormat != null) {
                given.add("response_format");
            }
            return given;
        }
    }

    /**
     * The whole text, why it stopped ({@code stop} or {@code length}) and token counts for {@code usage}:
     * {@code cachedPromptTokens} of the prompt's tokens were reused from the model's previous request.
     */
    record Result(String text, String finishReason, int promptTokens, int completionTokens, int cachedPromptTokens) {
    }
}
