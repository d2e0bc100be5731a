package koala4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

/** Loaded chat models under {@code serve --chat-max-loaded}: least recently used idle ones unload, busy ones stay. */
class ChatModelLimitTest {

    /** A model that counts its loads and closes. */
    private static final class Counted implements AutoCloseable {
        final AtomicInteger closed = new AtomicInteger();

        @Override
        public void close() {
            closed.incrementAndGet();
        }
    }

    private static LazyModel<Counted> model(String id, ChatModelLimit limit, List<Counted> made) {
        return new LazyModel<>(id, Path.of(id), () -> {
            Counted c = new Counted();
            made.add(c);
            return c;
        }, limit);
    }

    @Test
    void theLeastRecentlyUsedIdleModelUnloads() {
        ChatModelLimit two = ChatModelLimit.of(2);
        List<Counted> made = new ArrayList<>();
        var a = model("a", two, made);
        var b = model("b", two, made);
        var c = model("c", two, made);
        try (var lease = a.lease()) {
            assertNotNull(lease.model());
        }
        try (var lease = b.lease()) {
            assertNotNull(lease.model());
        }
        try (var lease = a.lease()) {                                      // a is now more recent than b
            assertNotNull(lease.model());
        }
        assertEquals(2, made.size(), "a loaded once");
        try (var lease = c.lease()) {
            assertNotNull(lease.model());
        }
        assertNull(b.peek(), "b, the least recently used, unloaded");
        assertEquals(1, made.get(1).closed.get());
        assertNotNull(a.peek());
        assertNotNull(c.peek());
        try (var lease = b.lease()) {                                      // b loads again; a goes now
            assertNotNull(lease.model());
        }
        assertEquals(4, made.size());
        assertNull(a.peek());
    }

    @Test
    void aModelInUseStaysAndTheSurplusGoesWhenItIsReleased() {
        ChatModelLimit one = ChatModelLimit.of(1);
        List<Counted> made = new ArrayList<>();
        var a = model("a", one, made);
        var b = model("b", one, made);
        var held = a.lease();
        try (var lease = b.lease()) {
            assertNotNull(a.peek(), "a answers a request: it stays past the limit");
            assertNotNull(lease.model());
        }
        assertNull(b.peek(), "b was idle and past the limit");
        assertNotNull(a.peek());
        held.close();
        held.close();                                                      // closing twice releases once
        assertNotNull(a.peek(), "a alone is within the limit");
        assertEquals(0, made.get(0).closed.get());
    }

    @Test
    void noLimitKeepsEverythingAndBadLimitsAreRefused() {
        List<Counted> made = new ArrayList<>();
        var a = model("a", ChatModelLimit.NONE, made);
        var b = model("b", ChatModelLimit.NONE, made);
        a.lease().close();
        b.lease().close();
        assertNotNull(a.peek());
        assertNotNull(b.peek());
        assertTrue(ChatModelLimit.of(0) == ChatModelLimit.NONE);
        var e = assertThrows(IllegalArgumentException.class, () -> ChatModelLimit.of(-1));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
    }

    @Test
    void aFailedLoadLeavesNothingHeld() {
        ChatModelLimit one = ChatModelLimit.of(1);
        var broken = new LazyModel<Counted>("broken", Path.of("broken"), () -> {
            throw new IllegalStateException("no weights");
        }, one);
        assertThrows(ApiError.class, broken::lease);
        assertTrue(broken.idle());
        List<Counted> made = new ArrayList<>();
        var a = model("a", one, made);
        a.lease().close();
        assertNotNull(a.peek());
    }
}
