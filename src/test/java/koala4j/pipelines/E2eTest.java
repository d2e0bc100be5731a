package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import koala4j.cli.Main;
import koala4j.io.image.Image;
import koala4j.io.image.Images;
import koala4j.io.image.Png;
import koala4j.io.json.Json;
import koala4j.testing.TinyPipelines;

/**
 * Every run of golden/e2e (sdxl, koala, sd15) through {@code koala4j generate}: the folder as published goes in,
 * a PNG comes out that must equal diffusers' PNG for the same seed within 2/255 per channel (the bound;
 * float differences of ~1e-4 flip rare roundings by one), and carry the generation parameters.
 */
class E2eTest {

    @TempDir
    static Path work;

    static Stream<Arguments> runs() {
        List<Arguments> out = new ArrayList<>();
        for (String name : List.of("sdxl", "koala", "sd15")) {
            Json expected = Json.read(resource("golden/e2e/" + name + "/expected.json"));
            List<Json> runs = expected.objects("runs");
            for (int i = 0; i < runs.size(); i++) {
                out.add(Arguments.of(name, i, runs.get(i)));
            }
        }
        return out.stream();
    }

    /** The stored folder plus the files kept once for all cases (see golden/e2e/README.md). */
    static Path assemble(String name) throws IOException {
        return TinyPipelines.assemble(name, work);
    }

    static List<String> schedulerArgs(Json run) {
        String cls = run.string("scheduler");
        Json overrides = run.object("scheduler_overrides");
        List<String> args = new ArrayList<>();
        switch (cls) {
            case "EulerDiscreteScheduler" -> args.addAll(List.of("--scheduler", "euler"));
            case "EulerAncestralDiscreteScheduler" -> args.addAll(List.of("--scheduler", "euler-a"));
            case "PNDMScheduler" -> args.addAll(List.of("--scheduler", "pndm"));
            case "DDIMScheduler" -> args.addAll(List.of("--scheduler", "ddim"));
            case "LCMScheduler" -> args.addAll(List.of("--scheduler", "lcm"));
            case "DPMSolverMultistepScheduler" -> args.addAll(List.of("--scheduler",
                    overrides.boolOr("use_karras_sigmas", false) ? "dpm++2m-karras" : "dpm++2m"));
            default -> throw new IllegalStateException("no CLI name for " + cls);
        }
        if (overrides.has("timestep_spacing")) {
            args.addAll(List.of("--timestep-spacing", overrides.string("timestep_spacing")));
        }
        return args;
    }

    @ParameterizedTest(name = "{0} run {1}")
    @MethodSource("runs")
    void cliReproducesTheReferencePng(String name, int index, Json run) throws IOException {
        Path folder = assemble(name);
        Path out = work.resolve(name + "-run" + index + ".png");
        List<String> args = new ArrayList<>(List.of("generate", "--model", folder.toString(),
                "--prompt", run.string("prompt"), "--seed", Long.toString(run.longValue("seed")),
                "--steps", Integer.toString(run.intValue("steps")),
                "--guidance", Double.toString(run.doubleValue("guidance_scale")),
                "--width", Integer.toString(run.intValue("width")), "--height", Integer.toString(run.intValue("height")),
                "--out", out.toString(), "--device", "cpu"));
        if (!run.isNull("negative_prompt")) {
            args.addAll(List.of("--negative-prompt", run.string("negative_prompt")));
        }
        args.addAll(schedulerArgs(run));
        StringWriter err = new StringWriter();
        int code = Main.run(args.toArray(String[]::new), new PrintWriter(new StringWriter()), new PrintWriter(err));
        assertEquals(0, code, err.toString());
        assertTrue(err.toString().contains("denoising") && err.toString().contains("decoding"), err.toString());

        Image ours = Images.read(out);
        Image reference = Images.read(resource("golden/e2e_images/" + name + "/" + run.object("expected").string("png")));
        assertEquals(reference.width(), ours.width());
        assertEquals(reference.height(), ours.height());
        int maxDiff = 0;
        for (int i = 0; i < reference.pixels().length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs((reference.pixels()[i] & 0xFF) - (ours.pixels()[i] & 0xFF)));
        }
        assertTrue(maxDiff <= 2, name + " run " + index + ": max pixel difference " + maxDiff + "/255");

        Map<String, String> text = Png.readText(out);
        assertEquals(run.string("prompt"), text.get("prompt"));
        assertEquals(Long.toString(run.longValue("seed")), text.get("seed"));
        assertEquals(Integer.toString(run.intValue("steps")), text.get("steps"));
        assertTrue(text.get("parameters").contains("Seed: " + run.longValue("seed")), text.get("parameters"));
    }
}
