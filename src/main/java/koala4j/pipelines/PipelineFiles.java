package koala4j.pipelines;

import java.util.ArrayList;
import java.util.List;

/** The files of a diffusers pipeline repo that loading needs, as hub allow-patterns (no other variants). */
public final class PipelineFiles {

    private PipelineFiles() {
    }

    public static List<String> patterns(String variant) {
        List<String> p = new ArrayList<>(List.of("model_index.json", "*/config.json", "scheduler/scheduler_config.json",
                "tokenizer/*", "tokenizer_2/*"));
        String v = variant == null ? "" : "." + variant;
        for (String base : List.of("diffusion_pytorch_model", "model")) {
            p.add("*/" + base + v + ".safetensors");
            p.add("*/" + base + ".safetensors.index" + v + ".json");
            p.add("*/" + base + v + ".safetensors.index.json");
            p.add("*/" + base + v + "-*-of-*.safetensors");
            p.add("*/" + base + "-*-of-*" + v + ".safetensors");
        }
        return List.copyOf(p);
    }
}
