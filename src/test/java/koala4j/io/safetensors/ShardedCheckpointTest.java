package koala4j.io.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import koala4j.io.json.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShardedCheckpointTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path dir;

    private static TensorEntry t(String name, float value) {
        return SafetensorsWriter.f32(name, new long[] {2}, new float[] {value, -value});
    }

    private static void single(Path file, String... names) {
        List<TensorEntry> tensors = new java.util.ArrayList<>();
        for (int i = 0; i < names.length; i++) tensors.add(t(names[i], i + 1));
        SafetensorsWriter.write(file, tensors, Map.of("format", "pt"));
    }

    /** Writes {@code shards} (file name → tensor names) and an index naming each tensor's shard, as save_pretrained does. */
    private static void sharded(Path folder, String indexName, Map<String, List<String>> shards) throws IOException {
        Map<String, String> weightMap = new LinkedHashMap<>();
        shards.forEach((file, names) -> {
            single(folder.resolve(file), names.toArray(String[]::new));
            names.forEach(n -> weightMap.put(n, file));
        });
        index(folder.resolve(indexName), weightMap);
    }

    private static void index(Path file, Map<String, String> weightMap) throws IOException {
        String entries = weightMap.entrySet().stream()
                .map(e -> Json.quote(e.getKey()) + ": " + Json.quote(e.getValue()))
                .collect(Collectors.joining(",\n    "));
        Files.writeString(file, "{\n  \"metadata\": {\"total_size\": 1},\n  \"weight_map\": {\n    " + entries + "\n  }\n}\n");
    }

    private static Map<String, List<String>> twoShards(String stem) {
        Map<String, List<String>> shards = new LinkedHashMap<>();
        shards.put(stem + "-00001-of-00002.safetensors", List.of("a.weight", "b.weight"));
        shards.put(stem + "-00002-of-00002.safetensors", List.of("c.weight"));
        return shards;
    }

    private Path folder(String name) throws IOException {
        return Files.createDirectories(dir.resolve(name));
    }

    // ------------------------------------------------------------------------------------------------ single files

    @Test
    void transformersSingleFile() throws IOException {
        Path folder = folder("text_encoder");
        single(folder.resolve("model.safetensors"), "x", "y");
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(folder, null)) {
            assertEquals(List.of(folder.resolve("model.safetensors")), ckpt.files());
            assertEquals(Set.of("x", "y"), ckpt.names());
            assertEquals(2f, ckpt.require("y").data().get(F32, 0));
            assertTrue(ckpt.get("z").isEmpty());
        }
    }

    @Test
    void diffusersSingleFileAndExplicitFile() throws IOException {
        Path folder = folder("unet");
        Path file = folder.resolve("diffusion_pytorch_model.safetensors");
        single(file, "conv_in.weight");
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(folder, null)) {
            assertEquals(List.of(file), ckpt.files());
        }
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(file, "fp16")) {   // an explicit file ignores the variant
            assertEquals(Set.of("conv_in.weight"), ckpt.names());
        }
    }

    // ------------------------------------------------------------------------------------------------ shards

    @Test
    void transformersShards() throws IOException {
        Path folder = folder("te2");
        sharded(folder, "model.safetensors.index.json", twoShards("model"));
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(folder, null)) {
            assertEquals(List.of(folder.resolve("model-00001-of-00002.safetensors"), folder.resolve("model-00002-of-00002.safetensors")),
                    ckpt.files());
            assertEquals(List.of("a.weight", "b.weight", "c.weight"), List.copyOf(ckpt.names()));
            assertEquals(1f, ckpt.require("c.weight").data().get(F32, 0));
            assertEquals(-2f, ckpt.require("b.weight").data().get(F32, 4));
        }
        // the index file itself opens the same checkpoint
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(folder.resolve("model.safetensors.index.json"), null)) {
            assertEquals(3, ckpt.names().size());
        }
    }

    @Test
    void diffusersShards() throws IOException {
        Path folder = folder("unet");
        sharded(folder, "diffusion_pytorch_model.safetensors.index.json", twoShards("diffusion_pytorch_model"));
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(folder, null)) {
            assertEquals(2, ckpt.files().size());
            assertEquals(Set.of("a.weight", "b.weight", "c.weight"), ckpt.names());
        }
    }

    @Test
    void closingClosesEveryShard() throws IOException {
        Path folder = folder("m");
        sharded(folder, "model.safetensors.index.json", twoShards("model"));
        ShardedCheckpoint ckpt = ShardedCheckpoint.open(folder, null);
        TensorEntry a = ckpt.require("a.weight");
        TensorEntry c = ckpt.require("c.weight");
        ckpt.close();
        assertThrows(IllegalStateException.class, () -> a.data().get(F32, 0));
        assertThrows(IllegalStateException.class, () -> c.data().get(F32, 0));
    }

    // ------------------------------------------------------------------------------------------------ variants

    @Test
    void fp16VariantSingleFilesSitNextToFullPrecision() throws IOException {
        Path folder = folder("vae");
        single(folder.resolve("diffusion_pytorch_model.safetensors"), "full");
        single(folder.resolve("diffusion_pytorch_model.fp16.safetensors"), "half");
        try (ShardedCheckpoint full = ShardedCheckpoint.open(folder, null);
                ShardedCheckpoint half = ShardedCheckpoint.open(folder, "fp16")) {
            assertEquals(Set.of("full"), full.names());
            assertEquals(Set.of("half"), half.names());
        }
        Path te = folder("text_encoder");
        single(te.resolve("model.fp16.safetensors"), "half");
        try (ShardedCheckpoint half = ShardedCheckpoint.open(te, "fp16")) {
            assertEquals(List.of(te.resolve("model.fp16.safetensors")), half.files());
        }
    }

    @Test
    void fp16VariantShardsUnderEveryIndexName() throws IOException {
        // The names _add_variant produces today, diffusers' deprecated one, and the one re-sharding tools publish.
        for (String indexName : List.of("model.safetensors.index.fp16.json", "diffusion_pytorch_model.safetensors.index.fp16.json",
                "diffusion_pytorch_model.safetensors.fp16.index.json", "diffusion_pytorch_model.fp16.safetensors.index.json",
                "model.fp16.safetensors.index.json")) {
            Path folder = folder(indexName);
            String stem = indexName.startsWith("model") ? "model.fp16" : "diffusion_pytorch_model.fp16";
            sharded(folder, indexName, twoShards(stem));
            try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(folder, "fp16")) {
                assertEquals(Set.of("a.weight", "b.weight", "c.weight"), ckpt.names(), indexName);
                assertTrue(ckpt.files().getFirst().getFileName().toString().startsWith(stem + "-00001"), indexName);
            }
            SafetensorsException none = assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null));
            assertTrue(none.getMessage().contains("no safetensors checkpoint found"), none.getMessage());
        }
    }

    @Test
    void eachLibraryKeepsItsOwnPreferenceBetweenIndexAndSingleFile() throws IOException {
        Path diffusers = folder("d");
        sharded(diffusers, "diffusion_pytorch_model.safetensors.index.json", twoShards("diffusion_pytorch_model"));
        single(diffusers.resolve("diffusion_pytorch_model.safetensors"), "single");
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(diffusers, null)) {
            assertEquals(2, ckpt.files().size(), "diffusers loads the index when there is one");
        }
        Path transformers = folder("t");
        sharded(transformers, "model.safetensors.index.json", twoShards("model"));
        single(transformers.resolve("model.safetensors"), "single");
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(transformers, null)) {
            assertEquals(Set.of("single"), ckpt.names(), "transformers loads model.safetensors first");
        }
    }

    // ------------------------------------------------------------------------------------------------ errors

    @Test
    void nothingFoundListsWhatWasLookedForAndWhatIsThere() throws IOException {
        Path folder = folder("vae");
        single(folder.resolve("diffusion_pytorch_model.safetensors"), "full");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, "fp16"));
        assertEquals(folder + ": no safetensors checkpoint for variant \"fp16\" found; looked for model.fp16.safetensors, "
                + "model.safetensors.index.fp16.json, model.fp16.safetensors.index.json, "
                + "diffusion_pytorch_model.safetensors.index.fp16.json, diffusion_pytorch_model.safetensors.fp16.index.json, "
                + "diffusion_pytorch_model.fp16.safetensors, diffusion_pytorch_model.fp16.safetensors.index.json; "
                + "the folder has diffusion_pytorch_model.safetensors", e.getMessage());
        Path empty = folder("empty");
        SafetensorsException none = assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(empty, null));
        assertEquals(empty + ": no safetensors checkpoint found; looked for model.safetensors, model.safetensors.index.json, "
                + "diffusion_pytorch_model.safetensors.index.json, diffusion_pytorch_model.safetensors; the folder has no .safetensors files",
                none.getMessage());
        Path missing = dir.resolve("missing");
        assertEquals(missing + ": no such file or folder",
                assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(missing, null)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> ShardedCheckpoint.open(folder, "../fp16"));
    }

    @Test
    void twoLibrariesInOneFolderIsAmbiguous() throws IOException {
        Path folder = folder("mixed");
        single(folder.resolve("model.safetensors"), "a");
        single(folder.resolve("diffusion_pytorch_model.safetensors"), "b");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null));
        assertEquals(folder + ": holds both model.safetensors and diffusion_pytorch_model.safetensors, expected one checkpoint per folder (open the file itself)",
                e.getMessage());
    }

    @Test
    void missingShard() throws IOException {
        Path folder = folder("m");
        Path indexFile = folder.resolve("model.safetensors.index.json");
        single(folder.resolve("model-00001-of-00002.safetensors"), "a");
        index(indexFile, Map.of("a", "model-00001-of-00002.safetensors", "b", "model-00002-of-00002.safetensors"));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null));
        assertEquals(indexFile + ": tensor \"b\": shard \"model-00002-of-00002.safetensors\" does not exist, expected it next to the index",
                e.getMessage());
        assertEquals(indexFile, e.file());
    }

    @Test
    void weightMapMustBeAnObjectOfFileNames() throws IOException {
        Path folder = folder("m");
        Path indexFile = folder.resolve("model.safetensors.index.json");
        Files.writeString(indexFile, "{\"weight_map\": [\"model.safetensors\"]}");
        assertEquals(indexFile + ": /weight_map: found [\"model.safetensors\"], expected object of strings",
                assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null)).getMessage());
        Files.writeString(indexFile, "{\"metadata\": {}}");
        assertEquals(indexFile + ": /weight_map: missing, expected object of strings",
                assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null)).getMessage());
        Files.writeString(indexFile, "{\"weight_map\": {\"a\": 3}}");
        assertEquals(indexFile + ": /weight_map/a: found 3, expected string",
                assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null)).getMessage());
        Files.writeString(indexFile, "{\"weight_map\": {\"a\": ");
        assertTrue(assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null))
                .getMessage().startsWith(indexFile + ": invalid JSON at line 1"));
    }

    @Test
    void shardsMustStayInTheIndexFolder() throws IOException {
        Path folder = folder("m");
        single(dir.resolve("outside.safetensors"), "a");
        Path indexFile = folder.resolve("model.safetensors.index.json");
        index(indexFile, Map.of("a", "../outside.safetensors"));
        assertEquals(indexFile + ": tensor \"a\": shard \"../outside.safetensors\", expected a file name in the index's folder",
                assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null)).getMessage());
    }

    @Test
    void listedTensorAbsentFromItsShard() throws IOException {
        Path folder = folder("m");
        Path indexFile = folder.resolve("model.safetensors.index.json");
        single(folder.resolve("s1.safetensors"), "a");
        single(folder.resolve("s2.safetensors"), "b");
        Map<String, String> map = new LinkedHashMap<>();
        map.put("a", "s1.safetensors");
        map.put("b", "s2.safetensors");
        map.put("ghost", "s1.safetensors");
        index(indexFile, map);
        assertEquals(indexFile + ": tensor \"ghost\": listed in shard s1.safetensors but absent from it, expected it there",
                assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null)).getMessage());
        map.remove("ghost");
        map.put("b", "s1.safetensors");
        map.put("a2", "s2.safetensors");
        single(folder.resolve("s2.safetensors"), "b", "a2");
        index(indexFile, map);
        assertEquals(indexFile + ": tensor \"b\": listed in shard s1.safetensors but absent from it (it is in s2.safetensors), expected the index to name its shard",
                assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null)).getMessage());
    }

    @Test
    void duplicateTensorAcrossShards() throws IOException {
        Path folder = folder("m");
        Path indexFile = folder.resolve("model.safetensors.index.json");
        single(folder.resolve("s1.safetensors"), "a", "shared");
        single(folder.resolve("s2.safetensors"), "shared", "b");
        index(indexFile, Map.of("a", "s1.safetensors", "b", "s2.safetensors"));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null));
        assertTrue(e.getMessage().startsWith(indexFile + ": tensor \"shared\": is in both s"), e.getMessage());
        assertTrue(e.getMessage().endsWith(", expected each tensor in one shard"), e.getMessage());
    }

    @Test
    void aBrokenShardIsNamed() throws IOException {
        Path folder = folder("m");
        sharded(folder, "model.safetensors.index.json", twoShards("model"));
        Path second = folder.resolve("model-00002-of-00002.safetensors");
        Files.write(second, new byte[] {1, 2, 3});
        assertEquals(second + ": file is 3 bytes, expected at least 8 (the header length)",
                assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(folder, null)).getMessage());
    }

    @Test
    void requireNamesTheCheckpoint() throws IOException {
        Path folder = folder("m");
        sharded(folder, "model.safetensors.index.json", twoShards("model"));
        try (ShardedCheckpoint ckpt = ShardedCheckpoint.open(folder, null)) {
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> ckpt.require("d.weight"));
            assertEquals(folder.resolve("model.safetensors.index.json") + ": tensor \"d.weight\": not in this checkpoint, expected one of its 3 tensors (2 shards)",
                    e.getMessage());
        }
    }
}
