package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

/**
 * Slot bookkeeping: no slot when all are busy, the least recently used one for a prompt no slot shares anything
 * with, clear() waiting for the busy ones. (The choice by shared prefix is tested through VisionChat, whose
 * conversations fill the caches: VisionChatTest.twoCacheSlotsKeepTwoConversations.)
 */
class PromptCacheSlotsTest {

    private static final float[][] PROMPT = {{1f, 2f}, {3f, 4f}};

    @Test
    void busySlotsAreSkippedAndTheOldestFreeOneIsTaken() {
        PromptCacheSlots slots = new PromptCacheSlots(2);
        PromptCacheSlots.Lease first = slots.acquire(PROMPT, null, 4);
        PromptCacheSlots.Lease second = slots.acquire(PROMPT, null, 4);
        assertEquals(0, first.slot());
        assertEquals(1, second.slot());
        assertNull(slots.acquire(PROMPT, null, 4), "both busy: the reply runs without a cache");
        slots.release(second);
        slots.release(first);
        assertEquals(1, slots.acquire(PROMPT, null, 4).slot(), "released first, so least recently used");
        assertThrows(IllegalArgumentException.class, () -> new PromptCacheSlots(0));
    }

    @Test
    void clearWaitsForTheSlotsInUse() throws InterruptedException {
        PromptCacheSlots slots = new PromptCacheSlots(1);
        PromptCacheSlots.Lease lease = slots.acquire(PROMPT, null, 4);
        CountDownLatch cleared = new CountDownLatch(1);
        Thread clearer = Thread.ofVirtual().start(() -> {
            slots.clear();
            cleared.countDown();
        });
        assertTrue(!cleared.await(100, TimeUnit.MILLISECONDS), "clear() returned while a reply held the slot");
        slots.release(lease);
        assertTrue(cleared.await(10, TimeUnit.SECONDS));
        clearer.join();
        assertEquals(0, slots.acquire(PROMPT, null, 4).cache().length());
    }
}
