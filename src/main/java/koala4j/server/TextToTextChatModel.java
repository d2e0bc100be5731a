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
        this.pipeline = new LazyModel<>(id, folder, () -> TextToText.load(folder, ops), limit);
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
        // one sequence per choice (OpenAI's n makes the choices), whatever the folder's num_return_sequences
        var overrides = new TextGenerationConfig.Overrides(params.maxTokens(), null, sample, temperature, null, topP,
                null, null, null, params.seed(), 1);
        TextGenerationConfig config;
        TextToText.Result r;
        try (var lease = pipeline.lease()) {
            TextToText t5 = lease.model();
            config = t5.generationConfig(overrides);
            r = t5.generate(input, overrides, Progress.NONE, stream.cancel(), stream::delta);
        }
        long[] out = r.outputIds();
        String finish = out.length > 1 && config.isEos(out[out.length - 1]) ? "stop" : "length";
        return new Result(r.text(), finish, r.inputIds().length, out.length - 1, 0);
    }
}
