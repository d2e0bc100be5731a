package koala4j.testing;

import static koala4j.testing.Close.resource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * The golden e2e pipeline folders (sdxl, koala, sd15) put back together in a work folder: the repository stores
 * each file once (see golden/e2e/README.md).
 */
public final class TinyPipelines {

    public static final List<String> NAMES = List.of("sdxl", "koala", "sd15");

    private TinyPipelines() {
    }

    /** {@code work/name}: a complete diffusers pipeline folder, assembled on first use. */
    public static synchronized Path assemble(String name, Path work) {
        if (!NAMES.contains(name)) {
            throw new IllegalArgumentException("tiny pipeline " + name + ": expected one of " + NAMES);
        }
        Path target = work.resolve(name);
        if (Files.isDirectory(target)) {
            return target;
        }
        try {
            copyTree(resource("golden/e2e/" + name + "/pipeline"), target);
            for (String tok : List.of("tokenizer", "tokenizer_2")) {
                if (Files.isDirectory(target.resolve(tok))) {
                    Files.copy(resource("golden/clip_tokenizer/vocab.json"), target.resolve(tok).resolve("vocab.json"));
                    Files.copy(resource("golden/clip_tokenizer/merges.txt"), target.resolve(tok).resolve("merges.txt"));
                }
            }
            if (name.equals("koala")) {
                Path sdxl = resource("golden/e2e/sdxl/pipeline");
                for (String f : List.of("text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
                        "vae/diffusion_pytorch_model.safetensors")) {
                    Files.copy(sdxl.resolve(f), target.resolve(f));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return target;
    }

    public static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> walk = Files.walk(from)) {
            for (Path p : walk.toList()) {
                Path dest = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(dest);
                } else {
                    Files.copy(p, dest);
                }
            }
        }
    }
}
