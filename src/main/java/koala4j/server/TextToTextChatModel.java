package koala4j.server;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import koala4j.pipelines.Progress;
import koala4j.pipelines.TextGenerationConfig;
import koala4j.pipelines.TextToText;
import koala4j.tensor.Ops;

/**
 * A (GBST-)KEByT5 / ByT5 folder behind {@code /v1/chat/completions}: the text of the last user message is the
 * input of {@link TextToText#generate} (a text-to-text model keeps no dialogue; earlier messages are not used); the
 * answer streams as its byte tokens decode to text (beam search: in one piece at the end). Loaded on the first
 * request; thread-safe.
 */
final class TextToTextChatModel implements ChatModel {

    private final String id;
    private final String displayName;
    private final LazyModel<TextToText> pipeline;

    TextToTextChatModel(String id, String displayName, Path folder, Ops ops, ChatModelLimit limit) {
        this.id = id;
        this.displayName = displayName;
        this.pipeline = new LazyModel<>(id, folder, () -> TextToText.load(folder, ops), limit,
                () -> LocalChatModels.estimatedBytes(folder, koala4j.tensor.quant.Quantization.NONE));
    }

    /** Whether the model is loaded now. */
    boolean loaded() {
        return pipeline.peek() != null;
    }

    @Override
    public void load() {
        pipeline.lease().close();
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public boolean constrainsJson() {
        return false;
    }

    @Override
    public String displayName() {
        return displayName;
    }

    /** {@link TextToText#embed} (the {@code t5 --embed} vector) at length 1. */
    @Override
    public Embedding embed(String input, koala4j.pipelines.Cancel cancel) {
        cancel.check();
        try (var lease = pipeline.lease()) {
            TextToText.Embedding e = lease.model().embed(input);
            return Embedding.unit(e.vector(), e.inputIds().length);
        }
    }

    @Override
    public Result complete(List<Message> messages, Params params, Stream stream) {
        String input = input(messages);
        var overrides = overrides(params, 1);
        TextGenerationConfig config;
        TextToText.Result r;
        try (var lease = pipeline.lease()) {
            TextToText t5 = lease.model();
            config = t5.generationConfig(overrides);
            r = t5.generate(input, overrides, Progress.NONE, stream.cancel(), stream::delta);
        }
        return result(r, config);
    }

    /**
     * OpenAI's {@code n}; under the folder's beam search the choices are the best hypotheses of one search, best
     * first (num_return_sequences, at most num_beams), else one sequence per choice with seed + i.
     */
    @Override
    public List<Result> completeChoices(List<Message> messages, Params params, List<Stream> streams)
            throws Exception {
        String input = input(messages);
        try (var lease = pipeline.lease()) {
            TextToText t5 = lease.model();
            int beams = t5.generationConfig(overrides(params, 1)).numBeams();
            if (beams == 1 || streams.size() == 1) {
                return ChatModel.oneByOne(params, streams, (p, stream) -> complete(messages, p, stream));
            }
            if (streams.size() > beams) {
                throw ApiError.invalid("n", "n " + streams.size() + " with the model's num_beams " + beams
                        + ": expected at most num_beams (the choices are the best hypotheses of one beam search)");
            }
            var overrides = overrides(params, streams.size());
            TextGenerationConfig config = t5.generationConfig(overrides);
            List<TextToText.Result> hypotheses = t5.generate(List.of(input), overrides, Progress.NONE,
                    streams.getFirst().cancel());
            List<Result> results = new ArrayList<>();
            for (int i = 0; i < hypotheses.size(); i++) {
                Result r = result(hypotheses.get(i), config);
                streams.get(i).delta(r.text());
                streams.get(i).end(r);
                results.add(r);
            }
            return results;
        }
    }

    @Override
    public List<Result> completeTextChoices(String prompt, Params params, List<Stream> streams) throws Exception {
        return completeChoices(List.of(new Message("user", List.of(new TextPart(prompt)))), params, streams);
    }

    /** The text of the last user message: a text-to-text model keeps no dialogue. */
    private String input(List<Message> messages) {
        String input = null;
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            List<String> texts = new ArrayList<>();
            for (Part part : m.content()) {
                switch (part) {
                    case TextPart t -> texts.add(t.text());
                    case ImagePart image -> throw ApiError.invalid("messages[" + i + "].content", "the model '" + id
                            + "' is a text-to-text model: image_url parts are not accepted");
                }
            }
            if (m.role().equals("user")) {
                input = String.join(" ", texts);
            }
        }
        if (input == null) {
            throw ApiError.invalid("messages", "messages: no user message; the text-to-text model '" + id
                    + "' answers the last one");
        }
        return input;
    }

    /** The request's settings over the folder's, {@code returns} sequences (OpenAI's n makes the choices). */
    private TextGenerationConfig.Overrides overrides(Params params, int returns) {
        if (!params.adjustmentsGiven().isEmpty()) {
            String field = params.adjustmentsGiven().getFirst();
            throw ApiError.invalid(field, field + ": not supported by the text-to-text model '" + id + "' (T5 "
                    + "generation takes max_tokens, temperature, top_p and seed)");
        }
        Boolean sample = params.temperature() != null ? Boolean.valueOf(params.temperature() > 0)
                : params.topP() != null ? Boolean.TRUE : null;
        Float temperature = params.temperature() != null && params.temperature() > 0
                ? Float.valueOf(params.temperature().floatValue()) : null;
        Float topP = params.topP() != null ? Float.valueOf(params.topP().floatValue()) : null;
        return new TextGenerationConfig.Overrides(params.maxTokens(), null, sample, temperature, null, topP, null,
                null, null, params.seed(), returns);
    }

    /** The answer up to its first eos: a row padded to a longer hypothesis repeats its fill after it. */
    private static Result result(TextToText.Result r, TextGenerationConfig config) {
        long[] out = r.outputIds();
        for (int i = 1; i < out.length; i++) {
            if (config.isEos(out[i])) {
                return new Result(r.text(), "stop", r.inputIds().length, i, 0);
            }
        }
        return new Result(r.text(), "length", r.inputIds().length, out.length - 1, 0);
    }
}
