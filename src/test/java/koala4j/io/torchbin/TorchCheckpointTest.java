package koala4j.io.torchbin;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import koala4j.io.safetensors.SafetensorsWriter;
import koala4j.io.safetensors.ShardedCheckpoint;
import koala4j.io.safetensors.TensorEntry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Folders, shards and the choice between formats: golden/torchbin/t5_byt5_tiny_bin(_sharded) (the T5 golden's
 * weights saved the way transformers' save_pretrained(safe_serialization=False) saves them, see make.py) against the
 * same weights in safetensors, the resolution order, and hostile indexes.
 */
class TorchCheckpointTest {
    private static final Path SINGLE = resource("golden/torchbin/t5_byt5_tiny_bin");
    private static final Path SHARDED = resource("golden/torchbin/t5_byt5_tiny_bin_sharded");
    private static final Path SAFETENSORS = resource("golden/t5_byt5_tiny/model/model.safetensors");

    @TempDir
    Path dir;

    private static void assertSameTensors(ShardedCheckpoint expected, WeightFiles actual) {
        List<String> extra = new ArrayList<>(actual.names());
        extra.removeAll(expected.names());
        // torch.save keeps the tied aliases that safetensors drops
        assertEquals(List.of("decoder.embed_tokens.weight", "encoder.embed_tokens.weight"), extra);
        for (String name : expected.names()) {
            TensorEntry e = expected.require(name);
            TensorEntry a = actual.require(name);
            assertEquals(e.dtype(), a.dtype(), name);
            assertArrayEquals(e.shape(), a.shape(), name);
            assertEquals(-1, e.data().mismatch(a.data()), name + ": bytes differ");
        }
        TensorEntry shared = actual.require("shared.weight");
        for (String alias : extra) {
            assertEquals(shared.data().address(), actual.require(alias).data().address(), alias + " shares shared.weight's storage");
        }
    }

    @Test
    void singleAndShardedFoldersHoldTheSafetensorsWeightsByteForByte() {
        try (ShardedCheckpoint expected = ShardedCheckpoint.open(SAFETENSORS, null)) {
            try (TorchCheckpoint single = TorchCheckpoint.open(SINGLE)) {
                assertEquals(List.of(SINGLE.resolve("pytorch_model.bin")), single.files());
                assertSameTensors(expected, single);
            }
            try (TorchCheckpoint sharded = TorchCheckpoint.open(SHARDED)) {
                assertEquals(List.of("pytorch_model-00002-of-00003.bin", "pytorch_model-00003-of-00003.bin", "pytorch_model-00001-of-00003.bin"),
                        sharded.files().stream().map(p -> p.getFileName().toString()).toList(), "in the order the index first names them");
                assertSameTensors(expected, sharded);
                TorchbinException missing = assertThrows(TorchbinException.class, () -> sharded.require("lm_head.bias"));
                assertEquals(SHARDED.resolve("pytorch_model.bin.index.json") + ": tensor \"lm_head.bias\": not in this checkpoint,"
                        + " expected one of its " + sharded.names().size() + " tensors (3 shards)", missing.getMessage());
            }
        }
    }

    private Path folder(String name, String... files) throws IOException {
        Path folder = Files.createDirectories(dir.resolve(name));
        for (String f : files) {
            Files.copy(resource("golden/torchbin/proto4.bin"), folder.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        return folder;
    }

    private static Path opened(WeightFiles w) {
        try (w) {
            return w.files().getFirst();
        }
    }

    @Test
    void foldersResolveLikeTransformersAndDiffusers() throws IOException {
        Path t = folder("t", "pytorch_model.bin", "pytorch_model.fp16.bin");
        assertEquals(t.resolve("pytorch_model.bin"), opened(TorchCheckpoint.open(t)));
        assertEquals(t.resolve("pytorch_model.fp16.bin"), opened(TorchCheckpoint.open(t, "fp16")));
        Path d = folder("d", "diffusion_pytorch_model.bin");
        assertEquals(d.resolve("diffusion_pytorch_model.bin"), opened(WeightFiles.open(d, null)));
        TorchbinException noVariant = assertThrows(TorchbinException.class, () -> TorchCheckpoint.open(d, "fp16"));
        assertEquals(d + ": no torch.save checkpoint for variant \"fp16\" found; looked for pytorch_model.fp16.bin,"
                + " pytorch_model.bin.index.fp16.json, pytorch_model.fp16.bin.index.json, diffusion_pytorch_model.bin.index.fp16.json,"
                + " diffusion_pytorch_model.bin.fp16.index.json, diffusion_pytorch_model.fp16.bin,"
                + " diffusion_pytorch_model.fp16.bin.index.json; the folder has diffusion_pytorch_model.bin", noVariant.getMessage());
        Path both = folder("both", "pytorch_model.bin", "diffusion_pytorch_model.bin");
        assertTrue(assertThrows(TorchbinException.class, () -> TorchCheckpoint.open(both)).getMessage()
                .endsWith("holds both pytorch_model.bin and diffusion_pytorch_model.bin, expected one checkpoint per folder (open the file itself)"));
        assertThrows(IllegalArgumentException.class, () -> TorchCheckpoint.open(t, "../x"));
    }

    @Test
    void weightFilesPreferSafetensorsAndNeverMixFormats() throws IOException {
        Path mixed = folder("mixed", "pytorch_model.bin");
        Files.copy(SAFETENSORS, mixed.resolve("model.safetensors"));
        try (WeightFiles w = WeightFiles.open(mixed, null)) {
            assertEquals(List.of(mixed.resolve("model.safetensors")), w.files(), "safetensors wins, as in transformers");
            assertTrue(w.names().contains("shared.weight") && !w.names().contains("w"));
        }
        // a variant that exists only as .bin falls back to it; the full-precision safetensors are not used instead
        Files.copy(resource("golden/torchbin/proto4.bin"), mixed.resolve("pytorch_model.fp16.bin"));
        assertEquals(mixed.resolve("pytorch_model.fp16.bin"), opened(WeightFiles.open(mixed, "fp16")));
        assertTrue(WeightFiles.hasSafetensors(mixed, null) && !WeightFiles.hasSafetensors(mixed, "fp16"));
        // files are opened by what they hold, indexes by their name
        assertEquals(SINGLE.resolve("pytorch_model.bin"), opened(WeightFiles.open(SINGLE.resolve("pytorch_model.bin"), null)));
        assertEquals(SAFETENSORS, opened(WeightFiles.open(SAFETENSORS, null)));
        assertEquals(3, WeightFiles.open(SHARDED.resolve("pytorch_model.bin.index.json"), null).files().size());

        Path none = folder("none");
        Files.writeString(none.resolve("tf_model.h5"), "");
        TorchbinException e = assertThrows(TorchbinException.class, () -> WeightFiles.open(none, null));
        assertEquals(none + ": no safetensors checkpoint found; looked for model.safetensors, model.safetensors.index.json,"
                + " diffusion_pytorch_model.safetensors.index.json, diffusion_pytorch_model.safetensors; nor a torch.save one:"
                + " looked for pytorch_model.bin, pytorch_model.bin.index.json, diffusion_pytorch_model.bin.index.json,"
                + " diffusion_pytorch_model.bin; the folder has no .safetensors or .bin files", e.getMessage());
    }

    /** Every safetensors name WeightFiles looks for is one ShardedCheckpoint resolves (the converse is in io.safetensors). */
    @Test
    void safetensorsNamesAgreeWithShardedCheckpoint() throws IOException {
        int n = 0;
        for (String variant : Arrays.asList(null, "fp16")) {
            for (String name : WeightNames.all(WeightNames.SAFETENSORS, variant)) {
                Path folder = Files.createDirectories(dir.resolve("names" + n++));
                Path file = folder.resolve(name);
                if (name.endsWith(".json")) {
                    SafetensorsWriter.write(folder.resolve("shard.safetensors"), List.of(SafetensorsWriter.f32("w", new long[] {1}, new float[] {1})), Map.of());
                    Files.writeString(file, "{\"weight_map\": {\"w\": \"shard.safetensors\"}}");
                } else {
                    SafetensorsWriter.write(file, List.of(SafetensorsWriter.f32("w", new long[] {1}, new float[] {1})), Map.of());
                }
                assertTrue(WeightFiles.hasSafetensors(folder, variant), name);
                try (ShardedCheckpoint c = ShardedCheckpoint.open(folder, variant)) {
                    assertEquals(List.of("w"), List.copyOf(c.names()), name);
                }
            }
        }
    }

    @Test
    void hostileIndexesAreRefused() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("index"));
        for (String shard : List.of("pytorch_model-00001-of-00003.bin", "pytorch_model-00002-of-00003.bin", "pytorch_model-00003-of-00003.bin")) {
            Files.copy(SHARDED.resolve(shard), folder.resolve(shard));
        }
        Path index = folder.resolve("pytorch_model.bin.index.json");
        String[][] cases = {
                {"{\"weight_map\": {\"w\": \"../../etc/passwd\"}}", "tensor \"w\": shard \"../../etc/passwd\", expected a file name in the index's folder"},
                {"{\"weight_map\": {\"w\": \"missing.bin\"}}", "tensor \"w\": shard \"missing.bin\" does not exist, expected it next to the index"},
                {"{\"weight_map\": {\"lm_head.weight\": \"pytorch_model-00001-of-00003.bin\", \"shared.weight\": \"pytorch_model-00001-of-00003.bin\"}}",
                        "tensor \"lm_head.weight\": listed in shard pytorch_model-00001-of-00003.bin but absent from it, expected it there"},
                {"{\"weight_map\": {\"lm_head.weight\": \"pytorch_model-00001-of-00003.bin\", \"shared.weight\": \"pytorch_model-00003-of-00003.bin\"}}",
                        "tensor \"lm_head.weight\": listed in shard pytorch_model-00001-of-00003.bin but absent from it (it is in"
                                + " pytorch_model-00003-of-00003.bin), expected the index to name its shard"},
                {"{\"weight_map\": [1]}", "weight_map"},
                {"{\"weight_map\": {\"w\": 3}}", "weight_map"},
                {"not json", ""},
        };
        for (String[] c : cases) {
            Files.writeString(index, c[0]);
            TorchbinException e = assertThrows(TorchbinException.class, () -> TorchCheckpoint.open(folder));
            assertTrue(e.getMessage().startsWith(index + ": ") && e.getMessage().contains(c[1]), e.getMessage());
        }
        // one tensor in two shards
        Files.copy(SHARDED.resolve("pytorch_model-00001-of-00003.bin"), folder.resolve("copy.bin"));
        Files.writeString(index, "{\"weight_map\": {\"shared.weight\": \"pytorch_model-00001-of-00003.bin\", \"lm_head.weight\": \"copy.bin\"}}");
        assertTrue(assertThrows(TorchbinException.class, () -> TorchCheckpoint.open(folder)).getMessage()
                .contains("is in both pytorch_model-00001-of-00003.bin and copy.bin, expected each tensor in one shard"));
    }
}
