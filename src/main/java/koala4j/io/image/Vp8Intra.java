package koala4j.io.image;

import java.util.Arrays;

/**
 * VP8 intra prediction and inverse transforms (RFC 6386 sections 12 and 14) on an {@code int} sample buffer: a
 * predictor writes the block at {@code off} from the row above ({@code off - stride}, which for 4x4 blocks extends
 * four samples past the block: the "above-right" pixels) and the column to the left; the caller lays out those
 * edges with libwebp's values for missing neighbours (127 above the frame, 129 left of it).
 */
final class Vp8Intra {

    private Vp8Intra() {
    }

    /** 16x16 and chroma modes (libwebp {@code DC_PRED..H_PRED}, equal to the first four 4x4 modes). */
    static final int DC_PRED = 0;
    static final int TM_PRED = 1;
    static final int V_PRED = 2;
    static final int H_PRED = 3;

    private static int avg3(int a, int b, int c) {
        return (a + 2 * b + c + 2) >> 2;
    }

    private static int avg2(int a, int b) {
        return (a + b + 1) >> 1;
    }

    private static int clip8(int v) {
        return v < 0 ? 0 : Math.min(v, 255);
    }

    private static void fill(int[] b, int off, int stride, int size, int v) {
        for (int y = 0; y < size; y++) {
            Arrays.fill(b, off + y * stride, off + y * stride + size, v);
        }
    }

    /**
     * DC/TM/V/H prediction of a {@code size} x {@code size} block (16 luma, 8 chroma). DC averages only the edges
     * that exist: without the row above (first macroblock row) or the column to the left (first column) the other
     * edge alone, without both 128; TM, V and H use the border values as they are.
     */
    static void predictBlock(int[] b, int off, int stride, int size, int mode, boolean hasTop, boolean hasLeft) {
        int top = off - stride;
        switch (mode) {
            case DC_PRED -> {
                int shift = size == 16 ? 4 : 3;
                int sum = 0;
                for (int i = 0; i < size; i++) {
                    sum += (hasTop ? b[top + i] : 0) + (hasLeft ? b[off + i * stride - 1] : 0);
                }
                int dc;
                if (hasTop && hasLeft) {
                    dc = (sum + size) >> (shift + 1);
                } else if (hasTop || hasLeft) {
                    dc = (sum + (size >> 1)) >> shift;
                } else {
                    dc = 128;
                }
                fill(b, off, stride, size, dc);
            }
            case TM_PRED -> trueMotion(b, off, stride, size);
            case V_PRED -> {
                for (int y = 0; y < size; y++) {
                    System.arraycopy(b, top, b, off + y * stride, size);
                }
            }
            case H_PRED -> {
                for (int y = 0; y < size; y++) {
                    int row = off + y * stride;
                    Arrays.fill(b, row, row + size, b[row - 1]);
                }
            }
            default -> throw new IllegalStateException("intra mode " + mode);
        }
    }

    private static void trueMotion(int[] b, int off, int stride, int size) {
        int top = off - stride;
        int corner = b[top - 1];
        for (int y = 0; y < size; y++) {
            int row = off + y * stride;
            int left = b[row - 1] - corner;
            for (int x = 0; x < size; x++) {
                b[row + x] = clip8(left + b[top + x]);
            }
        }
    }

    /** One of the ten 4x4 modes ({@link Vp8Tables#B_DC_PRED} ...), RFC 6386 section 12.3. */
    static void predict4(int[] b, int off, int s, int mode) {
        int t = off - s;
        int x0 = b[t - 1];
        int a = b[t];
        int bb = b[t + 1];
        int c = b[t + 2];
        int d = b[t + 3];
        int e = b[t + 4];
        int f = b[t + 5];
        int g = b[t + 6];
        int h = b[t + 7];
        int i = b[off - 1];
        int j = b[off + s - 1];
        int k = b[off + 2 * s - 1];
        int l = b[off + 3 * s - 1];
        switch (mode) {
            case Vp8Tables.B_DC_PRED -> fill(b, off, s, 4, (a + bb + c + d + i + j + k + l + 4) >> 3);
            case Vp8Tables.B_TM_PRED -> trueMotion(b, off, s, 4);
            case Vp8Tables.B_VE_PRED -> {
                int[] v = {avg3(x0, a, bb), avg3(a, bb, c), avg3(bb, c, d), avg3(c, d, e)};
                for (int y = 0; y < 4; y++) {
                    System.arraycopy(v, 0, b, off + y * s, 4);
                }
            }
            case Vp8Tables.B_HE_PRED -> {
                int[] v = {avg3(x0, i, j), avg3(i, j, k), avg3(j, k, l), avg3(k, l, l)};
                for (int y = 0; y < 4; y++) {
                    Arrays.fill(b, off + y * s, off + y * s + 4, v[y]);
                }
            }
            case Vp8Tables.B_RD_PRED -> {
                // Edge from bottom-left round the corner to top-right; each pixel smooths the edge sample on its
                // down-right diagonal.
                int[] edge = {l, k, j, i, x0, a, bb, c, d};
                for (int y = 0; y < 4; y++) {
                    for (int x = 0; x < 4; x++) {
                        int n = 4 + x - y;
                        b[off + y * s + x] = avg3(edge[n - 1], edge[n], edge[n + 1]);
                    }
                }
            }
            case Vp8Tables.B_LD_PRED -> {
                int[] edge = {a, bb, c, d, e, f, g, h, h};
                for (int y = 0; y < 4; y++) {
                    for (int x = 0; x < 4; x++) {
                        int n = x + y;
                        b[off + y * s + x] = avg3(edge[n], edge[n + 1], edge[n + 2]);
                    }
                }
            }
            case Vp8Tables.B_VR_PRED -> {
                put(b, off, s, avg2(x0, a), 0, 0, 1, 2);
                put(b, off, s, avg2(a, bb), 1, 0, 2, 2);
                put(b, off, s, avg2(bb, c), 2, 0, 3, 2);
                put(b, off, s, avg2(c, d), 3, 0);
                put(b, off, s, avg3(k, j, i), 0, 3);
                put(b, off, s, avg3(j, i, x0), 0, 2);
                put(b, off, s, avg3(i, x0, a), 0, 1, 1, 3);
                put(b, off, s, avg3(x0, a, bb), 1, 1, 2, 3);
                put(b, off, s, avg3(a, bb, c), 2, 1, 3, 3);
                put(b, off, s, avg3(bb, c, d), 3, 1);
            }
            case Vp8Tables.B_VL_PRED -> {
                put(b, off, s, avg2(a, bb), 0, 0);
                put(b, off, s, avg2(bb, c), 1, 0, 0, 2);
                put(b, off, s, avg2(c, d), 2, 0, 1, 2);
                put(b, off, s, avg2(d, e), 3, 0, 2, 2);
                put(b, off, s, avg3(a, bb, c), 0, 1);
                put(b, off, s, avg3(bb, c, d), 1, 1, 0, 3);
                put(b, off, s, avg3(c, d, e), 2, 1, 1, 3);
                put(b, off, s, avg3(d, e, f), 3, 1, 2, 3);
                // RFC 6386 12.3: the last two break the pattern (they are not avg2(e, f) and avg3(e, f, g)).
                put(b, off, s, avg3(e, f, g), 3, 2);
                put(b, off, s, avg3(f, g, h), 3, 3);
            }
            case Vp8Tables.B_HD_PRED -> {
                put(b, off, s, avg2(i, x0), 0, 0, 2, 1);
                put(b, off, s, avg2(j, i), 0, 1, 2, 2);
                put(b, off, s, avg2(k, j), 0, 2, 2, 3);
                put(b, off, s, avg2(l, k), 0, 3);
                put(b, off, s, avg3(a, bb, c), 3, 0);
                put(b, off, s, avg3(x0, a, bb), 2, 0);
                put(b, off, s, avg3(i, x0, a), 1, 0, 3, 1);
                put(b, off, s, avg3(j, i, x0), 1, 1, 3, 2);
                put(b, off, s, avg3(k, j, i), 1, 2, 3, 3);
                put(b, off, s, avg3(l, k, j), 1, 3);
            }
            case Vp8Tables.B_HU_PRED -> {
                put(b, off, s, avg2(i, j), 0, 0);
                put(b, off, s, avg2(j, k), 2, 0, 0, 1);
                put(b, off, s, avg2(k, l), 2, 1, 0, 2);
                put(b, off, s, avg3(i, j, k), 1, 0);
                put(b, off, s, avg3(j, k, l), 3, 0, 1, 1);
                put(b, off, s, avg3(k, l, l), 3, 1, 1, 2);
                put(b, off, s, l, 3, 2, 2, 2);
                put(b, off, s, l, 0, 3, 1, 3);
                put(b, off, s, l, 2, 3, 3, 3);
            }
            default -> throw new IllegalStateException("4x4 intra mode " + mode);
        }
    }

    /** Writes {@code v} at the (x, y) pairs given. */
    private static void put(int[] b, int off, int s, int v, int... xy) {
        for (int n = 0; n < xy.length; n += 2) {
            b[off + xy[n + 1] * s + xy[n]] = v;
        }
    }

    /**
     * Inverse Walsh-Hadamard transform of the Y2 block (RFC 6386 14.3): its 16 outputs become the DC coefficients
     * ({@code coeffs[16 * n]}) of the 16 luma blocks, stored as 16-bit values as libwebp stores them.
     */
    static void inverseWht(short[] in, short[] coeffs) {
        int[] tmp = new int[16];
        for (int i = 0; i < 4; i++) {
            int a0 = in[i] + in[12 + i];
            int a1 = in[4 + i] + in[8 + i];
            int a2 = in[4 + i] - in[8 + i];
            int a3 = in[i] - in[12 + i];
            tmp[i] = a0 + a1;
            tmp[8 + i] = a0 - a1;
            tmp[4 + i] = a3 + a2;
            tmp[12 + i] = a3 - a2;
        }
        for (int i = 0; i < 4; i++) {
            int dc = tmp[i * 4] + 3;
            int a0 = dc + tmp[i * 4 + 3];
            int a1 = tmp[i * 4 + 1] + tmp[i * 4 + 2];
            int a2 = tmp[i * 4 + 1] - tmp[i * 4 + 2];
            int a3 = dc - tmp[i * 4 + 3];
            coeffs[(i * 4) * 16] = (short) ((a0 + a1) >> 3);
            coeffs[(i * 4 + 1) * 16] = (short) ((a3 + a2) >> 3);
            coeffs[(i * 4 + 2) * 16] = (short) ((a0 - a1) >> 3);
            coeffs[(i * 4 + 3) * 16] = (short) ((a3 - a2) >> 3);
        }
    }

    // RFC 6386 14.4: multiplication by sqrt(2)*cos(pi/8) and sqrt(2)*sin(pi/8) in 16-bit fixed point.
    private static int mulCos(int a) {
        return ((a * 20091) >> 16) + a;
    }

    private static int mulSin(int a) {
        return (a * 35468) >> 16;
    }

    /**
     * Inverse DCT of the 4x4 block {@code coeffs[c, c + 16)} added to the prediction at {@code off} (RFC 6386 14.4):
     * columns first, then rows with the rounding term, then {@code >> 3} and clamping. A DC-only block gives
     * {@code (dc + 4) >> 3} everywhere, as libwebp's shortcut does.
     */
    static void inverseDctAdd(short[] coeffs, int c, int[] b, int off, int stride) {
        int[] tmp = new int[16];
        for (int col = 0; col < 4; col++) {
            int i0 = coeffs[c + col];
            int i1 = coeffs[c + 4 + col];
            int i2 = coeffs[c + 8 + col];
            int i3 = coeffs[c + 12 + col];
            int a = i0 + i2;
            int bq = i0 - i2;
            int cq = mulSin(i1) - mulCos(i3);
            int d = mulCos(i1) + mulSin(i3);
            tmp[col * 4] = a + d;
            tmp[col * 4 + 1] = bq + cq;
            tmp[col * 4 + 2] = bq - cq;
            tmp[col * 4 + 3] = a - d;
        }
        for (int row = 0; row < 4; row++) {
            int dc = tmp[row] + 4;
            int a = dc + tmp[8 + row];
            int bq = dc - tmp[8 + row];
            int cq = mulSin(tmp[4 + row]) - mulCos(tmp[12 + row]);
            int d = mulCos(tmp[4 + row]) + mulSin(tmp[12 + row]);
            int p = off + row * stride;
            b[p] = clip8(b[p] + ((a + d) >> 3));
            b[p + 1] = clip8(b[p + 1] + ((bq + cq) >> 3));
            b[p + 2] = clip8(b[p + 2] + ((bq - cq) >> 3));
            b[p + 3] = clip8(b[p + 3] + ((a - d) >> 3));
        }
    }
}
