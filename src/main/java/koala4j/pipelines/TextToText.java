package koala4j.pipelines;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import koala4j.io.json.Json;
import koala4j.models.Checkpoint;
import koala4j.models.t5.T5Config;
import koala4j.models.t5.T5ForConditionalGeneration;
import koala4j.models.t5.T5ForConditionalGeneration.EncoderOutput;
import koala4j.nn.Module;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tokenizers.ByteTokenizer;

/**
 * Byte-level text-to-text generation and encoder embeddings with a (GBST-)KEByT5 / ByT5 folder as published
 * (config.json, generation_config.json, model.safetensors or shards, ByT5 tokenizer files): what
 * {@code tokenizer(text)} + {@code T5ForConditionalGeneration.generate(...)} + {@code tokenizer.decode(...)} do in
 * transformers. The checkpoint stays mapped while the pipeline is open; {@link #generate} and {@link #embed} may be
 * called from several threads at once (each call has its own decoder state).
 */
public final class TextToText implements AutoCloseable {

    /** The files of such a folder, as hub allow-patterns. */
    public static final List<String> FILES = List.of("config.json", "generation_config.json", "tokenizer_config.json",
            "special_tokens_map.json", "added_tokens.json", "model.safetensors", "model.safetensors.index.json",
            "model-*-of-*.safetensors");

    /**
     * One generation: the encoder input ids (eos-terminated), the output ids as generate() returns them (starting with
     * the decoder start token), the text without special tokens and the raw text with them.
     */
    public record Result(int[] inputIds, long[] outputIds, String text, String rawText) {
    }

    /** Mean-pooled encoder output over the kept positions (for GBST the downsampled ones). */
    public record Embedding(int[] inputIds, float[] vector, int positions) {
    }

    private final Checkpoint checkpoint;
    private final T5ForConditionalGeneration model;
    private final ByteTokenizer tokenizer;
    private final Json generationConfig;
    private final Module.LoadReport loadReport;

    private TextToText(Checkpoint checkpoint, T5ForConditionalGeneration model, Module.LoadReport loadReport,
                       ByteTokenizer tokenizer, Json generationConfig) {
        this.checkpoint = checkpoint;
        this.loadReport = loadReport;
        this.model = model;
        this.tokenizer = tokenizer;
        this.generationConfig = generationConfig;
    }

    /**
     * Opens {@code folder}: config.json (model_type t5, mt5 or gbswt5), the safetensors weights, the tokenizer files
     * (ByT5 defaults when absent) and generation_config.json when present.
     */
    public static TextToText load(Path folder, Ops ops) {
        Checkpoint ckpt = Checkpoint.open(folder, null, ops);
        try {
            T5ForConditionalGeneration model = new T5ForConditionalGeneration(T5Config.from(ckpt.config(), ckpt.keys()));
            Module.LoadReport report = model.loadWeights(ckpt);
            Path gen = folder.resolve("generation_config.json");
            return new TextToText(ckpt, model, report, ByteTokenizer.load(folder), Files.isRegularFile(gen) ? Json.read(gen) : null);
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
    }

    public T5ForConditionalGeneration model() {
        return model;
    }

    /** Checkpoint tensors no module claimed (tied aliases excluded). */
    public Module.LoadReport loadReport() {
        return loadReport;
    }

    public ByteTokenizer tokenizer() {
        return tokenizer;
    }

    /** The folder's decoding settings with {@code overrides} applied. */
    public TextGenerationConfig generationConfig(TextGenerationConfig.Overrides overrides) {
        return TextGenerationConfig.resolve(generationConfig, model.config(), checkpoint.config(), overrides);
    }

    public Result generate(String input, TextGenerationConfig.Overrides overrides, Progress progress, Cancel cancel) {
        return generate(List.of(input), overrides, progress, cancel).getFirst();
    }

    /**
     * The same (the first sequence, when the settings return several), its text handed to {@code text} as it is
     * generated: the pieces add up to {@link Result#text}. Greedy
     * and sampled answers stream byte token by byte token (a character once its UTF-8 bytes are complete; with the
     * tokenizer's clean_up_tokenization_spaces the last {@value ByteTextStreamer#HOLD_BACK} characters wait, as the
     * clean-up may still change them); beam search hands over the whole answer at the end.
     */
    public Result generate(String input, TextGenerationConfig.Overrides overrides, Progress progress, Cancel cancel,
                           Consumer<String> text) {
        ByteTextStreamer streamer = new ByteTextStreamer(tokenizer, text);
        Result r = generate(List.of(input), overrides, progress, cancel, (row, token) -> {
            if (row == 0) {
                streamer.add(token);
            }
        }).getFirst();
        streamer.finish(r.text());
        return r;
    }

    /**
     * A batch of inputs, right-padded together as {@code tokenizer(texts, padding=True)} and generated together; with
     * num_return_sequences R, R results per input, input by input (as generate() returns R rows per input).
     */
    public List<Result> generate(List<String> inputs, TextGenerationConfig.Overrides overrides, Progress progress,
                                 Cancel cancel) {
        return generate(inputs, overrides, progress, cancel, Seq2SeqGeneration.TokenSink.NONE);
    }

    private List<Result> generate(List<String> inputs, TextGenerationConfig.Overrides overrides, Progress progress,
                                  Cancel cancel, Seq2SeqGeneration.TokenSink tokens) {
        TextGenerationConfig cfg = generationConfig(overrides);
        int returns = cfg.numReturnSequences();
        // generate()'s _expand_inputs_for_generation: each input repeated for its sampled sequences, in place
        List<String> rows = inputs;
        if (returns > 1 && cfg.numBeams() == 1) {
            rows = new ArrayList<>();
            for (String input : inputs) {
                for (int i = 0; i < returns; i++) {
                    rows.add(input);
                }
            }
        }
        ByteTokenizer.Batch batch = tokenizer.encodeBatch(rows);
        long started = System.nanoTime();
        EncoderOutput encoded = encode(batch);
        progress.stage("encode", Duration.ofNanos(System.nanoTime() - started));
        started = System.nanoTime();
        long[][] outputs = cfg.numBeams() > 1
                ? Seq2SeqGeneration.beamSearch(model, encoded, cfg, progress, cancel)
                : Seq2SeqGeneration.sample(model, encoded, cfg, progress, cancel, tokens);
        progress.stage("decode", Duration.ofNanos(System.nanoTime() - started));
        List<Result> results = new ArrayList<>();
        for (int r = 0; r < outputs.length; r++) {
            int[] ids = tokenizer.encodeWithEos(inputs.get(r / returns));
            int[] out = new int[outputs[r].length];
            for (int i = 0; i < out.length; i++) {
                out[i] = Math.toIntExact(outputs[r][i]);
            }
            results.add(new Result(ids, outputs[r], tokenizer.decode(out, true), tokenizer.decode(out, false)));
        }
        return results;
    }

    /**
     * The encoder's last hidden state mean-pooled over the positions its mask keeps (sentence-transformers' mean
     * pooling; for GBST over the downsampled sequence): a [d_model] vector for understanding tasks.
     */
    public Embedding embed(String input) {
        ByteTokenizer.Batch batch = tokenizer.encodeBatch(List.of(input));
        EncoderOutput encoded = encode(batch);
        Tensor mask = encoded.attentionMask();                                              // [1, N]
        Tensor summed = encoded.lastHiddenState().mul(mask.unsqueeze(2)).sum(1, false);     // [1, C]
        float kept = mask.sum().item();
        return new Embedding(tokenizer.encodeWithEos(input), summed.div(kept).toFloatArray(), (int) kept);
    }

    private EncoderOutput encode(ByteTokenizer.Batch batch) {
        Ops ops = checkpoint.ops();
        Tensor ids = ops.fromArray(batch.ids(), batch.rows(), batch.length());
        Tensor mask = ops.fromArray(batch.attentionMask(), batch.rows(), batch.length()).to(DType.F32);
        return model.encode(ids, mask);
    }

    @Override
    public void close() {
        checkpoint.close();
    }
}
