package koala4j.server;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.DoubleAdder;
import java.util.function.LongSupplier;

/** Counters and the job-latency histogram, written in the Prometheus text exposition format (version 0.0.4). */
public final class Metrics {

    /** Upper bounds (seconds) of the job latency buckets. */
    static final double[] BUCKETS = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

    private final Map<String, AtomicLong> jobs = new ConcurrentHashMap<>();
    private final Map<String, AtomicLong> images = new ConcurrentHashMap<>();
    private final Map<String, AtomicLong> errors = new ConcurrentHashMap<>();
    private final AtomicLong rejected = new AtomicLong();
    private final AtomicLong loads = new AtomicLong();
    private final AtomicLong evictions = new AtomicLong();
    private final AtomicLong[] bucketCounts = new AtomicLong[BUCKETS.length];
    private final AtomicLong latencyCount = new AtomicLong();
    private final DoubleAdder latencySum = new DoubleAdder();
    private volatile LongSupplier queueDepth = () -> 0;
    private volatile LongSupplier running = () -> 0;
    private volatile LongSupplier modelsLoaded = () -> 0;
    /**
     * Loaded chat models' decoding steps, the batches they ran in, and prompt lookup's drafted and accepted tokens:
     * model id -> {steps, batches, drafted, accepted}.
     */
    private volatile java.util.function.Supplier<Map<String, long[]>> chatDecode = Map::of;
    private volatile LongSupplier residentBytes = () -> 0;

    public Metrics() {
        for (int i = 0; i < BUCKETS.length; i++) {
            bucketCounts[i] = new AtomicLong();
        }
    }

    void gauges(LongSupplier queueDepth, LongSupplier running) {
        this.queueDepth = queueDepth;
        this.running = running;
    }

    void chatDecode(java.util.function.Supplier<Map<String, long[]>> stats) {
        this.chatDecode = stats;
    }

    void modelGauges(LongSupplier loaded, LongSupplier bytes) {
        this.modelsLoaded = loaded;
        this.residentBytes = bytes;
    }

    /** A job ended with {@code status} (done, failed, cancelled, timeout) after {@code seconds} since admission. */
    void jobEnded(String status, double seconds) {
        jobs.computeIfAbsent(status, k -> new AtomicLong()).incrementAndGet();
        if (status.equals("done")) {
            latencyCount.incrementAndGet();
            latencySum.add(seconds);
            for (int i = 0; i < BUCKETS.length; i++) {
                if (seconds <= BUCKETS[i]) {
                    bucketCounts[i].incrementAndGet();
                }
            }
        }
    }

    void imagesGenerated(String model, int count) {
        images.computeIfAbsent(model, k -> new AtomicLong()).addAndGet(count);
    }

    /** An error answered to a client, by OpenAI error type. */
    void error(String type) {
        errors.computeIfAbsent(type, k -> new AtomicLong()).incrementAndGet();
    }

    void rejected() {
        rejected.incrementAndGet();
    }

    void modelLoaded() {
        loads.incrementAndGet();
    }

    void modelEvicted() {
        evictions.incrementAndGet();
    }

    /** The exposition text. */
    public String render() {
        StringBuilder out = new StringBuilder();
        gauge(out, "koala4j_queue_depth", "Jobs admitted and waiting for a worker.", queueDepth.getAsLong());
        gauge(out, "koala4j_jobs_running", "Jobs being worked on.", running.getAsLong());
        gauge(out, "koala4j_models_loaded", "Local models resident in memory.", modelsLoaded.getAsLong());
        gauge(out, "koala4j_model_resident_bytes", "Weight bytes of the resident local models.", residentBytes.getAsLong());
        counter(out, "koala4j_jobs_total", "Jobs that ended, by status.", "status", jobs);
        counter(out, "koala4j_images_generated_total", "Images generated, by model.", "model", images);
        counter(out, "koala4j_errors_total", "Errors answered to clients, by OpenAI error type.", "type", errors);
        out.append("# HELP koala4j_rejected_total Requests answered 429 because the queue was full.\n")
                .append("# TYPE koala4j_rejected_total counter\n")
                .append("koala4j_rejected_total ").append(rejected.get()).append('\n');
        out.append("# HELP koala4j_model_loads_total Local model loads.\n# TYPE koala4j_model_loads_total counter\n")
                .append("koala4j_model_loads_total ").append(loads.get()).append('\n');
        out.append("# HELP koala4j_model_evictions_total Local models evicted to stay within the memory budget.\n")
                .append("# TYPE koala4j_model_evictions_total counter\n")
                .append("koala4j_model_evictions_total ").append(evictions.get()).append('\n');
        Map<String, long[]> decode = new TreeMap<>(chatDecode.get());
        out.append("# HELP koala4j_chat_decode_steps_total Decoding steps of loaded chat models.\n")
                .append("# TYPE koala4j_chat_decode_steps_total counter\n");
        decode.forEach((model, v) -> out.append("koala4j_chat_decode_steps_total{model=\"").append(escape(model))
                .append("\"} ").append(v[0]).append('\n'));
        out.append("# HELP koala4j_chat_decode_batches_total Batched model calls those steps ran in (fewer than the "
                        + "steps when concurrent replies shared them).\n")
                .append("# TYPE koala4j_chat_decode_batches_total counter\n");
        decode.forEach((model, v) -> out.append("koala4j_chat_decode_batches_total{model=\"").append(escape(model))
                .append("\"} ").append(v[1]).append('\n'));
        out.append("# HELP koala4j_chat_draft_tokens_total Tokens prompt lookup drafted for loaded chat models.\n")
                .append("# TYPE koala4j_chat_draft_tokens_total counter\n");
        decode.forEach((model, v) -> out.append("koala4j_chat_draft_tokens_total{model=\"").append(escape(model))
                .append("\"} ").append(v[2]).append('\n'));
        out.append("# HELP koala4j_chat_draft_tokens_accepted_total Drafted tokens the model chose as well.\n")
                .append("# TYPE koala4j_chat_draft_tokens_accepted_total counter\n");
        decode.forEach((model, v) -> out.append("koala4j_chat_draft_tokens_accepted_total{model=\"")
                .append(escape(model)).append("\"} ").append(v[3]).append('\n'));
        out.append("# HELP koala4j_job_seconds Time from admission to completion of successful jobs.\n")
                .append("# TYPE koala4j_job_seconds histogram\n");
        for (int i = 0; i < BUCKETS.length; i++) {
            out.append("koala4j_job_seconds_bucket{le=\"").append(number(BUCKETS[i])).append("\"} ")
                    .append(bucketCounts[i].get()).append('\n');
        }
        out.append("koala4j_job_seconds_bucket{le=\"+Inf\"} ").append(latencyCount.get()).append('\n');
        out.append("koala4j_job_seconds_sum ").append(number(latencySum.sum())).append('\n');
        out.append("koala4j_job_seconds_count ").append(latencyCount.get()).append('\n');
        return out.toString();
    }

    private static void gauge(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n')
                .append("# TYPE ").append(name).append(" gauge\n")
                .append(name).append(' ').append(value).append('\n');
    }

    private static void counter(StringBuilder out, String name, String help, String label, Map<String, AtomicLong> values) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n')
                .append("# TYPE ").append(name).append(" counter\n");
        for (var e : new TreeMap<>(values).entrySet()) {
            out.append(name).append('{').append(label).append("=\"").append(escape(e.getKey())).append("\"} ")
                    .append(e.getValue().get()).append('\n');
        }
    }

    /** Label values escape backslash, quote and newline (exposition format). */
    static String escape(String value) {
        return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    private static String number(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : String.format(Locale.ROOT, "%s", v);
    }
}
