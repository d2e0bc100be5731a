package koala4j.cli;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import koala4j.io.torchbin.TorchCheckpoint;

/** {@code koala4j inspect} on torch.save files and folders (golden/torchbin, see make.py there). */
class InspectTorchbinTest {

    record Run(int code, String out, String err) {
    }

    static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out), new PrintWriter(err), Map.of());
        return new Run(code, out.toString(), err.toString());
    }

    private static long parameters(Path fileOrFolder) {
        try (TorchCheckpoint c = TorchCheckpoint.open(fileOrFolder)) {
            return c.names().stream().mapToLong(n -> c.require(n).numel()).sum();
        }
    }

    @Test
    void inspectABinFileAndAShardedBinFolder() {
        Path file = resource("golden/torchbin/t5_byt5_tiny_bin/pytorch_model.bin");
        Run r = run("inspect", file.toString());
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().toList();
        assertTrue(lines.contains("shared.weight\tF32\t[384, 32]") && lines.contains("encoder.embed_tokens.weight\tF32\t[384, 32]"), r.out());
        assertEquals("parameters: " + parameters(file), lines.getLast());

        Path sharded = resource("golden/torchbin/t5_byt5_tiny_bin_sharded");
        Run s = run("inspect", sharded.toString());
        assertEquals(0, s.code(), s.err());
        assertEquals(r.out(), s.out(), "the same tensors, sharded or not");
    }

    @Test
    void unreadableAndLegacyFilesAreOneLineErrors() {
        Run complex = run("inspect", resource("golden/torchbin/mixed.bin").toString());
        assertEquals(1, complex.code());
        assertTrue(complex.err().startsWith("koala4j: ") && complex.err().contains("tensor \"complex\": dtype complex64")
                && complex.err().lines().count() == 1, complex.err());
        Run legacy = run("inspect", resource("golden/torchbin/legacy.bin").toString());
        assertEquals(1, legacy.code());
        assertTrue(legacy.err().contains("is in the legacy torch.save format") && legacy.err().lines().count() == 1, legacy.err());
    }
}
