package koala4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

/**
 * The layering of ../shared/DESIGN.md as a test: a package may name only the packages listed for it (its own
 * package and subpackages always). Scans imports and fully qualified names in src/main/java.
 */
class ArchitectureTest {

    private static final Path MAIN = Path.of("src/main/java");

    /** Package (with its subpackages unless a more specific entry exists) -> koala4j packages it may use. */
    private static final Map<String, List<String>> ALLOWED = new LinkedHashMap<>();

    static {
        ALLOWED.put("koala4j.tensor", List.of());
        ALLOWED.put("koala4j.tensor.rng", List.of("koala4j.tensor"));
        ALLOWED.put("koala4j.tensor.quant", List.of("koala4j.tensor"));
        ALLOWED.put("koala4j.backend", List.of("koala4j.tensor.*", "koala4j.backend.*"));
        ALLOWED.put("koala4j.backend.cpu", List.of("koala4j.tensor", "koala4j.tensor.quant"));
        ALLOWED.put("koala4j.backend.cuda", List.of("koala4j.tensor"));
        ALLOWED.put("koala4j.io.json", List.of());
        ALLOWED.put("koala4j.io.safetensors", List.of("koala4j.tensor", "koala4j.io.json"));
        ALLOWED.put("koala4j.io.torchbin", List.of("koala4j.tensor", "koala4j.io.json", "koala4j.io.safetensors"));
        ALLOWED.put("koala4j.io.image", List.of("koala4j.tensor", "koala4j.io.json"));
        ALLOWED.put("koala4j.io.video", List.of("koala4j.io.image"));
        ALLOWED.put("koala4j.io.hub", List.of("koala4j.io.json"));
        ALLOWED.put("koala4j.nn", List.of("koala4j.tensor"));
        ALLOWED.put("koala4j.tokenizers", List.of("koala4j.io.json"));
        ALLOWED.put("koala4j.schedulers", List.of("koala4j.tensor", "koala4j.tensor.rng", "koala4j.io.json"));
        ALLOWED.put("koala4j.models", List.of("koala4j.nn", "koala4j.tensor.*", "koala4j.io.safetensors",
                "koala4j.io.torchbin", "koala4j.io.json"));
        // diffusers' shared modules (resnet.py, attention_processor.py) used by both the UNet and the VAE
        ALLOWED.put("koala4j.models.blocks", List.of("koala4j.nn", "koala4j.tensor.*", "koala4j.io.json"));
        ALLOWED.put("koala4j.models.unet", List.of("koala4j.models.blocks", "koala4j.nn", "koala4j.tensor.*",
                "koala4j.io.safetensors", "koala4j.io.json"));
        ALLOWED.put("koala4j.models.vae", List.of("koala4j.models.blocks", "koala4j.nn", "koala4j.tensor.*",
                "koala4j.io.safetensors", "koala4j.io.json"));
        ALLOWED.put("koala4j.models.t5", List.of("koala4j.models", "koala4j.nn", "koala4j.tensor.*",
                "koala4j.io.safetensors", "koala4j.io.json"));
        ALLOWED.put("koala4j.models.llava", List.of("koala4j.models", "koala4j.models.clip", "koala4j.models.llama",
                "koala4j.nn", "koala4j.tensor.*", "koala4j.io.safetensors", "koala4j.io.json"));
        ALLOWED.put("koala4j.pipelines", List.of("koala4j.models.*", "koala4j.schedulers", "koala4j.tokenizers",
                "koala4j.io.*", "koala4j.backend", "koala4j.nn", "koala4j.tensor.*"));
        ALLOWED.put("koala4j.train", List.of("koala4j.train.*", "koala4j.models.*", "koala4j.nn", "koala4j.tensor.*",
                "koala4j.io.safetensors", "koala4j.io.json", "koala4j.pipelines"));
        ALLOWED.put("koala4j.train.autograd", List.of("koala4j.tensor.*"));
        ALLOWED.put("koala4j.train.optim", List.of("koala4j.tensor.*"));
        ALLOWED.put("koala4j.server", List.of("koala4j.pipelines", "koala4j.io.*", "koala4j.backend", "koala4j.tensor.*",
                "koala4j.server.store"));
        ALLOWED.put("koala4j.server.store", List.of("koala4j.io.json"));
        ALLOWED.put("koala4j.cli", List.of("koala4j.pipelines", "koala4j.server.*", "koala4j.train.distill",
                "koala4j.backend", "koala4j.io.*", "koala4j.models.*", "koala4j.tensor.*", "koala4j.tokenizers",
                "koala4j.schedulers"));
    }

    private static final Pattern PACKAGE = Pattern.compile("^package\\s+([\\w.]+);", Pattern.MULTILINE);
    private static final Pattern REFERENCE = Pattern.compile("\\b(koala4j(?:\\.[a-z_][\\w]*)*)\\.[A-Z]");

    record Source(Path file, String pkg, String text) {
    }

    private static List<Source> sources() throws IOException {
        List<Source> out = new ArrayList<>();
        try (Stream<Path> files = Files.walk(MAIN)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String text = Files.readString(f);
                Matcher m = PACKAGE.matcher(text);
                out.add(new Source(f, m.find() ? m.group(1) : "", stripComments(text)));
            }
        }
        return out;
    }

    private static String stripComments(String text) {
        return text.replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\\n]*", "");
    }

    static String ruleFor(String pkg) {
        String best = null;
        for (String key : ALLOWED.keySet()) {
            if ((pkg.equals(key) || pkg.startsWith(key + ".")) && (best == null || key.length() > best.length())) {
                best = key;
            }
        }
        return best;
    }

    static boolean permitted(String pkg, String used) {
        String rule = ruleFor(pkg);
        if (used.equals(pkg) || used.equals(rule)) {
            return true;
        }
        for (String allowed : ALLOWED.getOrDefault(rule, List.of())) {
            boolean subtree = allowed.endsWith(".*");
            String base = subtree ? allowed.substring(0, allowed.length() - 2) : allowed;
            if (used.equals(base) || subtree && used.startsWith(base + ".")) {
                return true;
            }
        }
        return false;
    }

    @Test
    void everyPackageHasARule() throws IOException {
        for (Source s : sources()) {
            assertTrue(ruleFor(s.pkg()) != null, s.file() + ": package " + s.pkg() + " has no layering rule");
        }
    }

    @Test
    void importsPointDownTheLayers() throws IOException {
        List<String> violations = new ArrayList<>();
        for (Source s : sources()) {
            Matcher m = REFERENCE.matcher(s.text());
            while (m.find()) {
                String used = m.group(1);
                if (!permitted(s.pkg(), used)) {
                    violations.add(s.file() + ": " + s.pkg() + " uses " + used);
                }
            }
        }
        assertEquals(List.of(), violations.stream().distinct().toList());
    }

    @Test
    void vectorApiOnlyInTheCpuBackendAndLinkerOnlyInCuda() throws IOException {
        List<String> violations = new ArrayList<>();
        for (Source s : sources()) {
            if (s.text().contains("jdk.incubator.vector") && !s.pkg().equals("koala4j.backend.cpu")) {
                violations.add(s.file() + " uses the Vector API outside koala4j.backend.cpu");
            }
            if (s.text().matches("(?s).*\\bLinker\\b.*") && !s.pkg().equals("koala4j.backend.cuda")) {
                violations.add(s.file() + " uses java.lang.foreign.Linker outside koala4j.backend.cuda");
            }
        }
        assertEquals(List.of(), violations);
    }

    @Test
    void theRulesThemselvesRejectAnUpwardImport() {
        assertTrue(permitted("koala4j.models.unet", "koala4j.nn"));
        assertTrue(permitted("koala4j.backend", "koala4j.backend.cpu"));
        assertTrue(!permitted("koala4j.nn", "koala4j.models"));
        assertTrue(!permitted("koala4j.tensor", "koala4j.backend.cpu"));
        assertTrue(!permitted("koala4j.models.unet", "koala4j.backend.cpu"));
        assertTrue(!permitted("koala4j.cli", "koala4j.backend.cpu"));
        assertTrue(!permitted("koala4j.models.clip", "koala4j.models.llama"));
    }
}
