package koala4j.io.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(10)
class ConsoleProgressTest {

    private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(buffer, true, StandardCharsets.UTF_8);

    private List<String> lines() {
        return buffer.toString(StandardCharsets.UTF_8).lines().toList();
    }

    @Test
    void logOutputHasOneLinePerQuarter() {
        ConsoleProgress p = new ConsoleProgress(out, false);
        p.start("unet/diffusion_pytorch_model.safetensors", 1000);
        for (int i = 0; i < 100; i++) {
            p.advance(10);
        }
        p.done("unet/diffusion_pytorch_model.safetensors");

        List<String> lines = lines();
        assertEquals(5, lines.size(), lines.toString());
        String[] percents = {"  0%", " 25%", " 50%", " 75%", "100%"};
        for (int i = 0; i < 5; i++) {
            assertTrue(lines.get(i).startsWith("unet/diffusion_pytorch_model.safetensors  "), lines.get(i));
            assertTrue(lines.get(i).contains(percents[i]), lines.get(i));
            assertTrue(lines.get(i).contains("/ 1.00 kB"), lines.get(i));
            assertTrue(lines.get(i).endsWith("/s"), lines.get(i));
        }
        assertTrue(lines.get(4).contains("1.00 kB / 1.00 kB"), lines.get(4));
        assertTrue(!buffer.toString(StandardCharsets.UTF_8).contains("\r"));
    }

    @Test
    void aJumpAcrossSeveralQuartersPrintsOnce() {
        ConsoleProgress p = new ConsoleProgress(out, false);
        p.start("f", 100);
        p.advance(80);          // a resumed download starts at 80 %
        p.advance(20);
        p.done("f");
        List<String> lines = lines();
        assertEquals(3, lines.size(), lines.toString());
        assertTrue(lines.get(1).contains(" 80%"), lines.get(1));
        assertTrue(lines.get(2).contains("100%"), lines.get(2));
    }

    @Test
    void unknownSizePrintsStartAndEnd() {
        ConsoleProgress p = new ConsoleProgress(out, false);
        p.start("config.json", -1);
        p.advance(1_500_000);
        p.done("config.json");
        List<String> lines = lines();
        assertEquals(2, lines.size(), lines.toString());
        assertTrue(lines.get(1).startsWith("config.json  1.50 MB  "), lines.get(1));
    }

    @Test
    void terminalOutputRedrawsWithCarriageReturns() {
        ConsoleProgress p = new ConsoleProgress(out, true);
        p.start("f", 100);
        p.advance(100);
        p.done("f");
        String text = buffer.toString(StandardCharsets.UTF_8);
        assertTrue(text.startsWith("\rf  0 B / 100 B    0%"), text);
        String last = text.substring(text.lastIndexOf('\r') + 1);
        assertTrue(last.startsWith("f  100 B / 100 B  100%"), last);
        // one line on screen, redrawn in place, ended by done()
        assertEquals(1, text.chars().filter(c -> c == '\n').count(), text);
        assertTrue(text.endsWith("\n"));
    }

    @Test
    void sizesUseDecimalUnits() {
        assertEquals("999 B", ConsoleProgress.size(999));
        assertEquals("1.00 kB", ConsoleProgress.size(1000));
        assertEquals("5.14 GB", ConsoleProgress.size(5_135_000_000.0));
    }
}
