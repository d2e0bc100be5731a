package koala4j.pipelines;

import java.time.Duration;

/** What a long-running pipeline reports as it goes. Implementations must be cheap; called on the worker thread. */
public interface Progress {

    /** Denoising step {@code step} (1-based) of {@code total} finished. */
    void step(int step, int total);

    /** A stage (text encoding, denoising, decoding) finished after {@code elapsed}. */
    void stage(String name, Duration elapsed);

    Progress NONE = new Progress() {
        @Override
        public void step(int step, int total) {
        }

        @Override
        public void stage(String name, Duration elapsed) {
        }
    };
}
