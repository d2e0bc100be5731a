package koala4j.io.image;

/**
 * VP8 loop filter (RFC 6386 section 15) over whole decoded planes, in libwebp's order (src/dec/frame_dec.c
 * {@code DoFilter}, src/dsp/dec.c): macroblocks in raster order, and in each the left edge, the inner vertical
 * edges, the top edge, then the inner horizontal edges. Each edge reads pixels that earlier edges changed, so the
 * order is part of the result.
 */
final class Vp8LoopFilter {

    private Vp8LoopFilter() {
    }

    /** Filter parameters of one macroblock; {@code limit == 0}: not filtered. */
    record Strength(int limit, int interiorLimit, int hevThreshold, boolean inner) {
    }

    /**
     * libwebp {@code PrecomputeFilterStrengths}: the level of a segment (absolute, or a delta on the frame level),
     * plus the reference-frame delta and, for 4x4-predicted macroblocks, the first mode delta; sharpness lowers the
     * interior limit.
     */
    static Strength strength(int level, int sharpness, boolean i4x4, boolean hasCoefficients) {
        level = Math.clamp(level, 0, 63);
        if (level == 0) {
            return new Strength(0, 0, 0, false);
        }
        int interior = level;
        if (sharpness > 0) {
            interior >>= sharpness > 4 ? 2 : 1;
            interior = Math.min(interior, 9 - sharpness);
        }
        interior = Math.max(interior, 1);
        int hev = level >= 40 ? 2 : level >= 15 ? 1 : 0;
        return new Strength(2 * level + interior, interior, hev, i4x4 || hasCoefficients);
    }

    /** Filters the macroblock at (mbX, mbY) of planes with the given strides. */
    static void filterMacroblock(boolean simple, Strength st, int mbX, int mbY, byte[] y, int yStride, byte[] u,
            byte[] v, int uvStride) {
        if (st.limit() == 0) {
            return;
        }
        int yOff = mbY * 16 * yStride + mbX * 16;
        int uvOff = mbY * 8 * uvStride + mbX * 8;
        int edge = st.limit() + 4;
        int inner = st.limit();
        int il = st.interiorLimit();
        int hev = st.hevThreshold();
        if (simple) {
            if (mbX > 0) {
                simpleEdge(y, yOff, 1, yStride, edge);
            }
            if (st.inner()) {
                for (int x = 4; x < 16; x += 4) {
                    simpleEdge(y, yOff + x, 1, yStride, inner);
                }
            }
            if (mbY > 0) {
                simpleEdge(y, yOff, yStride, 1, edge);
            }
            if (st.inner()) {
                for (int r = 4; r < 16; r += 4) {
                    simpleEdge(y, yOff + r * yStride, yStride, 1, inner);
                }
            }
            return;
        }
        if (mbX > 0) {
            macroblockEdge(y, yOff, 1, yStride, 16, edge, il, hev);
            macroblockEdge(u, uvOff, 1, uvStride, 8, edge, il, hev);
            macroblockEdge(v, uvOff, 1, uvStride, 8, edge, il, hev);
        }
        if (st.inner()) {
            for (int x = 4; x < 16; x += 4) {
                innerEdge(y, yOff + x, 1, yStride, 16, inner, il, hev);
            }
            innerEdge(u, uvOff + 4, 1, uvStride, 8, inner, il, hev);
            innerEdge(v, uvOff + 4, 1, uvStride, 8, inner, il, hev);
        }
        if (mbY > 0) {
            macroblockEdge(y, yOff, yStride, 1, 16, edge, il, hev);
            macroblockEdge(u, uvOff, uvStride, 1, 8, edge, il, hev);
            macroblockEdge(v, uvOff, uvStride, 1, 8, edge, il, hev);
        }
        if (st.inner()) {
            for (int r = 4; r < 16; r += 4) {
                innerEdge(y, yOff + r * yStride, yStride, 1, 16, inner, il, hev);
            }
            innerEdge(u, uvOff + 4 * uvStride, uvStride, 1, 8, inner, il, hev);
            innerEdge(v, uvOff + 4 * uvStride, uvStride, 1, 8, inner, il, hev);
        }
    }

    // p points at q0, the first pixel after the edge; step crosses the edge, along runs along it.

    private static void simpleEdge(byte[] b, int p, int step, int along, int limit) {
        int threshold = 2 * limit + 1;
        for (int i = 0; i < 16; i++, p += along) {
            if (edgeDifference(b, p, step) <= threshold) {
                commonAdjust(b, p, step);
            }
        }
    }

    private static void macroblockEdge(byte[] b, int p, int step, int along, int size, int limit, int interior,
            int hevThreshold) {
        normalEdge(b, p, step, along, size, limit, interior, hevThreshold, true);
    }

    private static void innerEdge(byte[] b, int p, int step, int along, int size, int limit, int interior,
            int hevThreshold) {
        normalEdge(b, p, step, along, size, limit, interior, hevThreshold, false);
    }

    /**
     * The normal filter along one edge: where the edge has high variance only p0 and q0 move; elsewhere three pixels
     * each side on macroblock edges, two on inner edges.
     */
    private static void normalEdge(byte[] b, int p, int step, int along, int size, int limit, int interior,
            int hevThreshold, boolean macroblock) {
        int threshold = 2 * limit + 1;
        for (int i = 0; i < size; i++, p += along) {
            if (!needsFilter(b, p, step, threshold, interior)) {
                continue;
            }
            if (highEdgeVariance(b, p, step, hevThreshold)) {
                commonAdjust(b, p, step);
            } else if (macroblock) {
                macroblockAdjust(b, p, step);
            } else {
                subblockAdjust(b, p, step);
            }
        }
    }

    private static int px(byte[] b, int i) {
        return b[i] & 0xFF;
    }

    private static int edgeDifference(byte[] b, int p, int step) {
        return 4 * Math.abs(px(b, p - step) - px(b, p)) + Math.abs(px(b, p - 2 * step) - px(b, p + step));
    }

    private static boolean needsFilter(byte[] b, int p, int step, int threshold, int interior) {
        if (edgeDifference(b, p, step) > threshold) {
            return false;
        }
        int p3 = px(b, p - 4 * step);
        int p2 = px(b, p - 3 * step);
        int p1 = px(b, p - 2 * step);
        int p0 = px(b, p - step);
        int q0 = px(b, p);
        int q1 = px(b, p + step);
        int q2 = px(b, p + 2 * step);
        int q3 = px(b, p + 3 * step);
        return Math.abs(p3 - p2) <= interior && Math.abs(p2 - p1) <= interior && Math.abs(p1 - p0) <= interior
                && Math.abs(q3 - q2) <= interior && Math.abs(q2 - q1) <= interior && Math.abs(q1 - q0) <= interior;
    }

    private static boolean highEdgeVariance(byte[] b, int p, int step, int threshold) {
        return Math.abs(px(b, p - 2 * step) - px(b, p - step)) > threshold
                || Math.abs(px(b, p + step) - px(b, p)) > threshold;
    }

    /** Signed-byte clamp, RFC 6386 {@code c()}. */
    private static int s8(int v) {
        return Math.clamp(v, -128, 127);
    }

    private static byte u8(int v) {
        return (byte) Math.clamp(v, 0, 255);
    }

    /** RFC 6386 {@code common_adjust} with the outer taps (the p1 - q1 term): moves p0 and q0 only. */
    private static void commonAdjust(byte[] b, int p, int step) {
        int p1 = px(b, p - 2 * step);
        int p0 = px(b, p - step);
        int q0 = px(b, p);
        int q1 = px(b, p + step);
        int a = 3 * (q0 - p0) + s8(p1 - q1);
        int f1 = s8(a + 4) >> 3;
        int f2 = s8(a + 3) >> 3;
        b[p - step] = u8(p0 + f2);
        b[p] = u8(q0 - f1);
    }

    /** Inner edges without high variance: p1, p0, q0, q1 move (libwebp {@code do_filter4}). */
    private static void subblockAdjust(byte[] b, int p, int step) {
        int p1 = px(b, p - 2 * step);
        int p0 = px(b, p - step);
        int q0 = px(b, p);
        int q1 = px(b, p + step);
        int a = 3 * (q0 - p0);
        int f1 = s8(a + 4) >> 3;
        int f2 = s8(a + 3) >> 3;
        int f3 = (f1 + 1) >> 1;
        b[p - 2 * step] = u8(p1 + f3);
        b[p - step] = u8(p0 + f2);
        b[p] = u8(q0 - f1);
        b[p + step] = u8(q1 - f3);
    }

    /** Macroblock edges without high variance: three pixels each side move, weights 27, 18, 9 (/128). */
    private static void macroblockAdjust(byte[] b, int p, int step) {
        int p2 = px(b, p - 3 * step);
        int p1 = px(b, p - 2 * step);
        int p0 = px(b, p - step);
        int q0 = px(b, p);
        int q1 = px(b, p + step);
        int q2 = px(b, p + 2 * step);
        int w = s8(3 * (q0 - p0) + s8(p1 - q1));
        int a1 = (27 * w + 63) >> 7;
        int a2 = (18 * w + 63) >> 7;
        int a3 = (9 * w + 63) >> 7;
        b[p - 3 * step] = u8(p2 + a3);
        b[p - 2 * step] = u8(p1 + a2);
        b[p - step] = u8(p0 + a1);
        b[p] = u8(q0 - a1);
        b[p + step] = u8(q1 - a2);
        b[p + 2 * step] = u8(q2 - a3);
    }
}
