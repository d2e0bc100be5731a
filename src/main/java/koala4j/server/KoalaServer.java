package koala4j.server;

import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.eclipse.jetty.server.ServerConnector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import koala4j.backend.Backend;
import koala4j.backend.Backends;
import koala4j.pipelines.TextToImage;
import koala4j.server.store.Store;

/**
 * The koala4j HTTP server: the OpenAI-compatible API, the job queue and the arena page, on Javalin (Jetty 12) with a
 * virtual thread per request. {@link #start} opens the store (migrating it), marks generations a previous run left
 * unfinished as interrupted, registers the models (local ones load on first use) and listens.
 */
public final class KoalaServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(KoalaServer.class);

    private final ServerConfig config;
    private final Store store;
    private final Metrics metrics = new Metrics();
    private final ModelPool pool;
    private final JobQueue queue;
    private final Generations generations;
    private final Map<String, ImageModel> imageModels;
    private final Map<String, ChatModel> chatModels;
    private final ImageModel defaultModel;
    private final byte[][] keyHashes;
    private Javalin app;

    private KoalaServer(ServerConfig config, Store store) {
        this.config = config;
        this.store = store;
        Backend backend = config.models().isEmpty() ? null : Backends.select(config.device());
        if (backend != null) {
            LOG.info("backend {} ({})", backend.name(), backend.reason());
        }
        this.pool = new ModelPool(config.memoryBudgetBytes(),
                (id, folder) -> TextToImage.load(folder, id, null, null, backend.ops()), metrics);
        this.queue = new JobQueue(config.queueCapacity(), config.workers(), config.remoteWorkers(),
                config.chatParallel() > 1 ? config.chatParallel() : 0, config.requestTimeout(),
                metrics);
        this.generations = new Generations(store, config.dataDir().resolve("images"), queue, metrics);
        Map<String, ImageModel> images = new LinkedHashMap<>();
        ImageModel.Limits localLimits = new ImageModel.Limits(config.limits().maxPromptChars(), config.limits().maxN(),
                List.of(), config.limits().maxSide(), true, null);
        for (ServerConfig.LocalModel m : config.models()) {
            ImageRequests.checkModelId(m.id());
            register(images, new LocalImageModel(m.id(), m.displayName(), m.folder(), m.unavailableReason(), pool,
                    localLimits));
        }
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        for (String remote : List.of("dall-e-2", "dall-e-3")) {
            register(images, new OpenAiImageModel(remote, config.openAiBaseUrl(), config.openAiKey(), http,
                    config.requestTimeout()));
        }
        this.imageModels = Collections.unmodifiableMap(images);
        Map<String, ChatModel> chats = new LinkedHashMap<>();
        for (ChatModel c : config.chatModels()) {
            if (chats.putIfAbsent(ImageRequests.checkModelId(c.id()), c) != null) {
                throw new IllegalArgumentException("chat model " + c.id() + " is registered twice");
            }
        }
        this.chatModels = Collections.unmodifiableMap(chats);
        metrics.chatDecode(() -> {
            Map<String, long[]> stats = new LinkedHashMap<>();
            chats.forEach((id, c) -> {
                var s = c instanceof VisionChatModel v ? v.decodeStats() : null;
                var d = c instanceof VisionChatModel v ? v.draftTotals() : null;
                if (s != null && d != null) {
                    stats.put(id, new long[] {s.steps(), s.batches(), d.proposed(), d.accepted()});
                }
            });
            return stats;
        });
        this.defaultModel = images.values().stream()
                .filter(m -> m.provider().equals("local") && m.unavailableReason() == null).findFirst().orElse(null);
        this.keyHashes = config.apiKeys().stream().map(KoalaServer::sha256).toArray(byte[][]::new);
    }

    private static void register(Map<String, ImageModel> images, ImageModel m) {
        if (images.putIfAbsent(m.id(), m) != null) {
            throw new IllegalArgumentException("model id " + m.id() + " is registered twice (two --model values with the"
                    + " same folder name or hub id)");
        }
    }

    /** Opens the store and starts listening; the returned server runs until {@link #close()}. */
    public static KoalaServer start(ServerConfig config) {
        Store store = Store.open(config.storeUrl());
        KoalaServer server;
        try {
            int interrupted = store.markInterrupted();
            if (interrupted > 0) {
                LOG.info("{} generation(s) left unfinished by the last run are marked interrupted", interrupted);
            }
            server = new KoalaServer(config, store);
        } catch (RuntimeException e) {
            store.close();
            throw e;
        }
        try {
            server.listen();
        } catch (RuntimeException e) {
            server.close();
            throw e;
        }
        return server;
    }

    private void listen() {
        OpenAiRoutes openAi = new OpenAiRoutes(this);
        ArenaRoutes arena = new ArenaRoutes(this);
        app = Javalin.create(cfg -> {
            cfg.concurrency.useVirtualThreads = true;
            cfg.startup.showJavalinBanner = false;
            cfg.http.maxRequestSize = Math.max(config.limits().maxBodyBytes(), config.limits().maxChatBodyBytes());
            // a burst of clients connecting at once waits in the kernel's accept queue instead of being dropped
            cfg.jetty.modifyServer(server -> server.addEventListener(new org.eclipse.jetty.util.component.LifeCycle.Listener() {
                @Override
                public void lifeCycleStarting(org.eclipse.jetty.util.component.LifeCycle event) {
                    for (var c : server.getConnectors()) {
                        if (c instanceof ServerConnector sc) {
                            sc.setAcceptQueueSize(1024);
                        }
                    }
                }
            }));
            cfg.routes.before(this::guard);
            cfg.routes.get("/healthz", ctx -> Http.json(ctx, 200, Http.JSON.createObjectNode().put("status", "ok")
                    .put("queue_depth", queue.waiting()).put("running", queue.running())));
            cfg.routes.get("/metrics", ctx -> {
                ctx.contentType("text/plain; version=0.0.4; charset=utf-8");
                ctx.result(metrics.render());
            });
            openAi.register(cfg.routes);
            arena.register(cfg.routes);
            if (!config.corsOrigins().isEmpty()) {
                cfg.routes.options("/*", ctx -> ctx.status(204));
            }
            cfg.routes.exception(ApiError.class, (e, ctx) -> answer(ctx, e));
            cfg.routes.exception(HttpResponseException.class, (e, ctx) -> answer(ctx, new ApiError(e.getStatus(),
                    e.getStatus() >= 500 ? "server_error" : "invalid_request_error", null, null,
                    e.getStatus() == 404 ? "no route " + ctx.method() + " " + ctx.path() : e.getMessage(), null)));
            cfg.routes.exception(Exception.class, (e, ctx) -> {
                LOG.error("{} {} failed", ctx.method(), ctx.path(), e);
                answer(ctx, ApiError.internal(e.getClass().getSimpleName() + ": " + e.getMessage()));
            });
        });
        app.start(config.host(), config.port());
        LOG.info("koala4j serving on http://{}:{}/ ({} image models, {} chat models, store {})", config.host(), app.port(),
                imageModels.size(), chatModels.size(), store.url());
    }

    private void answer(Context ctx, ApiError e) {
        metrics.error(e.type());
        if (e.retryAfterSeconds() != null) {
            ctx.header("Retry-After", Integer.toString(e.retryAfterSeconds()));
        }
        if (e.status() == 401) {
            ctx.header("WWW-Authenticate", "Bearer");
        }
        Http.json(ctx, e.status(), Http.errorBody(e));
    }

    /** Security headers, CORS (off unless origins are configured) and Bearer keys (when configured). */
    private void guard(Context ctx) {
        ctx.header("X-Content-Type-Options", "nosniff");
        ctx.header("Referrer-Policy", "no-referrer");
        String origin = ctx.header("Origin");
        if (origin != null && (config.corsOrigins().contains(origin) || config.corsOrigins().contains("*"))) {
            ctx.header("Access-Control-Allow-Origin", origin);
            ctx.header("Vary", "Origin");
            ctx.header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
            ctx.header("Access-Control-Allow-Headers", "Authorization, Content-Type");
            ctx.header("Access-Control-Max-Age", "600");
        }
        String path = ctx.path();
        boolean protectedPath = (path.startsWith("/v1/") || path.startsWith("/api/")) && !path.equals("/api/config");
        if (keyHashes.length > 0 && protectedPath && !ctx.method().name().equals("OPTIONS")) {
            String auth = ctx.header("Authorization");
            if (auth == null || !auth.regionMatches(true, 0, "Bearer ", 0, 7)) {
                throw ApiError.unauthorized("missing API key: send Authorization: Bearer KEY");
            }
            byte[] given = sha256(auth.substring(7).strip());
            boolean ok = false;
            for (byte[] k : keyHashes) {
                ok |= MessageDigest.isEqual(k, given);
            }
            if (!ok) {
                throw ApiError.unauthorized("incorrect API key provided");
            }
        }
    }

    private static byte[] sha256(String key) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    ImageRequests.ImageRequest parseImageRequest(com.fasterxml.jackson.databind.node.ObjectNode body, boolean tagModel) {
        return ImageRequests.parse(body, imageModels, config.limits(), defaultModel, tagModel);
    }

    public int port() {
        return app.port();
    }

    public ServerConfig config() {
        return config;
    }

    public Metrics metrics() {
        return metrics;
    }

    Store store() {
        return store;
    }

    JobQueue queue() {
        return queue;
    }

    Generations generations() {
        return generations;
    }

    ModelPool pool() {
        return pool;
    }

    Map<String, ImageModel> imageModels() {
        return imageModels;
    }

    Map<String, ChatModel> chatModels() {
        return chatModels;
    }

    /** Stops listening, cancels unfinished jobs (stored as cancelled), unloads the models, closes the store. */
    @Override
    public void close() {
        if (app != null) {
            app.stop();
        }
        queue.close();
        pool.close();
        store.close();
    }
}
