package koala4j.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import koala4j.io.image.Image;
import koala4j.io.image.ImageFileException;
import koala4j.io.image.Images;
import koala4j.pipelines.Cancel;
import koala4j.pipelines.Conversation;
import koala4j.pipelines.SamplingParams;
import koala4j.pipelines.TextGeneration;
import koala4j.pipelines.VisionChat;
import koala4j.tensor.Ops;

/**
 * A LLaVA / Ko-LLaVA (or LLaMA) folder behind {@code /v1/chat/completions}: the OpenAI messages become a
 * {@link Conversation} (system and developer messages the system prompt, a user message's image_url parts its
 * images, in order, before its text), answered by {@link VisionChat#reply} with the folder's prompt format and
 * generation defaults, as {@code koala4j chat} does. A LLaMA folder without a chat template completes the last user
 * message as a raw prompt. Loaded on the first request; thread-safe.
 */
final class VisionChatModel implements ChatModel {

    private final String id;
    private final String displayName;
    private final LazyModel<VisionChat> chat;

    VisionChatModel(String id, String displayName, Path folder, VisionChat.Options options, Ops ops,
                    ChatModelLimit limit) {
        this.id = id;
        this.displayName = displayName;
        this.chat = new LazyModel<>(id, folder, () -> VisionChat.load(folder, id, options, ops), limit,
                () -> LocalChatModels.estimatedBytes(folder, options.quantization()) + (options.draft() == null ? 0
                        : LocalChatModels.estimatedBytes(options.draft().folder(), options.quantization())));
    }

    /** Whether the model is loaded now. */
    boolean loaded() {
        return chat.peek() != null;
    }

    @Override
    public void load() {
        chat.lease().close();
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
    public Result complete(List<Message> messages, Params params, Stream stream) throws Exception {
        return answer(messages, params, List.of(stream), false).getFirst();
    }

    /** The choices share one computed prompt and decode together ({@link VisionChat#replies}). */
    @Override
    public List<Result> completeChoices(List<Message> messages, Params params, List<Stream> streams)
            throws Exception {
        return answer(messages, params, streams, true);
    }

    private List<Result> answer(List<Message> messages, Params params, List<Stream> streams, boolean tellEnd)
            throws Exception {
        Conversation conversation = conversation(messages);
        try (var lease = chat.lease()) {
            return answer(lease.model(), conversation, params, streams, tellEnd);
        }
    }

    private List<Result> answer(VisionChat c, Conversation conversation, Params params, List<Stream> streams,
                                boolean tellEnd) {
        if (!c.acceptsImages() && !conversation.images().isEmpty()) {
            throw ApiError.invalid("messages", "the model '" + id + "' is a text-only LLaMA model: image_url parts are"
                    + " not accepted");
        }
        boolean completion = c.promptFormat().isEmpty();
        List<VisionChat.Choice> choices = choices(completion ? c.rawDefaults() : c.defaults(), params, streams, c,
                tellEnd);
        List<VisionChat.Reply> replies;
        try {
            if (completion) {
                Conversation.Turn last = lastUser(conversation);
                replies = c.completions(last.text(), last.visuals(), choices, cancel(streams), true);
            } else {
                replies = c.replies(conversation, choices, cancel(streams), true);
            }
        } catch (VisionChat.ContextLengthExceeded e) {
            throw contextLengthExceeded("messages", e);
        }
        return replies.stream().map(VisionChatModel::result).toList();
    }

    /** {@link VisionChat#embed}: the language model's mean-pooled final hidden states at length 1. */
    @Override
    public Embedding embed(String input, Cancel cancel) {
        try (var lease = chat.lease()) {
            VisionChat.Embedding e = lease.model().embed(input, cancel);
            return Embedding.unit(e.vector(), e.ids().length);
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid("input", "input: " + e.getMessage());
        }
    }

    @Override
    public Result completeText(String prompt, Params params, Stream stream) {
        return answerText(prompt, params, List.of(stream), false).getFirst();
    }

    @Override
    public List<Result> completeTextChoices(String prompt, Params params, List<Stream> streams) {
        return answerText(prompt, params, streams, true);
    }

    private List<Result> answerText(String prompt, Params params, List<Stream> streams, boolean tellEnd) {
        try (var lease = chat.lease()) {
            VisionChat c = lease.model();
            return c.completions(prompt, List.of(), choices(c.rawDefaults(), params, streams, c, tellEnd),
                    cancel(streams), true).stream().map(VisionChatModel::result).toList();
        } catch (VisionChat.ContextLengthExceeded e) {
            throw contextLengthExceeded("prompt", e);
        }
    }

    /**
     * Choice i samples with {@code params.withSeedOffset(i)} over {@code defaults}, streams to {@code streams.get(i)}
     * and, when {@code tellEnd} ({@link #completeChoices}), tells it when its answer is complete. Under the folder's
     * beam search the choices are the best hypotheses of one search ({@link VisionChat#replies}), at most num_beams.
     */
    private static List<VisionChat.Choice> choices(SamplingParams defaults, Params params, List<Stream> streams,
                                                   VisionChat c, boolean tellEnd) {
        List<VisionChat.Choice> choices = new ArrayList<>(streams.size());
        int beams = samplingParams(defaults, params).beams().numBeams();
        if (beams > 1 && streams.size() > beams) {
            throw ApiError.invalid("n", "n " + streams.size() + " with the model's num_beams " + beams + ": expected "
                    + "at most num_beams (the choices are the best hypotheses of one beam search)");
        }
        for (int i = 0; i < streams.size(); i++) {
            Stream stream = streams.get(i);
            choices.add(new VisionChat.Choice(samplingParams(defaults, params.withSeedOffset(i)),
                    listener(stream, params, c), reply -> {
                        if (tellEnd) {
                            stream.end(result(reply));
                        }
                    }));
        }
        return choices;
    }

    /** Stops the choices when any of their streams' requests is no longer wanted. */
    private static Cancel cancel(List<Stream> streams) {
        List<Cancel> each = streams.stream().map(Stream::cancel).distinct().toList();
        return each.size() == 1 ? each.getFirst() : () -> each.stream().anyMatch(Cancel::requested);
    }

    /** OpenAI's answer to a prompt longer than the model's context: a 400 with code context_length_exceeded. */
    private ApiError contextLengthExceeded(String param, VisionChat.ContextLengthExceeded e) {
        return new ApiError(400, "invalid_request_error", param, "context_length_exceeded", "This model's maximum "
                + "context length is " + e.contextLength() + " tokens, but the prompt of '" + id + "' takes "
                + e.promptTokens() + " (images included). Shorten the messages.", null);
    }

    /** The model's decode batching so far; null while it is not loaded (nothing is loaded for it). */
    koala4j.pipelines.DecodeBatcher.Stats decodeStats() {
        VisionChat c = chat.peek();
        return c == null ? null : c.decodeStats();
    }

    /** The model's prompt lookup so far; null while it is not loaded. */
    VisionChat.DraftTotals draftTotals() {
        VisionChat c = chat.peek();
        return c == null ? null : c.draftTotals();
    }

    /** Text deltas to the stream; with {@link Params#logprobs}, each token's log-probabilities as text and bytes. */
    static TextGeneration.TokenListener listener(Stream stream, Params params, VisionChat tokens) {
        int top = params.logprobs() == null ? -1 : params.logprobs();
        return new TextGeneration.TokenListener() {
            @Override
            public void onToken(int id, String delta) {
                if (!delta.isEmpty()) {
                    stream.delta(delta);
                }
            }

            @Override
            public int topLogprobs() {
                return top;
            }

            @Override
            public boolean promptLogprobs() {
                return params.promptLogprobs();
            }

            @Override
            public void onLogprobs(TextGeneration.TokenLogprobs token) {
                stream.logprobs(logprob(token, tokens));
            }

            @Override
            public void onPromptLogprobs(List<TextGeneration.TokenLogprobs> prompt) {
                stream.promptLogprobs(prompt.stream().map(t -> logprob(t, tokens)).toList());
            }
        };
    }

    private static TokenLogprob logprob(TextGeneration.TokenLogprobs t, VisionChat tokens) {
        List<TopLogprob> top = new ArrayList<>(t.topIds().length);
        for (int i = 0; i < t.topIds().length; i++) {
            byte[] bytes = tokens.tokenBytes(t.topIds()[i]);
            top.add(new TopLogprob(VisionChat.tokenText(bytes), bytes, t.topLogprobs()[i]));
        }
        byte[] bytes = tokens.tokenBytes(t.id());
        return new TokenLogprob(VisionChat.tokenText(bytes), bytes, Float.isNaN(t.logprob()) ? null : t.logprob(),
                top);
    }

    private static Result result(VisionChat.Reply reply) {
        // a closed JSON object (response_format json_object) is a natural end, as eos is
        String finish = switch (reply.stopReason()) {
            case MAX_NEW_TOKENS, MAX_TIME -> "length";
            case EOS, STOP_STRING, FORMAT -> "stop";
        };
        return new Result(reply.text(), finish, reply.generation().promptTokens(), reply.outputIds().length,
                reply.generation().reusedPromptTokens());
    }

    /**
     * OpenAI's parameters over the folder's defaults: temperature 0 is greedy, > 0 samples; top_p and top_k sample
     * too; repetition_penalty, min_p and min_tokens as transformers' processors.
     */
    static SamplingParams samplingParams(SamplingParams defaults, Params params) {
        SamplingParams p = defaults;
        if (params.maxTokens() != null) {
            p = p.withMaxNewTokens(params.maxTokens());
        }
        if (!params.stop().isEmpty()) {
            List<String> stops = new ArrayList<>(p.stopStrings());
            stops.addAll(params.stop());
            p = p.withStopStrings(stops);
        }
        if (params.frequencyPenalty() != null || params.presencePenalty() != null || !params.logitBias().isEmpty()) {
            p = p.withAdjustments(new SamplingParams.LogitAdjustments(
                    params.frequencyPenalty() != null ? params.frequencyPenalty() : 0,
                    params.presencePenalty() != null ? params.presencePenalty() : 0, params.logitBias()));
        }
        if (params.repetitionPenalty() != null) {
            p = p.withRepetitionPenalty(params.repetitionPenalty());
        }
        p = p.withConstraints(p.constraints().overriddenBy(null, params.minTokens(), params.minP()));
        if (params.responseFormat() != null) {
            p = p.withFormat(new SamplingParams.Format(params.responseFormat()));
        }
        long seed = params.seed() != null ? params.seed() : 0;
        boolean sample = params.temperature() != null ? params.temperature() > 0
                : params.topP() != null || params.topK() != null || p.doSample();
        if (!sample) {
            return p.withGreedy();
        }
        return p.withSampling(params.temperature() != null ? params.temperature() : p.temperature(),
                params.topK() != null ? params.topK() : p.topK(), params.topP() != null ? params.topP() : p.topP(),
                seed);
    }

    private static Conversation.Turn lastUser(Conversation c) {
        for (int i = c.turns().size() - 1; i >= 0; i--) {
            if (c.turns().get(i).role() == Conversation.Role.USER) {
                return c.turns().get(i);
            }
        }
        throw ApiError.invalid("messages", "messages: no user message to answer");
    }

    /** The messages as a conversation; images decoded as {@code koala4j chat --image} reads files. */
    static Conversation conversation(List<Message> messages) throws IOException {
        Conversation c = Conversation.empty();
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            List<String> texts = new ArrayList<>();
            List<Conversation.Visual> pictures = new ArrayList<>();
            for (Part part : m.content()) {
                switch (part) {
                    case TextPart t -> texts.add(t.text());
                    case ImagePart image -> pictures.add(new Conversation.Picture(decode(image, i, pictures.size()),
                            "messages[" + i + "] image " + pictures.size()));
                }
            }
            String text = String.join(" ", texts);
            switch (m.role()) {
                case "system", "developer" -> c = c.system(text);
                case "assistant" -> {
                    if (!pictures.isEmpty()) {
                        throw ApiError.invalid("messages[" + i + "].content", "messages[" + i + "]: an assistant"
                                + " message with images; only user messages carry images");
                    }
                    c = c.assistant(text);
                }
                default -> c = c.user(text, pictures);
            }
        }
        return c;
    }

    /** Decoded through a temporary file, with the exact PIL-compatible reading of {@link Images#read}. */
    private static Image decode(ImagePart image, int message, int index) throws IOException {
        Path tmp = Files.createTempFile("koala4j-chat-", ".img");
        try {
            Files.write(tmp, image.bytes());
            return Images.read(tmp);
        } catch (ImageFileException e) {
            throw ApiError.invalid("messages[" + message + "].content", "messages[" + message + "] image " + index
                    + " (" + image.mediaType() + "): " + e.reason());
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
