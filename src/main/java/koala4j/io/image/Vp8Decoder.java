package koala4j.io.image;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Decodes a VP8 key frame (the payload of a WebP {@code "VP8 "} chunk) into Y, U and V planes exactly as libwebp
 * does (src/dec/vp8_dec.c, tree_dec.c, quant_dec.c, frame_dec.c; RFC 6386): frame and partition headers, per
 * macroblock modes and coefficient tokens, dequantisation, prediction from unfiltered neighbours, inverse
 * transforms, then the loop filter over the whole frame. Not thread-safe: one instance decodes one frame.
 */
final class Vp8Decoder {

    /** Decoded planes; each plane covers whole macroblocks ({@code yStride = 16 * macroblock columns}). */
    record Planes(int width, int height, byte[] y, int yStride, byte[] u, byte[] v, int uvStride) {
    }

    private static final int NUM_SEGMENTS = 4;

    private final Path file;
    private final byte[] data;

    private int width;
    private int height;
    private int mbW;
    private int mbH;

    // Segment header (RFC 6386 9.3).
    private boolean useSegment;
    private boolean updateMap;
    private boolean absoluteDelta = true;
    private final int[] segmentQuantizer = new int[NUM_SEGMENTS];
    private final int[] segmentFilterLevel = new int[NUM_SEGMENTS];
    private final int[] segmentProbs = {255, 255, 255};

    // Filter header (9.4).
    private boolean simpleFilter;
    private int filterLevel;
    private int sharpness;
    private boolean useLfDelta;
    private final int[] refLfDelta = new int[4];
    private final int[] modeLfDelta = new int[4];

    // Quantisation (9.6): per segment, DC and AC factors of Y1, Y2 and UV.
    private final int[][] y1Quant = new int[NUM_SEGMENTS][];
    private final int[][] y2Quant = new int[NUM_SEGMENTS][];
    private final int[][] uvQuant = new int[NUM_SEGMENTS][];

    private final int[] coeffProbs = Vp8Tables.COEFF_PROBS.clone();
    private Vp8Residuals residuals;
    private boolean useSkipProb;
    private int skipProb;

    private Vp8BoolDecoder header;
    private Vp8BoolDecoder[] partitions;

    private Vp8Decoder(Path file, byte[] data) {
        this.file = file;
        this.data = data;
    }

    /**
     * Decodes {@code data[offset, offset + length)}, a VP8 key frame.
     *
     * @throws ImageFileException truncated or corrupt data, an inter frame, or more pixels than {@link Image#MAX_PIXELS}
     */
    static Planes decode(Path file, byte[] data, int offset, int length) throws ImageFileException {
        return new Vp8Decoder(file, data).run(offset, length);
    }

    /** The frame size from the 10-byte key-frame header, without decoding; errors as {@link #decode}. */
    static int[] size(Path file, byte[] data, int offset, int length) throws ImageFileException {
        var d = new Vp8Decoder(file, data);
        d.frameHeader(offset, length);
        return new int[] {d.width, d.height};
    }

    private ImageFileException error(String reason) {
        return new ImageFileException(file, "corrupt WebP (VP8) data: " + reason);
    }

    /** RFC 6386 9.1/9.2; returns the offset of the first partition. */
    private int frameHeader(int offset, int length) throws ImageFileException {
        if (length < 10) {
            throw error("the frame header needs 10 bytes, the VP8 chunk has " + length);
        }
        int bits = (data[offset] & 0xFF) | (data[offset + 1] & 0xFF) << 8 | (data[offset + 2] & 0xFF) << 16;
        if ((bits & 1) != 0) {
            throw new ImageFileException(file, "WebP (VP8) frame is an inter frame, expected a key frame");
        }
        int profile = (bits >> 1) & 7;
        if (profile > 3) {
            throw error("profile " + profile + ", expected 0-3");
        }
        if (((bits >> 4) & 1) == 0) {
            throw error("the frame is marked invisible (show_frame = 0)");
        }
        int partitionLength = bits >>> 5;
        if ((data[offset + 3] & 0xFF) != 0x9d || (data[offset + 4] & 0xFF) != 0x01
                || (data[offset + 5] & 0xFF) != 0x2a) {
            throw error("missing the key-frame start code 9d 01 2a");
        }
        // The top two bits are an upscaling hint that decoders (libwebp included) ignore.
        width = ((data[offset + 7] & 0xFF) << 8 | (data[offset + 6] & 0xFF)) & 0x3fff;
        height = ((data[offset + 9] & 0xFF) << 8 | (data[offset + 8] & 0xFF)) & 0x3fff;
        if (width == 0 || height == 0) {
            throw error("frame size %dx%d, expected width and height >= 1".formatted(width, height));
        }
        long pixels = (long) width * height;
        if (pixels > Image.MAX_PIXELS) {
            throw new ImageFileException(file, ("WEBP image of %dx%d = %d pixels: more than the limit %d"
                    + " (PIL's decompression-bomb limit)").formatted(width, height, pixels, Image.MAX_PIXELS));
        }
        if (partitionLength > length - 10) {
            throw error("first partition of %d bytes, but only %d follow the frame header"
                    .formatted(partitionLength, length - 10));
        }
        mbW = (width + 15) >> 4;
        mbH = (height + 15) >> 4;
        // Every macroblock codes at least two symbols in the first partition (the 4x4 flag at probability 145/256
        // and the chroma mode's first bit at 142/256), each of which narrows the coder's range to at most 0.57 of
        // itself: more than one bit per macroblock. A partition with fewer bits runs out of data for certain (an
        // error in libwebp too), so say so before allocating planes for a frame size that a hostile header made up.
        long macroblocks = (long) mbW * mbH;
        if (macroblocks > 8L * partitionLength + 64) {
            throw error("truncated: a first partition of %d bytes cannot hold the modes of %d macroblocks (%dx%d)"
                    .formatted(partitionLength, macroblocks, width, height));
        }
        header = new Vp8BoolDecoder(data, offset + 10, offset + 10 + partitionLength);
        return offset + 10 + partitionLength;
    }

    private Planes run(int offset, int length) throws ImageFileException {
        int partitionsStart = frameHeader(offset, length);
        header.getValue(1);   // colour space: libwebp ignores it
        header.getValue(1);   // clamping type: the reconstruction clamps either way
        segmentHeader();
        filterHeader();
        if (header.eof()) {
            throw error("the first partition ends inside the segment or filter header");
        }
        tokenPartitions(partitionsStart, offset + length);
        quantizers();
        header.getValue(1);   // refresh_entropy_probs: irrelevant for a single frame
        coefficientProbabilities();
        return frame();
    }

    private void segmentHeader() {
        useSegment = header.getValue(1) != 0;
        if (!useSegment) {
            return;
        }
        updateMap = header.getValue(1) != 0;
        if (header.getValue(1) != 0) {
            absoluteDelta = header.getValue(1) != 0;
            for (int s = 0; s < NUM_SEGMENTS; s++) {
                segmentQuantizer[s] = header.getValue(1) != 0 ? header.getSignedValue(7) : 0;
            }
            for (int s = 0; s < NUM_SEGMENTS; s++) {
                segmentFilterLevel[s] = header.getValue(1) != 0 ? header.getSignedValue(6) : 0;
            }
        }
        if (updateMap) {
            for (int i = 0; i < 3; i++) {
                segmentProbs[i] = header.getValue(1) != 0 ? header.getValue(8) : 255;
            }
        }
    }

    private void filterHeader() {
        simpleFilter = header.getValue(1) != 0;
        filterLevel = header.getValue(6);
        sharpness = header.getValue(3);
        useLfDelta = header.getValue(1) != 0;
        if (useLfDelta && header.getValue(1) != 0) {
            for (int i = 0; i < 4; i++) {
                if (header.getValue(1) != 0) {
                    refLfDelta[i] = header.getSignedValue(6);
                }
            }
            for (int i = 0; i < 4; i++) {
                if (header.getValue(1) != 0) {
                    modeLfDelta[i] = header.getSignedValue(6);
                }
            }
        }
    }

    /**
     * RFC 6386 9.5: 1, 2, 4 or 8 token partitions after the first, all but the last preceded by 3-byte sizes. As in
     * libwebp, a size past the end is cut to the data left, and an empty last partition is an error.
     */
    private void tokenPartitions(int start, int end) throws ImageFileException {
        int count = 1 << header.getValue(2);
        int sizes = 3 * (count - 1);
        if (end - start < sizes) {
            throw error("%d token partitions need %d bytes of sizes, only %d bytes follow the first partition"
                    .formatted(count, sizes, end - start));
        }
        partitions = new Vp8BoolDecoder[count];
        int partStart = start + sizes;
        for (int p = 0; p < count - 1; p++) {
            int at = start + 3 * p;
            int size = (data[at] & 0xFF) | (data[at + 1] & 0xFF) << 8 | (data[at + 2] & 0xFF) << 16;
            size = Math.min(size, end - partStart);
            partitions[p] = new Vp8BoolDecoder(data, partStart, partStart + size);
            partStart += size;
        }
        if (partStart >= end) {
            throw error("truncated: no data left for token partition %d of %d".formatted(count, count));
        }
        partitions[count - 1] = new Vp8BoolDecoder(data, partStart, end);
    }

    private int optionalDelta() {
        return header.getValue(1) != 0 ? header.getSignedValue(4) : 0;
    }

    private void quantizers() {
        int base = header.getValue(7);
        int y1Dc = optionalDelta();
        int y2Dc = optionalDelta();
        int y2Ac = optionalDelta();
        int uvDc = optionalDelta();
        int uvAc = optionalDelta();
        for (int s = 0; s < NUM_SEGMENTS; s++) {
            int q = useSegment ? segmentQuantizer[s] + (absoluteDelta ? 0 : base) : base;
            y1Quant[s] = new int[] {dc(q + y1Dc, 127), ac(q)};
            // x * 155 / 100 as libwebp computes it, (x * 101581) >> 16, with the spec's floor of 8.
            y2Quant[s] = new int[] {dc(q + y2Dc, 127) * 2, Math.max(8, (ac(q + y2Ac) * 101581) >> 16)};
            uvQuant[s] = new int[] {dc(q + uvDc, 117), ac(q + uvAc)};
        }
    }

    private static int dc(int q, int max) {
        return Vp8Tables.DC_TABLE[Math.clamp(q, 0, max)];
    }

    private static int ac(int q) {
        return Vp8Tables.AC_TABLE[Math.clamp(q, 0, 127)];
    }

    private void coefficientProbabilities() {
        for (int i = 0; i < coeffProbs.length; i++) {
            if (header.getBit(Vp8Tables.COEFF_UPDATE_PROBS[i]) != 0) {
                coeffProbs[i] = header.getValue(8);
            }
        }
        useSkipProb = header.getValue(1) != 0;
        if (useSkipProb) {
            skipProb = header.getValue(8);
        }
    }

    // ---- per macroblock ----

    /** Modes of one macroblock row, parsed from the first partition before its tokens (as libwebp does). */
    private int[] rowSegment;
    private boolean[] rowSkip;
    private boolean[] rowI4x4;
    private int[] rowModes;     // 16 per macroblock; for 16x16 prediction only [0]
    private int[] rowUvMode;

    /** Modes of the 4x4 blocks above (4 per macroblock column) and to the left, context for the next modes. */
    private int[] intraTop;
    private final int[] intraLeft = new int[4];

    private void parseModes(int mbX) {
        rowSegment[mbX] = !updateMap ? 0
                : header.getBit(segmentProbs[0]) == 0 ? header.getBit(segmentProbs[1])
                : 2 + header.getBit(segmentProbs[2]);
        rowSkip[mbX] = useSkipProb && header.getBit(skipProb) != 0;
        boolean i4x4 = header.getBit(145) == 0;
        rowI4x4[mbX] = i4x4;
        int modes = mbX * 16;
        if (!i4x4) {
            int mode = header.getBit(156) != 0
                    ? (header.getBit(128) != 0 ? Vp8Intra.TM_PRED : Vp8Intra.H_PRED)
                    : (header.getBit(163) != 0 ? Vp8Intra.V_PRED : Vp8Intra.DC_PRED);
            rowModes[modes] = mode;
            // 16x16 modes give the 4x4 context the 4x4 mode of the same number.
            Arrays.fill(intraTop, mbX * 4, mbX * 4 + 4, mode);
            Arrays.fill(intraLeft, mode);
        } else {
            for (int y = 0; y < 4; y++) {
                int left = intraLeft[y];
                for (int x = 0; x < 4; x++) {
                    int mode = subblockMode(Vp8Tables.bmodeIndex(intraTop[mbX * 4 + x], left));
                    intraTop[mbX * 4 + x] = mode;
                    rowModes[modes + y * 4 + x] = mode;
                    left = mode;
                }
                intraLeft[y] = left;
            }
        }
        rowUvMode[mbX] = header.getBit(142) == 0 ? Vp8Intra.DC_PRED
                : header.getBit(114) == 0 ? Vp8Intra.V_PRED
                : header.getBit(183) != 0 ? Vp8Intra.TM_PRED : Vp8Intra.H_PRED;
    }

    /** RFC 6386 11.2 {@code bmode_tree} with the probabilities at {@code p}. */
    private int subblockMode(int p) {
        int[] pr = Vp8Tables.BMODE_PROBS;
        if (header.getBit(pr[p]) == 0) {
            return Vp8Tables.B_DC_PRED;
        }
        if (header.getBit(pr[p + 1]) == 0) {
            return Vp8Tables.B_TM_PRED;
        }
        if (header.getBit(pr[p + 2]) == 0) {
            return Vp8Tables.B_VE_PRED;
        }
        if (header.getBit(pr[p + 3]) == 0) {
            if (header.getBit(pr[p + 4]) == 0) {
                return Vp8Tables.B_HE_PRED;
            }
            return header.getBit(pr[p + 5]) == 0 ? Vp8Tables.B_RD_PRED : Vp8Tables.B_VR_PRED;
        }
        if (header.getBit(pr[p + 6]) == 0) {
            return Vp8Tables.B_LD_PRED;
        }
        if (header.getBit(pr[p + 7]) == 0) {
            return Vp8Tables.B_VL_PRED;
        }
        return header.getBit(pr[p + 8]) == 0 ? Vp8Tables.B_HD_PRED : Vp8Tables.B_HU_PRED;
    }

    // ---- the frame ----

    private Planes frame() throws ImageFileException {
        int yStride = mbW * 16;
        int uvStride = mbW * 8;
        byte[] yPlane = new byte[yStride * mbH * 16];
        byte[] uPlane = new byte[uvStride * mbH * 8];
        byte[] vPlane = new byte[uvStride * mbH * 8];
        rowSegment = new int[mbW];
        rowSkip = new boolean[mbW];
        rowI4x4 = new boolean[mbW];
        rowModes = new int[mbW * 16];
        rowUvMode = new int[mbW];
        intraTop = new int[mbW * 4];
        residuals = new Vp8Residuals(coeffProbs, mbW);
        int filterType = filterLevel == 0 ? 0 : simpleFilter ? 1 : 2;
        Vp8LoopFilter.Strength[] filters = filterType > 0 ? new Vp8LoopFilter.Strength[mbW * mbH] : null;
        var recon = new Vp8Reconstruction(yPlane, yStride, uPlane, vPlane, uvStride, mbW);
        for (int mbY = 0; mbY < mbH; mbY++) {
            Arrays.fill(intraLeft, Vp8Tables.B_DC_PRED);
            for (int mbX = 0; mbX < mbW; mbX++) {
                parseModes(mbX);
            }
            if (header.eof()) {
                throw error("truncated: the first partition ends in macroblock row %d of %d".formatted(mbY, mbH));
            }
            residuals.startRow();
            Vp8BoolDecoder tokens = partitions[mbY & (partitions.length - 1)];
            for (int mbX = 0; mbX < mbW; mbX++) {
                int segment = rowSegment[mbX];
                boolean i4x4 = rowI4x4[mbX];
                boolean coded = rowSkip[mbX] ? residuals.skip(mbX, i4x4)
                        : residuals.parse(tokens, mbX, i4x4, y1Quant[segment], y2Quant[segment], uvQuant[segment]);
                if (tokens.eof()) {
                    throw error("truncated: token partition %d ends in macroblock (%d, %d)"
                            .formatted(mbY & (partitions.length - 1), mbX, mbY));
                }
                if (filters != null) {
                    int level = useSegment
                            ? segmentFilterLevel[segment] + (absoluteDelta ? 0 : filterLevel) : filterLevel;
                    if (useLfDelta) {
                        level += refLfDelta[0] + (i4x4 ? modeLfDelta[0] : 0);
                    }
                    filters[mbY * mbW + mbX] = Vp8LoopFilter.strength(level, sharpness, i4x4, coded);
                }
                recon.macroblock(mbX, mbY, i4x4, rowModes, mbX * 16, rowUvMode[mbX], residuals.coeffs(),
                        residuals.blockNonZero());
            }
        }
        if (filters != null) {
            for (int mbY = 0; mbY < mbH; mbY++) {
                for (int mbX = 0; mbX < mbW; mbX++) {
                    Vp8LoopFilter.filterMacroblock(filterType == 1, filters[mbY * mbW + mbX], mbX, mbY, yPlane,
                            yStride, uPlane, vPlane, uvStride);
                }
            }
        }
        return new Planes(width, height, yPlane, yStride, uPlane, vPlane, uvStride);
    }
}
