package koala4j.backend;

import java.util.List;
import java.util.Locale;

import koala4j.backend.cpu.CpuOps;
import koala4j.backend.cpu.Parallel;

/**
 * Chooses the backend once, explicitly, from the user's {@code --device} (auto, cpu, cuda). There is no global
 * default: callers pass the chosen {@link Backend} on.
 */
public final class Backends {

    private Backends() {
    }

    /** {@code auto} picks CUDA when a usable GPU backend is present, else the CPU, and says why. */
    public static Backend select(String device) {
        String d = device == null ? "auto" : device.trim().toLowerCase(Locale.ROOT);
        return switch (d) {
            case "auto" -> cpu("auto: " + cudaUnavailableReason());
            case "cpu" -> cpu("requested");
            case "cuda", "gpu" -> throw new IllegalArgumentException("--device " + device + ": "
                    + cudaUnavailableReason() + "; use --device cpu or auto");
            default -> throw new IllegalArgumentException("--device " + device + ": expected auto, cpu or cuda");
        };
    }

    /** Every backend usable on this machine (tests run each op on each of them). */
    public static List<Backend> available() {
        return List.of(cpu("available"));
    }

    private static Backend cpu(String why) {
        return new Backend("cpu", new CpuOps(), why + "; " + Parallel.threads() + " threads, "
                + CpuOps.vectorBits() + "-bit vectors");
    }

    static String cudaUnavailableReason() {
        return "the CUDA backend is not part of this build yet";
    }
}
