package koala4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

import koala4j.io.hub.ConsoleProgress;
import koala4j.io.hub.HubClient;
import koala4j.io.hub.ModelLocator;
import koala4j.models.llama.KvCache;
import koala4j.pipelines.DraftModel;
import koala4j.pipelines.PipelineFiles;
import koala4j.pipelines.PromptLookup;
import koala4j.pipelines.TextToText;
import koala4j.pipelines.VisionChat;
import koala4j.server.ChatModel;
import koala4j.server.ChatModelLimit;
import koala4j.server.KoalaServer;
import koala4j.server.LocalChatModels;
import koala4j.server.ServerConfig;
import koala4j.tensor.DType;
import koala4j.tensor.quant.Quantization;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code koala4j serve}: the OpenAI-compatible API and the arena page until stopped (Ctrl-C, SIGTERM). */
@Command(mixinStandardHelpOptions = true, name = "serve", description = "Serve the OpenAI-compatible API and the side-by-side arena page.")
final class ServeCommand implements Callable<Integer> {

    @Option(names = "--port", defaultValue = "8080", description = "TCP port (default 8080; 0 picks a free one).")
    int port;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on (default 127.0.0.1; "
            + "0.0.0.0 for every interface).")
    String host;

    @Option(names = "--model", description = "Pipeline folder or hub id; repeat for several. Its id is the hub id or the "
            + "folder name. Models load on first use.")
    List<String> models = new ArrayList<>();

    @Option(names = "--chat-model", description = "Chat model folder or hub id for /v1/chat/completions; repeatable. "
            + "LLaVA / Ko-LLaVA / LLaMA folders answer as koala4j chat does, T5 / KEByT5 folders answer the last user "
            + "message. Loads on first use.")
    List<String> chatModels = new ArrayList<>();

    @Option(names = "--chat-quant", defaultValue = "none", description = "LLaVA / LLaMA language model weights: none, "
            + "q8 or q4 (default none).")
    String chatQuant;

    @Option(names = "--chat-kv-cache", defaultValue = "f32", description = "LLaVA / LLaMA KV cache element type: f32 "
            + "(default), f16 (half the memory per cached token), q8_0 (about a quarter) or q4_0 (about an eighth).")
    String chatKvCache;

    @Option(names = "--chat-max-loaded", defaultValue = "0", description = "Chat models loaded at once (as Ollama's "
            + "OLLAMA_MAX_LOADED_MODELS): one more coming into use unloads the least recently used idle one; 0 (default):"
            + " no limit.")
    int chatMaxLoaded;

    @Option(names = "--chat-memory-budget", defaultValue = "0", description = "Weights of chat models kept loaded "
            + "at once, e.g. 20g (each counted from its weight files, LLaMA Linear weights at their --chat-quant "
            + "size): least recently used idle ones unload before another loads past it. 0 (default): no limit; "
            + "--chat-max-loaded applies as well.")
    String chatMemoryBudget;

    @Option(names = "--chat-preload", description = "Load the chat models before serving (as llama.cpp's server "
            + "does) instead of at their first request; one that cannot be loaded stops serve with the reason.")
    boolean chatPreload;

    @Option(names = "--chat-prefill-chunk", defaultValue = "512", description = "LLaVA / LLaMA: the most prompt "
            + "positions computed in one pass (default 512); a cancelled request stops between passes.")
    int chatPrefillChunk;

    @Option(names = "--chat-prompt-lookup", description = "LLaVA / LLaMA: prompt lookup decoding with up to this "
            + "many drafted tokens per pass (the same answers in fewer passes where they repeat the prompt); 0: off. "
            + "Default: each folder's generation_config.json, else off.")
    Integer chatPromptLookup;

    @Option(names = "--chat-prompt-lookup-ngram", description = "With --chat-prompt-lookup: the longest n-gram "
            + "matched (default 2).")
    Integer chatPromptLookupNgram;

    @Option(names = "--chat-draft-model", description = "LLaVA / LLaMA: speculative decoding with this small "
            + "LLaMA-family model (folder or hub id) drafting tokens for every such chat model, which needs its "
            + "vocabulary (the same answers in fewer passes; llama.cpp's -md). Loaded with each chat model.")
    String chatDraftModel;

    @Option(names = "--chat-draft-max", description = "With --chat-draft-model: tokens drafted per pass at most "
            + "(default 16).")
    Integer chatDraftMax;

    @Option(names = "--chat-draft-p-min", description = "With --chat-draft-model: drafting stops before a token the "
            + "draft model gives less than this probability (default 0.75).")
    Double chatDraftPMin;

    @Option(names = "--image-urls", defaultValue = "none", description = "Chat image_url parts the server may download:"
            + " none (data: URLs only, default), public (http(s) hosts with public addresses only) or all.")
    String imageUrls;

    @Option(names = "--no-prompt-cache", description = "Chat models compute every request's whole prompt instead of "
            + "resuming after the part it shares with an earlier request.")
    boolean noPromptCache;

    @Option(names = "--chat-cache-slots", defaultValue = "1", description = "Conversations per chat model whose KV "
            + "cache is kept for their next request (default 1); each holds one KV cache (LLaMA-13B: 1.6 MB per "
            + "token in F32, 0.8 MB in F16), so memory grows with it.")
    int chatCacheSlots;

    @Option(names = "--db", description = "jdbc:sqlite:PATH or jdbc:postgresql://HOST/DB (default: SQLite in --data).")
    String db;

    @Option(names = "--data", defaultValue = "koala4j-data", description = "Folder for images and the SQLite file "
            + "(default ./koala4j-data).")
    Path data;

    @Option(names = "--api-key-file", description = "File of accepted API keys, one per line (# comments); requests to "
            + "/v1 and /api then need Authorization: Bearer KEY.")
    Path apiKeyFile;

    @Option(names = "--cors-origin", description = "Allow cross-origin requests from this origin (repeatable; default: "
            + "CORS off).")
    List<String> corsOrigins = new ArrayList<>();

    @Option(names = "--queue", defaultValue = "64", description = "Jobs admitted at once, waiting or running (default "
            + "64); beyond it requests get 429.")
    int queue;

    @Option(names = "--chat-parallel", defaultValue = "1", description = "Chat replies run at once (default 1); above 1 "
            + "chat jobs get a lane of their own and concurrent replies of one model decode their tokens together.")
    int chatParallel;

    @Option(names = "--workers", defaultValue = "1", description = "Local jobs run at once (default 1: the CPU kernels "
            + "already use every core).")
    int workers;

    @Option(names = "--timeout", defaultValue = "300", description = "Seconds a request may take, queueing included "
            + "(default 300).")
    int timeoutSeconds;

    @Option(names = "--memory-budget", defaultValue = "8g", description = "Weights of local models kept loaded at once, "
            + "e.g. 8g or 512m (default 8g); least recently used models are unloaded first.")
    String memoryBudget;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda.")
    String device;

    @Option(names = "--openai-base-url", description = "Base URL of the OpenAI API for dall-e-2/dall-e-3 (default: "
            + "OPENAI_BASE_URL, else https://api.openai.com/v1); the key is OPENAI_API_KEY.")
    String openAiBaseUrl;

    @Option(names = "--max-prompt", defaultValue = "2000", description = "Longest prompt in characters (default 2000).")
    int maxPrompt;

    @Option(names = "--max-n", defaultValue = "4", description = "Most images per request (default 4).")
    int maxN;

    @Option(names = "--max-size", defaultValue = "1024", description = "Longest image side in pixels (default 1024).")
    int maxSize;

    @Option(names = "--max-body", defaultValue = "65536", description = "Largest image request body in bytes "
            + "(default 65536).")
    long maxBody;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        ServerConfig.Builder b = ServerConfig.builder();
        b.host = host;
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--port " + port + ": expected 0 to 65535");
        }
        b.port = port;
        if (chatCacheSlots < 1) {
            throw new IllegalArgumentException("--chat-cache-slots " + chatCacheSlots + ": expected at least 1 "
                    + "(--no-prompt-cache turns the cache off)");
        }
        if (chatMaxLoaded < 0) {
            throw new IllegalArgumentException("--chat-max-loaded " + chatMaxLoaded + ": expected 0 (no limit) or more");
        }
        positive("--chat-prefill-chunk", chatPrefillChunk);
        long chatBudget = chatMemoryBudget.strip().equals("0") ? 0 : bytes("--chat-memory-budget", chatMemoryBudget);
        Quantization chatQuantization = Quantization.parse(chatQuant);
        DType chatKvType = KvCache.parseType("--chat-kv-cache", chatKvCache);
        PromptLookup chatLookup = PromptLookup.fromOptions("--chat-prompt-lookup", chatPromptLookup,
                "--chat-prompt-lookup-ngram", chatPromptLookupNgram);
        DraftModel.Settings draftSettings = DraftModel.Settings.fromOptions("--chat-draft-model", chatDraftModel,
                "--chat-draft-max", chatDraftMax, "--chat-draft-p-min", chatDraftPMin, "--chat-prompt-lookup",
                chatPromptLookup);
        b.dataDir = data;
        Files.createDirectories(data);
        b.dbUrl = db;
        b.apiKeys = apiKeyFile == null ? Set.of() : readKeys(apiKeyFile);
        b.corsOrigins.addAll(corsOrigins);
        b.queueCapacity = positive("--queue", queue);
        b.workers = positive("--workers", workers);
        b.chatParallel = positive("--chat-parallel", chatParallel);
        b.requestTimeout = Duration.ofSeconds(positive("--timeout", timeoutSeconds));
        b.memoryBudgetBytes = bytes("--memory-budget", memoryBudget);
        b.device = device;
        b.imageUrls = switch (imageUrls.strip().toLowerCase(java.util.Locale.ROOT)) {
            case "none" -> ServerConfig.ImageUrls.NONE;
            case "public" -> ServerConfig.ImageUrls.PUBLIC;
            case "all" -> ServerConfig.ImageUrls.ALL;
            default -> throw new IllegalArgumentException("--image-urls " + imageUrls + ": expected none, public or all");
        };
        b.limits = new ServerConfig.Limits(positive("--max-prompt", maxPrompt), positive("--max-n", maxN),
                positive("--max-size", maxSize), ServerConfig.Limits.DEFAULT.maxSteps(), positive("--max-body", maxBody),
                ServerConfig.Limits.DEFAULT.maxChatBodyBytes());
        b.openAiKey = System.getenv("OPENAI_API_KEY");
        String base = openAiBaseUrl != null ? openAiBaseUrl : System.getenv("OPENAI_BASE_URL");
        if (base != null && !base.isBlank()) {
            b.openAiBaseUrl = URI.create(base.strip());
        }
        HubClient hub = new HubClient(HubClient.Options.fromEnvironment(System.getenv()), new ConsoleProgress(System.err));
        for (String m : models) {
            b.models.add(locate(m, hub, err));
        }
        if (!chatModels.isEmpty()) {
            DraftModel.Source draft = chatDraftModel == null ? null : new DraftModel.Source(
                    ModelLocator.resolve(chatDraftModel, hub, VisionChat.FILES), chatDraftModel, draftSettings);
            var options = new VisionChat.Options(chatQuantization, null, null,
                    VisionChat.Options.defaults().frames(), hub, noPromptCache ? 0 : chatCacheSlots, chatKvType,
                    chatPrefillChunk, chatLookup, draft);
            var ops = koala4j.backend.Backends.select(device).ops();
            ChatModelLimit limit = ChatModelLimit.of(chatMaxLoaded, chatBudget);
            for (String m : chatModels) {
                ChatModel model = chatModel(m, hub, options, ops, limit);
                if (chatPreload) {
                    preload(m, model, err);
                }
                b.chatModels.add(model);
            }
        }
        KoalaServer server = KoalaServer.start(b.build());
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }, "koala4j-serve-shutdown"));
        spec.commandLine().getOut().println("koala4j serving on http://" + host + ":" + server.port() + "/");
        spec.commandLine().getOut().flush();
        stopped.await();
        return 0;
    }

    /** {@code --chat-preload}: loads the model now; one that cannot be loaded is a one-line error with the reason. */
    private static void preload(String option, ChatModel model, PrintWriter err) {
        long started = System.nanoTime();
        try {
            model.load();
        } catch (RuntimeException e) {
            Throwable reason = e.getCause() != null ? e.getCause() : e;
            throw new IllegalArgumentException("--chat-model " + option + " could not be loaded: "
                    + Main.oneLine(reason), e);
        }
        err.printf(java.util.Locale.ROOT, "loaded chat model %s in %.1f s%n", model.id(),
                (System.nanoTime() - started) / 1e9);
        err.flush();
    }

    /** The model's id (hub id, or the folder name) and folder; a model that cannot be found is listed as unavailable. */
    private static ServerConfig.LocalModel locate(String model, HubClient hub, PrintWriter err) {
        Path asPath = Path.of(model);
        boolean folder = Files.isDirectory(asPath);
        String id = folder ? folderId(asPath) : model;
        String display = id.contains("/") ? id.substring(id.indexOf('/') + 1) : id;
        try {
            Path resolved = PipelineFiles.withTorchWeights(model, hub, ModelLocator.resolve(model, hub, PipelineFiles.patterns(null)), null);
            if (!Files.isRegularFile(resolved.resolve("model_index.json"))) {
                throw new IllegalArgumentException(resolved + ": no model_index.json (not a diffusers pipeline folder)");
            }
            return new ServerConfig.LocalModel(id, display, resolved, null);
        } catch (RuntimeException e) {
            String reason = Main.oneLine(e);
            err.println("koala4j: --model " + model + " is unavailable: " + reason);
            return new ServerConfig.LocalModel(id, display, null, reason);
        }
    }

    /** A chat model by folder or hub id; its kind from config.json. Unlike image models, one that fails stops serve. */
    static ChatModel chatModel(String model, HubClient hub, VisionChat.Options options, koala4j.tensor.Ops ops,
                               ChatModelLimit limit) {
        List<String> files = new ArrayList<>(VisionChat.FILES);
        files.addAll(TextToText.FILES);
        Path folder = ModelLocator.resolve(model, hub, List.copyOf(new LinkedHashSet<>(files)));
        String id = Files.isDirectory(Path.of(model)) ? folderId(Path.of(model)) : model;
        String display = id.contains("/") ? id.substring(id.indexOf('/') + 1) : id;
        try {
            return LocalChatModels.open(id, display, folder, options, ops, limit);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("--chat-model " + model + ": " + Main.oneLine(e), e);
        }
    }

    /** A folder's model id: org/name for a hub-cache snapshot (models--org--name/snapshots/REV), else its name. */
    static String folderId(Path folder) {
        Path abs = folder.toAbsolutePath().normalize();
        var m = java.util.regex.Pattern.compile("models--([^/\\\\]+?)--([^/\\\\]+)[/\\\\]snapshots[/\\\\][^/\\\\]+$")
                .matcher(abs.toString());
        return m.find() ? m.group(1) + "/" + m.group(2) : abs.getFileName().toString();
    }

    static Set<String> readKeys(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("--api-key-file " + file + ": no such file");
        }
        Set<String> keys = new LinkedHashSet<>();
        for (String line : Files.readAllLines(file)) {
            String k = line.strip();
            if (!k.isEmpty() && !k.startsWith("#")) {
                if (k.length() < 16) {
                    throw new IllegalArgumentException("--api-key-file " + file + ": a key of " + k.length()
                            + " characters; expected at least 16");
                }
                keys.add(k);
            }
        }
        if (keys.isEmpty()) {
            throw new IllegalArgumentException("--api-key-file " + file + ": no keys (one per line, # for comments)");
        }
        return keys;
    }

    static long bytes(String option, String text) {
        String t = text.strip().toLowerCase(Locale.ROOT);
        long unit = 1;
        if (t.endsWith("g")) {
            unit = 1L << 30;
        } else if (t.endsWith("m")) {
            unit = 1L << 20;
        } else if (t.endsWith("k")) {
            unit = 1L << 10;
        }
        String digits = unit == 1 ? t : t.substring(0, t.length() - 1);
        try {
            long v = Long.parseLong(digits);
            if (v <= 0) {
                throw new NumberFormatException();
            }
            return Math.multiplyExact(v, unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException(option + " " + text + ": expected a size such as 8g, 512m or 1048576");
        }
    }

    private static int positive(String option, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(option + " " + v + ": expected at least 1");
        }
        return v;
    }

    private static long positive(String option, long v) {
        if (v < 1) {
            throw new IllegalArgumentException(option + " " + v + ": expected at least 1");
        }
        return v;
    }
}
