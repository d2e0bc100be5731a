package koala4j.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import koala4j.tensor.Activation;
import koala4j.tensor.quant.Q4Storage;

/**
 * F.linear with a Q4_0 weight W [n, k] (see {@link Q4Storage}): out[i, j] = act(sum_p x[i, p] W[j, p] + bias[j]).
 * A decode row streams each weight once at 0.56 bytes per weight: a block's 16 bytes are split into their low and
 * high nibbles in registers (elements 0..15 and 16..31 of the block) and widened to floats; per block the product is
 * d * (sum of q x - 8 * sum of x), two weight rows half the range apart per pass. Up to {@link #FEW_ROWS} input rows
 * (a batched decode step, a short prompt, drafts of prompt lookup) read each weight row once for four input rows at a
 * time, each row's dot product formed as
 * its matrix-vector product forms it (the same bits); more go through the blocked {@link Gemm} driver, whose B packing dequantises the panels ({@link Q8Gemm.Panels}), so a row's result
 * depends on the path by the order of its sums. The scalar path is {@link Q4Storage#get}.
 */
final class Q4Gemm {

    private static final int BLOCK = Q4Storage.BLOCK;
    private static final int HALF = BLOCK / 2;
    private static final VectorSpecies<Float> F = GemmVector.F;
    private static final int VL = GemmVector.VL;
    /**
     * The vector path takes a block's 16 bytes as byte vectors of VL lanes widened to VL float lanes: one per block
     * with AVX-512 (16 lanes), two with AVX2 (8).
     */
    static final boolean VECTOR = VL >= 8 && HALF % VL == 0;
    private static final VectorSpecies<Byte> B = VECTOR ? VectorSpecies.of(byte.class, VectorShape.forBitSize(VL * 8))
            : null;
    private static final VectorSpecies<Integer> I = VECTOR ? VectorSpecies.of(int.class, VectorShape.forBitSize(VL * 32))
            : null;
    private static final ValueLayout.OfShort F16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Input rows up to which the scalar path (no vectors) computes separate matrix-vector products. */
    static final int GEMV_ROWS = 8;

    /**
     * Input rows up to which each weight row is streamed once for all of them ({@link #fewRows}) rather than through
     * the blocked GEMM. Measured over 8 layers of the 7B's Q4_0 products (2 Zen 5 cores, a whole forward pass, two
     * alternating runs each): 9 rows 494-516 ms by the GEMM against 284-290 by fewRows, 17 rows 606-630 against
     * 530-538, 25 rows 704-746 against 791-804.
     */
    static final int FEW_ROWS = 20;

    private Q4Gemm() {
    }

    /**
     * out[i*n + j] for i < m, j < n. x is row-major [m, k] at xOff; W starts at element {@code wOffset} (a multiple of
     * 32) of {@code w}; k must be a multiple of 32.
     */
    static void linear(float[] x, int xOff, int m, int k, Q4Storage w, long wOffset, int n, float[] bias,
                       Activation act, float[] out) {
        Q8Gemm.check("Q4_0", x, xOff, m, k, w.size(), wOffset, n, bias, out);
        if (m == 0 || n == 0) {
            return;
        }
        if (m == 1 || m <= GEMV_ROWS && !VECTOR) {
            for (int i = 0; i < m; i++) {
                gemv(x, xOff + i * k, k, w, wOffset, n, bias, act, out, i * n);
            }
            return;
        }
        if (m <= FEW_ROWS && VECTOR) {
            fewRows(x, xOff, m, k, w, wOffset, n, bias, act, out);
            return;
        }
        Gemm.MatrixRef a = new Gemm.MatrixRef(FloatSource.of(x), xOff, k, false, 0);
        var panels = new Q8Gemm.Panels((from, len, o, off) -> dequantize(w, from, len, o, off), wOffset, k);
        Gemm.run(1, m, n, k, new GemmPacking.RefA(a, 0), panels, out, 0, n, 0,
                Gemm.Epilogue.of(bias, act), 0, 0);
    }

    private static void gemv(float[] x, int xOff, int k, Q4Storage w, long wOffset, int n, float[] bias,
                             Activation act, float[] out, int outOff) {
        int groups = Gemm.ceilDiv(n, 4);
        Parallel.forRange(groups, 1, (from, to) -> {
            int j0 = from * 4;
            int j1 = Math.min(n, to * 4);
            float[] y = GemmWorkspace.get().out(j1 - j0);
            dots(x, xOff, k, w, wOffset, j0, j1, y);
            GemmVector.finishRow(y, 0, out, outOff + j0, j1 - j0, 1f, bias, j0, bias != null, 0f, act, false);
        });
    }

    /**
     * y[j - j0] = dot(x, W row j) for j in [j0, j1): two rows half the range apart per pass, then the rest. (Four per
     * pass, as Q8_0 takes them, made C2 stop inlining the vector operations past its node budget
     * (NodeCountInliningCutoff): every vector was then an object, 3.3 tokens/s on 8 layers of the 7B.)
     */
    private static void dots(float[] x, int xOff, int k, Q4Storage w, long wOffset, int j0, int j1, float[] y) {
        int half = VECTOR ? (j1 - j0) / 2 : 0;
        MemorySegment quants = w.quants();
        MemorySegment scales = w.scales();
        int blocks = k / BLOCK;
        for (int i = 0; i < half; i++) {
            long b0 = (wOffset + (long) (j0 + i) * k) / BLOCK;            // first block of each of the two rows
            long b1 = b0 + (long) half * blocks;
            FloatVector s0 = FloatVector.zero(F);
            FloatVector s1 = s0;
            for (int blk = 0; blk < blocks; blk++) {
                for (int c = 0; c < HALF; c += VL) {
                    int p = xOff + blk * BLOCK + c;
                    FloatVector lo = FloatVector.fromArray(F, x, p);
                    FloatVector hi = FloatVector.fromArray(F, x, p + HALF);
                    FloatVector eight = lo.add(hi).mul(8f);
                    s0 = block(quants, scales, b0 + blk, c, lo, hi, eight, s0);
                    s1 = block(quants, scales, b1 + blk, c, lo, hi, eight, s1);
                }
            }
            y[i] = GemmVector.sum(s0);
            y[half + i] = GemmVector.sum(s1);
        }
        for (int j = j0 + 2 * half; j < j1; j++) {
            y[j - j0] = VECTOR ? dot1(x, xOff, quants, scales, (wOffset + (long) j * k) / BLOCK, blocks)
                    : scalarDot(x, xOff, w, wOffset + (long) j * k, k);
        }
    }

    /**
     * A few input rows (a batched decode step): each weight row is read once and dotted with four input rows at a
     * time, each dot product formed exactly as {@link #block} forms it for one row, so every row gets the bits a
     * matrix-vector product of it alone gets.
     */
    private static void fewRows(float[] x, int xOff, int m, int k, Q4Storage w, long wOffset, int n, float[] bias,
                                Activation act, float[] out) {
        MemorySegment quants = w.quants();
        MemorySegment scales = w.scales();
        int blocks = k / BLOCK;
        Parallel.forRange(n, 4, (from, to) -> {
            int len = to - from;
            float[] y = GemmWorkspace.get().out(m * len);
            for (int j = from; j < to; j++) {
                long b0 = (wOffset + (long) j * k) / BLOCK;
                for (int i = 0; i < m; i += 4) {
                    // a short last group repeats the last input row; its duplicate results land on the same slot
                    int b = Math.min(i + 1, m - 1);
                    int c = Math.min(i + 2, m - 1);
                    int d = Math.min(i + 3, m - 1);
                    dot4(x, xOff + i * k, xOff + b * k, xOff + c * k, xOff + d * k, quants, scales, b0, blocks, y,
                            i * len + j - from, b * len + j - from, c * len + j - from, d * len + j - from);
                }
            }
            for (int i = 0; i < m; i++) {
                GemmVector.finishRow(y, i * len, out, i * n + from, len, 1f, bias, from, bias != null, 0f, act, false);
            }
        });
    }

    /** One weight row (first block b0) dotted with four input rows; results to y[ya], y[yb], y[yc], y[yd]. */
    private static void dot4(float[] x, int xa, int xb, int xc, int xd, MemorySegment quants, MemorySegment scales,
                             long b0, int blocks, float[] y, int ya, int yb, int yc, int yd) {
        FloatVector sa = FloatVector.zero(F);
        FloatVector sb = sa;
        FloatVector sc = sa;
        FloatVector sd = sa;
        for (int blk = 0; blk < blocks; blk++) {
            FloatVector d = scale(scales, b0 + blk);
            for (int c = 0; c < HALF; c += VL) {
                IntVector q = quants(quants, b0 + blk, c);
                FloatVector ql = nibbles(q.and(0x0F));
                FloatVector qh = nibbles(q.lanewise(VectorOperators.LSHR, 4));
                int p = blk * BLOCK + c;
                sa = row(x, xa + p, ql, qh, d, sa);
                sb = row(x, xb + p, ql, qh, d, sb);
                sc = row(x, xc + p, ql, qh, d, sc);
                sd = row(x, xd + p, ql, qh, d, sd);
            }
        }
        y[ya] = GemmVector.sum(sa);
        y[yb] = GemmVector.sum(sb);
        y[yc] = GemmVector.sum(sc);
        y[yd] = GemmVector.sum(sd);
    }

    /** acc + one block of one input row (from x[p]) against the block's nibbles, as {@link #block} forms it. */
    private static FloatVector row(float[] x, int p, FloatVector ql, FloatVector qh, FloatVector d, FloatVector acc) {
        FloatVector lo = FloatVector.fromArray(F, x, p);
        FloatVector hi = FloatVector.fromArray(F, x, p + HALF);
        return qh.fma(hi, ql.mul(lo)).sub(lo.add(hi).mul(8f)).fma(d, acc);
    }

    private static float dot1(float[] x, int xOff, MemorySegment quants, MemorySegment scales, long b0, int blocks) {
        FloatVector s = FloatVector.zero(F);
        for (int blk = 0; blk < blocks; blk++) {
            for (int c = 0; c < HALF; c += VL) {
                int p = xOff + blk * BLOCK + c;
                FloatVector lo = FloatVector.fromArray(F, x, p);
                FloatVector hi = FloatVector.fromArray(F, x, p + HALF);
                s = block(quants, scales, b0 + blk, c, lo, hi, lo.add(hi).mul(8f), s);
            }
        }
        return GemmVector.sum(s);
    }

    /**
     * acc + d * (sum of quants times x - 8 * sum of x), lane by lane, for bytes [c, c + VL) of the block: their low
     * nibbles (elements c..) go with lo, their high nibbles (elements 16 + c..) with hi; {@code eight} is
     * 8 * (lo + hi), shared by every row.
     */
    private static FloatVector block(MemorySegment quants, MemorySegment scales, long block, int c, FloatVector lo,
                                     FloatVector hi, FloatVector eight, FloatVector acc) {
        IntVector q = quants(quants, block, c);
        FloatVector t = nibbles(q.lanewise(VectorOperators.LSHR, 4)).fma(hi, nibbles(q.and(0x0F)).mul(lo)).sub(eight);
        return t.fma(scale(scales, block), acc);
    }

    /** Bytes [c, c + VL) of the block zero-extended to int lanes. */
    private static IntVector quants(MemorySegment quants, long block, int c) {
        return (IntVector) ByteVector.fromMemorySegment(B, quants, block * HALF + c, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
    }

    private static FloatVector nibbles(IntVector q) {
        return (FloatVector) q.convertShape(VectorOperators.I2F, F, 0);
    }

    /** The low nibbles' elements, -8..7. */
    private static FloatVector low(IntVector q) {
        return nibbles(q.and(0x0F)).sub(8f);
    }

    /** The high nibbles' elements, -8..7. */
    private static FloatVector high(IntVector q) {
        return nibbles(q.lanewise(VectorOperators.LSHR, 4)).sub(8f);
    }

    private static FloatVector scale(MemorySegment scales, long block) {
        return FloatVector.broadcast(F, Q8Gemm.halfToFloat(scales.get(F16_LE, block * 2)));
    }

    private static float scalarDot(float[] x, int xOff, Q4Storage w, long from, int k) {
        float s = 0f;
        for (int p = 0; p < k; p++) {
            s = Math.fma(w.get(from + p), x[xOff + p], s);
        }
        return s;
    }

    /** Values of elements [from, from + len) into {@code out[outOff ..]}; whole blocks as vectors. */
    static void dequantize(Q4Storage w, long from, int len, float[] out, int outOff) {
        int i = 0;
        if (VECTOR) {
            int head = (int) Math.min(len, (BLOCK - from % BLOCK) % BLOCK);
            for (; i < head; i++) {
                out[outOff + i] = w.get(from + i);
            }
            MemorySegment quants = w.quants();
            MemorySegment scales = w.scales();
            for (; i + BLOCK <= len; i += BLOCK) {
                long block = (from + i) / BLOCK;
                FloatVector d = scale(scales, block);
                for (int c = 0; c < HALF; c += VL) {
                    IntVector q = quants(quants, block, c);
                    low(q).mul(d).intoArray(out, outOff + i + c);
                    high(q).mul(d).intoArray(out, outOff + i + HALF + c);
                }
            }
        }
        for (; i < len; i++) {
            out[outOff + i] = w.get(from + i);
        }
    }

    /** All of {@code n} elements from {@code from} as a new float array, on all threads. */
    static float[] dequantize(Q4Storage w, long from, int n) {
        return Q8Gemm.values((at, len, out, off) -> dequantize(w, at, len, out, off), from, n);
    }

    /** Quantises {@code n} values of {@code src} (n a multiple of 32) into new storage, blocks split over threads. */
    static Q4Storage quantize(FloatSource src, long from, long n) {
        Q4Storage dst = koala4j.tensor.quant.Q4.allocate(n);
        Q8Gemm.quantizeBlocks(src, from, n, (buf, off, block) -> koala4j.tensor.quant.Q4.quantizeBlock(buf, off, dst,
                block));
        return dst;
    }
}
