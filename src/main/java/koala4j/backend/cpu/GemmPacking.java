package koala4j.backend.cpu;

import static koala4j.backend.cpu.GemmKernel.MR;
import static koala4j.backend.cpu.GemmKernel.NR;
import static koala4j.backend.cpu.GemmVector.VL;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Packing of GEMM operands into the contiguous panels the micro-kernel reads (BLIS's "pack A" / "pack B"). F16 and
 * BF16 sources are converted here, one cache-sized block at a time, so a half-precision weight never exists as a
 * full F32 copy.
 */
final class GemmPacking {

    private GemmPacking() {
    }

    /** Supplies micro-panels of op(A). */
    abstract static class APanels {
        /**
         * Packs rows [i0, i0 + mr) x columns [p0, p0 + kc) of op(A[b]) into {@code dst[0 .. MR*kc)} as [p][i]
         * (MR floats per step of p); rows mr .. MR-1 are zero.
         */
        abstract void pack(int b, int i0, int mr, int p0, int kc, float[] dst);
    }

    /** Supplies blocks of op(B), cut into NR-column micro-panels. */
    abstract static class BPanels {
        /**
         * Packs rows [p0, p0 + kc) x columns [j0, j0 + nc) of op(B[b]) into {@code dst} as ceil(nc/NR) panels, panel q
         * at {@code q*kc*NR} holding [p][j] (NR floats per step of p); columns past nc are zero.
         */
        abstract void pack(int b, int p0, int kc, int j0, int nc, float[] dst);
    }

    /** Where batch b of an operand starts: batches repeat every {@code period} (0: never), as conv groups do. */
    static long batchOffset(long offset, long batchStride, int period, int b) {
        return offset + (period > 0 ? b % period : b) * batchStride;
    }

    /** op(A) from a {@link Gemm.MatrixRef}. */
    static final class RefA extends APanels {
        private final FloatSource src;
        private final GemmVector.Kind kind;
        private final float[] arr;
        private final MemorySegment seg;
        private final long offset;
        private final long ld;
        private final boolean transposed;
        private final long batchStride;
        private final int period;

        RefA(Gemm.MatrixRef ref, int period) {
            this.src = ref.data();
            this.kind = GemmVector.kindOf(src);
            this.arr = src.array();
            this.seg = GemmVector.segmentOf(src);
            this.offset = ref.offset();
            this.ld = ref.ld();
            this.transposed = ref.transposed();
            this.batchStride = ref.batchStride();
            this.period = period;
        }

        @Override
        void pack(int b, int i0, int mr, int p0, int kc, float[] dst) {
            long base = batchOffset(offset, batchStride, period, b);
            if (mr < MR) {
                Arrays.fill(dst, 0, MR * kc, 0f);
            }
            if (!transposed && arr != null && mr == 12 && MR == 12) {
                packTwelveRows(arr, (int) (base + i0 * ld + p0), (int) ld, kc, dst);
            } else if (!transposed) {
                // element (i, p) at base + i*ld + p: each row is contiguous, so read it once and spread it out
                float[] row = kind == GemmVector.Kind.ARRAY ? arr : GemmWorkspace.get().row(kc);
                for (int i = 0; i < mr; i++) {
                    long at = base + (i0 + i) * ld + p0;
                    int from;
                    if (row == arr) {
                        from = (int) at;
                    } else {
                        src.read(at, row, 0, kc);
                        from = 0;
                    }
                    for (int p = 0, d = i; p < kc; p++, d += MR) {
                        dst[d] = row[from + p];
                    }
                }
            } else {
                // element (i, p) at base + p*ld + i: MR consecutive floats per step of p
                for (int p = 0; p < kc; p++) {
                    long at = base + (p0 + p) * ld + i0;
                    int d = p * MR;
                    if (arr != null) {
                        int from = (int) at;
                        for (int i = 0; i < mr; i++) {
                            dst[d + i] = arr[from + i];
                        }
                    } else {
                        for (int i = 0; i < mr; i++) {
                            dst[d + i] = GemmVector.get(kind, null, seg, at + i);
                        }
                    }
                }
            }
        }
    }

    /**
     * Twelve rows at once, step by step along p: twelve independent cache-line streams in flight give the memory
     * system enough parallelism when a large weight (the 59 MB of a 1280-channel 3x3 conv) comes from DRAM; row by
     * row it was about 1.5x slower there.
     */
    private static void packTwelveRows(float[] a, int at, int ld, int kc, float[] dst) {
        for (int p = 0, d = 0; p < kc; p++, d += 12, at++) {
            dst[d] = a[at];
            dst[d + 1] = a[at + ld];
            dst[d + 2] = a[at + 2 * ld];
            dst[d + 3] = a[at + 3 * ld];
            dst[d + 4] = a[at + 4 * ld];
            dst[d + 5] = a[at + 5 * ld];
            dst[d + 6] = a[at + 6 * ld];
            dst[d + 7] = a[at + 7 * ld];
            dst[d + 8] = a[at + 8 * ld];
            dst[d + 9] = a[at + 9 * ld];
            dst[d + 10] = a[at + 10 * ld];
            dst[d + 11] = a[at + 11 * ld];
        }
    }

    /** op(B) from a {@link Gemm.MatrixRef}. */
    static final class RefB extends BPanels {
        private final GemmVector.Kind kind;
        private final float[] arr;
        private final MemorySegment seg;
        private final long offset;
        private final long ld;
        private final boolean transposed;
        private final long batchStride;
        private final int period;

        RefB(Gemm.MatrixRef ref, int period) {
            this.kind = GemmVector.kindOf(ref.data());
            this.arr = ref.data().array();
            this.seg = GemmVector.segmentOf(ref.data());
            this.offset = ref.offset();
            this.ld = ref.ld();
            this.transposed = ref.transposed();
            this.batchStride = ref.batchStride();
            this.period = period;
        }

        @Override
        void pack(int b, int p0, int kc, int j0, int nc, float[] dst) {
            long base = batchOffset(offset, batchStride, period, b);
            for (int q = 0; q * NR < nc; q++) {
                int jq = j0 + q * NR;
                int w = Math.min(NR, nc - q * NR);
                int d0 = q * kc * NR;
                if (!transposed) {
                    packRows(base + (long) p0 * ld + jq, kc, w, dst, d0);
                } else {
                    packColumns(base + (long) jq * ld + p0, kc, w, dst, d0);
                }
            }
        }

        /** Element (p, j) at at + p*ld + j: each step of p is one contiguous run of w floats. */
        private void packRows(long at, int kc, int w, float[] dst, int d0) {
            for (int p = 0; p < kc; p++, at += ld) {
                int d = d0 + p * NR;
                if (w == NR) {
                    GemmVector.load(kind, arr, seg, at).intoArray(dst, d);
                    GemmVector.load(kind, arr, seg, at + VL).intoArray(dst, d + VL);
                } else {
                    for (int j = 0; j < w; j++) {
                        dst[d + j] = GemmVector.get(kind, arr, seg, at + j);
                    }
                    Arrays.fill(dst, d + w, d + NR, 0f);
                }
            }
        }

        /** Element (p, j) at at + j*ld + p: each column is contiguous in p and lands with stride NR. */
        private void packColumns(long at, int kc, int w, float[] dst, int d0) {
            float[] col = kind == GemmVector.Kind.ARRAY ? arr : GemmWorkspace.get().row(kc);
            for (int j = 0; j < w; j++, at += ld) {
                int from;
                if (col == arr) {
                    from = (int) at;
                } else {
                    readConverted(at, kc, col);
                    from = 0;
                }
                for (int p = 0, d = d0 + j; p < kc; p++, d += NR) {
                    dst[d] = col[from + p];
                }
            }
            if (w < NR) {
                for (int p = 0; p < kc; p++) {
                    Arrays.fill(dst, d0 + p * NR + w, d0 + p * NR + NR, 0f);
                }
            }
        }

        private void readConverted(long at, int len, float[] out) {
            int p = 0;
            for (; p <= len - VL; p += VL) {
                GemmVector.load(kind, arr, seg, at + p).intoArray(out, p);
            }
            for (; p < len; p++) {
                out[p] = GemmVector.get(kind, arr, seg, at + p);
            }
        }
    }
}
