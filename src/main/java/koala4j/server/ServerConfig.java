package koala4j.server;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Everything {@code koala4j serve} can set. {@link #builder()} starts from the defaults: loopback only, port 8080,
 * a queue of 64 jobs, one local worker, 300 s per request, no API keys, CORS off.
 *
 * @param dbUrl JDBC URL of the store; null for SQLite at {@code dataDir/koala4j.db}
 * @param apiKeys accepted Bearer keys; empty for none required
 * @param corsOrigins origins allowed cross-origin requests; empty for CORS off
 * @param memoryBudgetBytes weights of local models kept resident at once (least recently used evicted first)
 * @param openAiKey OPENAI_API_KEY, or null: dall-e-2 and dall-e-3 are then listed as unavailable
 * @param chatParallel chat jobs that run at once (llama.cpp's parallel slots): above 1 they have a lane of their own
 *                     beside the local one and concurrent replies of one model decode together; 1: chat jobs take
 *                     the local lane like image jobs
 */
public record ServerConfig(String host, int port, Path dataDir, String dbUrl, List<LocalModel> models,
                           List<ChatModel> chatModels, Set<String> apiKeys, List<String> corsOrigins, Limits limits,
                           int queueCapacity, int workers, int remoteWorkers, Duration requestTimeout,
                           long memoryBudgetBytes, String device, String openAiKey, URI openAiBaseUrl,
                           ImageUrls imageUrls, int chatParallel) {

    /**
     * Which http(s) {@code image_url}s a chat request may name for the server to download: none (data: URLs only,
     * the default), public (hosts whose every address is public: no loopback, private, link-local, multicast or
     * unique-local ranges) or all.
     */
    public enum ImageUrls { NONE, PUBLIC, ALL }

    /** A local model: its id (hub id or folder name), display name, folder, or why it cannot be used. */
    public record LocalModel(String id, String displayName, Path folder, String unavailableReason) {
    }

    /** Request limits. */
    public record Limits(int maxPromptChars, int maxN, int maxSide, int maxSteps, long maxBodyBytes, long maxChatBodyBytes) {
        public static final Limits DEFAULT = new Limits(2000, 4, 1024, 150, 64 * 1024, 16L * 1024 * 1024);
    }

    public ServerConfig {
        if (chatParallel < 1) {
            throw new IllegalArgumentException("chat replies at once " + chatParallel + ": expected at least 1");
        }
        models = List.copyOf(models);
        chatModels = List.copyOf(chatModels);
        apiKeys = Set.copyOf(apiKeys);
        corsOrigins = List.copyOf(corsOrigins);
    }

    /** Chat jobs in the local lane ({@code chatParallel} 1). */
    public ServerConfig(String host, int port, Path dataDir, String dbUrl, List<LocalModel> models,
                        List<ChatModel> chatModels, Set<String> apiKeys, List<String> corsOrigins, Limits limits,
                        int queueCapacity, int workers, int remoteWorkers, Duration requestTimeout,
                        long memoryBudgetBytes, String device, String openAiKey, URI openAiBaseUrl,
                        ImageUrls imageUrls) {
        this(host, port, dataDir, dbUrl, models, chatModels, apiKeys, corsOrigins, limits, queueCapacity, workers,
                remoteWorkers, requestTimeout, memoryBudgetBytes, device, openAiKey, openAiBaseUrl, imageUrls, 1);
    }

    public String storeUrl() {
        return dbUrl != null ? dbUrl : "jdbc:sqlite:" + dataDir.resolve("koala4j.db");
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Mutable builder; every field starts at its default. */
    public static final class Builder {
        public String host = "127.0.0.1";
        public int port = 8080;
        public Path dataDir = Path.of("koala4j-data");
        public String dbUrl;
        public final List<LocalModel> models = new ArrayList<>();
        public final List<ChatModel> chatModels = new ArrayList<>();
        public Set<String> apiKeys = Set.of();
        public final List<String> corsOrigins = new ArrayList<>();
        public Limits limits = Limits.DEFAULT;
        public int queueCapacity = 64;
        public int workers = 1;
        public int remoteWorkers = 4;
        public Duration requestTimeout = Duration.ofSeconds(300);
        public long memoryBudgetBytes = 8L << 30;
        public String device = "auto";
        public String openAiKey;
        public URI openAiBaseUrl = OpenAiImageModel.DEFAULT_BASE;
        public ImageUrls imageUrls = ImageUrls.NONE;
        /** Chat jobs run at once in a lane of their own, their decoding steps batched; 1: in the local lane. */
        public int chatParallel = 1;

        public ServerConfig build() {
            return new ServerConfig(host, port, dataDir, dbUrl, models, chatModels, apiKeys, corsOrigins, limits,
                    queueCapacity, workers, remoteWorkers, requestTimeout, memoryBudgetBytes, device, openAiKey,
                    openAiBaseUrl, imageUrls, chatParallel);
        }
    }
}
