package koala4j.io.image;

import java.util.Arrays;

/**
 * Prediction plus residual for one macroblock at a time (libwebp src/dec/frame_dec.c {@code ReconstructRow}),
 * writing unfiltered samples into the planes: the loop filter runs after the whole frame, so the neighbours read
 * here are unfiltered, as VP8 intra prediction requires.
 *
 * <p>Each macroblock is built in a small work buffer holding the column to its left, the row above (for luma with
 * four more "above-right" samples) and the corner, filled with libwebp's values where the frame has no neighbour:
 * 127 above the first row (corner and above-right included), 129 left of the first column (corner 129 below the
 * first row). For 4x4 prediction, the above-right samples of the right column of blocks come from the macroblock
 * above and to the right for all four block rows (the blocks to their right are not decoded yet); in the last
 * column, the last sample above the macroblock is repeated instead.
 */
final class Vp8Reconstruction {

    private static final int Y_STRIDE = 1 + 16 + 4;
    private static final int UV_STRIDE = 1 + 8;
    private static final int Y_ORIGIN = Y_STRIDE + 1;
    private static final int UV_ORIGIN = UV_STRIDE + 1;

    private final byte[] yPlane;
    private final int yStride;
    private final byte[] uPlane;
    private final byte[] vPlane;
    private final int uvStride;
    private final int mbW;

    private final int[] yWork = new int[Y_STRIDE * 17];
    private final int[] uWork = new int[UV_STRIDE * 9];
    private final int[] vWork = new int[UV_STRIDE * 9];

    Vp8Reconstruction(byte[] y, int yStride, byte[] u, byte[] v, int uvStride, int mbW) {
        this.yPlane = y;
        this.yStride = yStride;
        this.uPlane = u;
        this.vPlane = v;
        this.uvStride = uvStride;
        this.mbW = mbW;
    }

    /**
     * Reconstructs macroblock (mbX, mbY): {@code modes[modesOff..+16)} are its 4x4 modes, or in
     * {@code modes[modesOff]} its 16x16 mode; {@code coeffs} its 24 dequantised blocks, {@code nonZero} which of
     * them need an inverse transform.
     */
    void macroblock(int mbX, int mbY, boolean i4x4, int[] modes, int modesOff, int uvMode, short[] coeffs,
            boolean[] nonZero) {
        loadEdges(yWork, Y_STRIDE, 16, yPlane, yStride, mbX, mbY);
        loadEdges(uWork, UV_STRIDE, 8, uPlane, uvStride, mbX, mbY);
        loadEdges(vWork, UV_STRIDE, 8, vPlane, uvStride, mbX, mbY);
        if (i4x4) {
            aboveRight(mbX, mbY);
            for (int n = 0; n < 16; n++) {
                int off = Y_ORIGIN + (n >> 2) * 4 * Y_STRIDE + (n & 3) * 4;
                Vp8Intra.predict4(yWork, off, Y_STRIDE, modes[modesOff + n]);
                if (nonZero[n]) {
                    Vp8Intra.inverseDctAdd(coeffs, n * 16, yWork, off, Y_STRIDE);
                }
            }
        } else {
            Vp8Intra.predictBlock(yWork, Y_ORIGIN, Y_STRIDE, 16, modes[modesOff], mbY > 0, mbX > 0);
            for (int n = 0; n < 16; n++) {
                if (nonZero[n]) {
                    int off = Y_ORIGIN + (n >> 2) * 4 * Y_STRIDE + (n & 3) * 4;
                    Vp8Intra.inverseDctAdd(coeffs, n * 16, yWork, off, Y_STRIDE);
                }
            }
        }
        chroma(uWork, uvMode, mbX, mbY, coeffs, nonZero, 16);
        chroma(vWork, uvMode, mbX, mbY, coeffs, nonZero, 20);
        store(yWork, Y_STRIDE, 16, yPlane, yStride, mbX, mbY);
        store(uWork, UV_STRIDE, 8, uPlane, uvStride, mbX, mbY);
        store(vWork, UV_STRIDE, 8, vPlane, uvStride, mbX, mbY);
    }

    private static void chroma(int[] work, int mode, int mbX, int mbY, short[] coeffs, boolean[] nonZero,
            int firstBlock) {
        Vp8Intra.predictBlock(work, UV_ORIGIN, UV_STRIDE, 8, mode, mbY > 0, mbX > 0);
        for (int n = 0; n < 4; n++) {
            if (nonZero[firstBlock + n]) {
                int off = UV_ORIGIN + (n >> 1) * 4 * UV_STRIDE + (n & 1) * 4;
                Vp8Intra.inverseDctAdd(coeffs, (firstBlock + n) * 16, work, off, UV_STRIDE);
            }
        }
    }

    /** Row above (with corner) and column to the left of a size x size block, from the plane or the defaults. */
    private static void loadEdges(int[] work, int ws, int size, byte[] plane, int stride, int mbX, int mbY) {
        int x0 = mbX * size;
        int y0 = mbY * size;
        if (mbY == 0) {
            Arrays.fill(work, 0, ws, 127);
        } else {
            int above = (y0 - 1) * stride + x0;
            work[0] = mbX == 0 ? 129 : plane[above - 1] & 0xFF;
            for (int i = 0; i < size; i++) {
                work[1 + i] = plane[above + i] & 0xFF;
            }
        }
        for (int j = 0; j < size; j++) {
            work[(j + 1) * ws] = mbX == 0 ? 129 : plane[(y0 + j) * stride + x0 - 1] & 0xFF;
        }
    }

    private void aboveRight(int mbX, int mbY) {
        int[] right = new int[4];
        if (mbY == 0) {
            Arrays.fill(right, 127);
        } else {
            int above = (mbY * 16 - 1) * yStride + mbX * 16;
            for (int i = 0; i < 4; i++) {
                right[i] = mbX < mbW - 1 ? yPlane[above + 16 + i] & 0xFF : yPlane[above + 15] & 0xFF;
            }
        }
        // Rows -1, 3, 7 and 11 of the work buffer, columns 16..19.
        for (int r = 0; r < 16; r += 4) {
            System.arraycopy(right, 0, yWork, r * Y_STRIDE + 1 + 16, 4);
        }
    }

    private static void store(int[] work, int ws, int size, byte[] plane, int stride, int mbX, int mbY) {
        for (int j = 0; j < size; j++) {
            int dst = (mbY * size + j) * stride + mbX * size;
            int src = (j + 1) * ws + 1;
            for (int i = 0; i < size; i++) {
                plane[dst + i] = (byte) work[src + i];
            }
        }
    }
}
