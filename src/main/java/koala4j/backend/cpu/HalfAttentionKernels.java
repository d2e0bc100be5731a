package koala4j.backend.cpu;

import static koala4j.backend.cpu.AttentionKernels.F;
import static koala4j.backend.cpu.AttentionKernels.L;
import static koala4j.backend.cpu.AttentionKernels.NR;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link AttentionKernels#scoresDot1} and {@link AttentionKernels#accumulateRow} (one query row, decoding) reading
 * F16 keys and values in place. An F16 value's bits, sign-extended to 32 and shifted left by 13 and masked, are the
 * float whose value is the F16 value times 2^-112 (exact, subnormals included); the other operand carries the 2^112
 * instead (the scaled query, the probability times 2^112), so each product is the same real number as with the
 * float values and every FMA rounds the same: results equal the float kernels' on the F16 values, in the same
 * order, up to the order inside the final lane sums (which the Vector API leaves to the implementation). Inf and NaN would come out finite, so a block holding one is reported (false) and the caller
 * computes that block from exactly converted floats instead. As the F16 matrix-vector kernel in {@link Gemv} does.
 */
final class HalfAttentionKernels {

    static final float SCALE = 0x1p112f;
    /** Below this the query times 2^112 stays finite (2^15 * 2^112 < Float.MAX_VALUE). */
    static final float SCALABLE = 0x1p15f;
    private static final VectorSpecies<Short> H = GemmVector.H;
    private static final VectorSpecies<Integer> I = GemmVector.I;
    /** The F16 exponent field after {@link #bits}; all ones means Inf or NaN. */
    private static final int EXPONENT = 0x0F800000;
    /** Keeps the sign (bit 31) and the F16 exponent and mantissa (bits 27..13) of {@link #bits}. */
    private static final int SIGN_EXPONENT_MANTISSA = 0x8FFFE000;

    private HalfAttentionKernels() {
    }

    /** Whether the F16 path applies: whole vectors per row and F16 lanes of half the float width. */
    static boolean applies(int d, int dv) {
        return d % L == 0 && dv % (NR * L) == 0 && H.length() == L && I.length() == L;
    }

    /**
     * s[j] = q · k[j] for keys [0, jn) from element kBase (row stride ks); {@code qs} is the query times 2^112 from
     * qs0, d a multiple of L. False when a key of the block is Inf or NaN (s is then garbage).
     */
    static boolean scoresDot1(float[] qs, int qs0, short[] k, int kBase, int ks, int jn, int d, float[] s) {
        IntVector exponents = IntVector.zero(I);
        int j = 0;
        for (; j + 4 <= jn; j += 4) {
            int ko = kBase + j * ks;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = a0;
            FloatVector a2 = a0;
            FloatVector a3 = a0;
            for (int dd = 0; dd < d; dd += L) {
                FloatVector qv = FloatVector.fromArray(F, qs, qs0 + dd);
                IntVector h0 = bits(k, ko + dd);
                IntVector h1 = bits(k, ko + ks + dd);
                IntVector h2 = bits(k, ko + 2 * ks + dd);
                IntVector h3 = bits(k, ko + 3 * ks + dd);
                exponents = exponents.max(h0.and(EXPONENT)).max(h1.and(EXPONENT)).max(h2.and(EXPONENT))
                        .max(h3.and(EXPONENT));
                a0 = qv.fma(value(h0), a0);
                a1 = qv.fma(value(h1), a1);
                a2 = qv.fma(value(h2), a2);
                a3 = qv.fma(value(h3), a3);
            }
            s[j] = GemmVector.sum(a0);
            s[j + 1] = GemmVector.sum(a1);
            s[j + 2] = GemmVector.sum(a2);
            s[j + 3] = GemmVector.sum(a3);
        }
        for (; j < jn; j++) {
            int ko = kBase + j * ks;
            FloatVector a0 = FloatVector.zero(F);
            for (int dd = 0; dd < d; dd += L) {
                IntVector h0 = bits(k, ko + dd);
                exponents = exponents.max(h0.and(EXPONENT));
                a0 = FloatVector.fromArray(F, qs, qs0 + dd).fma(value(h0), a0);
            }
            s[j] = GemmVector.sum(a0);
        }
        return exponents.reduceLanes(VectorOperators.MAX) != EXPONENT;
    }

    /**
     * O[r, :] = alpha[r] * O[r, :] + sum_j P[r, j] * V[j, :] over keys [0, jn), V in F16 from vBase (row stride vs),
     * os a multiple of NR * L. False when a value of the block is Inf or NaN; O's row is then as it was before the
     * call (saved in {@code keep}, os floats).
     */
    static boolean accumulateRow(float[] o, float[] s, float[] alpha, int r, int os, int jn, short[] v, int vBase,
                                 int vs, float[] keep) {
        System.arraycopy(o, r * os, keep, 0, os);
        float al = alpha[r];
        IntVector exponents = IntVector.zero(I);
        for (int c = 0; c < os; c += NR * L) {
            int o0 = r * os + c;
            FloatVector a0 = FloatVector.fromArray(F, o, o0).mul(al);
            FloatVector a1 = FloatVector.fromArray(F, o, o0 + L).mul(al);
            FloatVector a2 = FloatVector.fromArray(F, o, o0 + 2 * L).mul(al);
            FloatVector a3 = FloatVector.fromArray(F, o, o0 + 3 * L).mul(al);
            int vo = vBase + c;
            for (int j = 0; j < jn; j++, vo += vs) {
                FloatVector p = FloatVector.broadcast(F, s[j] * SCALE);
                IntVector h0 = bits(v, vo);
                IntVector h1 = bits(v, vo + L);
                IntVector h2 = bits(v, vo + 2 * L);
                IntVector h3 = bits(v, vo + 3 * L);
                exponents = exponents.max(h0.and(EXPONENT)).max(h1.and(EXPONENT)).max(h2.and(EXPONENT))
                        .max(h3.and(EXPONENT));
                a0 = value(h0).fma(p, a0);
                a1 = value(h1).fma(p, a1);
                a2 = value(h2).fma(p, a2);
                a3 = value(h3).fma(p, a3);
            }
            a0.intoArray(o, o0);
            a1.intoArray(o, o0 + L);
            a2.intoArray(o, o0 + 2 * L);
            a3.intoArray(o, o0 + 3 * L);
        }
        if (exponents.reduceLanes(VectorOperators.MAX) == EXPONENT) {
            System.arraycopy(keep, 0, o, r * os, os);
            return false;
        }
        return true;
    }

    /** L F16 values from element {@code at}, sign-extended and shifted left by 13: sign in bit 31, copies in 30..28. */
    private static IntVector bits(short[] h, int at) {
        return ((IntVector) ShortVector.fromArray(H, h, at).convertShape(VectorOperators.S2I, I, 0))
                .lanewise(VectorOperators.LSHL, 13);
    }

    /** The float of {@link #bits}: the F16 value times 2^-112. */
    private static FloatVector value(IntVector bits) {
        return bits.and(SIGN_EXPONENT_MANTISSA).reinterpretAsFloats();
    }
}
