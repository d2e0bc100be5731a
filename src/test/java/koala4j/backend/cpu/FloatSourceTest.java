package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import koala4j.tensor.DType;

/** The vectorised bulk read of F16/BF16/F32 regions against element-wise get (its scalar twin): exact. */
class FloatSourceTest {

    @Test
    void bulkReadEqualsElementReads() {
        SplittableRandom rnd = new SplittableRandom(5);
        for (DType dtype : new DType[] {DType.F16, DType.BF16, DType.F32}) {
            int n = 1003;
            MemorySegment seg = Arena.ofAuto().allocate((long) n * dtype.byteSize());
            for (int i = 0; i < n; i++) {
                float v = (float) (rnd.nextGaussian() * 100);
                if (dtype == DType.F32) {
                    seg.setAtIndex(FloatSource.F32_LE, i, v);
                } else {
                    seg.setAtIndex(FloatSource.I16_LE, i, dtype == DType.F16 ? DType.f32ToF16(v) : DType.f32ToBf16(v));
                }
            }
            FloatSource src = FloatSource.of(seg, dtype);
            for (int[] fromLen : new int[][] {{0, n}, {1, 17}, {4, 999}, {980, 23}, {5, 0}, {3, 16}}) {
                float[] out = new float[fromLen[1] + 2];
                src.read(fromLen[0], out, 1, fromLen[1]);
                for (int i = 0; i < fromLen[1]; i++) {
                    assertEquals(src.get(fromLen[0] + i), out[1 + i], dtype + " at " + (fromLen[0] + i));
                }
                assertEquals(0f, out[0]);
                assertEquals(0f, out[out.length - 1]);
            }
        }
    }
}
