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
    private static class Counted implements AutoCloseable {
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

    private static LazyModel<Counted> sized(String id, long bytes, ChatModelLimit limit, List<Counted> made,
                                           List<String> events) {
        return new LazyModel<>(id, Path.of(id), () -> {
            events.add("load " + id);
            Counted c = new Counted() {
                @Override
                public void close() {
                    events.add("close " + id);
                    super.close();
                }
            };
            made.add(c);
            return c;
        }, limit, () -> bytes);
    }

    /**
     * {@code --chat-memory-budget}: before a model loads, least recently used idle ones unload until its estimate
     * fits (unloading comes first, so the budget is never passed by idle models); a busy model stays and one that does
     * not fit beside it loads anyway, the surplus going when it is released; the count limit applies as well.
     */
    @Test
    void aMemoryBudgetUnloadsBeforeLoading() {
        ChatModelLimit ten = ChatModelLimit.of(0, 10);
        List<Counted> made = new ArrayList<>();
        List<String> events = new ArrayList<>();
        var a = sized("a", 6, ten, made, events);
        var b = sized("b", 3, ten, made, events);
        var c = sized("c", 5, ten, made, events);
        a.lease().close();
        b.lease().close();
        assertEquals(List.of("load a", "load b"), events, "6 + 3 fit in 10");
        a.lease().close();                                                 // a is now more recent than b
        c.lease().close();
        assertEquals(List.of("load a", "load b", "close b", "close a", "load c"), events,
                "b, the least recently used, is not room enough for c: a goes too, both before c loads");
        assertNull(a.peek());
        assertNull(b.peek());
        events.clear();
        b.lease().close();
        assertEquals(List.of("load b"), events, "5 + 3 fit");

        events.clear();
        try (var held = b.lease(); var alsoHeld = c.lease()) {
            try (var lease = a.lease()) {                                  // b and c busy: a loads past the budget
                assertNotNull(lease.model());
            }
            assertEquals(List.of("load a", "close a"), events, "a goes as soon as it is released");
            assertNotNull(held.model());
            assertNotNull(alsoHeld.model());
        }
        assertNotNull(b.peek());
        assertNotNull(c.peek());
        assertTrue(ten.describe().contains("--chat-memory-budget 0.00 GB"), ten.describe());

        events.clear();
        ChatModelLimit both = ChatModelLimit.of(1, 100);
        var d = sized("d", 1, both, made, events);
        var e = sized("e", 1, both, made, events);
        d.lease().close();
        e.lease().close();
        assertEquals(List.of("load d", "close d", "load e"), events, "one model at a time, whatever its size");
        assertThrows(IllegalArgumentException.class, () -> ChatModelLimit.of(0, -1));
        assertTrue(ChatModelLimit.of(0, 0) == ChatModelLimit.NONE);
    }
}
