package koala4j.io.hub;

import java.io.Console;
import java.io.PrintStream;
import java.util.Locale;

/**
 * A download progress bar in the spirit of huggingface_hub's tqdm bars: file name, bytes so far and total, percent,
 * rate. On a terminal it redraws one line with '\r' (at most every 100 ms); into a log or pipe it prints a line only at
 * 0, 25, 50, 75 and 100 %, so a CI log of a 5 GB download stays five lines long. One file at a time, one thread.
 */
public final class ConsoleProgress implements HubClient.Progress {

    private static final long REDRAW_NANOS = 100_000_000L;

    private final PrintStream out;
    private final boolean terminal;
    private String file = "";
    private long total = -1;
    private long bytes;
    private long startNanos;
    private long lastDrawNanos;
    private int nextQuarter;

    /** Redraws in place when this JVM's console is an interactive terminal. */
    public ConsoleProgress(PrintStream out) {
        this(out, isTerminal());
    }

    public ConsoleProgress(PrintStream out, boolean terminal) {
        this.out = out;
        this.terminal = terminal;
    }

    /** Since JDK 22 System.console() is non-null even when redirected; isTerminal() tells the two apart. */
    private static boolean isTerminal() {
        Console console = System.console();
        return console != null && console.isTerminal();
    }

    @Override
    public void start(String file, long totalBytes) {
        this.file = file;
        this.total = totalBytes;
        this.bytes = 0;
        this.startNanos = System.nanoTime();
        this.lastDrawNanos = 0;
        this.nextQuarter = 0;
        report(true);
    }

    @Override
    public void advance(long delta) {
        bytes += delta;
        report(false);
    }

    @Override
    public void done(String file) {
        if (terminal) {
            out.print("\r" + line() + "\n");
        } else if (total < 0 || nextQuarter <= 4) {
            // unknown size: the start line and this one; known size: the 100 % line if rounding skipped it
            out.println(line());
        }
        out.flush();
    }

    private void report(boolean first) {
        long now = System.nanoTime();
        if (terminal) {
            if (first || now - lastDrawNanos >= REDRAW_NANOS) {
                out.print("\r" + line());
                out.flush();
                lastDrawNanos = now;
            }
            return;
        }
        if (total < 0) {
            if (first) {
                out.println(line());
            }
            return;
        }
        // Print each quarter boundary once: a big chunk may cross several, which yields one line, not several.
        int percent = total == 0 ? 100 : (int) Math.min(100, bytes * 100 / total);
        if (nextQuarter <= 4 && percent >= nextQuarter * 25) {
            out.println(line());
            while (nextQuarter <= 4 && percent >= nextQuarter * 25) {
                nextQuarter++;
            }
        }
    }

    /** "unet/diffusion_pytorch_model.safetensors  1.20 GB / 5.14 GB  23%  48.3 MB/s". */
    String line() {
        double seconds = (System.nanoTime() - startNanos) / 1e9;
        String rate = seconds > 0 ? size(bytes / seconds) + "/s" : "-";
        if (total < 0) {
            return String.format(Locale.ROOT, "%s  %s  %s", file, size(bytes), rate);
        }
        int percent = total == 0 ? 100 : (int) Math.min(100, bytes * 100 / total);
        return String.format(Locale.ROOT, "%s  %s / %s  %3d%%  %s", file, size(bytes), size(total), percent, rate);
    }

    /** Decimal units, as the hub's own pages and huggingface_hub's bars show sizes. */
    static String size(double bytes) {
        String[] units = {"B", "kB", "MB", "GB", "TB"};
        int u = 0;
        while (bytes >= 1000 && u < units.length - 1) {
            bytes /= 1000;
            u++;
        }
        return u == 0 ? String.format(Locale.ROOT, "%.0f %s", bytes, units[u])
                : String.format(Locale.ROOT, "%.2f %s", bytes, units[u]);
    }
}
