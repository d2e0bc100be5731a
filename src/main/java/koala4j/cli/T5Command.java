package koala4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.ObjectMapper;

import koala4j.backend.Backend;
import koala4j.backend.Backends;
import koala4j.io.hub.ConsoleProgress;
import koala4j.io.hub.HubClient;
import koala4j.io.hub.ModelLocator;
import koala4j.pipelines.PipelineFiles;
import koala4j.pipelines.Progress;
import koala4j.pipelines.TextGenerationConfig;
import koala4j.pipelines.TextToText;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code koala4j t5}: text-to-text generation (span filling with {@code <extra_id_0>} for the pre-trained KEByT5
 * previews) or mean-pooled encoder embeddings with a (GBST-)KEByT5 / ByT5 folder or hub id.
 */
@Command(mixinStandardHelpOptions = true, name = "t5", description = "Byte-level T5 (KEByT5, GBST-KEByT5, ByT5): generate text from text, or embed it (--embed).")
final class T5Command implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Model folder or hub id, e.g. etri-lirs/kebyt5-base-preview.")
    String model;

    @Option(names = "--input", required = true, description = "Input text (use <extra_id_0> to mark a span to fill).")
    String input;

    @Option(names = "--max-new-tokens", description = "New tokens (bytes) to generate at most (default: the folder's max_length, else 19).")
    Integer maxNewTokens;

    @Option(names = "--num-beams", description = "Beam search with this many beams (default: the folder's, else 1 = greedy).")
    Integer numBeams;

    @Option(names = "--do-sample", description = "Sample instead of greedy / beam search.")
    Boolean doSample;

    @Option(names = "--temperature", description = "Sampling temperature (default 1).")
    Float temperature;

    @Option(names = "--top-k", description = "Sample among the k most likely tokens (default 50; 0 = off).")
    Integer topK;

    @Option(names = "--top-p", description = "Nucleus sampling threshold in (0, 1] (default 1 = off).")
    Float topP;

    @Option(names = "--seed", defaultValue = "0", description = "Seed for sampling (default 0).")
    long seed;

    @Option(names = "--length-penalty", description = "Beam search: score / length^penalty (default 1).")
    Float lengthPenalty;

    @Option(names = "--no-repeat-ngram-size", description = "Never repeat an n-gram of this size (default 0 = off).")
    Integer noRepeatNgramSize;

    @Option(names = "--early-stopping", arity = "0..1", fallbackValue = "true",
            description = "Beam search stopping: true, false or never (default: the folder's, else false).")
    String earlyStopping;

    @Option(names = "--num-return-sequences", description = "Sequences to return (default: the folder's, else 1), "
            + "as transformers' generate: the best hypotheses of one beam search (at most --num-beams), or as many "
            + "samples (drawn together, as generate() draws them); not with greedy decoding.")
    Integer numReturnSequences;

    @Option(names = "--embed", description = "Print the mean-pooled encoder embedding instead of generating.")
    boolean embed;

    @Option(names = "--json", description = "Print one JSON object (input_ids, output_ids, text, text_raw; or the embedding).")
    boolean json;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda.")
    String device;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        TextGenerationConfig.Overrides overrides = new TextGenerationConfig.Overrides(maxNewTokens, numBeams, doSample,
                temperature, topK, topP, lengthPenalty,
                earlyStopping == null ? null : TextGenerationConfig.parseEarlyStopping(earlyStopping),
                noRepeatNgramSize, seed, numReturnSequences);
        Backend backend = Backends.select(device);
        err.println("backend " + backend.name() + " (" + backend.reason() + ")");
        HubClient hub = new HubClient(HubClient.Options.fromEnvironment(System.getenv()), new ConsoleProgress(System.err));
        Path folder = PipelineFiles.withTorchWeights(model, hub, ModelLocator.resolve(model, hub, TextToText.FILES), null);
        long loadStart = System.nanoTime();
        try (TextToText pipeline = TextToText.load(folder, backend.ops())) {
            err.printf(Locale.ROOT, "loaded %s in %.1f s%n", folder, (System.nanoTime() - loadStart) / 1e9);
            pipeline.loadReport().unexpectedKeys().forEach(k -> err.println("warning: unused checkpoint tensor " + k));
            ObjectMapper mapper = new ObjectMapper();
            Map<String, Object> result = new LinkedHashMap<>();
            if (embed) {
                TextToText.Embedding e = pipeline.embed(input);
                result.put("input_ids", e.inputIds());
                result.put("positions", e.positions());
                result.put("dimension", e.vector().length);
                result.put("embedding", e.vector());
                out.println(json ? mapper.writeValueAsString(result) : mapper.writeValueAsString(e.vector()));
                return 0;
            }
            int returns = pipeline.generationConfig(overrides).numReturnSequences();   // settings errors first
            long started = System.nanoTime();
            // one plain answer streams as it decodes; --json prints one object at the end; several print in order
            List<TextToText.Result> results = json || returns > 1
                    ? pipeline.generate(List.of(input), overrides, new StageTimes(err), () -> false)
                    : List.of(pipeline.generate(input, overrides, new StageTimes(err), () -> false, piece -> {
                        out.print(piece);
                        out.flush();
                    }));
            double seconds = (System.nanoTime() - started) / 1e9;
            for (int i = 0; i < results.size(); i++) {
                TextToText.Result r = results.get(i);
                err.printf(Locale.ROOT, "%s%d new tokens in %.2f s%n", returns > 1 ? (i + 1) + ": " : "",
                        r.outputIds().length - 1, seconds);
                if (json) {
                    Map<String, Object> one = new LinkedHashMap<>();
                    if (returns > 1) {
                        one.put("index", i);
                    }
                    one.put("input_ids", r.inputIds());
                    one.put("output_ids", r.outputIds());
                    one.put("text", r.text());
                    one.put("text_raw", r.rawText());
                    out.println(mapper.writeValueAsString(one));
                } else if (returns > 1) {
                    out.println("--- " + (i + 1) + "/" + returns + " ---");
                    out.println(r.text());
                } else {
                    out.println();
                }
            }
        }
        return 0;
    }

    /** Stage timings on stderr; no per-token output. */
    private record StageTimes(PrintWriter err) implements Progress {
        @Override
        public void step(int step, int total) {
        }

        @Override
        public void stage(String name, Duration elapsed) {
            err.printf(Locale.ROOT, "%s: %.2f s%n", name, elapsed.toNanos() / 1e9);
            err.flush();
        }
    }
}
