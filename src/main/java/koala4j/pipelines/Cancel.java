package koala4j.pipelines;

import java.util.concurrent.CancellationException;

/** Polled between steps: a client that went away or a timeout stops the job there. */
@FunctionalInterface
public interface Cancel {

    boolean requested();

    default void check() {
        if (requested()) {
            throw new CancellationException("generation cancelled");
        }
    }

    Cancel NEVER = () -> false;
}
