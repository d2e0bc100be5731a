package koala4j.backend.cpu;

import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Scaled-dot-product attention with the semantics of {@code torch.nn.functional.scaled_dot_product_attention},
 * computed the FlashAttention-2 way (Dao, 2023): the N x N score matrix is never held. Each task takes a block of
 * query rows, streams the keys in blocks, keeps a running row maximum and row sum (online softmax, rescaling the
 * output accumulator when the maximum grows; lazily, only past a margin of 2^8) and divides once at the end.
 *
 * <p>Work is split over (batch, kv head, query-row block) with {@link Parallel}. Rows of all query heads that share
 * a kv head (grouped-query attention) are stacked into one row space, so a decode step of a GQA model still gets
 * several rows per key pass. Scores are formed by a register-blocked micro-kernel (4 rows x 4 vectors of keys) over
 * a key panel packed transposed once per call, and P·V by the same shape of kernel over value rows read in place;
 * with fewer than {@value #MIN_PACKED_ROWS} rows per kv head (decode) packing would cost more than it saves, so
 * scores come from direct dot products instead.
 *
 * <p>The softmax runs in base 2: {@code scale * log2(e)} is folded into the packed queries (and {@code log2(e)} into
 * the mask), so each probability costs one polynomial {@link FastExp#exp2InPlace} step and no extra multiply.
 *
 * <p>Thread-safe: all scratch is per worker thread; the packed key panel is per call.
 */
public final class Attention {

    private static final VectorSpecies<Float> F = AttentionKernels.F;
    private static final int L = AttentionKernels.L;
    private static final int MR = AttentionKernels.MR;
    /** Query rows per task: the packed key panel and value block are reused this many times from cache. */
    private static final int BQ = 64;
    private static final int BK = AttentionKernels.BK;
    /** Below this many rows per kv head, dot products beat packing the key panel. */
    static final int MIN_PACKED_ROWS = 16;
    /** Base-2 headroom before the running maximum is moved: probabilities stay below 2^8. */
    private static final float RESCALE_SLACK = 8f;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float NEG_INF = Float.NEGATIVE_INFINITY;

    private static final ThreadLocal<Work> WORK = ThreadLocal.withInitial(Work::new);

    private Attention() {
    }

    /**
     * One [B, H, N, D] operand in a float[]: element (b, h, i, d) at
     * {@code offset + b*strideB + h*strideH + i*strideN + d} (last dim contiguous).
     */
    public record Operand(float[] data, int offset, long strideB, long strideH, long strideN) implements Layout {
        @Override
        public int length() {
            return data == null ? -1 : data.length;
        }
    }

    /** An operand laid out as {@link Operand} whose elements are F16 bit patterns (a half-precision KV cache). */
    public record HalfOperand(short[] data, int offset, long strideB, long strideH, long strideN) implements Compact {
        @Override
        public int length() {
            return data == null ? -1 : data.length;
        }

        @Override
        public void values(long from, int n, float[] dst, int dstOff) {
            halfToFloat(data, Math.toIntExact(from), dst, dstOff, n);
        }
    }

    /**
     * An operand laid out as {@link Operand} (element indices) over Q8_0 storage (an 8-bit KV cache, llama.cpp's
     * q8_0 cache type): each run of 32 elements along the flattened order shares one scale.
     */
    public record Q8Operand(koala4j.tensor.quant.Q8Storage data, int offset, long strideB, long strideH, long strideN)
            implements Compact {
        @Override
        public int length() {
            return data == null ? -1 : (int) Math.min(data.size(), Integer.MAX_VALUE);
        }

        @Override
        public void values(long from, int n, float[] dst, int dstOff) {
            Q8Gemm.dequantize(data, from, n, dst, dstOff);
        }
    }

    /**
     * An operand laid out as {@link Operand} (element indices) over Q4_0 storage (a 4-bit KV cache, llama.cpp's q4_0
     * cache type): each run of 32 elements along the flattened order shares one scale.
     */
    public record Q4Operand(koala4j.tensor.quant.Q4Storage data, int offset, long strideB, long strideH, long strideN)
            implements Compact {
        @Override
        public int length() {
            return data == null ? -1 : (int) Math.min(data.size(), Integer.MAX_VALUE);
        }

        @Override
        public void values(long from, int n, float[] dst, int dstOff) {
            Q4Gemm.dequantize(data, from, n, dst, dstOff);
        }
    }

    /** Keys or values stored narrower than float, turned into floats a block of rows at a time. */
    sealed interface Compact extends Layout permits HalfOperand, Q8Operand, Q4Operand {
        /** Elements [from, from + n) of the storage as floats into dst from dstOff. */
        void values(long from, int n, float[] dst, int dstOff);

        /**
         * Rows [j0, j0+jn) of head kvh of batch bi as floats, {@code width} values per row at a row stride of
         * {@code stride} in dst, zero from width to stride.
         */
        default void rows(int bi, int kvh, int j0, int jn, int width, float[] dst, int dstOff, int stride) {
            long row = offset() + bi * strideB() + kvh * strideH() + j0 * strideN();
            if (strideN() == width && stride == width) {
                values(row, jn * width, dst, dstOff);        // one run: a KV cache head's rows are adjacent
                return;
            }
            for (int jj = 0; jj < jn; jj++, row += strideN()) {
                int at = dstOff + jj * stride;
                values(row, width, dst, at);
                Arrays.fill(dst, at + width, at + stride, 0f);
            }
        }
    }

    /** What the range checks read of an operand or mask: its array's length (-1 when missing) and its strides. */
    interface Layout {
        int length();

        int offset();

        long strideB();

        long strideH();

        long strideN();
    }

    /**
     * Optional additive mask, broadcast like torch: value added to score (b, h, i, j) at
     * {@code offset + b*strideB + h*strideH + i*strideN + j} (strides may be 0); -infinity hides a key.
     */
    public record Mask(float[] data, int offset, long strideB, long strideH, long strideN) implements Layout {
        @Override
        public int length() {
            return data == null ? -1 : data.length;
        }
    }

    /**
     * {@code torch.nn.functional.scaled_dot_product_attention} semantics:
     * {@code out = softmax(q·kᵀ*scale + mask [+ causal]) · v}.
     *
     * <p>q [b, heads, nq, d], k [b, kvHeads, nk, d], v [b, kvHeads, nk, dv]; {@code heads % kvHeads == 0} and query
     * head h reads kv head {@code h / (heads/kvHeads)} (grouped-query attention, as torch's {@code enable_gqa=True}).
     * causal: query i sees key j iff {@code j <= i + (nk - nq)} (bottom-right aligned, as a KV cache needs; equals
     * torch's {@code is_causal} when nq == nk). out [b, heads, nq, dv] contiguous at outOffset.
     *
     * <p>A query row whose keys are all masked gives 0 here; torch gives NaN there (softmax of an all -inf row).
     * Probabilities below 2^-126 relative to the row maximum are flushed to 0.
     */
    public static void attention(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                                 Operand q, Operand k, Operand v, Mask mask, boolean causal, float scale,
                                 float[] out, int outOffset) {
        checkShapes(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, out, outOffset);
        if (b == 0 || heads == 0 || nq == 0) {
            return;
        }
        boolean packed = packed(heads, kvHeads, nq);
        int nkb = (nk + BK - 1) / BK;
        float[] kt = packed ? packKeys(b, kvHeads, nk, d, nkb, k) : null;   // [b, kvHeads, nkb, d, BK]
        Operand vv = dv % L == 0 ? v : packValues(b, kvHeads, nk, dv, roundUp(dv, L), v); // rows padded to dvPad
        run(b, heads, kvHeads, nq, nk, d, dv, q, k, vv, null, null, mask, causal, scale, out, outOffset, kt);
    }

    /**
     * {@link #attention} with keys and values in F16, as a half-precision KV cache holds them: same semantics, with
     * each key and value the float value of its F16 bits. Decoding (fewer than {@value #MIN_PACKED_ROWS} query rows
     * per kv head) reads the cache once at two bytes per element: a lone query row reads the F16 bits in place
     * ({@link HalfAttentionKernels}), other tiles (and blocks holding an Inf or NaN) turn a block of keys and values
     * into floats in per-thread scratch when they reach it. Longer queries convert K and V to float first (once per
     * call, shared by every query block) and take the packed path.
     */
    public static void attention(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                                 Operand q, HalfOperand k, HalfOperand v, Mask mask, boolean causal, float scale,
                                 float[] out, int outOffset) {
        compact(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, causal, scale, out, outOffset);
    }

    /**
     * {@link #attention} with keys and values in Q8_0: same semantics, each key and value its scale times its
     * quant. Decoding turns a block of keys and values into floats in per-thread scratch when a tile reaches it
     * (reading 34 bytes per 32 elements); longer queries convert K and V to float once per call.
     */
    public static void attention(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                                 Operand q, Q8Operand k, Q8Operand v, Mask mask, boolean causal, float scale,
                                 float[] out, int outOffset) {
        compact(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, causal, scale, out, outOffset);
    }

    /** {@link #attention} with keys and values in Q4_0 (18 bytes per 32 elements); otherwise as with Q8_0. */
    public static void attention(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                                 Operand q, Q4Operand k, Q4Operand v, Mask mask, boolean causal, float scale,
                                 float[] out, int outOffset) {
        compact(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, causal, scale, out, outOffset);
    }

    private static void compact(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                                Operand q, Compact k, Compact v, Mask mask, boolean causal, float scale,
                                float[] out, int outOffset) {
        checkShapes(b, heads, kvHeads, nq, nk, d, dv, q, k, v, mask, out, outOffset);
        if (b == 0 || heads == 0 || nq == 0) {
            return;
        }
        if (packed(heads, kvHeads, nq)) {
            attention(b, heads, kvHeads, nq, nk, d, dv, q, widen(b, kvHeads, nk, d, k), widen(b, kvHeads, nk, dv, v),
                    mask, causal, scale, out, outOffset);
            return;
        }
        run(b, heads, kvHeads, nq, nk, d, dv, q, null, null, k, v, mask, causal, scale, out, outOffset, null);
    }

    /** Whether the query rows that share a kv head are enough to pay for packing the keys. */
    private static boolean packed(int heads, int kvHeads, int nq) {
        return heads / kvHeads * nq >= MIN_PACKED_ROWS;
    }

    /** Keys and values come from k and v (float, read in place; keys packed in kt when it is not null) or kh and vh. */
    private static void run(int b, int heads, int kvHeads, int nq, int nk, int d, int dv, Operand q, Operand k,
                            Operand v, Compact kh, Compact vh, Mask mask, boolean causal, float scale,
                            float[] out, int outOffset, float[] kt) {
        int group = heads / kvHeads;
        int rowsPerKv = group * nq;                       // query rows of all heads that share one kv head
        int nkb = (nk + BK - 1) / BK;
        var job = new Job(heads, kvHeads, group, nq, nk, d, roundUp(d, L), dv, roundUp(dv, L), q, k, v, kh, vh,
                mask, causal, scale * LOG2E, out, outOffset, kt, nkb);
        int rowBlocks = (rowsPerKv + BQ - 1) / BQ;
        int tasks = b * kvHeads * rowBlocks;
        Parallel.forRange(tasks, 1, (from, to) -> {
            Work w = WORK.get();
            for (int t = from; t < to; t++) {
                int rb = t % rowBlocks;
                int kvh = (t / rowBlocks) % kvHeads;
                int bi = t / (rowBlocks * kvHeads);
                block(job, w, bi, kvh, rb * BQ, Math.min(rowsPerKv, (rb + 1) * BQ));
            }
        });
    }

    /** Everything a task needs; {@code c} is scale * log2(e), folded into the packed queries. */
    private record Job(int heads, int kvHeads, int group, int nq, int nk, int d, int dPad, int dv, int dvPad,
                       Operand q, Operand k, Operand v, Compact kh, Compact vh, Mask mask, boolean causal,
                       float c, float[] out, int outOffset, float[] kt, int nkb) {
    }

    /** Per-thread scratch, grown on demand and kept for the thread's life. */
    private static final class Work {
        float[] q = new float[0];       // [rowsPad, dPad] scaled queries
        float[] o = new float[0];       // [rowsPad, dvPad] unnormalised output accumulator
        final float[] s = new float[MR * BK]; // [MR, BK] scores, then probabilities, of one micro-tile
        float[] m = new float[0];       // running row maximum (base-2 units)
        float[] l = new float[0];       // running row sum
        float[] alpha = new float[0];   // this key block's rescale factor per row
        int[] head = new int[0];
        int[] qi = new int[0];
        int[] lim = new int[0];         // last key index the row may see
        float[] kb = new float[0];      // [BK, d] keys of one block, from F16
        float[] vb = new float[0];      // [BK, dvPad] values of one block, from F16, zero past dv
        float[] qh = new float[0];      // a lone row's scaled query times 2^112, for F16 keys read in place
        float[] keep = new float[0];    // a lone row's output accumulator before an F16 block (see HalfAttentionKernels)

        void ensureHalf(int d, int dv) {
            if (qh.length < d) {
                qh = new float[d];
            }
            if (keep.length < dv) {
                keep = new float[dv];
            }
        }

        float[] keyBlock(int len) {
            if (kb.length < len) {
                kb = new float[len];
            }
            return kb;
        }

        float[] valueBlock(int len) {
            if (vb.length < len) {
                vb = new float[len];
            }
            return vb;
        }

        void ensure(int qLen, int oLen, int rows) {
            if (q.length < qLen) {
                q = new float[qLen];
            }
            if (o.length < oLen) {
                o = new float[oLen];
            }
            if (m.length < rows) {
                m = new float[rows];
                l = new float[rows];
                alpha = new float[rows];
                head = new int[rows];
                qi = new int[rows];
                lim = new int[rows];
            }
        }
    }

    /** Rows [r0, r1) of kv head kvh's stacked row space (row = headInGroup * nq + i). */
    private static void block(Job jb, Work w, int bi, int kvh, int r0, int r1) {
        int rows = r1 - r0;
        int rowsPad = roundUp(rows, MR);
        int qs = jb.dPad;
        int os = jb.dvPad;
        w.ensure(rowsPad * qs, rowsPad * os, rowsPad);
        float[] qb = w.q;
        Operand q = jb.q;
        int maxLim = Integer.MIN_VALUE;
        for (int r = 0; r < rowsPad; r++) {
            // Rows past the end repeat the last real row, so micro-tiles need no row tail; their output is dropped.
            int row = r0 + Math.min(r, rows - 1);
            int h = kvh * jb.group + row / jb.nq;
            int i = row % jb.nq;
            int lim = jb.causal ? i + (jb.nk - jb.nq) : jb.nk - 1;
            w.head[r] = h;
            w.qi[r] = i;
            w.lim[r] = lim;
            maxLim = Math.max(maxLim, lim);
            int src = (int) (q.offset() + bi * q.strideB() + h * q.strideH() + i * q.strideN());
            int dst = r * qs;
            for (int dd = 0; dd < jb.d; dd += L) {
                VectorMask<Float> in = F.indexInRange(dd, jb.d);
                FloatVector.fromArray(F, q.data(), src + dd, in).mul(jb.c).intoArray(qb, dst + dd);
            }
            w.m[r] = NEG_INF;
            w.l[r] = 0f;
            Arrays.fill(w.o, r * os, (r + 1) * os, 0f);
        }
        // Key blocks past every row's causal limit are skipped outright.
        int kEnd = Math.min(jb.nk, maxLim + 1);
        boolean compact = jb.kh != null;
        float[] kData;
        float[] vData;
        int kBase;
        int vBase;
        int ks;
        int vs;
        if (compact) {
            // each block is converted into scratch below and read from there
            kData = w.keyBlock(BK * jb.d);
            vData = w.valueBlock(BK * jb.dvPad);
            kBase = 0;
            vBase = 0;
            ks = jb.d;
            vs = jb.dvPad;
        } else {
            kData = jb.k.data();
            vData = jb.v.data();
            kBase = (int) (jb.k.offset() + bi * jb.k.strideB() + kvh * jb.k.strideH());
            vBase = (int) (jb.v.offset() + bi * jb.v.strideB() + kvh * jb.v.strideH());
            ks = (int) jb.k.strideN();
            vs = (int) jb.v.strideN();
        }
        // a lone row over F16 keys and values reads them in place (HalfAttentionKernels) when its scaled query
        // allows; other rows, blocks holding an Inf or NaN, and Q8_0 keys and values use the block converted to floats
        boolean inPlace = jb.kh instanceof HalfOperand && jb.vh instanceof HalfOperand && (rows % MR == 1)
                && HalfAttentionKernels.applies(jb.d, jb.dv)
                && scaleQuery(w, qb, (rowsPad - MR) * qs, jb.d, os);
        for (int j0 = 0; j0 < kEnd; j0 += BK) {
            int jn = Math.min(BK, jb.nk - j0);
            int kRow = compact ? 0 : kBase + j0 * ks;             // key j0 of this block, read in place
            int vRow = compact ? 0 : vBase + j0 * vs;
            boolean converted = !compact;
            int ktBase = ((bi * jb.kvHeads + kvh) * jb.nkb + j0 / BK) * jb.d * BK;
            for (int rg = 0; rg < rowsPad; rg += MR) {
                int groupLim = Math.max(Math.max(w.lim[rg], w.lim[rg + 1]), Math.max(w.lim[rg + 2], w.lim[rg + 3]));
                if (groupLim < j0) {
                    continue;                                  // no row of this tile sees any key of the block
                }
                if (inPlace && rows - rg == 1 && lonelyHalfRow(jb, w, bi, kvh, rg, os, j0, jn)) {
                    continue;
                }
                if (!converted) {
                    jb.kh.rows(bi, kvh, j0, jn, jb.d, kData, 0, jb.d);
                    jb.vh.rows(bi, kvh, j0, jn, jb.dv, vData, 0, jb.dvPad);
                    converted = true;
                }
                if (jb.kt == null && rows - rg == 1) {
                    // A lone row (decode without GQA): padding it to MR rows would do 4x the work of a pass that
                    // is bound by reading K and V anyway.
                    AttentionKernels.scoresDot1(qb, rg * qs, kData, kRow, ks, jn, jb.d, w.s);
                    int vis = softmaxRow(jb, w, bi, rg, 0, j0, jn);
                    if (vis > 0) {
                        AttentionKernels.accumulateRow(w.o, w.s, w.alpha, rg, os, vis, vData, vRow, vs);
                    }
                    continue;
                }
                if (jb.kt != null) {
                    AttentionKernels.scoresPacked(qb, qs, rg, jb.kt, ktBase, jb.d, w.s);
                } else {
                    AttentionKernels.scoresDot(qb, qs, rg, kData, kRow, ks, jn, jb.d, w.s);
                }
                int jmax = 0;
                for (int rr = 0; rr < MR; rr++) {
                    jmax = Math.max(jmax, softmaxRow(jb, w, bi, rg + rr, rr, j0, jn));
                }
                if (jmax > 0) {
                    AttentionKernels.accumulate(w.o, w.s, w.alpha, rg, os, jmax, vData, vRow, vs);
                }
            }
        }
        float[] out = jb.out;
        for (int r = 0; r < rows; r++) {
            float inv = w.l[r] > 0f ? 1f / w.l[r] : 0f;        // l == 0: every key masked; torch gives NaN
            int dst = jb.outOffset + ((bi * jb.heads + w.head[r]) * jb.nq + w.qi[r]) * jb.dv;
            int src = r * os;
            for (int c = 0; c < jb.dv; c += L) {
                VectorMask<Float> in = F.indexInRange(c, jb.dv);
                FloatVector.fromArray(F, w.o, src + c).mul(inv).intoArray(out, dst + c, in);
            }
        }
    }

    /**
     * The lone row's scaled query times 2^112 into {@code w.qh}, for {@link HalfAttentionKernels}; false when some
     * |value| is 2^15 or more, or not finite (the product would overflow). Sizes the row's F16 scratch (os).
     */
    private static boolean scaleQuery(Work w, float[] qb, int from, int d, int os) {
        w.ensureHalf(d, os);
        for (int dd = 0; dd < d; dd++) {
            float x = qb[from + dd];
            if (!(Math.abs(x) < HalfAttentionKernels.SCALABLE)) {
                return false;
            }
            w.qh[dd] = x * HalfAttentionKernels.SCALE;
        }
        return true;
    }

    /**
     * Keys [j0, j0+jn) for the lone row r read from the F16 operands in place: scores, softmax, P·V. False, with
     * nothing changed, when a key of the block is Inf or NaN (the caller then runs the block converted); an Inf or
     * NaN value is handled here, by redoing this block's P·V from exactly converted values.
     */
    private static boolean lonelyHalfRow(Job jb, Work w, int bi, int kvh, int r, int os, int j0, int jn) {
        HalfOperand k = (HalfOperand) jb.kh;
        HalfOperand v = (HalfOperand) jb.vh;
        int kRow = (int) (k.offset() + bi * k.strideB() + kvh * k.strideH() + j0 * k.strideN());
        int vRow = (int) (v.offset() + bi * v.strideB() + kvh * v.strideH() + j0 * v.strideN());
        if (!HalfAttentionKernels.scoresDot1(w.qh, 0, k.data(), kRow, (int) k.strideN(), jn, jb.d, w.s)) {
            return false;
        }
        int vis = softmaxRow(jb, w, bi, r, 0, j0, jn);
        if (vis > 0) {
            if (!HalfAttentionKernels.accumulateRow(w.o, w.s, w.alpha, r, os, vis, v.data(), vRow,
                    (int) v.strideN(), w.keep)) {
                // an Inf or NaN value: this block's P·V from exactly converted values (the softmax state is kept)
                float[] vData = w.valueBlock(BK * jb.dvPad);
                v.rows(bi, kvh, j0, jn, jb.dv, vData, 0, jb.dvPad);
                AttentionKernels.accumulateRow(w.o, w.s, w.alpha, r, os, vis, vData, 0, jb.dvPad);
            }
        }
        return true;
    }

    /**
     * Turns one row of raw scores in {@code w.s} into probabilities for keys [j0, j0+jn), updating the row's
     * running maximum and sum and setting its rescale factor. Returns how many leading keys the row may see.
     */
    private static int softmaxRow(Job jb, Work w, int bi, int r, int rr, int j0, int jn) {
        float[] s = w.s;
        int so = rr * BK;
        int vis = Math.min(jn, w.lim[r] - j0 + 1);
        if (vis <= 0) {
            Arrays.fill(s, so, so + BK, 0f);
            w.alpha[r] = 1f;
            return 0;
        }
        Mask mk = jb.mask;
        int mo = mk == null ? 0 : (int) (mk.offset() + bi * mk.strideB() + w.head[r] * mk.strideH()
                + w.qi[r] * mk.strideN() + j0);
        float mOld = w.m[r];
        float mNew = maskAndMax(s, so, vis, mk, mo, mOld);
        // mOld == mNew also covers "still all -inf", where exp2(-inf - -inf) would be NaN.
        float alpha = mOld == mNew ? 1f : FastExp.exp2(mOld - mNew);
        float sum = exponentiate(s, so, vis, mNew == NEG_INF ? 0f : mNew);
        w.m[r] = mNew;
        w.l[r] = w.l[r] * alpha + sum;
        w.alpha[r] = alpha;
        return vis;
    }

    /**
     * Adds the mask row (in base-2 units) to scores [0, vis) of one row, sets the lanes past vis in the last
     * vector to -inf, and returns the row's new reference maximum.
     *
     * <p>Lazy rescaling (as in FlashAttention-4): the reference maximum moves only when a score exceeds the old one
     * by more than RESCALE_SLACK, so probabilities stay below 2^RESCALE_SLACK (far from overflow) while the
     * cross-lane reduction and the accumulator rescale are skipped for almost every block. From -inf it always moves.
     *
     * <p>Like every method here it takes and returns only arrays and scalars: a vector crossing a call that C2
     * declines to inline (its node budget runs out on Vector API bodies, depending on profile) is boxed on every
     * call, which made the whole kernel ~7x slower in one run out of two.
     */
    private static float maskAndMax(float[] s, int so, int vis, Mask mk, int mo, float mOld) {
        FloatVector vlog2e = FloatVector.broadcast(F, LOG2E);
        FloatVector vmax = FloatVector.broadcast(F, NEG_INF);
        int full = vis - vis % L;
        int j = 0;
        // max() would follow Math.max (NaN, -0.0) and cost more than compare + blend.
        if (mk == null) {
            for (; j < full; j += L) {                    // scores unchanged: only the maximum is needed
                FloatVector x = FloatVector.fromArray(F, s, so + j);
                vmax = vmax.blend(x, vmax.compare(VectorOperators.LT, x));
            }
        } else {
            for (; j < full; j += L) {
                FloatVector x = FloatVector.fromArray(F, mk.data(), mo + j)
                        .fma(vlog2e, FloatVector.fromArray(F, s, so + j));
                x.intoArray(s, so + j);
                vmax = vmax.blend(x, vmax.compare(VectorOperators.LT, x));
            }
        }
        if (j < vis) {
            VectorMask<Float> in = F.indexInRange(j, vis);
            FloatVector x = FloatVector.fromArray(F, s, so + j);
            if (mk != null) {
                x = FloatVector.fromArray(F, mk.data(), mo + j, in).fma(vlog2e, x);
            }
            x = x.blend(NEG_INF, in.not());
            x.intoArray(s, so + j);
            vmax = vmax.blend(x, vmax.compare(VectorOperators.LT, x));
        }
        if (vmax.compare(VectorOperators.GT, mOld + RESCALE_SLACK).anyTrue()) {
            return vmax.reduceLanes(VectorOperators.MAX);
        }
        return mOld;
    }

    /** p = 2^(s - m) over [0, vis) of one row, zero over [vis, BK); returns the row sum of p. */
    private static float exponentiate(float[] s, int so, int vis, float m) {
        int end = roundUp(vis, L);                     // lanes past vis hold -inf, so they come out 0
        float sum = FastExp.exp2InPlace(s, so, so + end, m);
        Arrays.fill(s, so + end, so + BK, 0f);
        return sum;
    }

    /**
     * Packs k transposed into panels of BK keys, [b, kvHeads, nkb, d, BK], zero past nk, so the score micro-kernel
     * reads contiguous vectors of keys. Done once per call: every query block of a kv head reuses it.
     */
    private static float[] packKeys(int b, int kvHeads, int nk, int d, int nkb, Operand k) {
        float[] kt = new float[Math.multiplyExact(Math.multiplyExact(b * kvHeads, nkb), d * BK)];
        float[] src = k.data();
        Parallel.forRange(b * kvHeads * nkb, 1, (from, to) -> {
            for (int t = from; t < to; t++) {
                int kb = t % nkb;
                int kvh = (t / nkb) % kvHeads;
                int bi = t / (nkb * kvHeads);
                int dst = t * d * BK;
                int j0 = kb * BK;
                int jn = Math.min(BK, nk - j0);
                long row = k.offset() + bi * k.strideB() + kvh * k.strideH() + j0 * k.strideN();
                for (int jj = 0; jj < jn; jj++, row += k.strideN()) {
                    int so = (int) row;
                    for (int dd = 0; dd < d; dd++) {
                        kt[dst + dd * BK + jj] = src[so + dd];
                    }
                }
            }
        });
        return kt;
    }

    /** Copies v into contiguous rows padded with zeros to dvPad, so value loads need no tail mask. */
    private static Operand packValues(int b, int kvHeads, int nk, int dv, int dvPad, Operand v) {
        float[] vp = new float[Math.multiplyExact(Math.multiplyExact(b * kvHeads, nk), dvPad)];
        Parallel.forRange(b * kvHeads, 1, (from, to) -> {
            for (int t = from; t < to; t++) {
                int kvh = t % kvHeads;
                int bi = t / kvHeads;
                long row = v.offset() + bi * v.strideB() + kvh * v.strideH();
                for (int j = 0; j < nk; j++, row += v.strideN()) {
                    System.arraycopy(v.data(), (int) row, vp, (t * nk + j) * dvPad, dv);
                }
            }
        });
        return new Operand(vp, 0, (long) kvHeads * nk * dvPad, (long) nk * dvPad, dvPad);
    }

    /** A plain loop, which C2 turns into the CPU's vector half-to-float conversion. */
    private static void halfToFloat(short[] src, int from, float[] dst, int to, int n) {
        for (int i = 0; i < n; i++) {
            dst[to + i] = Float.float16ToFloat(src[from + i]);
        }
    }

    /** A whole F16 or Q8_0 operand [b, heads, n, width] as a contiguous float operand. */
    private static Operand widen(int b, int heads, int n, int width, Compact h) {
        float[] dst = new float[Math.multiplyExact(Math.multiplyExact(b * heads, n), width)];
        Parallel.forRange(b * heads, 1, (from, to) -> {
            for (int t = from; t < to; t++) {
                h.rows(t / heads, t % heads, 0, n, width, dst, t * n * width, width);
            }
        });
        return new Operand(dst, 0, (long) heads * n * width, (long) n * width, width);
    }

    private static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }

    private static void checkShapes(int b, int heads, int kvHeads, int nq, int nk, int d, int dv,
                                    Layout q, Layout k, Layout v, Mask mask, float[] out, int outOffset) {
        if (b < 0 || heads < 0 || nq < 0) {
            throw new IllegalArgumentException("attention: b=%d heads=%d nq=%d, expected all >= 0"
                    .formatted(b, heads, nq));
        }
        if (kvHeads < 1 || nk < 1 || d < 1 || dv < 1) {
            throw new IllegalArgumentException("attention: kvHeads=%d nk=%d d=%d dv=%d, expected all >= 1"
                    .formatted(kvHeads, nk, d, dv));
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention: heads=%d is not a multiple of kvHeads=%d"
                    .formatted(heads, kvHeads));
        }
        checkRange("q", q, b, heads, nq, d);
        checkRange("k", k, b, kvHeads, nk, d);
        checkRange("v", v, b, kvHeads, nk, dv);
        if (mask != null) {
            checkRange("mask", mask, b, heads, nq, nk);
        }
        long outLen = (long) b * heads * nq * dv;
        if (out == null || outOffset < 0 || outOffset + outLen > out.length) {
            throw new IllegalArgumentException(
                    "attention: out [%d, %d, %d, %d] at offset %d needs %d floats, array has %s".formatted(
                            b, heads, nq, dv, outOffset, outOffset + outLen,
                            out == null ? "null" : String.valueOf(out.length)));
        }
    }

    private static void checkRange(String name, Layout at, int n0, int n1, int n2, int n3) {
        int length = at.length();
        int offset = at.offset();
        long s0 = at.strideB();
        long s1 = at.strideH();
        long s2 = at.strideN();
        if (length < 0) {
            throw new IllegalArgumentException("attention: " + name + " data is null");
        }
        if (offset < 0 || s0 < 0 || s1 < 0 || s2 < 0) {
            throw new IllegalArgumentException("attention: %s offset=%d strides=(%d, %d, %d), expected all >= 0"
                    .formatted(name, offset, s0, s1, s2));
        }
        if (n0 == 0 || n1 == 0 || n2 == 0) {
            return;
        }
        long last = offset + (n0 - 1) * s0 + (n1 - 1) * s1 + (n2 - 1) * s2 + (n3 - 1);
        if (last >= length) {
            throw new IllegalArgumentException(
                    ("attention: %s [%d, %d, %d, %d] with offset %d strides (%d, %d, %d, 1) reaches index %d,"
                            + " array has %d").formatted(name, n0, n1, n2, n3, offset, s0, s1, s2, last, length));
        }
    }
}
