package koala4j.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.util.Collections;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Read-only native F16 regions (weights mmap'ed from a checkpoint) known to hold no Inf or NaN, so that the F16
 * kernels can leave out their per-vector check for them (the in-register conversion does not turn an F16 Inf or NaN
 * into one; 8 layers of the 7B's products from DRAM: one row 34.5 -> 37.8 and 40.5 -> 41.8 GB/s median without the
 * check, four rows 30.1 -> 31.6, eight 21.5 -> 23.3). A region is read
 * once, on its first use, and remembered by its memory session (held weakly: a closed and collected mapping takes
 * its entries with it, and a later mapping at the same address belongs to another session) and its address and
 * size. Writable or heap memory is never remembered, since its contents can change. Thread-safe.
 */
final class FiniteHalves {

    private record Region(long address, long bytes) {
    }

    private static final Map<MemorySegment.Scope, Set<Region>> KNOWN =
            Collections.synchronizedMap(new WeakHashMap<>());
    /** Elements per scanning task. */
    private static final int SLICE = 1 << 20;

    private FiniteHalves() {
    }

    /** True when {@code seg} (F16 bits) is read-only native memory that holds no Inf or NaN. */
    static boolean known(MemorySegment seg) {
        if (!seg.isNative() || !seg.isReadOnly()) {
            return false;
        }
        Region region = new Region(seg.address(), seg.byteSize());
        Set<Region> regions = KNOWN.get(seg.scope());
        if (regions != null) {
            synchronized (regions) {
                if (regions.contains(region)) {
                    return true;
                }
            }
        }
        if (!finite(seg)) {
            return false;
        }
        Set<Region> set = KNOWN.computeIfAbsent(seg.scope(), s -> new HashSet<>());
        synchronized (set) {
            set.add(region);
        }
        return true;
    }

    /** No F16 value of {@code seg} has its exponent field all ones (Inf or NaN); read on all threads. */
    static boolean finite(MemorySegment seg) {
        long n = seg.byteSize() / 2;
        int slices = (int) Math.max(1, Math.ceilDiv(n, SLICE));
        AtomicBoolean special = new AtomicBoolean();
        Parallel.forRange(slices, 1, (from, to) -> {
            long start = from * (long) SLICE;
            long end = Math.min(n, to * (long) SLICE);
            if (!special.get() && !finite(seg, start, end)) {
                special.set(true);
            }
        });
        return !special.get();
    }

    private static boolean finite(MemorySegment seg, long from, long to) {
        int lanes = GemmVector.H.length();
        ShortVector exponents = ShortVector.zero(GemmVector.H);
        long p = from;
        for (; p + lanes <= to; p += lanes) {
            exponents = exponents.max(ShortVector.fromMemorySegment(GemmVector.H, seg, p * 2,
                    java.nio.ByteOrder.LITTLE_ENDIAN).and((short) 0x7C00));
        }
        boolean ok = exponents.reduceLanes(VectorOperators.MAX) != 0x7C00;
        for (; p < to && ok; p++) {
            ok = (seg.getAtIndex(FloatSource.I16_LE, p) & 0x7C00) != 0x7C00;
        }
        return ok;
    }
}
