package koala4j.io.image;

import java.util.Arrays;

/**
 * The coefficient tokens of one macroblock after another (RFC 6386 section 13; libwebp src/dec/vp8_dec.c
 * {@code ParseResiduals}, {@code GetCoeffs}): token trees with contexts from the neighbouring blocks' non-zero
 * flags, dequantisation, and the Y2 block's inverse WHT into the luma DC coefficients.
 */
final class Vp8Residuals {

    private final int[] coeffProbs;


    // Non-zero flags of the blocks above (per macroblock column) and to the left: the token contexts.
    private final int[] topNzY;
    private final int[] topNzU;
    private final int[] topNzV;
    private final int[] topNzDc;
    private final int[] leftNzY = new int[4];
    private final int[] leftNzU = new int[2];
    private final int[] leftNzV = new int[2];
    private int leftNzDc;

    /** 24 blocks of 16 coefficients: Y 0-15 in raster order, U 16-19, V 20-23. */
    private final short[] coeffs = new short[384];
    private final short[] y2 = new short[16];
    /** Per block, whether its inverse transform changes anything (it has a non-zero coefficient). */
    private final boolean[] blockNonZero = new boolean[24];

    Vp8Residuals(int[] coeffProbs, int mbW) {
        this.coeffProbs = coeffProbs;
        topNzY = new int[mbW * 4];
        topNzU = new int[mbW * 2];
        topNzV = new int[mbW * 2];
        topNzDc = new int[mbW];
    }

    /**
     * Reads the coefficient tokens of one macroblock (RFC 6386 13, libwebp {@code ParseResiduals}); returns whether
     * any coefficient was coded, which turns on the loop filter's inner edges.
     */
    boolean parse(Vp8BoolDecoder br, int mbX, boolean i4x4, int[] y1Quant, int[] y2Quant, int[] uvQuant) {
        Arrays.fill(coeffs, (short) 0);
        boolean any = false;
        int first;
        int yType;
        if (!i4x4) {
            Arrays.fill(y2, (short) 0);
            int nz = coefficients(br, 1, topNzDc[mbX] + leftNzDc, y2Quant, 0, y2, 0);
            topNzDc[mbX] = leftNzDc = nz > 0 ? 1 : 0;
            Vp8Intra.inverseWht(y2, coeffs);
            first = 1;
            yType = 0;
        } else {
            first = 0;
            yType = 3;
        }
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 4; x++) {
                int block = y * 4 + x;
                int ctx = leftNzY[y] + topNzY[mbX * 4 + x];
                int nz = coefficients(br, yType, ctx, y1Quant, first, coeffs, block * 16);
                int flag = nz > first ? 1 : 0;
                leftNzY[y] = flag;
                topNzY[mbX * 4 + x] = flag;
                // libwebp's per-block code: beyond the DC position, or a non-zero DC (which may come from Y2).
                blockNonZero[block] = nz > 1 || coeffs[block * 16] != 0;
                any |= blockNonZero[block];
            }
        }
        any |= chroma(br, mbX, uvQuant, 16, topNzU, leftNzU);
        any |= chroma(br, mbX, uvQuant, 20, topNzV, leftNzV);
        return any;
    }

    private boolean chroma(Vp8BoolDecoder br, int mbX, int[] uvQuant, int firstBlock, int[] top, int[] left) {
        boolean any = false;
        for (int y = 0; y < 2; y++) {
            for (int x = 0; x < 2; x++) {
                int block = firstBlock + y * 2 + x;
                int nz = coefficients(br, 2, left[y] + top[mbX * 2 + x], uvQuant, 0, coeffs, block * 16);
                int flag = nz > 0 ? 1 : 0;
                left[y] = flag;
                top[mbX * 2 + x] = flag;
                blockNonZero[block] = nz > 1 || coeffs[block * 16] != 0;
                any |= blockNonZero[block];
            }
        }
        return any;
    }

    /**
     * The tokens of one 4x4 block from position {@code n} (RFC 6386 13.2/13.3): dequantised into
     * {@code out[off + zigzag]} as 16-bit values, as libwebp stores them. Returns the position after the last
     * coded token (16 when a run of zeros reaches the end).
     */
    private int coefficients(Vp8BoolDecoder br, int type, int ctx, int[] quant, int n, short[] out, int off) {
        int p = Vp8Tables.coeffIndex(type, Vp8Tables.BANDS[n], ctx, 0);
        int[] probs = coeffProbs;
        while (n < 16) {
            if (br.getBit(probs[p]) == 0) {
                return n;   // end of block
            }
            while (br.getBit(probs[p + 1]) == 0) {
                if (++n == 16) {
                    return 16;
                }
                p = Vp8Tables.coeffIndex(type, Vp8Tables.BANDS[n], 0, 0);
            }
            int v;
            int nextCtx;
            if (br.getBit(probs[p + 2]) == 0) {
                v = 1;
                nextCtx = 1;
            } else {
                v = largeValue(br, p);
                nextCtx = 2;
            }
            out[off + Vp8Tables.ZIGZAG[n]] = (short) (br.signed(v) * quant[n > 0 ? 1 : 0]);
            n++;
            p = Vp8Tables.coeffIndex(type, Vp8Tables.BANDS[n], nextCtx, 0);
        }
        return 16;
    }

    /** Token values from 2 up: DCT_2..4, and the categories with extra bits (RFC 6386 13.2). */
    private int largeValue(Vp8BoolDecoder br, int p) {
        int[] probs = coeffProbs;
        if (br.getBit(probs[p + 3]) == 0) {
            return br.getBit(probs[p + 4]) == 0 ? 2 : 3 + br.getBit(probs[p + 5]);
        }
        if (br.getBit(probs[p + 6]) == 0) {
            if (br.getBit(probs[p + 7]) == 0) {
                return 5 + br.getBit(159);
            }
            int v = 7 + 2 * br.getBit(165);
            return v + br.getBit(145);
        }
        int high = br.getBit(probs[p + 8]);
        int cat = 2 * high + br.getBit(probs[p + 9 + high]);
        int v = 0;
        for (int prob : Vp8Tables.CAT_PROBS[cat]) {
            v = 2 * v + br.getBit(prob);
        }
        return v + 3 + (8 << cat);
    }

    /** The last macroblock's 24 dequantised blocks: Y 0-15, U 16-19, V 20-23. */
    short[] coeffs() {
        return coeffs;
    }

    /** Which of {@link #coeffs()}'s blocks need an inverse transform. */
    boolean[] blockNonZero() {
        return blockNonZero;
    }

    /** A new macroblock row: nothing to the left. */
    void startRow() {
        clearLeft();
        leftNzDc = 0;
    }

    /**
     * A macroblock coded with the skip flag: no coefficients, and its blocks count as zero for the contexts (the Y2
     * flag only when it has a Y2 block, i.e. is not 4x4-predicted). Returns false (nothing coded).
     */
    boolean skip(int mbX, boolean i4x4) {
        Arrays.fill(coeffs, (short) 0);
        Arrays.fill(blockNonZero, false);
        clearLeft();
        Arrays.fill(topNzY, mbX * 4, mbX * 4 + 4, 0);
        Arrays.fill(topNzU, mbX * 2, mbX * 2 + 2, 0);
        Arrays.fill(topNzV, mbX * 2, mbX * 2 + 2, 0);
        if (!i4x4) {
            topNzDc[mbX] = 0;
            leftNzDc = 0;
        }
        return false;
    }

    private void clearLeft() {
        Arrays.fill(leftNzY, 0);
        Arrays.fill(leftNzU, 0);
        Arrays.fill(leftNzV, 0);
    }
}
