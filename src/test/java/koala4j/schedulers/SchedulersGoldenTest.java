package koala4j.schedulers;

import static koala4j.testing.Close.assertClose;
import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import koala4j.backend.cpu.CpuOps;
import koala4j.io.json.Json;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.testing.GoldenFile;

/**
 * Every scheduler of golden/schedulers (diffusers 0.36, torch 2.13): timesteps (exact; Karras variants 1e-3),
 * sigmas (1e-5 relative), init_noise_sigma, and whole 10- and 25-step trajectories driven by the fake model
 * eps = 0.1·x_in + sin(t/100) with the recorded step noise (atol/rtol 1e-4, float32 over up to 25 steps).
 */
class SchedulersGoldenTest {

    private static final Ops OPS = new CpuOps();

    static Stream<Arguments> cases() {
        return Stream.of("euler", "euler_karras", "euler_trailing", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_karras",
                "ddim", "lcm").flatMap(k -> Stream.of(Arguments.of(k, 10), Arguments.of(k, 25)));
    }

    private static Scheduler build(String key) {
        Json entry = Json.read(resource("golden/schedulers/case.json")).object("schedulers").object(key);
        String cls = entry.string("class").replace("diffusers.", "");
        return Schedulers.byClassName(cls, SchedulerConfig.of(entry.object("config")));
    }

    private static Tensor slice(GoldenFile g, String name, int index) {
        long[] shape = g.shape(name);
        int per = Math.toIntExact(Arrays.stream(shape).skip(1).reduce(1, (a, b) -> a * b));
        float[] all = g.floats(name);
        int[] s = Arrays.stream(shape).skip(1).mapToInt(Math::toIntExact).toArray();
        return OPS.fromArray(Arrays.copyOfRange(all, index * per, (index + 1) * per), s);
    }

    @ParameterizedTest(name = "{0} {1} steps")
    @MethodSource("cases")
    void matchesDiffusers(String key, int steps) {
        GoldenFile g = GoldenFile.open(resource("golden/schedulers/io.safetensors"));
        String p = key + ".n" + steps;
        Scheduler scheduler = build(key);
        Plan plan = scheduler.plan(steps);
        float[] timesteps = g.floats("out." + p + ".timesteps");
        double tTol = key.contains("karras") && key.startsWith("euler") ? 1e-3 : 0;
        assertEquals(timesteps.length, plan.length(), "number of timesteps");
        for (int i = 0; i < timesteps.length; i++) {
            assertEquals(timesteps[i], plan.timesteps()[i], tTol, "timestep " + i);
        }
        if (g.names().contains("out." + p + ".sigmas")) {
            float[] sigmas = g.floats("out." + p + ".sigmas");
            float[] ours = new float[plan.sigmas().length];
            for (int i = 0; i < ours.length; i++) {
                ours[i] = (float) plan.sigmas()[i];
            }
            assertClose(sigmas, ours, 0, 1e-5, "sigmas");
        }
        assertEquals(g.floats("out." + p + ".init_noise_sigma")[0], plan.initNoiseSigma(), 1e-5, "init_noise_sigma");

        boolean stochastic = g.names().contains("in." + p + ".step_noise");
        int[] drawn = {0};
        NoiseSource noise = n -> {
            Tensor t = slice(g, "in." + p + ".step_noise", drawn[0]++);
            return t.toFloatArray();
        };
        StepState state = scheduler.begin(plan, stochastic ? noise : NoiseSource.NONE);
        Tensor x = OPS.fromArray(g.floats("in." + p + ".init_noise"), 1, 4, 8, 8).mul((float) plan.initNoiseSigma());
        for (int i = 0; i < plan.length(); i++) {
            Tensor xin = scheduler.scaleModelInput(state, i, x);
            assertClose(slice(g, "out." + p + ".model_inputs", i).toFloatArray(), xin.toFloatArray(), 1e-4, 1e-4,
                    "model input " + i);
            float t = (float) plan.timesteps()[i];
            Tensor eps = xin.mul(0.1f).add((float) Math.sin(t / 100.0));
            if (stochastic) {
                drawn[0] = i;
            }
            x = scheduler.step(state, i, eps, x);
            assertClose(slice(g, "out." + p + ".prev_samples", i).toFloatArray(), x.toFloatArray(), 1e-4, 1e-4,
                    "sample after step " + i);
        }
        assertClose(g.floats("out." + p + ".final"), x.toFloatArray(), 1e-4, 1e-4, "final");
    }

    @Test
    void trainingScheduleMatchesTorchFloat32() {
        GoldenFile g = GoldenFile.open(resource("golden/schedulers/io.safetensors"));
        SchedulerConfig cfg = SchedulerConfig.of(Json.read(resource("golden/schedulers/scheduler_config_sdxl.json")));
        NoiseSchedule schedule = NoiseSchedule.from(cfg, 0.0001, 0.02, "linear");
        assertClose(g.floats("out.betas"), schedule.betas, 0, 1e-6, "betas");
        assertClose(g.floats("out.alphas_cumprod"), schedule.alphasCumprod, 0, 1e-6, "alphas_cumprod");
    }

    @Test
    void missingKeysTakeTheBuiltClassDefaults() {
        // SD 1.5's PNDM file has no timestep_spacing: PNDM defaults to leading, Euler to linspace (diffusers'
        // _use_default_values rule), which e2e/sd15 run 1 shows.
        Json sd15 = Json.parse("""
                {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                 "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
                 "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}
                """, "scheduler_config.json");
        SchedulerConfig cfg = SchedulerConfig.of(sd15);
        assertEquals(List.of(801.0, 601.0, 601.0, 401.0, 201.0, 1.0),
                Arrays.stream(new Pndm(cfg).plan(5).timesteps()).boxed().toList());
        double[] euler = Schedulers.byName("euler", cfg, null).plan(5).timesteps();
        assertEquals(999.0, euler[0], 1e-9);
        assertEquals(0.0, euler[4], 1e-9);
    }

    @Test
    void karrasSigmasHonourTheConfigsSigmaMinAndMax() {
        Json json = Json.parse("""
                {"_class_name": "EulerDiscreteScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                 "beta_end": 0.012, "use_karras_sigmas": true, "sigma_min": 0.1, "sigma_max": 10.0}
                """, "scheduler_config.json");
        double[] sigmas = Schedulers.byClassName("EulerDiscreteScheduler", SchedulerConfig.of(json)).plan(6).sigmas();
        assertEquals(10.0, sigmas[0], 1e-5);
        assertEquals(0.1, sigmas[5], 1e-6);
        assertEquals(0.0, sigmas[6], 0.0);
    }

    @Test
    void badValuesNameTheField() {
        Json bad = Json.parse("{\"_class_name\": \"EulerDiscreteScheduler\", \"timestep_spacing\": \"sideways\"}",
                "scheduler_config.json");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Schedulers.byClassName("EulerDiscreteScheduler", SchedulerConfig.of(bad)));
        assertTrue(e.getMessage().contains("timestep_spacing") && e.getMessage().contains("sideways"), e.getMessage());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> Schedulers.byClassName("HeunDiscreteScheduler", SchedulerConfig.of(bad)));
        assertTrue(unknown.getMessage().contains("HeunDiscreteScheduler"), unknown.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Schedulers.byName("plms2", SchedulerConfig.of(bad), null));
        assertThrows(IllegalArgumentException.class, () -> new EulerDiscrete(SchedulerConfig.of(Json.parse("{}", "x"))).plan(0));
    }
}
