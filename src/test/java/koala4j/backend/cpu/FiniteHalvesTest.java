package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import org.junit.jupiter.api.Test;

import koala4j.backend.cpu.Gemm.Epilogue;
import koala4j.backend.cpu.Gemm.MatrixRef;
import koala4j.tensor.DType;

/**
 * Which F16 weights skip the kernels' Inf/NaN check: read-only native memory without an Inf or NaN (found by one
 * scan, on all threads, vector body and scalar tail); never writable or heap memory, whose contents can change. The
 * unchecked kernels give the checked kernels' bits.
 */
class FiniteHalvesTest {

    private static MemorySegment halves(Arena arena, float[] values) {
        MemorySegment seg = arena.allocate(values.length * 2L, 64);
        for (int i = 0; i < values.length; i++) {
            seg.setAtIndex(FloatSource.I16_LE, i, DType.f32ToF16(values[i]));
        }
        return seg;
    }

    @Test
    void onlyReadOnlyNativeFiniteHalvesAreKnown() {
        try (Arena arena = Arena.ofShared()) {
            float[] v = GemmTest.random(new Random(3), (3 << 20) + 7);   // several scanning slices and a tail
            MemorySegment seg = halves(arena, v);
            assertFalse(FiniteHalves.known(seg), "writable");
            assertTrue(FiniteHalves.known(seg.asReadOnly()));
            assertTrue(FiniteHalves.known(seg.asReadOnly()), "again, remembered");
            assertFalse(FiniteHalves.known(MemorySegment.ofArray(new short[64]).asReadOnly()), "heap");
            for (int at : new int[] {0, 1 << 20, (3 << 20) + 6}) {          // first, a slice boundary, the tail
                for (float special : new float[] {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN}) {
                    MemorySegment copy = arena.allocate(seg.byteSize(), 64).copyFrom(seg);
                    copy.setAtIndex(FloatSource.I16_LE, at, DType.f32ToF16(special));
                    assertFalse(FiniteHalves.known(copy.asReadOnly()), special + " at " + at);
                }
            }
            // the largest finite half (65504) is finite
            MemorySegment big = halves(arena, new float[] {65504f, -65504f, 1f});
            assertTrue(FiniteHalves.known(big.asReadOnly()));
        }
    }

    /** One row and four rows against read-only F16 weights: the unchecked kernels give the checked kernels' bits. */
    @Test
    void uncheckedKernelsGiveTheCheckedBits() {
        Random rnd = new Random(5);
        int n = 37;
        int k = 320;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment w = halves(arena, GemmTest.random(rnd, n * k));
            for (int m : new int[] {1, 4, 13}) {
                float[] x = GemmTest.random(rnd, m * k);
                float[][] c = new float[2][m * n];
                MemorySegment[] storages = {w, w.asReadOnly()};
                for (int v = 0; v < 2; v++) {
                    MatrixRef b = new MatrixRef(FloatSource.of(storages[v], DType.F16), 0, k, true, 0);
                    Gemm.gemm(1, m, n, k, MatrixRef.rowMajor(x, 0, k), b, c[v], 0, n, 0, Epilogue.NONE);
                }
                assertArrayEquals(c[0], c[1], "m=" + m);
                assertEquals(m * n, c[1].length);
            }
        }
    }
}
