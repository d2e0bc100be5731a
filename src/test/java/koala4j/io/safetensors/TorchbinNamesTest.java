package koala4j.io.safetensors;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import koala4j.io.torchbin.WeightFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * koala4j.io.torchbin.WeightFiles decides "this folder has safetensors" by its own list of names; every name
 * {@link ShardedCheckpoint} looks for must be on it (the converse is TorchCheckpointTest's), so a folder is never
 * read as .bin while its safetensors are there.
 */
class TorchbinNamesTest {

    @Test
    void everyNameShardedCheckpointLooksForCountsAsSafetensors(@TempDir Path dir) throws IOException {
        int n = 0;
        for (String variant : Arrays.asList(null, "fp16", "ema")) {
            for (String stem : new String[] {"model", "diffusion_pytorch_model"}) {
                for (String name : ShardedCheckpoint.candidates(stem, variant)) {
                    Path folder = Files.createDirectories(dir.resolve("f" + n++));
                    Files.writeString(folder.resolve(name), "");
                    assertTrue(WeightFiles.hasSafetensors(folder, variant), name + " (variant " + variant + ")");
                }
            }
        }
    }
}
