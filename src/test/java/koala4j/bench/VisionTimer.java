package koala4j.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;

import koala4j.backend.cpu.CpuOps;
import koala4j.backend.cpu.Parallel;
import koala4j.io.image.ClipImageProcessor;
import koala4j.io.image.Image;
import koala4j.io.video.SampledVideo;
import koala4j.io.video.VideoReader;
import koala4j.models.clip.ClipVisionConfig;
import koala4j.models.clip.ClipVisionModel;
import koala4j.models.clip.ClipVisionModel.FeatureSelect;
import koala4j.nn.WeightSource;
import koala4j.tensor.Activation;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * Quick timer (no JMH) for the vision side of Ko-LLaVA: the CLIP ViT-L/14 tower at 224 px (Ko-LLaVA v0's
 * openai/clip-vit-large-patch14) and 336 px (LLaVA-1.5) with random F32 weights, LLaVA features (layer -2, patches);
 * CLIPImageProcessor on a 1920x1080 image; 8 frames sampled from a 10 s 640x360 H.264 clip made by ffmpeg (when it is
 * installed). Best of 3 after one warm-up run.
 *
 * <pre>
 * java -cp target/classes:target/test-classes:$(deps) --add-modules jdk.incubator.vector koala4j.bench.VisionTimer
 * </pre>
 */
public final class VisionTimer {

    private VisionTimer() {
    }

    public static void main(String[] args) throws Exception {
        Ops ops = new CpuOps();
        System.out.printf("threads=%d%n", Parallel.threads());
        for (int size : new int[] {224, 336}) {
            var config = new ClipVisionConfig(1024, 4096, 24, 16, size, 14, 3, Activation.QUICK_GELU, 1e-5f, 768);
            ClipVisionModel tower = new ClipVisionModel(config);
            tower.load(random(tower, ops));
            Tensor pixels = ops.fromArray(gaussian(new Random(1), 3 * size * size), 1, 3, size, size);
            double ms = best(() -> tower.features(pixels, -2, FeatureSelect.PATCH));
            System.out.printf("CLIP ViT-L/14 %dpx, %d patches, layers 1..23 (feature layer -2): best %.0f ms%n", size,
                    config.numPatches(), ms);
        }

        byte[] px = new byte[1920 * 1080 * 3];
        new Random(2).nextBytes(px);
        Image photo = new Image(1920, 1080, 3, px);
        ClipImageProcessor p224 = ClipImageProcessor.defaults();
        ClipImageProcessor p336 = new ClipImageProcessor(true, ClipImageProcessor.Size.shortestEdge(336),
                p224.resample(), true, 336, 336, true, 1 / 255.0, true, p224.imageMean(), p224.imageStd(), true);
        System.out.printf("CLIPImageProcessor 1920x1080 -> 224: best %.1f ms%n", best(() -> p224.preprocess(photo)));
        System.out.printf("CLIPImageProcessor 1920x1080 -> 336 with expand2square: best %.1f ms%n",
                best(() -> p336.preprocess(p336.expandToSquare(photo))));

        VideoReader reader = VideoReader.create();
        Optional<Path> ffmpeg = reader.ffmpeg();
        if (ffmpeg.isEmpty()) {
            System.out.println("video: no ffmpeg on the PATH, skipped");
            return;
        }
        Path dir = Files.createTempDirectory("koala4j-bench");
        Path mp4 = dir.resolve("testsrc.mp4");
        Process make = new ProcessBuilder(ffmpeg.get().toString(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                "testsrc=duration=10:size=640x360:rate=30", "-c:v", "libx264", "-pix_fmt", "yuv420p", mp4.toString())
                .inheritIO().start();
        if (make.waitFor() != 0) {
            throw new IllegalStateException("ffmpeg could not make " + mp4);
        }
        SampledVideo[] last = new SampledVideo[1];
        double ms = best(() -> last[0] = reader.sample(mp4, 8));
        System.out.printf("video 10 s 640x360 H.264 (%d frames) -> 8 frames %s: best %.0f ms%n",
                last[0].totalFrames(), last[0].indices(), ms);
        Files.deleteIfExists(mp4);
        Files.deleteIfExists(dir);
    }

    interface Work {
        Object run() throws Exception;
    }

    private static double best(Work work) throws Exception {
        work.run();
        double best = Double.MAX_VALUE;
        for (int r = 0; r < 3; r++) {
            long t0 = System.nanoTime();
            work.run();
            best = Math.min(best, (System.nanoTime() - t0) / 1e6);
        }
        return best;
    }

    /** N(0, 0.02) for every parameter, 1 for the norm weights. */
    private static WeightSource random(ClipVisionModel tower, Ops ops) {
        Map<String, Tensor> weights = new LinkedHashMap<>();
        Random rnd = new Random(0);
        tower.namedParameters().forEach((key, p) -> {
            int n = Math.toIntExact(Tensor.numel(p.shape()));
            float[] v = gaussian(rnd, n);
            if (key.contains("norm") && key.endsWith("weight")) {
                java.util.Arrays.fill(v, 1f);
            }
            weights.put(key, ops.fromArray(v, p.shape()));
        });
        return new WeightSource() {
            @Override
            public Optional<Tensor> tensor(String key) {
                return Optional.ofNullable(weights.get(key));
            }

            @Override
            public Set<String> keys() {
                return weights.keySet();
            }

            @Override
            public String describe() {
                return "random weights";
            }
        };
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * 0.02);
        }
        return v;
    }
}
