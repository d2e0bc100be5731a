package koala4j.backend.cpu;

import static koala4j.backend.cpu.GemmKernel.NR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import koala4j.tensor.Activation;
import koala4j.tensor.quant.Q8;
import koala4j.tensor.quant.Q8Storage;

/**
 * F.linear with a Q8_0 weight W [n, k] (see {@link Q8Storage}): out[i, j] = act(sum_p x[i, p] W[j, p] + bias[j]).
 * One decode row (m = 1) is memory-bound: each task streams a group of weight rows once, widening int8 quants to
 * floats in registers and multiplying each by its block's scale before its product, so 1.06 bytes are read per
 * weight (F16: 2). Every path forms a dot product the same way (scaled weight times x, FMAs in the same order per
 * lane, {@link GemmVector#sum}), so a row's result does not depend on how many input rows came with it. A few rows
 * (a short prompt, up to {@link #FEW_ROWS}) stream each weight row once and dot it with four input rows at a time
 * while it sits in L1; more rows go through the blocked {@link Gemm} driver, whose B
 * packing dequantises the Q8 panels one cache-sized block at a time ({@link Panels}). Thread-safe; the scalar twin
 * is {@link ScalarQ8}.
 */
final class Q8Gemm {

    private static final int BLOCK = Q8Storage.BLOCK;
    private static final VectorSpecies<Float> F = GemmVector.F;
    private static final int VL = GemmVector.VL;
    /** The vector path needs a byte vector of VL lanes (at least 64 bits) and whole vectors per block. */
    static final boolean VECTOR = VL >= 8 && BLOCK % VL == 0;
    private static final VectorSpecies<Byte> B = VECTOR ? VectorSpecies.of(byte.class, VectorShape.forBitSize(VL * 8))
            : null;
    private static final ValueLayout.OfShort F16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Q8Gemm() {
    }

    /**
     * out[i*n + j] for i < m, j < n. x is row-major [m, k] at xOff; W starts at element {@code wOffset} (a multiple of
     * 32) of {@code w}; k must be a multiple of 32.
     */
    static void linear(float[] x, int xOff, int m, int k, Q8Storage w, long wOffset, int n, float[] bias,
                       Activation act, float[] out) {
        check(x, xOff, m, k, w, wOffset, n, bias, out);
        if (m == 0 || n == 0) {
            return;
        }
        if (m <= GEMV_ROWS && VECTOR) {
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
        var panels = new Panels((from, len, o, off) -> dequantize(w, from, len, o, off), wOffset, k);
        Gemm.run(1, m, n, k, new GemmPacking.RefA(a, 0), panels, out, 0, n, 0,
                Gemm.Epilogue.of(bias, act), 0, 0);
    }

    static void check(float[] x, int xOff, int m, int k, Q8Storage w, long wOffset, int n, float[] bias, float[] out) {
        check("Q8_0", x, xOff, m, k, w.size(), wOffset, n, bias, out);
    }

    /** The arguments of a linear with a weight of {@code weightSize} elements in 32-element blocks of {@code format}. */
    static void check(String format, float[] x, int xOff, int m, int k, long weightSize, long wOffset, int n,
                      float[] bias, float[] out) {
        if (k % BLOCK != 0 || wOffset % BLOCK != 0 || wOffset < 0) {
            throw new IllegalArgumentException("%s linear with k=%d and weight offset %d: both must be multiples of %d"
                    .formatted(format, k, wOffset, BLOCK));
        }
        if (wOffset + (long) n * k > weightSize || xOff + (long) m * k > x.length || (long) m * n > out.length
                || bias != null && bias.length < n) {
            throw new IllegalArgumentException(("%s linear m=%d n=%d k=%d: weight of %d elements from %d, input of %d"
                    + " from %d, output of %d, bias of %s floats do not fit").formatted(format, m, n, k, weightSize,
                    wOffset, x.length, xOff, out.length, bias == null ? "no" : Integer.toString(bias.length)));
        }
    }

    // ---- m = 1: matrix-vector, weights streamed once

    /**
     * Up to this many input rows are separate matrix-vector products: {@link #fewRows} computes four dot products per
     * weight row whatever m is, so below four rows it does wasted work, yet from two rows on it is the faster: over 8
     * layers of the 7B's Q8_0 products from DRAM (2 Zen 5 cores, a whole forward pass, two alternating runs each), 2
     * rows as two products 100-102 ms against 78-80 by fewRows (one row 52). (An earlier measurement, before the
     * thread change, had found them about the same at 2 rows.)
     */
    static final int GEMV_ROWS = 1;

    private static void gemv(float[] x, int xOff, int k, Q8Storage w, long wOffset, int n, float[] bias,
                             Activation act, float[] out, int outOff) {
        MemorySegment quants = w.quants();
        MemorySegment scales = w.scales();
        int groups = Gemm.ceilDiv(n, 4);
        Parallel.forRange(groups, 1, (from, to) -> {
            int j0 = from * 4;
            int j1 = Math.min(n, to * 4);
            float[] y = GemmWorkspace.get().out(j1 - j0);
            dots(x, xOff, k, quants, scales, wOffset, j0, j1, y);
            GemmVector.finishRow(y, 0, out, outOff + j0, j1 - j0, 1f, bias, j0, bias != null, 0f, act, false);
        });
    }

    // ---- a few rows (a short prompt): each weight row dotted with four input rows at a time while it is in L1

    /**
     * Up to this many input rows go through {@link #fewRows} rather than the blocked GEMM, whose B packing
     * dequantises and transposes every weight once per call. Measured over 8 layers of the 7B's Q8_0 products (2 Zen
     * 5 cores, fewRows with {@link #dot4x4} against the GEMM): 16 rows 141 against 311 ms, 24 rows 198 against 322,
     * 32 rows 279 against 351, 48 rows 414 against 395, 64 rows 565 against 489. (With the earlier dot4 only, the
     * GEMM was as fast from 16 rows on.)
     */
    static final int FEW_ROWS = 40;

    private static void fewRows(float[] x, int xOff, int m, int k, Q8Storage w, long wOffset, int n, float[] bias,
                                Activation act, float[] out) {
        MemorySegment quants = w.quants();
        MemorySegment scales = w.scales();
        int blocks = k / BLOCK;
        Parallel.forRange(n, 4, (from, to) -> {
            int len = to - from;
            float[] y = GemmWorkspace.get().out(m * len);
            int quarter = VL == 16 ? len / 4 : 0;
            // weight rows outermost, so that a group's four weight rows are still in L1 for the next group of inputs
            for (int jj = 0; jj < quarter; jj++) {
                for (int i = 0; i < m; i += 4) {
                    // a short last group repeats the last input row; its duplicate results land on the same slot
                    int b = Math.min(i + 1, m - 1);
                    int c = Math.min(i + 2, m - 1);
                    int d = Math.min(i + 3, m - 1);
                    dot4x4(x, xOff + i * k, xOff + b * k, xOff + c * k, xOff + d * k, k, quants, scales,
                            wOffset + (long) (from + jj) * k, (long) quarter * k, y, jj, quarter,
                            i * len, b * len, c * len, d * len);
                }
            }
            float[] sc = scaleScratch(blocks);
            for (int j = from + 4 * quarter; j < to; j++) {
                long r0 = wOffset + (long) j * k;
                readScales(scales, r0 / BLOCK, blocks, sc, 0);
                for (int i = 0; i < m; i += 4) {
                    int b = Math.min(i + 1, m - 1);
                    int c = Math.min(i + 2, m - 1);
                    int d = Math.min(i + 3, m - 1);
                    dot4(x, xOff + i * k, xOff + b * k, xOff + c * k, xOff + d * k, quants, r0, sc, blocks, y,
                            i * len + j - from, b * len + j - from, c * len + j - from, d * len + j - from);
                }
            }
            for (int i = 0; i < m; i++) {
                GemmVector.finishRow(y, i * len, out, i * n + from, len, 1f, bias, from, bias != null, 0f, act, false);
            }
        });
    }

    /**
     * Four weight rows (from byte r0, a quarter of the task's range apart) dotted with four input rows (xa..xd): each
     * 16 inputs of the four rows are loaded once and kept in registers while the four weight rows' 16 quants are
     * widened, scaled by their block's scale and multiplied in, so a weight costs one FMA per input row and no
     * reload of x (dot4 reloads x for every weight row: 44 against 82 ms for 8 layers of the 7B's products with 4
     * input rows on 2 Zen 5 cores; one input row alone takes 24). Result of weight row jj + t*quarter and input row
     * u goes to y[yu + jj + t*quarter]. AVX-512 only (16 floats per vector, two per block). Written out, sixteen
     * accumulators as locals: C2 keeps vector locals in registers, while vectors in an array are boxed objects (a
     * variant reducing from arrays ran 15x slower).
     */
    private static void dot4x4(float[] x, int xa, int xb, int xc, int xd, int k, MemorySegment quants,
                               MemorySegment scales, long r0, long stride, float[] y, int jj, int quarter,
                               int ya, int yb, int yc, int yd) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector b0 = a0;
        FloatVector c0 = a0;
        FloatVector d0 = a0;
        FloatVector a1 = a0;
        FloatVector b1 = a0;
        FloatVector c1 = a0;
        FloatVector d1 = a0;
        FloatVector a2 = a0;
        FloatVector b2 = a0;
        FloatVector c2 = a0;
        FloatVector d2 = a0;
        FloatVector a3 = a0;
        FloatVector b3 = a0;
        FloatVector c3 = a0;
        FloatVector d3 = a0;
        long r1 = r0 + stride;
        long r2 = r1 + stride;
        long r3 = r2 + stride;
        for (int p = 0; p < k; p += VL) {
            FloatVector xav = FloatVector.fromArray(F, x, xa + p);
            FloatVector xbv = FloatVector.fromArray(F, x, xb + p);
            FloatVector xcv = FloatVector.fromArray(F, x, xc + p);
            FloatVector xdv = FloatVector.fromArray(F, x, xd + p);
            int blk = p / BLOCK;
            FloatVector w = widen(quants, r0 + p).mul(scale(scales, r0 / BLOCK + blk));
            a0 = w.fma(xav, a0);
            b0 = w.fma(xbv, b0);
            c0 = w.fma(xcv, c0);
            d0 = w.fma(xdv, d0);
            w = widen(quants, r1 + p).mul(scale(scales, r1 / BLOCK + blk));
            a1 = w.fma(xav, a1);
            b1 = w.fma(xbv, b1);
            c1 = w.fma(xcv, c1);
            d1 = w.fma(xdv, d1);
            w = widen(quants, r2 + p).mul(scale(scales, r2 / BLOCK + blk));
            a2 = w.fma(xav, a2);
            b2 = w.fma(xbv, b2);
            c2 = w.fma(xcv, c2);
            d2 = w.fma(xdv, d2);
            w = widen(quants, r3 + p).mul(scale(scales, r3 / BLOCK + blk));
            a3 = w.fma(xav, a3);
            b3 = w.fma(xbv, b3);
            c3 = w.fma(xcv, c3);
            d3 = w.fma(xdv, d3);
        }
        int j1 = jj + quarter;
        int j2 = j1 + quarter;
        int j3 = j2 + quarter;
        y[ya + jj] = GemmVector.sum(a0);
        y[yb + jj] = GemmVector.sum(b0);
        y[yc + jj] = GemmVector.sum(c0);
        y[yd + jj] = GemmVector.sum(d0);
        y[ya + j1] = GemmVector.sum(a1);
        y[yb + j1] = GemmVector.sum(b1);
        y[yc + j1] = GemmVector.sum(c1);
        y[yd + j1] = GemmVector.sum(d1);
        y[ya + j2] = GemmVector.sum(a2);
        y[yb + j2] = GemmVector.sum(b2);
        y[yc + j2] = GemmVector.sum(c2);
        y[yd + j2] = GemmVector.sum(d2);
        y[ya + j3] = GemmVector.sum(a3);
        y[yb + j3] = GemmVector.sum(b3);
        y[yc + j3] = GemmVector.sum(c3);
        y[yd + j3] = GemmVector.sum(d3);
    }

    /** One weight row (from byte r0, scales in sc) dotted with the input rows at xa..xd; results to y[ya..yd]. */
    private static void dot4(float[] x, int xa, int xb, int xc, int xd, MemorySegment quants, long r0, float[] sc,
                             int blocks, float[] y, int ya, int yb, int yc, int yd) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = acc0;
        FloatVector acc2 = acc0;
        FloatVector acc3 = acc0;
        for (int blk = 0; blk < blocks; blk++) {
            int p = blk * BLOCK;
            FloatVector scale = FloatVector.broadcast(F, sc[blk]);
            for (int q = 0; q < BLOCK; q += VL) {
                // scaled before the products, as in dot4x4 and dots
                FloatVector w = widen(quants, r0 + p + q).mul(scale);
                acc0 = w.fma(FloatVector.fromArray(F, x, xa + p + q), acc0);
                acc1 = w.fma(FloatVector.fromArray(F, x, xb + p + q), acc1);
                acc2 = w.fma(FloatVector.fromArray(F, x, xc + p + q), acc2);
                acc3 = w.fma(FloatVector.fromArray(F, x, xd + p + q), acc3);
            }
        }
        y[ya] = GemmVector.sum(acc0);
        y[yb] = GemmVector.sum(acc1);
        y[yc] = GemmVector.sum(acc2);
        y[yd] = GemmVector.sum(acc3);
    }

    /** Per-thread scratch: the scales of the rows in flight, as float. */
    private static final ThreadLocal<float[][]> SCALES = ThreadLocal.withInitial(() -> new float[1][0]);

    /**
     * y[j - j0] = dot(x, W row j) for j in [j0, j1), four rows per pass sharing each load of x. The four rows are
     * a quarter of the range apart, so each of the four is a long sequential stream through its quarter, which the
     * hardware prefetcher follows; four adjacent rows (four streams of 5 KB each, restarting every row) reached only
     * about 60 % of the read bandwidth here. Each block's F16 scale is loaded where it is used: converting a row's
     * scales in a loop of their own before its dot products (as this did before) streamed 12 % slower from DRAM on
     * two cores (36 against 41 GB/s), the scale loads then stalling the start of every row.
     */
    private static void dots(float[] x, int xOff, int k, MemorySegment quants, MemorySegment scales, long wOffset,
                             int j0, int j1, float[] y) {
        int blocks = k / BLOCK;
        int quarter = (j1 - j0) / 4;
        for (int i = 0; i < quarter; i++) {
            int ja = j0 + i;
            long r0 = wOffset + (long) ja * k;
            long r1 = r0 + (long) quarter * k;
            long r2 = r1 + (long) quarter * k;
            long r3 = r2 + (long) quarter * k;
            long b0 = r0 / BLOCK;
            long b1 = r1 / BLOCK;
            long b2 = r2 / BLOCK;
            long b3 = r3 / BLOCK;
            FloatVector s0 = FloatVector.zero(F);
            FloatVector s1 = s0;
            FloatVector s2 = s0;
            FloatVector s3 = s0;
            for (int blk = 0; blk < blocks; blk++) {
                int p = blk * BLOCK;
                // each weight scaled before its product, as dot4x4 forms it, so that a row's result does not depend
                // on how many input rows came with it (a batched decode step equals each sequence's own step)
                FloatVector c0 = scale(scales, b0 + blk);
                FloatVector c1 = scale(scales, b1 + blk);
                FloatVector c2 = scale(scales, b2 + blk);
                FloatVector c3 = scale(scales, b3 + blk);
                for (int q = 0; q < BLOCK; q += VL) {
                    FloatVector xv = FloatVector.fromArray(F, x, xOff + p + q);
                    s0 = widen(quants, r0 + p + q).mul(c0).fma(xv, s0);
                    s1 = widen(quants, r1 + p + q).mul(c1).fma(xv, s1);
                    s2 = widen(quants, r2 + p + q).mul(c2).fma(xv, s2);
                    s3 = widen(quants, r3 + p + q).mul(c3).fma(xv, s3);
                }
            }
            y[i] = GemmVector.sum(s0);
            y[quarter + i] = GemmVector.sum(s1);
            y[2 * quarter + i] = GemmVector.sum(s2);
            y[3 * quarter + i] = GemmVector.sum(s3);
        }
        float[] sc = scaleScratch(blocks);
        for (int j = j0 + 4 * quarter; j < j1; j++) {
            long r0 = wOffset + (long) j * k;
            readScales(scales, r0 / BLOCK, blocks, sc, 0);
            y[j - j0] = dot1(x, xOff, quants, r0, sc, 0, blocks);
        }
    }

    private static float[] scaleScratch(int size) {
        float[][] holder = SCALES.get();
        if (holder[0].length < size) {
            holder[0] = new float[size];
        }
        return holder[0];
    }

    private static float dot1(float[] x, int xOff, MemorySegment quants, long r0, float[] sc, int scOff, int blocks) {
        FloatVector s0 = FloatVector.zero(F);
        for (int blk = 0; blk < blocks; blk++) {
            int p = blk * BLOCK;
            FloatVector scale = FloatVector.broadcast(F, sc[scOff + blk]);
            for (int q = 0; q < BLOCK; q += VL) {
                s0 = widen(quants, r0 + p + q).mul(scale).fma(FloatVector.fromArray(F, x, xOff + p + q), s0);
            }
        }
        return GemmVector.sum(s0);
    }

    /** count F16 scales from block {@code first} into {@code out[outOff ..]} as float. */
    private static void readScales(MemorySegment scales, long first, int count, float[] out, int outOff) {
        for (int i = 0; i < count; i++) {
            out[outOff + i] = HALF_TO_FLOAT[scales.get(F16_LE, (first + i) * 2) & 0xFFFF];
        }
    }

    /** VL int8 quants from byte {@code at}, sign-extended to float lanes. */
    private static FloatVector widen(MemorySegment quants, long at) {
        return (FloatVector) ByteVector.fromMemorySegment(B, quants, at, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.B2F, F, 0);
    }

    /** The float value of F16 bits, through the table. */
    static float halfToFloat(short bits) {
        return HALF_TO_FLOAT[bits & 0xFFFF];
    }

    private static FloatVector scale(MemorySegment scales, long block) {
        return FloatVector.broadcast(F, HALF_TO_FLOAT[scales.get(F16_LE, block * 2) & 0xFFFF]);
    }

    /**
     * The float value of every F16 bit pattern (256 KiB; ggml keeps the same table). A block scale then costs one
     * load, where {@link Float#float16ToFloat} took a move, a conversion and a broadcast per block and row: 4096-wide
     * rows from L2 on one Zen 5 core 44 -> 53 GB/s (13824-wide 44 -> 49). Streaming from DRAM on two cores it made
     * no difference here (76-77 % of the paired bound either way): that is limited by how the loads overlap, but a
     * core with half the vector width (AVX2) spends twice the instructions per byte and gets the saving.
     */
    private static final float[] HALF_TO_FLOAT = halfToFloatTable();

    private static float[] halfToFloatTable() {
        float[] table = new float[1 << 16];
        for (int bits = 0; bits < table.length; bits++) {
            table[bits] = Float.float16ToFloat((short) bits);
        }
        return table;
    }

    // ---- dequantisation

    /** Values of elements [from, from + len) of {@code w} into {@code out[outOff ..]}; blocks need not be whole. */
    static void dequantize(Q8Storage w, long from, int len, float[] out, int outOff) {
        int i = 0;
        if (VECTOR) {
            // ragged head up to a block boundary, then whole blocks as vectors
            int head = (int) Math.min(len, (BLOCK - from % BLOCK) % BLOCK);
            Q8.dequantize(w, from, out, outOff, head);
            i = head;
            MemorySegment quants = w.quants();
            MemorySegment scales = w.scales();
            for (; i + BLOCK <= len; i += BLOCK) {
                long at = from + i;
                FloatVector d = scale(scales, at / BLOCK);
                for (int s = 0; s < BLOCK; s += VL) {
                    widen(quants, at + s).mul(d).intoArray(out, outOff + i + s);
                }
            }
        }
        Q8.dequantize(w, from + i, out, outOff + i, len - i);
    }

    /** All of {@code n} elements from {@code from} as a new float array, on all threads. */
    static float[] dequantize(Q8Storage w, long from, int n) {
        return values((at, len, out, off) -> dequantize(w, at, len, out, off), from, n);
    }

    /** {@code n} elements from {@code from} of a quantised weight read by {@code rows}, on all threads. */
    static float[] values(Panels.Rows rows, long from, int n) {
        float[] out = new float[n];
        int chunk = 1 << 16;
        Parallel.forRange(Gemm.ceilDiv(n, chunk), 1, (a, b) -> {
            for (int c = a; c < b; c++) {
                int at = c * chunk;
                rows.read(from + at, Math.min(chunk, n - at), out, at);
            }
        });
        return out;
    }

    /** Quantises {@code n} values of {@code src} (n a multiple of 32) into new storage, blocks split over threads. */
    static Q8Storage quantize(FloatSource src, long from, long n) {
        Q8Storage dst = Q8.allocate(n);
        quantizeBlocks(src, from, n, (buf, off, block) -> Q8.quantizeBlock(buf, off, dst, block));
        return dst;
    }

    /** Quantises one block of 32 values from {@code buf[off ..]} into block {@code block} of its storage. */
    @FunctionalInterface
    interface BlockWriter {
        void write(float[] buf, int off, long block);
    }

    /** Reads {@code n} values of {@code src} (n a multiple of 32) and hands each block to {@code writer}, in parallel. */
    static void quantizeBlocks(FloatSource src, long from, long n, BlockWriter writer) {
        long blocks = n / BLOCK;
        int perTask = 1 << 12;
        long tasks = (blocks + perTask - 1) / perTask;
        if (tasks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("quantisation of " + n + " values is too large");
        }
        Parallel.forRange((int) tasks, 1, (a, b) -> {
            float[] buf = new float[perTask * BLOCK];
            for (int t = a; t < b; t++) {
                long b0 = (long) t * perTask;
                int count = (int) Math.min(perTask, blocks - b0);
                src.read(from + b0 * BLOCK, buf, 0, count * BLOCK);
                for (int q = 0; q < count; q++) {
                    writer.write(buf, q * BLOCK, b0 + q);
                }
            }
        });
    }

    /**
     * op(B) = Wᵀ for the blocked GEMM over a quantised W [n, k]: column j of op(B) is row j of W, turned into floats
     * by {@code rows} while it is packed (Q8_0 and Q4_0 alike).
     */
    static final class Panels extends GemmPacking.BPanels {

        /** Elements [from, from + len) of the weight's storage as floats into {@code out[off ..]}. */
        @FunctionalInterface
        interface Rows {
            void read(long from, int len, float[] out, int off);
        }

        private final Rows rows;
        private final long offset;
        private final int k;

        Panels(Rows rows, long offset, int k) {
            this.rows = rows;
            this.offset = offset;
            this.k = k;
        }

        @Override
        void pack(int b, int p0, int kc, int j0, int nc, float[] dst) {
            float[] col = GemmWorkspace.get().row(kc);
            for (int q = 0; q * NR < nc; q++) {
                int d0 = q * kc * NR;
                int width = Math.min(NR, nc - q * NR);
                for (int jj = 0; jj < width; jj++) {
                    rows.read(offset + (long) (j0 + q * NR + jj) * k + p0, kc, col, 0);
                    for (int p = 0, d = d0 + jj; p < kc; p++, d += NR) {
                        dst[d] = col[p];
                    }
                }
                if (width < NR) {
                    for (int p = 0; p < kc; p++) {
                        Arrays.fill(dst, d0 + p * NR + width, d0 + p * NR + NR, 0f);
                    }
                }
            }
        }
    }
}
