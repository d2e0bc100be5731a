package koala4j.schedulers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import koala4j.io.json.Json;

/** Builds a scheduler from a scheduler_config.json, by the class it names or by a CLI name. */
public final class Schedulers {

    /** CLI names, in the order the help text lists them. */
    public static final List<String> NAMES = List.of("euler", "euler-a", "dpm++2m", "dpm++2m-karras", "ddim", "pndm", "lcm");

    private Schedulers() {
    }

    /** The scheduler the folder's scheduler_config.json names. */
    public static Scheduler fromFolder(Path schedulerFolder) {
        Path file = schedulerFolder.resolve("scheduler_config.json");
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(file + ": missing (a pipeline's scheduler/ folder holds it)");
        }
        SchedulerConfig cfg = SchedulerConfig.of(Json.read(file));
        return byClassName(cfg.className(), cfg);
    }

    public static Scheduler byClassName(String className, SchedulerConfig cfg) {
        return switch (className) {
            case "EulerDiscreteScheduler" -> new EulerDiscrete(cfg);
            case "EulerAncestralDiscreteScheduler" -> new EulerAncestral(cfg);
            case "DPMSolverMultistepScheduler" -> new DpmSolverMultistep(cfg);
            case "DDIMScheduler" -> new Ddim(cfg);
            case "PNDMScheduler" -> new Pndm(cfg);
            case "LCMScheduler" -> new Lcm(cfg);
            default -> throw new IllegalArgumentException(cfg.json().file() + ": _class_name \"" + className
                    + "\" is not a supported scheduler, expected one of EulerDiscreteScheduler, "
                    + "EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler, DDIMScheduler, PNDMScheduler, "
                    + "LCMScheduler");
        };
    }

    /**
     * A scheduler chosen by CLI name, configured from the pipeline's own scheduler_config.json (its betas and
     * offsets), as diffusers' {@code Scheduler.from_config(pipe.scheduler.config, **overrides)} does.
     * {@code spacing} overrides timestep_spacing when not null.
     */
    public static Scheduler byName(String name, SchedulerConfig baseConfig, String spacing) {
        String n = name.toLowerCase(Locale.ROOT);
        SchedulerConfig cfg = baseConfig;
        if (spacing != null) {
            if (!Spacing.NAMES.contains(spacing)) {
                throw new IllegalArgumentException("--timestep-spacing " + spacing + ": expected one of " + Spacing.NAMES);
            }
            cfg = cfg.with("timestep_spacing", spacing);
        }
        return switch (n) {
            case "euler" -> new EulerDiscrete(cfg);
            case "euler-a", "euler_a", "euler-ancestral" -> new EulerAncestral(cfg);
            case "dpm++2m", "dpmpp-2m", "dpmpp_2m" -> new DpmSolverMultistep(
                    cfg.with("algorithm_type", "dpmsolver++").with("solver_order", 2).with("use_karras_sigmas", false));
            case "dpm++2m-karras", "dpmpp-2m-karras", "dpmpp_2m_karras" -> new DpmSolverMultistep(
                    cfg.with("algorithm_type", "dpmsolver++").with("solver_order", 2).with("use_karras_sigmas", true));
            case "ddim" -> new Ddim(cfg);
            case "pndm" -> new Pndm(cfg.with("skip_prk_steps", true));
            case "lcm" -> new Lcm(cfg);
            default -> throw new IllegalArgumentException("--scheduler " + name + ": expected one of " + NAMES);
        };
    }
}
