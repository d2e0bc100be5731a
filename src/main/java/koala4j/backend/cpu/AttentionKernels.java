package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register-blocked inner loops of {@link Attention}: scores S = Q·Kᵀ for a tile of query rows against one key
 * block, and O = alpha * O + P·V for the same tile. Each is a GEMM-style micro-kernel (4 rows x 4 vectors of
 * accumulators, one broadcast per row per step) and takes and returns only arrays and scalars (see
 * {@link FastExp} for why). Buffers: s holds MR rows of BK scores/probabilities, o holds rows of os output columns.
 */
final class AttentionKernels {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    /** Query rows per micro-tile. */
    static final int MR = 4;
    /** Vectors of keys (scores) or of value columns (output) per micro-tile. */
    static final int NR = 4;
    /** Keys per block: a multiple of NR * L so the score micro-kernel needs no tail. */
    static final int BK = 2 * NR * L;

    private AttentionKernels() {
    }

    /**
     * Scores of MR query rows against one packed key panel [d, BK]: S[r, j] = sum_d q[r, d] * kt[d, j].
     * A 4 x (4 vectors) register tile, like a GEMM micro-kernel: per d step 4 panel loads and 4 broadcasts feed
     * 16 FMAs.
     */
    static void scoresPacked(float[] qb, int qs, int rg, float[] kt, int ktBase, int d, float[] s) {
        int q0 = rg * qs;
        int q1 = q0 + qs;
        int q2 = q1 + qs;
        int q3 = q2 + qs;
        for (int c = 0; c < BK; c += NR * L) {
            FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            int ko = ktBase + c;
            for (int dd = 0; dd < d; dd++, ko += BK) {
                FloatVector k0 = FloatVector.fromArray(F, kt, ko);
                FloatVector k1 = FloatVector.fromArray(F, kt, ko + L);
                FloatVector k2 = FloatVector.fromArray(F, kt, ko + 2 * L);
                FloatVector k3 = FloatVector.fromArray(F, kt, ko + 3 * L);
                FloatVector x = FloatVector.broadcast(F, qb[q0 + dd]);
                a00 = k0.fma(x, a00);
                a01 = k1.fma(x, a01);
                a02 = k2.fma(x, a02);
                a03 = k3.fma(x, a03);
                x = FloatVector.broadcast(F, qb[q1 + dd]);
                a10 = k0.fma(x, a10);
                a11 = k1.fma(x, a11);
                a12 = k2.fma(x, a12);
                a13 = k3.fma(x, a13);
                x = FloatVector.broadcast(F, qb[q2 + dd]);
                a20 = k0.fma(x, a20);
                a21 = k1.fma(x, a21);
                a22 = k2.fma(x, a22);
                a23 = k3.fma(x, a23);
                x = FloatVector.broadcast(F, qb[q3 + dd]);
                a30 = k0.fma(x, a30);
                a31 = k1.fma(x, a31);
                a32 = k2.fma(x, a32);
                a33 = k3.fma(x, a33);
            }
            a00.intoArray(s, c);
            a01.intoArray(s, c + L);
            a02.intoArray(s, c + 2 * L);
            a03.intoArray(s, c + 3 * L);
            a10.intoArray(s, BK + c);
            a11.intoArray(s, BK + c + L);
            a12.intoArray(s, BK + c + 2 * L);
            a13.intoArray(s, BK + c + 3 * L);
            a20.intoArray(s, 2 * BK + c);
            a21.intoArray(s, 2 * BK + c + L);
            a22.intoArray(s, 2 * BK + c + 2 * L);
            a23.intoArray(s, 2 * BK + c + 3 * L);
            a30.intoArray(s, 3 * BK + c);
            a31.intoArray(s, 3 * BK + c + L);
            a32.intoArray(s, 3 * BK + c + 2 * L);
            a33.intoArray(s, 3 * BK + c + 3 * L);
        }
    }

    /**
     * Scores of MR query rows against jn keys read in place (row stride ks), as dot products along d. Used when
     * there are too few rows to pay for packing; each key row is loaded once for all MR rows.
     */
    static void scoresDot(float[] qb, int qs, int rg, float[] k, int kBase, int ks, int jn, int d,
                                  float[] s) {
        int q0 = rg * qs;
        int q1 = q0 + qs;
        int q2 = q1 + qs;
        int q3 = q2 + qs;
        int dFull = d - d % L;
        for (int j = 0; j < jn; j++) {
            int ko = kBase + j * ks;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int dd = 0; dd < dFull; dd += L) {
                FloatVector kv = FloatVector.fromArray(F, k, ko + dd);
                a0 = FloatVector.fromArray(F, qb, q0 + dd).fma(kv, a0);
                a1 = FloatVector.fromArray(F, qb, q1 + dd).fma(kv, a1);
                a2 = FloatVector.fromArray(F, qb, q2 + dd).fma(kv, a2);
                a3 = FloatVector.fromArray(F, qb, q3 + dd).fma(kv, a3);
            }
            if (dFull < d) {
                // Query rows are zero-padded to dPad, so only the key load needs the mask.
                FloatVector kv = FloatVector.fromArray(F, k, ko + dFull, F.indexInRange(dFull, d));
                a0 = FloatVector.fromArray(F, qb, q0 + dFull).fma(kv, a0);
                a1 = FloatVector.fromArray(F, qb, q1 + dFull).fma(kv, a1);
                a2 = FloatVector.fromArray(F, qb, q2 + dFull).fma(kv, a2);
                a3 = FloatVector.fromArray(F, qb, q3 + dFull).fma(kv, a3);
            }
            s[j] = GemmVector.sum(a0);
            s[BK + j] = GemmVector.sum(a1);
            s[2 * BK + j] = GemmVector.sum(a2);
            s[3 * BK + j] = GemmVector.sum(a3);
        }
    }

    /** {@link #scoresDot} for a single query row, written to s[0, jn). */
    static void scoresDot1(float[] qb, int q0, float[] k, int kBase, int ks, int jn, int d, float[] s) {
        int dFull = d - d % L;
        int j = 0;
        // four keys per pass: four independent FMA chains instead of one that waits on each FMA's latency; each
        // key's sum is formed in the same order as below, so the scores are the same
        for (; j + 4 <= jn && dFull == d; j += 4) {
            int ko = kBase + j * ks;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = a0;
            FloatVector a2 = a0;
            FloatVector a3 = a0;
            for (int dd = 0; dd < d; dd += L) {
                FloatVector qv = FloatVector.fromArray(F, qb, q0 + dd);
                a0 = qv.fma(FloatVector.fromArray(F, k, ko + dd), a0);
                a1 = qv.fma(FloatVector.fromArray(F, k, ko + ks + dd), a1);
                a2 = qv.fma(FloatVector.fromArray(F, k, ko + 2 * ks + dd), a2);
                a3 = qv.fma(FloatVector.fromArray(F, k, ko + 3 * ks + dd), a3);
            }
            s[j] = GemmVector.sum(a0);
            s[j + 1] = GemmVector.sum(a1);
            s[j + 2] = GemmVector.sum(a2);
            s[j + 3] = GemmVector.sum(a3);
        }
        for (; j < jn; j++) {
            int ko = kBase + j * ks;
            FloatVector a0 = FloatVector.zero(F);
            for (int dd = 0; dd < dFull; dd += L) {
                a0 = FloatVector.fromArray(F, qb, q0 + dd).fma(FloatVector.fromArray(F, k, ko + dd), a0);
            }
            if (dFull < d) {
                FloatVector kv = FloatVector.fromArray(F, k, ko + dFull, F.indexInRange(dFull, d));
                a0 = FloatVector.fromArray(F, qb, q0 + dFull).fma(kv, a0);
            }
            s[j] = GemmVector.sum(a0);
        }
    }

    /**
     * O[r, :] = alpha[r] * O[r, :] + sum_j P[r, j] * V[j, :] for the MR rows of a tile and keys [0, jn) of the
     * block. V rows are read in place (stride vs), dvPad wide.
     */
    static void accumulate(float[] o, float[] s, float[] alpha, int rg, int os, int jn, float[] v,
                           int vBase, int vs) {
        int c = 0;
        for (; c + NR * L <= os; c += NR * L) {
            accumulate4(o, s, alpha, rg, os, c, jn, v, vBase, vs);
        }
        for (; c < os; c += L) {
            accumulate1(o, s, alpha, rg, os, c, jn, v, vBase, vs);
        }
    }

    static void accumulate4(float[] o, float[] s, float[] alpha, int rg, int os, int c, int jn,
                             float[] v, int vBase, int vs) {
        int o0 = rg * os + c;
        int o1 = o0 + os;
        int o2 = o1 + os;
        int o3 = o2 + os;
        float al0 = alpha[rg];
        float al1 = alpha[rg + 1];
        float al2 = alpha[rg + 2];
        float al3 = alpha[rg + 3];
        FloatVector a00 = FloatVector.fromArray(F, o, o0).mul(al0);
        FloatVector a01 = FloatVector.fromArray(F, o, o0 + L).mul(al0);
        FloatVector a02 = FloatVector.fromArray(F, o, o0 + 2 * L).mul(al0);
        FloatVector a03 = FloatVector.fromArray(F, o, o0 + 3 * L).mul(al0);
        FloatVector a10 = FloatVector.fromArray(F, o, o1).mul(al1);
        FloatVector a11 = FloatVector.fromArray(F, o, o1 + L).mul(al1);
        FloatVector a12 = FloatVector.fromArray(F, o, o1 + 2 * L).mul(al1);
        FloatVector a13 = FloatVector.fromArray(F, o, o1 + 3 * L).mul(al1);
        FloatVector a20 = FloatVector.fromArray(F, o, o2).mul(al2);
        FloatVector a21 = FloatVector.fromArray(F, o, o2 + L).mul(al2);
        FloatVector a22 = FloatVector.fromArray(F, o, o2 + 2 * L).mul(al2);
        FloatVector a23 = FloatVector.fromArray(F, o, o2 + 3 * L).mul(al2);
        FloatVector a30 = FloatVector.fromArray(F, o, o3).mul(al3);
        FloatVector a31 = FloatVector.fromArray(F, o, o3 + L).mul(al3);
        FloatVector a32 = FloatVector.fromArray(F, o, o3 + 2 * L).mul(al3);
        FloatVector a33 = FloatVector.fromArray(F, o, o3 + 3 * L).mul(al3);
        int vo = vBase + c;
        for (int j = 0; j < jn; j++, vo += vs) {
            FloatVector v0 = FloatVector.fromArray(F, v, vo);
            FloatVector v1 = FloatVector.fromArray(F, v, vo + L);
            FloatVector v2 = FloatVector.fromArray(F, v, vo + 2 * L);
            FloatVector v3 = FloatVector.fromArray(F, v, vo + 3 * L);
            FloatVector p = FloatVector.broadcast(F, s[j]);
            a00 = v0.fma(p, a00);
            a01 = v1.fma(p, a01);
            a02 = v2.fma(p, a02);
            a03 = v3.fma(p, a03);
            p = FloatVector.broadcast(F, s[BK + j]);
            a10 = v0.fma(p, a10);
            a11 = v1.fma(p, a11);
            a12 = v2.fma(p, a12);
            a13 = v3.fma(p, a13);
            p = FloatVector.broadcast(F, s[2 * BK + j]);
            a20 = v0.fma(p, a20);
            a21 = v1.fma(p, a21);
            a22 = v2.fma(p, a22);
            a23 = v3.fma(p, a23);
            p = FloatVector.broadcast(F, s[3 * BK + j]);
            a30 = v0.fma(p, a30);
            a31 = v1.fma(p, a31);
            a32 = v2.fma(p, a32);
            a33 = v3.fma(p, a33);
        }
        a00.intoArray(o, o0);
        a01.intoArray(o, o0 + L);
        a02.intoArray(o, o0 + 2 * L);
        a03.intoArray(o, o0 + 3 * L);
        a10.intoArray(o, o1);
        a11.intoArray(o, o1 + L);
        a12.intoArray(o, o1 + 2 * L);
        a13.intoArray(o, o1 + 3 * L);
        a20.intoArray(o, o2);
        a21.intoArray(o, o2 + L);
        a22.intoArray(o, o2 + 2 * L);
        a23.intoArray(o, o2 + 3 * L);
        a30.intoArray(o, o3);
        a31.intoArray(o, o3 + L);
        a32.intoArray(o, o3 + 2 * L);
        a33.intoArray(o, o3 + 3 * L);
    }

    /** One vector of output columns (the dv tail past the last multiple of NR * L). */
    static void accumulate1(float[] o, float[] s, float[] alpha, int rg, int os, int c, int jn,
                             float[] v, int vBase, int vs) {
        int o0 = rg * os + c;
        FloatVector a0 = FloatVector.fromArray(F, o, o0).mul(alpha[rg]);
        FloatVector a1 = FloatVector.fromArray(F, o, o0 + os).mul(alpha[rg + 1]);
        FloatVector a2 = FloatVector.fromArray(F, o, o0 + 2 * os).mul(alpha[rg + 2]);
        FloatVector a3 = FloatVector.fromArray(F, o, o0 + 3 * os).mul(alpha[rg + 3]);
        int vo = vBase + c;
        for (int j = 0; j < jn; j++, vo += vs) {
            FloatVector v0 = FloatVector.fromArray(F, v, vo);
            a0 = v0.fma(FloatVector.broadcast(F, s[j]), a0);
            a1 = v0.fma(FloatVector.broadcast(F, s[BK + j]), a1);
            a2 = v0.fma(FloatVector.broadcast(F, s[2 * BK + j]), a2);
            a3 = v0.fma(FloatVector.broadcast(F, s[3 * BK + j]), a3);
        }
        a0.intoArray(o, o0);
        a1.intoArray(o, o0 + os);
        a2.intoArray(o, o0 + 2 * os);
        a3.intoArray(o, o0 + 3 * os);
    }

    /** {@link #accumulate} for the single row r, whose probabilities are in s[0, jn). */
    static void accumulateRow(float[] o, float[] s, float[] alpha, int r, int os, int jn, float[] v,
                              int vBase, int vs) {
        float al = alpha[r];
        int c = 0;
        for (; c + NR * L <= os; c += NR * L) {
            int o0 = r * os + c;
            FloatVector a0 = FloatVector.fromArray(F, o, o0).mul(al);
            FloatVector a1 = FloatVector.fromArray(F, o, o0 + L).mul(al);
            FloatVector a2 = FloatVector.fromArray(F, o, o0 + 2 * L).mul(al);
            FloatVector a3 = FloatVector.fromArray(F, o, o0 + 3 * L).mul(al);
            int vo = vBase + c;
            for (int j = 0; j < jn; j++, vo += vs) {
                FloatVector p = FloatVector.broadcast(F, s[j]);
                a0 = FloatVector.fromArray(F, v, vo).fma(p, a0);
                a1 = FloatVector.fromArray(F, v, vo + L).fma(p, a1);
                a2 = FloatVector.fromArray(F, v, vo + 2 * L).fma(p, a2);
                a3 = FloatVector.fromArray(F, v, vo + 3 * L).fma(p, a3);
            }
            a0.intoArray(o, o0);
            a1.intoArray(o, o0 + L);
            a2.intoArray(o, o0 + 2 * L);
            a3.intoArray(o, o0 + 3 * L);
        }
        for (; c < os; c += L) {
            int o0 = r * os + c;
            FloatVector a0 = FloatVector.fromArray(F, o, o0).mul(al);
            int vo = vBase + c;
            for (int j = 0; j < jn; j++, vo += vs) {
                a0 = FloatVector.fromArray(F, v, vo).fma(FloatVector.broadcast(F, s[j]), a0);
            }
            a0.intoArray(o, o0);
        }
    }
}
