package koala4j.pipelines;

import java.util.List;

/**
 * Stop strings matched on the decoded output text (as vLLM and the OpenAI API do): generation ends at the first
 * occurrence, and the returned text ends just before it. While streaming, text that could still become the start of
 * a stop string is held back, so a client never sees a partial stop string. Immutable.
 */
public final class StopStrings {

    private final List<String> stops;
    private final int longest;

    public StopStrings(List<String> stops) {
        this.stops = List.copyOf(stops);
        this.longest = stops.stream().mapToInt(String::length).max().orElse(0);
    }

    public boolean isEmpty() {
        return stops.isEmpty();
    }

    /**
     * Where the earliest stop string starts in {@code text}, or -1. Only matches ending after {@code newFrom} are
     * new (earlier text was searched before), so the search starts {@code longest - 1} characters before it.
     */
    public int find(String text, int newFrom) {
        int from = Math.max(0, newFrom - longest + 1);
        int best = -1;
        for (String s : stops) {
            int at = text.indexOf(s, from);
            if (at >= 0 && (best < 0 || at < best)) {
                best = at;
            }
        }
        return best;
    }

    /** Length of the longest end of {@code text} that is the beginning of some stop string (to hold back). */
    public int pendingSuffix(String text) {
        int max = Math.min(text.length(), longest - 1);
        for (int len = max; len > 0; len--) {
            String tail = text.substring(text.length() - len);
            for (String s : stops) {
                if (s.startsWith(tail)) {
                    return len;
                }
            }
        }
        return 0;
    }
}
