package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register-blocked GEMM micro-kernel (BLIS style): an MR x NR tile of C held in 2*MR vector registers, fed by one
 * packed A micro-panel (MR rows, [p][i]) whose entries are broadcast and one packed B micro-panel (NR columns, [p][j])
 * loaded as two vectors per step. The accumulators are plain locals, never an array, so C2 keeps all of them in
 * registers: 24 of the 32 zmm registers for the 12 x 32 AVX-512 shape, 12 of 16 ymm for the 6 x 16 AVX2 shape.
 * Per step of p: 2 vector loads, MR broadcasts and 2*MR FMAs, so the two FMA pipes stay the bottleneck; alone on a
 * Zen 5 core with A and B in cache it sustains about 260 GFLOP/s, i.e. the full 64 flops per cycle at the boost clock.
 */
final class GemmKernel {

    static final int VL = GemmVector.VL;
    /** Rows per micro-tile: 12 where the ISA has 32 vector registers (AVX-512, NEON, SVE), else 6 (AVX2: 16 ymm). */
    static final int MR = VL >= 16 || "aarch64".equals(System.getProperty("os.arch")) ? 12 : 6;
    /** Columns per micro-tile: two vectors. */
    static final int NR = 2 * VL;

    private static final VectorSpecies<Float> F = GemmVector.F;

    private GemmKernel() {
    }

    /**
     * out[oo .. oo + MR*NR) (rows of NR) = (load ? in[io ..] : 0) + A panel (MR x kc at a[ao ..]) . B panel
     * (kc x NR at b[bo ..]). {@code in} and {@code out} may be the same region.
     */
    static void run(float[] a, int ao, float[] b, int bo, int kc, boolean load, float[] in, int io, float[] out, int oo) {
        if (MR == 12) {
            kernel12(a, ao, b, bo, kc, load, in, io, out, oo);
        } else {
            kernel6(a, ao, b, bo, kc, load, in, io, out, oo);
        }
    }

    private static void kernel12(float[] a, int ao, float[] b, int bo, int kc, boolean load,
                                 float[] in, int io, float[] out, int oo) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c0_0 = load ? FloatVector.fromArray(F, in, io + 0 * NR) : z;
        FloatVector c0_1 = load ? FloatVector.fromArray(F, in, io + 0 * NR + VL) : z;
        FloatVector c1_0 = load ? FloatVector.fromArray(F, in, io + 1 * NR) : z;
        FloatVector c1_1 = load ? FloatVector.fromArray(F, in, io + 1 * NR + VL) : z;
        FloatVector c2_0 = load ? FloatVector.fromArray(F, in, io + 2 * NR) : z;
        FloatVector c2_1 = load ? FloatVector.fromArray(F, in, io + 2 * NR + VL) : z;
        FloatVector c3_0 = load ? FloatVector.fromArray(F, in, io + 3 * NR) : z;
        FloatVector c3_1 = load ? FloatVector.fromArray(F, in, io + 3 * NR + VL) : z;
        FloatVector c4_0 = load ? FloatVector.fromArray(F, in, io + 4 * NR) : z;
        FloatVector c4_1 = load ? FloatVector.fromArray(F, in, io + 4 * NR + VL) : z;
        FloatVector c5_0 = load ? FloatVector.fromArray(F, in, io + 5 * NR) : z;
        FloatVector c5_1 = load ? FloatVector.fromArray(F, in, io + 5 * NR + VL) : z;
        FloatVector c6_0 = load ? FloatVector.fromArray(F, in, io + 6 * NR) : z;
        FloatVector c6_1 = load ? FloatVector.fromArray(F, in, io + 6 * NR + VL) : z;
        FloatVector c7_0 = load ? FloatVector.fromArray(F, in, io + 7 * NR) : z;
        FloatVector c7_1 = load ? FloatVector.fromArray(F, in, io + 7 * NR + VL) : z;
        FloatVector c8_0 = load ? FloatVector.fromArray(F, in, io + 8 * NR) : z;
        FloatVector c8_1 = load ? FloatVector.fromArray(F, in, io + 8 * NR + VL) : z;
        FloatVector c9_0 = load ? FloatVector.fromArray(F, in, io + 9 * NR) : z;
        FloatVector c9_1 = load ? FloatVector.fromArray(F, in, io + 9 * NR + VL) : z;
        FloatVector c10_0 = load ? FloatVector.fromArray(F, in, io + 10 * NR) : z;
        FloatVector c10_1 = load ? FloatVector.fromArray(F, in, io + 10 * NR + VL) : z;
        FloatVector c11_0 = load ? FloatVector.fromArray(F, in, io + 11 * NR) : z;
        FloatVector c11_1 = load ? FloatVector.fromArray(F, in, io + 11 * NR + VL) : z;
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * NR;
            int ai = ao + p * 12;
            FloatVector b0 = FloatVector.fromArray(F, b, bi);
            FloatVector b1 = FloatVector.fromArray(F, b, bi + VL);
            FloatVector x;
            x = FloatVector.broadcast(F, a[ai + 0]);
            c0_0 = x.fma(b0, c0_0);
            c0_1 = x.fma(b1, c0_1);
            x = FloatVector.broadcast(F, a[ai + 1]);
            c1_0 = x.fma(b0, c1_0);
            c1_1 = x.fma(b1, c1_1);
            x = FloatVector.broadcast(F, a[ai + 2]);
            c2_0 = x.fma(b0, c2_0);
            c2_1 = x.fma(b1, c2_1);
            x = FloatVector.broadcast(F, a[ai + 3]);
            c3_0 = x.fma(b0, c3_0);
            c3_1 = x.fma(b1, c3_1);
            x = FloatVector.broadcast(F, a[ai + 4]);
            c4_0 = x.fma(b0, c4_0);
            c4_1 = x.fma(b1, c4_1);
            x = FloatVector.broadcast(F, a[ai + 5]);
            c5_0 = x.fma(b0, c5_0);
            c5_1 = x.fma(b1, c5_1);
            x = FloatVector.broadcast(F, a[ai + 6]);
            c6_0 = x.fma(b0, c6_0);
            c6_1 = x.fma(b1, c6_1);
            x = FloatVector.broadcast(F, a[ai + 7]);
            c7_0 = x.fma(b0, c7_0);
            c7_1 = x.fma(b1, c7_1);
            x = FloatVector.broadcast(F, a[ai + 8]);
            c8_0 = x.fma(b0, c8_0);
            c8_1 = x.fma(b1, c8_1);
            x = FloatVector.broadcast(F, a[ai + 9]);
            c9_0 = x.fma(b0, c9_0);
            c9_1 = x.fma(b1, c9_1);
            x = FloatVector.broadcast(F, a[ai + 10]);
            c10_0 = x.fma(b0, c10_0);
            c10_1 = x.fma(b1, c10_1);
            x = FloatVector.broadcast(F, a[ai + 11]);
            c11_0 = x.fma(b0, c11_0);
            c11_1 = x.fma(b1, c11_1);
        }
        c0_0.intoArray(out, oo + 0 * NR);
        c0_1.intoArray(out, oo + 0 * NR + VL);
        c1_0.intoArray(out, oo + 1 * NR);
        c1_1.intoArray(out, oo + 1 * NR + VL);
        c2_0.intoArray(out, oo + 2 * NR);
        c2_1.intoArray(out, oo + 2 * NR + VL);
        c3_0.intoArray(out, oo + 3 * NR);
        c3_1.intoArray(out, oo + 3 * NR + VL);
        c4_0.intoArray(out, oo + 4 * NR);
        c4_1.intoArray(out, oo + 4 * NR + VL);
        c5_0.intoArray(out, oo + 5 * NR);
        c5_1.intoArray(out, oo + 5 * NR + VL);
        c6_0.intoArray(out, oo + 6 * NR);
        c6_1.intoArray(out, oo + 6 * NR + VL);
        c7_0.intoArray(out, oo + 7 * NR);
        c7_1.intoArray(out, oo + 7 * NR + VL);
        c8_0.intoArray(out, oo + 8 * NR);
        c8_1.intoArray(out, oo + 8 * NR + VL);
        c9_0.intoArray(out, oo + 9 * NR);
        c9_1.intoArray(out, oo + 9 * NR + VL);
        c10_0.intoArray(out, oo + 10 * NR);
        c10_1.intoArray(out, oo + 10 * NR + VL);
        c11_0.intoArray(out, oo + 11 * NR);
        c11_1.intoArray(out, oo + 11 * NR + VL);
    }

    private static void kernel6(float[] a, int ao, float[] b, int bo, int kc, boolean load,
                                 float[] in, int io, float[] out, int oo) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c0_0 = load ? FloatVector.fromArray(F, in, io + 0 * NR) : z;
        FloatVector c0_1 = load ? FloatVector.fromArray(F, in, io + 0 * NR + VL) : z;
        FloatVector c1_0 = load ? FloatVector.fromArray(F, in, io + 1 * NR) : z;
        FloatVector c1_1 = load ? FloatVector.fromArray(F, in, io + 1 * NR + VL) : z;
        FloatVector c2_0 = load ? FloatVector.fromArray(F, in, io + 2 * NR) : z;
        FloatVector c2_1 = load ? FloatVector.fromArray(F, in, io + 2 * NR + VL) : z;
        FloatVector c3_0 = load ? FloatVector.fromArray(F, in, io + 3 * NR) : z;
        FloatVector c3_1 = load ? FloatVector.fromArray(F, in, io + 3 * NR + VL) : z;
        FloatVector c4_0 = load ? FloatVector.fromArray(F, in, io + 4 * NR) : z;
        FloatVector c4_1 = load ? FloatVector.fromArray(F, in, io + 4 * NR + VL) : z;
        FloatVector c5_0 = load ? FloatVector.fromArray(F, in, io + 5 * NR) : z;
        FloatVector c5_1 = load ? FloatVector.fromArray(F, in, io + 5 * NR + VL) : z;
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * NR;
            int ai = ao + p * 6;
            FloatVector b0 = FloatVector.fromArray(F, b, bi);
            FloatVector b1 = FloatVector.fromArray(F, b, bi + VL);
            FloatVector x;
            x = FloatVector.broadcast(F, a[ai + 0]);
            c0_0 = x.fma(b0, c0_0);
            c0_1 = x.fma(b1, c0_1);
            x = FloatVector.broadcast(F, a[ai + 1]);
            c1_0 = x.fma(b0, c1_0);
            c1_1 = x.fma(b1, c1_1);
            x = FloatVector.broadcast(F, a[ai + 2]);
            c2_0 = x.fma(b0, c2_0);
            c2_1 = x.fma(b1, c2_1);
            x = FloatVector.broadcast(F, a[ai + 3]);
            c3_0 = x.fma(b0, c3_0);
            c3_1 = x.fma(b1, c3_1);
            x = FloatVector.broadcast(F, a[ai + 4]);
            c4_0 = x.fma(b0, c4_0);
            c4_1 = x.fma(b1, c4_1);
            x = FloatVector.broadcast(F, a[ai + 5]);
            c5_0 = x.fma(b0, c5_0);
            c5_1 = x.fma(b1, c5_1);
        }
        c0_0.intoArray(out, oo + 0 * NR);
        c0_1.intoArray(out, oo + 0 * NR + VL);
        c1_0.intoArray(out, oo + 1 * NR);
        c1_1.intoArray(out, oo + 1 * NR + VL);
        c2_0.intoArray(out, oo + 2 * NR);
        c2_1.intoArray(out, oo + 2 * NR + VL);
        c3_0.intoArray(out, oo + 3 * NR);
        c3_1.intoArray(out, oo + 3 * NR + VL);
        c4_0.intoArray(out, oo + 4 * NR);
        c4_1.intoArray(out, oo + 4 * NR + VL);
        c5_0.intoArray(out, oo + 5 * NR);
        c5_1.intoArray(out, oo + 5 * NR + VL);
    }
}
