package koala4j.io.image;

/**
 * libwebp's default RGB output of decoded planes: "fancy" upsampling of the half-resolution chroma (src/dsp/
 * upsampling.c {@code UPSAMPLE_FUNC} driven by src/dec/io_dec.c {@code EmitFancyRGB}) and its fixed-point BT.601
 * conversion (src/dsp/yuv.h {@code VP8YuvToRgb}).
 *
 * <p>Each output pixel's chroma is a 9:3:3:1 blend of the four nearest chroma samples, nearest weighted most. Output
 * row 0 uses chroma row 0 alone, rows {@code 2k-1} and {@code 2k} blend chroma rows {@code k-1} and {@code k}, and
 * the last row of an even height uses the last chroma row alone (libwebp mirrors the edge rows).
 */
final class Vp8Upsampler {

    private Vp8Upsampler() {
    }

    static Image toRgb(Vp8Decoder.Planes planes) {
        int w = planes.width();
        int h = planes.height();
        byte[] out = new byte[Math.multiplyExact(w * h, 3)];
        int uvRows = (h + 1) / 2;
        int[] topU = new int[w];
        int[] topV = new int[w];
        int[] curU = new int[w];
        int[] curV = new int[w];
        // Row 0: chroma row 0 against itself.
        upsampleRow(planes, 0, 0, true, topU, topV);
        convertRow(planes, 0, topU, topV, out);
        for (int k = 1; k < uvRows; k++) {
            // Output rows 2k-1 (nearer chroma row k-1) and 2k (nearer row k).
            upsampleRow(planes, k - 1, k, true, topU, topV);
            convertRow(planes, 2 * k - 1, topU, topV, out);
            if (2 * k < h) {
                upsampleRow(planes, k - 1, k, false, curU, curV);
                convertRow(planes, 2 * k, curU, curV, out);
            }
        }
        if (h > 1 && (h & 1) == 0) {
            upsampleRow(planes, uvRows - 1, uvRows - 1, true, topU, topV);
            convertRow(planes, h - 1, topU, topV, out);
        }
        return new Image(w, h, 3, out);
    }

    /**
     * Chroma for one output row between chroma rows {@code above} and {@code below}: the row nearer {@code above}
     * when {@code upper}, else the one nearer {@code below}.
     */
    private static void upsampleRow(Vp8Decoder.Planes planes, int above, int below, boolean upper, int[] u, int[] v) {
        int w = planes.width();
        blend(planes.u(), planes.uvStride(), above, below, upper, w, u);
        blend(planes.v(), planes.uvStride(), above, below, upper, w, v);
    }

    private static void blend(byte[] plane, int stride, int above, int below, boolean upper, int w, int[] dst) {
        int near = (upper ? above : below) * stride;
        int far = (upper ? below : above) * stride;
        int nearLeft = plane[near] & 0xFF;
        int farLeft = plane[far] & 0xFF;
        dst[0] = (3 * nearLeft + farLeft + 2) >> 2;
        int pairs = (w - 1) >> 1;
        for (int x = 1; x <= pairs; x++) {
            int nearRight = plane[near + x] & 0xFF;
            int farRight = plane[far + x] & 0xFF;
            // libwebp's two-step rounding: the diagonal averages first, then the nearest sample.
            int sum = nearLeft + nearRight + farLeft + farRight + 8;
            int diagNearRightFarLeft = (sum + 2 * (nearRight + farLeft)) >> 3;
            int diagNearLeftFarRight = (sum + 2 * (nearLeft + farRight)) >> 3;
            dst[2 * x - 1] = (diagNearRightFarLeft + nearLeft) >> 1;
            dst[2 * x] = (diagNearLeftFarRight + nearRight) >> 1;
            nearLeft = nearRight;
            farLeft = farRight;
        }
        if ((w & 1) == 0) {
            dst[w - 1] = (3 * nearLeft + farLeft + 2) >> 2;
        }
    }

    private static void convertRow(Vp8Decoder.Planes planes, int row, int[] u, int[] v, byte[] out) {
        int w = planes.width();
        int yRow = row * planes.yStride();
        int o = row * w * 3;
        for (int x = 0; x < w; x++) {
            int y = planes.y()[yRow + x] & 0xFF;
            int luma = mulHi(y, 19077);
            out[o++] = (byte) clip(luma + mulHi(v[x], 26149) - 14234);
            out[o++] = (byte) clip(luma - mulHi(u[x], 6419) - mulHi(v[x], 13320) + 8708);
            out[o++] = (byte) clip(luma + mulHi(u[x], 33050) - 17685);
        }
    }

    private static int mulHi(int v, int coefficient) {
        return (v * coefficient) >> 8;
    }

    /** libwebp {@code VP8Clip8}: 14-bit fixed point with 6 fraction bits to 0..255. */
    private static int clip(int v) {
        return (v & ~((256 << 6) - 1)) == 0 ? v >> 6 : v < 0 ? 0 : 255;
    }
}
