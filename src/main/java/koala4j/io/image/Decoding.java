package koala4j.io.image;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.DirectColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.event.IIOReadWarningListener;
import javax.imageio.stream.ImageInputStream;

/**
 * {@link Images#read}: ImageIO decoding, then PIL's {@code convert("RGB")} on the decoded samples; lossy WebP
 * instead through {@link WebpLossy}, which gives libwebp's pixels where the ImageIO plugin's differ.
 *
 * <p>The pixels are taken from the raster, not from {@code BufferedImage.getRGB}, because getRGB converts through
 * the image's colour space (an embedded ICC profile, or linear grey for 8-bit grey PNGs), which PIL does not.
 */
final class Decoding {

    private Decoding() {
    }

    static Image read(Path file) throws IOException {
        if (Files.isDirectory(file)) {
            throw new ImageFileException(file, "is a folder, expected an image file");
        }
        byte[] head;
        try (InputStream in = Files.newInputStream(file)) {
            head = in.readNBytes(16);
        }
        if (head.length == 0) {
            throw new ImageFileException(file, "not an image: the file is empty");
        }
        if (WebpLossy.isRiffWebp(head)) {
            Image lossy = readLossyWebp(file);
            if (lossy != null) {
                return lossy;
            }
        }
        try (ImageInputStream iis = ImageIO.createImageInputStream(file.toFile())) {
            if (iis == null) {
                throw new ImageFileException(file, "cannot open the file for ImageIO");
            }
            Iterator<ImageReader> readers = ImageIO.getImageReaders(iis);
            if (!readers.hasNext()) {
                throw new ImageFileException(file, unrecognised(head));
            }
            ImageReader reader = readers.next();
            try {
                return decode(file, iis, reader);
            } finally {
                reader.dispose();
            }
        }
    }

    /**
     * Lossy WebP through our own VP8 decoder, which gives libwebp's (Pillow's) pixels; null for the files the ImageIO
     * plugin keeps (lossless, animated).
     */
    private static Image readLossyWebp(Path file) throws IOException {
        long size = Files.size(file);
        if (size > Integer.MAX_VALUE - 8) {
            throw new ImageFileException(file, "WebP file of %d bytes: more than the 2 GiB this reader holds in memory"
                    .formatted(size));
        }
        byte[] data = Files.readAllBytes(file);
        WebpLossy.Frame frame = WebpLossy.find(file, data);
        return frame == null ? null : WebpLossy.decode(file, data, frame);
    }

    private static Image decode(Path file, ImageInputStream iis, ImageReader reader) throws IOException {
        String format = reader.getFormatName().toUpperCase(Locale.ROOT);
        List<String> warnings = new ArrayList<>();
        reader.addIIOReadWarningListener(new IIOReadWarningListener() {
            @Override
            public void warningOccurred(ImageReader source, String warning) {
                warnings.add(warning);
            }
        });
        reader.setInput(iis, true, true);
        BufferedImage decoded;
        try {
            long pixels = (long) reader.getWidth(0) * reader.getHeight(0);
            if (pixels > Image.MAX_PIXELS) {
                throw new ImageFileException(file, ("%s image of %dx%d = %d pixels: more than the limit %d"
                        + " (PIL's decompression-bomb limit)")
                        .formatted(format, reader.getWidth(0), reader.getHeight(0), pixels, Image.MAX_PIXELS));
            }
            decoded = reader.read(0);
        } catch (ImageFileException e) {
            throw e;
        } catch (IIOException | EOFException e) {
            throw new ImageFileException(file, "corrupt or truncated %s data (%s)".formatted(format, causes(e)), e);
        } catch (RuntimeException e) {
            // ImageIO plugins answer some hostile inputs with unchecked exceptions (array bounds, negative sizes).
            throw new ImageFileException(file, "corrupt %s data (%s)".formatted(format, causes(e)), e);
        }
        for (String w : warnings) {
            // libjpeg's "premature end of data segment" / "of JPEG file": the decoder padded the missing scan data
            // with grey. PIL raises "image file is truncated" here, so do we.
            if (w.toLowerCase(Locale.ROOT).contains("premature end")) {
                throw new ImageFileException(file, "truncated %s data (%s)".formatted(format, w));
            }
        }
        return toRgb(decoded);
    }

    /** PIL's {@code convert("RGB")} on decoded samples. */
    static Image toRgb(BufferedImage img) {
        int w = img.getWidth();
        int h = img.getHeight();
        byte[] out = new byte[Math.multiplyExact(w * h, 3)];
        ColorModel cm = img.getColorModel();
        Raster raster = img.getRaster();
        int[] row = new int[w];
        if (cm instanceof IndexColorModel icm && raster.getNumBands() == 1) {
            int size = icm.getMapSize();
            byte[] r = new byte[size];
            byte[] g = new byte[size];
            byte[] b = new byte[size];
            icm.getReds(r);
            icm.getGreens(g);
            icm.getBlues(b);
            for (int y = 0; y < h; y++) {
                raster.getSamples(0, y, w, 1, 0, row);
                for (int x = 0; x < w; x++) {
                    int i = row[x] < size ? row[x] : 0;
                    int o = (y * w + x) * 3;
                    out[o] = r[i];
                    out[o + 1] = g[i];
                    out[o + 2] = b[i];
                }
            }
            return new Image(w, h, 3, out);
        }
        int space = cm.getColorSpace().getType();
        boolean plain = (cm instanceof ComponentColorModel || cm instanceof DirectColorModel)
                && (space == ColorSpace.TYPE_RGB || space == ColorSpace.TYPE_GRAY)
                && raster.getNumBands() == cm.getNumComponents();
        if (plain) {
            int colors = cm.getNumColorComponents();
            for (int band = 0; band < 3; band++) {
                int source = colors == 1 ? 0 : band;
                int bits = cm.getComponentSize(source);
                for (int y = 0; y < h; y++) {
                    raster.getSamples(0, y, w, 1, source, row);
                    for (int x = 0; x < w; x++) {
                        out[(y * w + x) * 3 + band] = (byte) to8Bit(row[x], bits, cm instanceof DirectColorModel);
                    }
                }
            }
            return new Image(w, h, 3, out);
        }
        // CMYK/YCCK JPEGs and other colour spaces: let ImageIO convert to sRGB (PIL's CMYK->RGB differs).
        int[] argb = new int[w];
        for (int y = 0; y < h; y++) {
            img.getRGB(0, y, w, 1, argb, 0, w);
            for (int x = 0; x < w; x++) {
                int o = (y * w + x) * 3;
                out[o] = (byte) (argb[x] >> 16);
                out[o + 1] = (byte) (argb[x] >> 8);
                out[o + 2] = (byte) argb[x];
            }
        }
        return new Image(w, h, 3, out);
    }

    /**
     * 16-bit samples keep the high byte (PIL reads 16-bit RGB PNGs with rawmode "RGB;16B"); packed 5/6-bit fields
     * (BMP 565/555) scale as PIL's unpackers do, {@code v * 255 / max}.
     */
    private static int to8Bit(int v, int bits, boolean packed) {
        if (bits == 8) {
            return v;
        }
        if (bits > 8 && !packed) {
            return v >>> (bits - 8);
        }
        return v * 255 / ((1 << bits) - 1);
    }

    private static String unrecognised(byte[] head) {
        String ascii = new String(head, StandardCharsets.ISO_8859_1);
        if (ascii.startsWith("RIFF") && ascii.startsWith("WEBP", 8)) {
            return "WebP image, which this JVM's ImageIO cannot read (no ImageIO reader for format \"webp\"; add a "
                    + "WebP ImageIO plugin to the class path, or convert the image to PNG or JPEG)";
        }
        if (head.length >= 12 && ascii.startsWith("ftyp", 4)) {
            String brand = ascii.substring(8, 12);
            return ("ISO-BMFF image (brand \"%s\": AVIF/HEIF), which this JVM's ImageIO cannot read;"
                    + " convert it to PNG or JPEG")
                    .formatted(brand.strip());
        }
        var readable = new TreeSet<String>();
        for (String name : ImageIO.getReaderFormatNames()) {
            readable.add(name.toLowerCase(Locale.ROOT));
        }
        return "not an image in a format this JVM's ImageIO reads (first bytes %s; readable formats: %s)"
                .formatted(HexFormat.ofDelimiter(" ").formatHex(Arrays.copyOf(head, Math.min(head.length, 8))),
                        String.join(", ", readable));
    }

    private static String causes(Throwable e) {
        var sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (!sb.isEmpty()) {
                sb.append(": ");
            }
            sb.append(t.getMessage() != null ? t.getMessage() : t.getClass().getSimpleName());
            if (t.getCause() == t) {
                break;
            }
        }
        return sb.toString();
    }
}
