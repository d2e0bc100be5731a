package koala4j.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
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
import koala4j.io.image.Images;
import koala4j.models.llama.KvCache;
import koala4j.pipelines.Cancel;
import koala4j.pipelines.Conversation;
import koala4j.pipelines.DraftModel;
import koala4j.pipelines.JsonSchema;
import koala4j.pipelines.PromptLookup;
import koala4j.pipelines.SamplingParams;
import koala4j.pipelines.TextGenerationConfig;
import koala4j.pipelines.TextGeneration;
import koala4j.pipelines.VisionChat;
import koala4j.tensor.DType;
import koala4j.tensor.quant.Quantization;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code koala4j chat}: questions about images and videos with a LLaVA / Ko-LLaVA folder or hub id, chat or raw
 * completion with a LLaMA one. With {@code --prompt} one answer, streamed to stdout as it is generated (or one JSON
 * object with {@code --json}); without it a multi-turn chat over stdin lines.
 */
@Command(mixinStandardHelpOptions = true, name = "chat", description = "Ask a LLaVA / Ko-LLaVA model about images and "
        + "videos, or chat with (or complete text with) a LLaMA model. Without --prompt: a chat over stdin lines "
        + "(/image PATH and /video PATH attach to the next message, /reset clears the history, /exit or end of input "
        + "ends).")
final class ChatCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Model folder or hub id, e.g. etri-vilab/Ko-LLaVA-13b, "
            + "llava-hf/llava-1.5-7b-hf.")
    String model;

    @Option(names = "--image", description = "Image for the (first) question; repeatable.")
    List<Path> images = new ArrayList<>();

    @Option(names = "--video", description = "Video for the (first) question: --frames frames, one image slot each.")
    Path video;

    @Option(names = "--frames", defaultValue = "8", description = "Frames sampled evenly from a video (default 8).")
    int frames;

    @Option(names = "--prompt-file", description = "The question read from this UTF-8 file, as --prompt gives it "
            + "(llama.cpp's -f): for long prompts.")
    Path promptFile;

    @Option(names = "--prompt", description = "The question (one answer, then exit); without it, read messages from stdin.")
    String prompt;

    @Option(names = "--max-new-tokens", description = "Tokens to generate at most (default: generation_config.json's "
            + "max_new_tokens, else " + VisionChat.DEFAULT_MAX_NEW_TOKENS + ").")
    Integer maxNewTokens;

    @Option(names = "--temperature", description = "0: greedy; > 0: sample with this temperature (default: the "
            + "folder's generation_config.json, greedy when it says nothing).")
    Double temperature;

    @Option(names = "--top-k", description = "Sample among the k most likely tokens (0 = off); switches sampling on.")
    Integer topK;

    @Option(names = "--top-p", description = "Nucleus sampling threshold in (0, 1]; switches sampling on.")
    Double topP;

    @Option(names = "--repetition-penalty", description = "> 1 discourages repeats (default: the folder's, else 1).")
    Double repetitionPenalty;

    @Option(names = "--frequency-penalty", description = "-2 to 2: subtracted from a token's logit once per time it "
            + "occurs in the answer so far (OpenAI's frequency_penalty; default 0).")
    Double frequencyPenalty;

    @Option(names = "--presence-penalty", description = "-2 to 2: subtracted from the logit of every token the answer "
            + "already holds (OpenAI's presence_penalty; default 0).")
    Double presencePenalty;

    @Option(names = "--logit-bias", description = "ID=BIAS (or llama.cpp's ID+BIAS / ID-BIAS): add BIAS, -100 to "
            + "100, to the logit of token ID before choosing (OpenAI's logit_bias; -100 all but bans it); "
            + "repeatable.")
    List<String> logitBias = new ArrayList<>();

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the sampling draws (default 0).")
    long seed;

    @Option(names = "--no-repeat-ngram-size", description = "Never repeat an n-gram of this size (default: the "
            + "folder's, else 0 = off).")
    Integer noRepeatNgramSize;

    @Option(names = "--min-new-tokens", description = "No end of sequence before this many new tokens (default: the "
            + "folder's, else 0).")
    Integer minNewTokens;

    @Option(names = "--max-time", description = "Stop after this many seconds from the start of the answer (its "
            + "prompt included), as transformers' max_time; at least one token comes (default: the folder's, else none).")
    Double maxTime;

    @Option(names = "--min-p", description = "Sampling: drop tokens less than this fraction as likely as the likeliest "
            + "(0 to 1; default: the folder's, else 0 = off).")
    Double minP;

    @Option(names = "--typical-p", description = "Typical sampling: keep the tokens whose information is closest to the "
            + "entropy, up to this probability mass (0 < p <= 1; 1 = off; default: the folder's); switches sampling on.")
    Double typicalP;

    @Option(names = "--epsilon-cutoff", description = "Epsilon sampling: drop tokens less likely than this (0 = off, "
            + "below 1; default: the folder's); switches sampling on.")
    Double epsilonCutoff;

    @Option(names = "--eta-cutoff", description = "Eta sampling: drop tokens less likely than min(eta, sqrt(eta) * "
            + "e^-entropy) (0 = off, below 1; default: the folder's); switches sampling on.")
    Double etaCutoff;

    @Option(names = "--num-beams", description = "Beam search with this many beams, as transformers' generate "
            + "(default: the folder's num_beams, else 1); the answer prints when the search ends.")
    Integer numBeams;

    @Option(names = "--num-return-sequences", description = "Answers to --prompt (default: the folder's "
            + "num_return_sequences, else 1), as transformers' generate: with sampling, answer i draws with seed + i; "
            + "with beams, the best hypotheses of one search, best first (at most --num-beams). Not with greedy "
            + "decoding (one answer) or an interactive chat.")
    Integer numReturnSequences;

    @Option(names = "--length-penalty", description = "Beam search: a hypothesis scores its log-probability / "
            + "length^penalty (default: the folder's, else 1; > 1 favours longer answers).")
    Float lengthPenalty;

    @Option(names = "--early-stopping", arity = "0..1", fallbackValue = "true",
            description = "Beam search stopping: true, false or never (default: the folder's, else false).")
    String earlyStopping;

    @Option(names = "--stop", description = "Stop when the output contains this text (cut before it); repeatable. "
            + "LLaVA conversation templates add their own (### for v0, </s> for v1).")
    List<String> stops = new ArrayList<>();

    @Option(names = "--system", description = "System prompt: the conversation's first message, as the chat template "
            + "renders a \"system\" role (for LLaVA conversation templates it replaces the built-in system text).")
    String system;

    @Option(names = "--raw", description = "Send the prompt as given, without a chat template (BOS added as the "
            + "tokenizer does; with images, one <image> per image or frame where their features go). No history.")
    boolean raw;

    @Option(names = "--ignore-eos", description = "Generate exactly --max-new-tokens tokens: no stop at end-of-sequence "
            + "or at the template's stop string (--stop still applies).")
    boolean ignoreEos;

    @Option(names = "--json", description = "Print one JSON object per answer: prompt_ids (image tokens expanded), "
            + "output_ids, text.")
    boolean json;

    @Option(names = "--format", description = "text (default) or json: the answer is one JSON object (tokens that "
            + "cannot continue one are never chosen; the answer ends when it closes), as Ollama's format and OpenAI's "
            + "json_object response format.")
    String format;

    @Option(names = "--json-schema", description = "The answer is one JSON object this JSON Schema allows (a file, or "
            + "the schema itself when it starts with '{'; the keywords OpenAI's structured outputs take, see the "
            + "README).")
    String jsonSchema;

    @Option(names = "--logprobs", description = "With --json: add each new token's log-probability and this many most "
            + "likely alternatives (0-20; log-softmax of the raw logits, as the server's logprobs).")
    Integer logprobs;

    @Option(names = "--template", description = "Conversation template instead of the folder's chat template or the "
            + "one inferred from the model name: llava_v0, llava_v1, v1, llama_2, mpt, ..., or a Jinja chat template "
            + "file (as a folder's chat_template.jinja).")
    String template;

    @Option(names = "--vision-tower", description = "Original-layout LLaVA: vision tower folder or hub id instead of "
            + "config.json's mm_vision_tower.")
    String visionTower;

    @Option(names = "--quant", defaultValue = "none", description = "Language model weights in memory: none, q8 "
            + "(Q8_0, 8.5 bits per weight) or q4 (Q4_0, 4.5 bits per weight).")
    String quant;

    @Option(names = "--kv-cache", defaultValue = "f32", description = "KV cache element type: f32 (default, as "
            + "transformers), f16 (half the memory and of the bytes each new token reads; keys and values rounded "
            + "to F16, as llama.cpp's default), q8_0 (about a quarter: llama.cpp's q8_0 cache type) or q4_0 (about an "
            + "eighth: llama.cpp's q4_0).")
    String kvCache;

    @Option(names = "--prefill-chunk", defaultValue = "512", description = "The most prompt positions computed in one "
            + "pass (llama.cpp's --ubatch-size): fewer bound a long prompt's memory tighter. Default: 512.")
    int prefillChunk;

    @Option(names = "--prompt-lookup", description = "Prompt lookup decoding: draft up to this many tokens per pass "
            + "from an earlier occurrence of the answer's last n-gram in the conversation, checked in one pass (the "
            + "same answer in fewer passes where it repeats the prompt; transformers' prompt_lookup_num_tokens). 0: "
            + "off. Default: the folder's generation_config.json, else off.")
    Integer promptLookup;

    @Option(names = "--prompt-lookup-ngram", description = "With --prompt-lookup: the longest n-gram matched "
            + "(max_matching_ngram_size; default 2).")
    Integer promptLookupNgram;

    @Option(names = "--draft-model", description = "Speculative decoding: a small LLaMA-family model (folder or hub "
            + "id) with the same vocabulary drafts tokens, checked by the model in one pass each (the same answer in "
            + "fewer passes of the large model; llama.cpp's -md, transformers' assistant_model). Loaded with --quant "
            + "and --kv-cache; not with --prompt-lookup.")
    String draftModel;

    @Option(names = "--draft-max", description = "With --draft-model: tokens drafted per pass at most (llama.cpp's "
            + "--draft-max). Default: 16.")
    Integer draftMax;

    @Option(names = "--draft-p-min", description = "With --draft-model: drafting stops before a token the draft model "
            + "gives less than this probability (llama.cpp's --draft-p-min). Default: 0.75.")
    Double draftPMin;

    @Option(names = "--embed", description = "Print the embedding of --prompt (taken as given, no template) instead "
            + "of answering: the language model's final hidden states averaged over its tokens, as llama.cpp's "
            + "--pooling mean (the server's /v1/embeddings scales it to length 1).")
    boolean embed;

    @Option(names = "--no-prompt-cache", description = "Compute every turn's whole prompt instead of resuming after the "
            + "part it shares with the previous turn (and re-encode its images).")
    boolean noPromptCache;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda.")
    String device;

    @Spec
    CommandSpec spec;

    @ParentCommand
    Main parent;

    private final ObjectMapper mapper = new ObjectMapper();

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        validate();
        Quantization quantization = Quantization.parse(quant);
        DType kvCacheType = KvCache.parseType("--kv-cache", kvCache);
        Backend backend = Backends.select(device);
        err.println("backend " + backend.name() + " (" + backend.reason() + ")");
        HubClient hub = new HubClient(HubClient.Options.fromEnvironment(parent.env), new ConsoleProgress(System.err));
        Path folder = ModelLocator.resolve(model, hub, VisionChat.FILES);
        boolean textOnly = VisionChat.architectureOf(folder) == VisionChat.Architecture.LLAMA;
        if (textOnly && (!images.isEmpty() || video != null)) {
            throw new IllegalArgumentException(model + " is a text-only LlamaForCausalLM (" + folder.resolve("config.json")
                    + "): --image and --video need a LLaVA model");
        }
        List<Conversation.Visual> visuals = new ArrayList<>();
        for (Path image : images) {
            visuals.add(readImage(image, "--image"));
        }
        if (video != null) {
            visuals.add(readVideo(video, frames, "--video"));
        }
        long loadStart = System.nanoTime();
        DraftModel.Source draft = draftModel == null ? null : new DraftModel.Source(ModelLocator.resolve(draftModel,
                hub, VisionChat.FILES), draftModel, draftSettings());
        var options = new VisionChat.Options(quantization, template, visionTower, frames, hub, noPromptCache ? 0 : 1,
                kvCacheType, prefillChunk, PromptLookup.fromOptions("--prompt-lookup", promptLookup,
                        "--prompt-lookup-ngram", promptLookupNgram), draft);
        try (VisionChat chat = VisionChat.load(folder, model, options, backend.ops())) {
            err.printf(Locale.ROOT, "loaded %s in %.1f s%n", chat.describe(), (System.nanoTime() - loadStart) / 1e9);
            if (embed) {
                VisionChat.Embedding e = chat.embed(prompt, Cancel.NEVER);
                Map<String, Object> result = new java.util.LinkedHashMap<>();
                result.put("input_ids", e.ids());
                result.put("dimension", e.vector().length);
                result.put("embedding", e.vector());
                out.println(json ? mapper.writeValueAsString(result) : mapper.writeValueAsString(e.vector()));
                return 0;
            }
            boolean completion = raw;
            if (!raw && chat.promptFormat().isEmpty()) {
                if (system != null) {
                    throw new IllegalArgumentException("no chat template in " + folder + " to put --system into; name "
                            + "one with --template");
                }
                err.println("no chat template in " + folder + ": completing the prompt as given (as --raw)");
                completion = true;
            }
            SamplingParams params = params(chat, completion);
            if (prompt != null) {
                answer(chat, completion ? null : start().user(prompt, visuals), prompt, visuals, params,
                        returns(chat, params), out, err);
            } else {
                int folderReturns = chat.numReturnSequences();
                if (folderReturns > 1) {
                    err.println("generation_config.json's num_return_sequences " + folderReturns
                            + ": one answer per turn in an interactive chat");
                }
                interactive(chat, completion, visuals, params, out, err);
            }
        }
        return 0;
    }

    private DraftModel.Settings draftSettings() {
        return DraftModel.Settings.fromOptions("--draft-model", draftModel, "--draft-max", draftMax, "--draft-p-min",
                draftPMin, "--prompt-lookup", promptLookup);
    }

    /** A --logit-bias entry: ID=BIAS (BIAS signed or not), ID+BIAS or ID-BIAS. */
    private static final java.util.regex.Pattern LOGIT_BIAS = java.util.regex.Pattern.compile(
            "\\s*(\\d{1,9})\\s*(=\\s*[-+]?|[-+])\\s*(\\d+(\\.\\d*)?|\\.\\d+)\\s*");

    /** --logit-bias entries: token id to bias, each id below {@code vocabulary}. */
    Map<Integer, Float> logitBias(int vocabulary) {
        Map<Integer, Float> out = new java.util.HashMap<>();
        for (String entry : logitBias) {
            java.util.regex.Matcher m = LOGIT_BIAS.matcher(entry);
            if (!m.matches()) {
                throw new IllegalArgumentException("--logit-bias '" + entry + "': expected TOKEN_ID=BIAS (e.g. "
                        + "13=-100) or TOKEN_ID+BIAS / TOKEN_ID-BIAS");
            }
            int id = Integer.parseInt(m.group(1));
            String sign = m.group(2).replace("=", "").strip();
            double bias = Double.parseDouble(m.group(3)) * (sign.equals("-") ? -1 : 1);
            if (id >= vocabulary) {
                throw new IllegalArgumentException("--logit-bias " + entry.strip() + ": token " + id + " is not in the "
                        + "model's vocabulary of " + vocabulary + " tokens");
            }
            if (!(Math.abs(bias) <= 100)) {
                throw new IllegalArgumentException("--logit-bias " + entry.strip() + ": bias " + bias
                        + ", expected -100 to 100");
            }
            out.put(id, (float) bias);
        }
        return out;
    }

    private static void checkPenalty(String option, Double value) {
        if (value != null && !(value >= -2 && value <= 2)) {
            throw new IllegalArgumentException(option + " " + value + ": expected -2 to 2");
        }
    }

    /** An empty conversation, or one holding the --system prompt. */
    private Conversation start() {
        return system == null ? Conversation.empty() : Conversation.empty().system(system);
    }

    private void validate() throws IOException {
        if (promptFile != null) {
            if (prompt != null) {
                throw new IllegalArgumentException("--prompt and --prompt-file " + promptFile + ": give one");
            }
            if (!Files.isRegularFile(promptFile)) {
                throw new IllegalArgumentException("--prompt-file " + promptFile + ": file not found");
            }
            try {
                prompt = StandardCharsets.UTF_8.newDecoder()
                        .decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(promptFile))).toString();
            } catch (java.nio.charset.CharacterCodingException e) {
                throw new IllegalArgumentException("--prompt-file " + promptFile + ": not UTF-8 text");
            }
            if (prompt.isBlank()) {
                throw new IllegalArgumentException("--prompt-file " + promptFile + ": empty");
            }
        }
        if (system != null && raw) {
            throw new IllegalArgumentException("--system goes into a chat template; --raw sends the prompt without one");
        }
        if (frames < 1) {
            throw new IllegalArgumentException("--frames " + frames + ": expected at least 1");
        }
        if (embed && (prompt == null || !images.isEmpty() || video != null)) {
            throw new IllegalArgumentException("--embed: expected --prompt TEXT and no --image or --video (the text is "
                    + "embedded by the language model)");
        }
        if (prefillChunk < 1) {
            throw new IllegalArgumentException("--prefill-chunk " + prefillChunk + ": expected at least 1");
        }
        if (maxNewTokens != null && maxNewTokens < 1) {
            throw new IllegalArgumentException("--max-new-tokens " + maxNewTokens + ": expected at least 1");
        }
        if (temperature != null && !(temperature >= 0)) {
            throw new IllegalArgumentException("--temperature " + temperature + ": expected 0 (greedy) or more");
        }
        if (topK != null && topK < 0) {
            throw new IllegalArgumentException("--top-k " + topK + ": expected 0 (off) or more");
        }
        if (topP != null && !(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("--top-p " + topP + ": expected a value in (0, 1]");
        }
        checkPenalty("--frequency-penalty", frequencyPenalty);
        checkPenalty("--presence-penalty", presencePenalty);
        if (repetitionPenalty != null && !(repetitionPenalty > 0)) {
            throw new IllegalArgumentException("--repetition-penalty " + repetitionPenalty + ": expected a value > 0");
        }
        for (String s : stops) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("--stop: an empty stop string would stop before the first token");
            }
        }
        if (noRepeatNgramSize != null && noRepeatNgramSize < 0) {
            throw new IllegalArgumentException("--no-repeat-ngram-size " + noRepeatNgramSize + ": expected 0 (off) or more");
        }
        if (maxTime != null && !(maxTime > 0 && maxTime < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("--max-time " + maxTime + ": expected a positive number of seconds");
        }
        if (minNewTokens != null && minNewTokens < 0) {
            throw new IllegalArgumentException("--min-new-tokens " + minNewTokens + ": expected 0 or more");
        }
        if (minP != null && !(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("--min-p " + minP + ": expected a value from 0 to 1");
        }
        if (format != null && !List.of("text", "json").contains(format)) {
            throw new IllegalArgumentException("--format '" + format + "': expected text or json");
        }
        if (logprobs != null && (logprobs < 0 || logprobs > 20 || !json)) {
            throw new IllegalArgumentException("--logprobs " + logprobs + ": expected 0 to 20 alternatives, with --json");
        }
        if (typicalP != null && !(typicalP > 0 && typicalP <= 1)) {
            throw new IllegalArgumentException("--typical-p " + typicalP + ": expected a value in (0, 1]");
        }
        if (epsilonCutoff != null && !(epsilonCutoff >= 0 && epsilonCutoff < 1)) {
            throw new IllegalArgumentException("--epsilon-cutoff " + epsilonCutoff + ": expected 0 (off) up to below 1");
        }
        if (etaCutoff != null && !(etaCutoff >= 0 && etaCutoff < 1)) {
            throw new IllegalArgumentException("--eta-cutoff " + etaCutoff + ": expected 0 (off) up to below 1");
        }
        draftSettings();
        logitBias(Integer.MAX_VALUE);                            // the entries' form, before the model loads
        if (numBeams != null && numBeams < 1) {
            throw new IllegalArgumentException("--num-beams " + numBeams + ": expected at least 1");
        }
        if (numReturnSequences != null && (numReturnSequences < 1 || numReturnSequences > MAX_RETURN_SEQUENCES)) {
            throw new IllegalArgumentException("--num-return-sequences " + numReturnSequences + ": expected 1 to "
                    + MAX_RETURN_SEQUENCES);
        }
        if (numReturnSequences != null && numReturnSequences > 1 && (prompt == null || embed)) {
            throw new IllegalArgumentException("--num-return-sequences " + numReturnSequences + ": only with --prompt "
                    + "(an interactive chat goes on from one answer; --embed answers nothing)");
        }
        if (lengthPenalty != null && !Float.isFinite(lengthPenalty)) {
            throw new IllegalArgumentException("--length-penalty " + lengthPenalty + ": expected a finite number");
        }
        if (earlyStopping != null && !List.of("true", "false", "never")
                .contains(earlyStopping.toLowerCase(java.util.Locale.ROOT))) {
            throw new IllegalArgumentException("--early-stopping '" + earlyStopping + "': expected true, false or never");
        }
    }

    /** The folder's defaults with the options on top (see each option's description). */
    private SamplingParams params(VisionChat chat, boolean completion) {
        SamplingParams p = completion ? chat.rawDefaults() : chat.defaults();
        if (maxNewTokens != null) {
            p = p.withMaxNewTokens(maxNewTokens);
        }
        if (ignoreEos) {
            p = p.withIgnoreEos(true).withStopStrings(List.of());
        }
        if (!stops.isEmpty()) {
            List<String> all = new ArrayList<>(p.stopStrings());
            all.addAll(stops);
            p = p.withStopStrings(all);
        }
        if (repetitionPenalty != null) {
            p = p.withRepetitionPenalty(repetitionPenalty);
        }
        p = p.withConstraints(p.constraints().overriddenBy(noRepeatNgramSize, minNewTokens, minP));
        if (maxTime != null) {
            p = p.withConstraints(p.constraints().withMaxTime(maxTime));
        }
        if (numBeams != null || lengthPenalty != null || earlyStopping != null) {
            SamplingParams.Beams b = p.beams();
            p = p.withBeams(new SamplingParams.Beams(numBeams != null ? numBeams : b.numBeams(),
                    lengthPenalty != null ? lengthPenalty : b.lengthPenalty(),
                    earlyStopping != null ? TextGenerationConfig.parseEarlyStopping(earlyStopping)
                            : b.earlyStopping()));
        }
        Map<Integer, Float> bias = logitBias(chat.tokenizer().size());
        if (frequencyPenalty != null || presencePenalty != null || !bias.isEmpty()) {
            p = p.withAdjustments(new SamplingParams.LogitAdjustments(frequencyPenalty != null ? frequencyPenalty : 0,
                    presencePenalty != null ? presencePenalty : 0, bias));
        }
        p = p.withProcessors(p.processors().withWarpers(typicalP, epsilonCutoff, etaCutoff));
        if ("json".equals(format)) {
            p = p.withFormat(SamplingParams.Format.JSON);
        }
        if (jsonSchema != null) {
            p = p.withFormat(new SamplingParams.Format(readSchema(jsonSchema)));
        }
        boolean sample = temperature != null ? temperature > 0
                : topK != null || topP != null || typicalP != null || epsilonCutoff != null || etaCutoff != null
                        || p.doSample();
        if (sample) {
            p = p.withSampling(temperature != null ? temperature : p.temperature(), topK != null ? topK : p.topK(),
                    topP != null ? topP : p.topP(), seed);
        } else {
            p = p.withGreedy();
        }
        return p;
    }

    private void interactive(VisionChat chat, boolean completion, List<Conversation.Visual> initial,
                             SamplingParams params, PrintWriter out, PrintWriter err) throws IOException {
        boolean terminal = System.console() != null && System.console().isTerminal();
        if (terminal) {
            err.println("chat with " + model + ": type a message and Enter; /image PATH, /video PATH, /reset, /exit");
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Conversation conversation = start();
        List<Conversation.Visual> pending = new ArrayList<>(initial);
        while (true) {
            if (terminal) {
                err.print(">>> ");
                err.flush();
            }
            String line = in.readLine();
            if (line == null) {
                break;
            }
            line = line.strip();
            if (line.isEmpty()) {
                continue;
            }
            try {
                if (line.equals("/exit")) {
                    break;
                } else if (line.equals("/reset")) {
                    conversation = start();
                    pending.clear();
                    err.println("(history cleared)");
                } else if (line.startsWith("/image ") || line.startsWith("/video ")) {
                    if (!chat.acceptsImages()) {
                        throw new IllegalArgumentException(model + " is a text-only LlamaForCausalLM: it takes no"
                                + " images or videos");
                    }
                    Path file = Path.of(line.substring(7).strip());
                    pending.add(line.startsWith("/image ") ? readImage(file, "/image") : readVideo(file, chat.frames(),
                            "/video"));
                    err.println("(" + pending.getLast().frames().size() + " image(s) from " + file
                            + " attached to the next message)");
                } else if (line.startsWith("/")) {
                    throw new IllegalArgumentException("unknown command " + line.split("\\s+")[0]
                            + ": expected /image PATH, /video PATH, /reset or /exit");
                } else if (completion) {
                    List<Conversation.Visual> visuals = List.copyOf(pending);
                    pending.clear();
                    answer(chat, null, line, visuals, params, out, err);
                } else {
                    Conversation asked = conversation.user(line, pending);
                    pending.clear();
                    VisionChat.Reply reply = answer(chat, asked, null, List.of(), params, out, err);
                    // the answer joins the history as cli.py keeps it: its text, whitespace stripped
                    conversation = asked.assistant(reply.text().strip());
                }
            } catch (RuntimeException e) {
                err.println("koala4j: " + Main.oneLine(e));
                err.flush();
            }
        }
    }

    /**
     * One answer, streamed to stdout (or one JSON line), statistics on stderr: to the last turn of
     * {@code conversation}, or (conversation null) the completion of {@code rawPrompt} with {@code visuals}.
     */
    private VisionChat.Reply answer(VisionChat chat, Conversation conversation, String rawPrompt,
                                    List<Conversation.Visual> visuals, SamplingParams params, PrintWriter out,
                                    PrintWriter err) {
        return answer(chat, conversation, rawPrompt, visuals, params, 1, out, err);
    }

    /** The most answers --num-return-sequences asks for (each holds a KV cache while it decodes). */
    static final int MAX_RETURN_SEQUENCES = 64;

    /**
     * Answers --prompt asks for: --num-return-sequences, else the folder's num_return_sequences; more than one needs
     * sampling or at least that many beams, as transformers' generate refuses greedy decoding with several.
     */
    private int returns(VisionChat chat, SamplingParams params) {
        int n = numReturnSequences != null ? numReturnSequences : chat.numReturnSequences();
        String what = numReturnSequences != null ? "--num-return-sequences " + n
                : chat.folder().resolve("generation_config.json") + ": num_return_sequences " + n;
        int beams = params.beams().numBeams();
        if (n > 1 && !params.doSample() && beams == 1) {
            throw new IllegalArgumentException(what + ": greedy decoding gives one answer; sample (--temperature > 0)"
                    + " or search with at least " + n + " beams (--num-beams " + n + ")");
        }
        if (n > beams && beams > 1) {
            throw new IllegalArgumentException(what + " with num_beams " + beams + ": expected at most num_beams (the"
                    + " best hypotheses of one search)");
        }
        return n;
    }

    /**
     * {@code returns} answers (see {@link #returns}); one streams as it is generated, several print in order once all
     * are done, each under a "--- i/N ---" line (one JSON object each with --json, with its "index").
     */
    private VisionChat.Reply answer(VisionChat chat, Conversation conversation, String rawPrompt,
                                    List<Conversation.Visual> visuals, SamplingParams params, int returns,
                                    PrintWriter out, PrintWriter err) {
        List<List<Map<String, Object>>> scores = new ArrayList<>();
        List<VisionChat.Choice> choices = new ArrayList<>();
        for (int i = 0; i < returns; i++) {
            List<Map<String, Object>> scored = new ArrayList<>();
            scores.add(scored);
            SamplingParams p = params.doSample() ? params.withSeed(params.seed() + i) : params;
            choices.add(new VisionChat.Choice(p, listener(chat, scored, returns == 1, out), reply -> { }));
        }
        List<VisionChat.Reply> replies = conversation == null
                ? chat.completions(rawPrompt, visuals, choices, Cancel.NEVER, false)
                : chat.replies(conversation, choices, Cancel.NEVER, false);
        for (int i = 0; i < replies.size(); i++) {
            VisionChat.Reply reply = replies.get(i);
            if (returns > 1 && !json) {
                out.println("--- " + (i + 1) + "/" + returns + " ---");
                out.print(reply.text());
            }
            print(chat, reply, returns > 1 ? i : -1, scores.get(i), out, err);
        }
        return replies.getFirst();
    }

    /** Where an answer's tokens go: nowhere but its log-probabilities with --json, else stdout when it streams. */
    private TextGeneration.TokenListener listener(VisionChat chat, List<Map<String, Object>> scored, boolean streams,
                                                  PrintWriter out) {
        if (!json && !streams) {
            return TextGeneration.TokenListener.NONE;
        }
        return json ? new TextGeneration.TokenListener() {
            @Override
            public void onToken(int id, String delta) {
            }

            @Override
            public int topLogprobs() {
                return logprobs == null ? -1 : logprobs;
            }

            @Override
            public void onLogprobs(TextGeneration.TokenLogprobs t) {
                List<Map<String, Object>> top = new ArrayList<>();
                for (int i = 0; i < t.topIds().length; i++) {
                    top.add(tokenEntry(chat, t.topIds()[i], t.topLogprobs()[i]));
                }
                Map<String, Object> entry = tokenEntry(chat, t.id(), t.logprob());
                entry.put("top_logprobs", top);
                scored.add(entry);
            }
        } : (id, delta) -> {
            if (!delta.isEmpty()) {
                out.print(delta);
                out.flush();
            }
        };
    }

    /** One answer's output (its JSON object, or the end of its streamed text) and its statistics on stderr. */
    private void print(VisionChat chat, VisionChat.Reply reply, int index, List<Map<String, Object>> scored,
                       PrintWriter out, PrintWriter err) {
        if (json) {
            Map<String, Object> result = new LinkedHashMap<>();
            if (index >= 0) {
                result.put("index", index);
            }
            result.put("prompt_ids", reply.promptIds());
            result.put("output_ids", reply.outputIds());
            result.put("text", reply.text());
            if (logprobs != null) {
                result.put("logprobs", scored);
            }
            try {
                out.println(mapper.writeValueAsString(result));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        } else {
            out.println();
        }
        out.flush();
        TextGeneration.Result g = reply.generation();
        err.printf(Locale.ROOT,
                "%s%d new tokens (%s); prompt %d tokens%s in %.2f s (%.1f tok/s), decode %.1f tok/s%s%s%n",
                index < 0 ? "" : (index + 1) + ": ", reply.outputIds().length,
                g.stopReason().name().toLowerCase(Locale.ROOT), g.promptTokens(),
                g.reusedPromptTokens() == 0 ? "" : " (" + g.reusedPromptTokens() + " reused from the previous turn)",
                g.promptTime().toNanos() / 1e9, g.promptTokensPerSecond(), g.decodeTokensPerSecond(),
                g.drafts().proposed() == 0 ? "" : String.format(Locale.ROOT, " in %d passes (" + (draftModel != null
                        ? "draft model" : "prompt lookup") + ": %d of %d "
                        + "drafted tokens kept)", g.drafts().passes(), g.drafts().accepted(), g.drafts().proposed()),
                reply.images() == 0 ? "" : String.format(Locale.ROOT, "; %d image(s) encoded in %.2f s", reply.images(),
                        reply.visionTime().toNanos() / 1e9));
        int positions = chat.languageModel().config().maxPositionEmbeddings();
        if (g.promptTokens() + reply.outputIds().length > positions) {
            err.printf(Locale.ROOT, "warning: prompt (%d tokens) and answer (%d) went past the model's "
                    + "max_position_embeddings %d; answers degrade there (fewer --frames, or /reset)%n",
                    g.promptTokens(), reply.outputIds().length, positions);
        }
        err.flush();
    }

    /** --json-schema: inline JSON when it starts with '{', else a file. */
    private static JsonSchema readSchema(String value) {
        String text;
        String where;
        if (value.strip().startsWith("{")) {
            text = value;
            where = "--json-schema";
        } else {
            try {
                text = Files.readString(Path.of(value));
            } catch (IOException e) {
                throw new IllegalArgumentException("--json-schema " + value + ": " + Main.oneLine(e));
            }
            where = "--json-schema " + value;
        }
        try {
            return JsonSchema.compile(new com.fasterxml.jackson.databind.ObjectMapper().readTree(text), where);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException(where + ": not JSON (" + e.getOriginalMessage() + ")");
        }
    }

    /** One token of --logprobs: id, text (bytes:\\xNN... when not UTF-8 on its own), bytes, log-probability. */
    private static Map<String, Object> tokenEntry(VisionChat chat, int id, float logprob) {
        byte[] bytes = chat.tokenBytes(id);
        int[] unsigned = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            unsigned[i] = bytes[i] & 0xFF;
        }
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("id", id);
        entry.put("token", VisionChat.tokenText(bytes));
        entry.put("bytes", unsigned);
        entry.put("logprob", logprob);
        return entry;
    }

    static Conversation.Picture readImage(Path file, String option) {
        try {
            return new Conversation.Picture(Images.read(file), file.getFileName().toString());
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(option + " " + file + ": image file not found");
        } catch (IOException e) {
            throw new IllegalArgumentException(option + ": " + Main.oneLine(e));
        }
    }

    static Conversation.Video readVideo(Path file, int frames, String option) {
        try {
            return VisionChat.readVideo(file, frames);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(option + " " + file + ": video file not found");
        } catch (IOException e) {
            throw new IllegalArgumentException(option + ": " + Main.oneLine(e));
        }
    }
}
