package koala4j.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import koala4j.pipelines.Progress;
import koala4j.server.store.Store;

/**
 * Image generation jobs: stored when admitted (status queued), run on the queue, and on success the PNG files are
 * written (temporary file, fsync, atomic rename) before the generation is marked done in the store, so a done
 * generation always has its files. A failed, cancelled or timed-out generation is stored with its reason.
 */
final class Generations {

    /**
     * What a finished generation returns; {@code seconds} is the time the model worked on it (loading the model
     * if this request loaded it, generating, storing), {@code queuedSeconds} the time it waited for a worker.
     */
    record Result(String generationId, String model, boolean anonymous, ImageModel.Output output, List<String> imageIds,
                  double seconds, double queuedSeconds, long createdSeconds) {
    }

    /** Ids of generations, jobs and images: 128 random bits in hex. */
    static final Pattern ID = Pattern.compile("[0-9a-f]{32}");

    private static final SecureRandom RANDOM = new SecureRandom();

    private final Store store;
    private final Path imagesDir;
    private final JobQueue queue;
    private final Metrics metrics;

    Generations(Store store, Path imagesDir, JobQueue queue, Metrics metrics) {
        this.store = store;
        this.imagesDir = imagesDir;
        this.queue = queue;
        this.metrics = metrics;
        try {
            Files.createDirectories(imagesDir);
        } catch (IOException e) {
            throw new UncheckedIOException(imagesDir + ": cannot create the image folder: " + e.getMessage(), e);
        }
    }

    static String newId() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    Path imageFile(String imageId) {
        if (!ID.matcher(imageId).matches()) {
            throw new IllegalArgumentException("image id " + imageId + ": expected 32 hex digits");
        }
        return imagesDir.resolve(imageId + ".png");
    }

    /** Admits a generation (429 when the queue is full) and starts it. */
    Job<Result> submit(ImageModel model, ImageModel.Spec spec, String client, String battleId) {
        String id = newId();
        boolean anonymous = battleId != null;
        boolean remote = !model.provider().equals("local");
        JobQueue.Work<Result> work = new JobQueue.Work<>() {
            @Override
            public void admitted(Job<Result> job) {
                store.insertGeneration(new Store.NewGeneration(id, job.createdMs, model.id(), spec.prompt(),
                        spec.negativePrompt(), remote ? null : spec.seed(), spec.steps(), spec.guidance(), spec.scheduler(),
                        spec.width(), spec.height(), spec.n(), client, battleId));
            }

            @Override
            public Result run(Job<Result> job) throws Exception {
                long started = System.nanoTime();
                Progress progress = new Progress() {
                    @Override
                    public void step(int step, int total) {
                        job.progress(step, total);
                    }

                    @Override
                    public void stage(String name, Duration elapsed) {
                        job.stage(name, elapsed.toNanos() / 1e9);
                    }
                };
                ImageModel.Output out = model.generate(spec, progress, job.cancel);
                job.cancel.check();
                List<String> imageIds = new ArrayList<>();
                List<Store.StoredImage> stored = new ArrayList<>();
                for (int i = 0; i < out.pngs().size(); i++) {
                    String imageId = newId();
                    writeDurably(imageFile(imageId), out.pngs().get(i));
                    imageIds.add(imageId);
                    stored.add(new Store.StoredImage(imageId, i, out.revisedPrompts().get(i)));
                }
                double seconds = (System.nanoTime() - started) / 1e9;
                store.finishGeneration(id, new Store.Finished(out.negativePrompt(), out.seed(), out.steps(), out.guidance(),
                        out.scheduler(), out.width(), out.height(), seconds, stored));
                metrics.imagesGenerated(model.id(), imageIds.size());
                // the PNGs are on disk now; finished jobs stay listed for a while, so they keep no image bytes
                ImageModel.Output kept = new ImageModel.Output(List.of(), out.revisedPrompts(), out.negativePrompt(),
                        out.seed(), out.steps(), out.guidance(), out.scheduler(), out.width(), out.height());
                return new Result(id, model.id(), anonymous, kept, imageIds, seconds,
                        (started - job.admittedNanos) / 1e9, job.createdMs / 1000);
            }

            @Override
            public void ended(Job<Result> job, Job.State state, ApiError error) {
                store.endGeneration(id, state.label(), error.getMessage());
            }
        };
        return queue.submit(id, "image", model.id(), anonymous, remote, work, r -> summary(r, null, "url"));
    }

    /** Writes a file so that it is complete on disk before its name appears (a killed server leaves no torn PNG). */
    static void writeDurably(Path target, byte[] bytes) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ByteBuffer buf = ByteBuffer.wrap(bytes);
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
            ch.force(true);
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * The OpenAI response body ({@code created}, {@code data}) plus koala4j's fields: the generation id, the model
     * (unless anonymous), the parameters used and the seconds taken. {@code baseUrl} prefixes image URLs (null for
     * relative ones).
     */
    ObjectNode summary(Result r, String baseUrl, String format) {
        ObjectNode body = Http.JSON.createObjectNode();
        body.put("created", r.createdSeconds());
        ArrayNode data = body.putArray("data");
        for (int i = 0; i < r.imageIds().size(); i++) {
            ObjectNode item = data.addObject();
            if (format.equals("b64_json")) {
                try {
                    item.put("b64_json", java.util.Base64.getEncoder().encodeToString(
                            Files.readAllBytes(imageFile(r.imageIds().get(i)))));
                } catch (IOException e) {
                    throw new UncheckedIOException("image " + r.imageIds().get(i) + ": " + e.getMessage(), e);
                }
            } else {
                item.put("url", (baseUrl == null ? "" : baseUrl) + "/images/" + r.imageIds().get(i) + ".png");
            }
            String revised = r.output().revisedPrompts().get(i);
            if (revised != null) {
                item.put("revised_prompt", revised);
            }
        }
        body.put("id", r.generationId());
        if (!r.anonymous()) {
            body.put("model", r.model());
        }
        body.put("seconds", Math.round(r.seconds() * 1000) / 1000.0);
        body.put("queued_seconds", Math.round(r.queuedSeconds() * 1000) / 1000.0);
        body.set("parameters", parameters(r.output()));
        return body;
    }

    static JsonNode parameters(ImageModel.Output o) {
        ObjectNode p = Http.JSON.createObjectNode();
        p.put("size", o.width() + "x" + o.height());
        putNullable(p, "seed", o.seed());
        putNullable(p, "steps", o.steps());
        putNullable(p, "guidance", o.guidance());
        p.put("scheduler", o.scheduler());
        p.put("negative_prompt", o.negativePrompt());
        return p;
    }

    static void putNullable(ObjectNode node, String field, Number value) {
        if (value == null) {
            node.putNull(field);
        } else if (value instanceof Double d) {
            node.put(field, d);
        } else {
            node.put(field, value.longValue());
        }
    }

    Store store() {
        return store;
    }
}
