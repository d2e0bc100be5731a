package koala4j.io.video;

import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;

import org.w3c.dom.Node;

import koala4j.io.image.Image;

/**
 * Animated GIF frames as they are displayed, decoded with ImageIO's GIF reader and composed on the logical screen
 * following GIF89a (section 23, Graphic Control Extension):
 * <ul>
 * <li>the canvas (logical screen size) starts as the background colour: the global colour table's entry at the
 * background colour index, black when there is no global table;
 * <li>each frame is drawn at its offset, clipped to the canvas; pixels of its transparent colour index leave the
 * canvas as it is;
 * <li>after the frame is shown its disposal method applies: 0 (unspecified) and 1 (do not dispose) keep it, 2
 * restores its rectangle to the background colour, 3 restores the rectangle to what it was before the frame.
 * </ul>
 * Where this differs from Pillow's GifImagePlugin: Pillow fills the area a first frame does not cover with colour
 * index 0 (or the transparent index's colour) rather than the background colour, disposes to the transparent
 * index's colour when the frame has one, and keeps the last non-zero disposal method for frames whose method is 0.
 * Browsers and ffmpeg follow the specification, as here.
 */
final class GifFrames {

    private static final byte[] GIF87A = {'G', 'I', 'F', '8', '7', 'a'};
    private static final byte[] GIF89A = {'G', 'I', 'F', '8', '9', 'a'};

    private GifFrames() {
    }

    static boolean isGif(byte[] head) {
        if (head.length < 6) {
            return false;
        }
        for (int i = 0; i < 6; i++) {
            if (head[i] != GIF87A[i] && head[i] != GIF89A[i]) {
                return false;
            }
        }
        return true;
    }

    /** Frame count, and the composed frames at the given ascending, distinct indices. */
    record Decoded(int total, List<Image> frames) {
    }

    /** Opens {@code file}; {@code wanted} null only counts the frames. */
    static Decoded read(Path file, int[] wanted) throws IOException {
        try (ImageInputStream iis = ImageIO.createImageInputStream(file.toFile())) {
            if (iis == null) {
                throw new VideoFileException(file, "cannot open the file for ImageIO");
            }
            Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName("gif");
            if (!readers.hasNext()) {
                throw new VideoFileException(file, "this Java runtime has no ImageIO GIF reader");
            }
            ImageReader reader = readers.next();
            try {
                reader.setInput(iis, false, false);
                return decode(file, reader, wanted);
            } catch (IIOException | EOFException e) {
                throw new VideoFileException(file, "corrupt or truncated GIF data (" + e.getMessage() + ")", e);
            } catch (RuntimeException e) {
                // ImageIO's GIF reader answers some hostile inputs with unchecked exceptions (array bounds).
                throw new VideoFileException(file, "corrupt GIF data (" + e + ")", e);
            } finally {
                reader.dispose();
            }
        }
    }

    private static Decoded decode(Path file, ImageReader reader, int[] wanted) throws IOException {
        int total = reader.getNumImages(true);
        if (total < 1) {
            throw new VideoFileException(file, "GIF without any image");
        }
        if (wanted == null || wanted.length == 0) {
            return new Decoded(total, List.of());
        }
        if (wanted[wanted.length - 1] >= total) {
            throw new IllegalArgumentException(file + ": frame " + wanted[wanted.length - 1] + " requested, the GIF has "
                    + total);
        }
        Node screen = child(reader.getStreamMetadata(), "javax_imageio_gif_stream_1.0");
        Node descriptor = find(screen, "LogicalScreenDescriptor");
        int width = descriptor == null ? 0 : intAttr(descriptor, "logicalScreenWidth");
        int height = descriptor == null ? 0 : intAttr(descriptor, "logicalScreenHeight");
        int background = backgroundRgb(find(screen, "GlobalColorTable"));
        if (width < 1 || height < 1) {
            // A zero logical screen: the first frame's extent is the canvas.
            Node first = find(child(reader.getImageMetadata(0), "javax_imageio_gif_image_1.0"), "ImageDescriptor");
            width = intAttr(first, "imageLeftPosition") + intAttr(first, "imageWidth");
            height = intAttr(first, "imageTopPosition") + intAttr(first, "imageHeight");
        }
        if ((long) width * height > 2L * 89_478_485) {
            throw new VideoFileException(file, "GIF logical screen %dx%d: more pixels than PIL's decompression-bomb"
                    .formatted(width, height) + " limit");
        }
        int[] canvas = new int[width * height];
        java.util.Arrays.fill(canvas, background);
        List<Image> out = new ArrayList<>();
        int next = 0;
        for (int i = 0; i <= wanted[wanted.length - 1]; i++) {
            Node meta = child(reader.getImageMetadata(i), "javax_imageio_gif_image_1.0");
            Node image = find(meta, "ImageDescriptor");
            Node control = find(meta, "GraphicControlExtension");
            int left = intAttr(image, "imageLeftPosition");
            int top = intAttr(image, "imageTopPosition");
            String disposal = control == null ? "none" : control.getAttributes().getNamedItem("disposalMethod")
                    .getNodeValue();
            int transparent = control != null && Boolean.parseBoolean(control.getAttributes()
                    .getNamedItem("transparentColorFlag").getNodeValue())
                    ? intAttr(control, "transparentColorIndex") : -1;

            BufferedImage frame = reader.read(i);
            int fw = frame.getWidth();
            int fh = frame.getHeight();
            int x0 = Math.max(0, left);
            int y0 = Math.max(0, top);
            int x1 = Math.min(width, left + fw);
            int y1 = Math.min(height, top + fh);
            int[] saved = disposal.equals("restoreToPrevious") ? region(canvas, width, x0, y0, x1, y1) : null;
            draw(frame, transparent, canvas, width, left, top, x0, y0, x1, y1);
            while (next < wanted.length && wanted[next] == i) {
                out.add(toImage(canvas, width, height));
                next++;
            }
            switch (disposal) {
                case "restoreToBackgroundColor" -> {
                    for (int y = y0; y < y1; y++) {
                        java.util.Arrays.fill(canvas, y * width + x0, y * width + x1, background);
                    }
                }
                case "restoreToPrevious" -> {
                    for (int y = y0; y < y1; y++) {
                        System.arraycopy(saved, (y - y0) * (x1 - x0), canvas, y * width + x0, x1 - x0);
                    }
                }
                default -> {
                    // none, doNotDispose, and the reserved values 4-7: leave the frame in place
                }
            }
        }
        return new Decoded(total, out);
    }

    /** Draws the frame's opaque pixels on the canvas inside [x0, x1) x [y0, y1). */
    private static void draw(BufferedImage frame, int transparent, int[] canvas, int width, int left, int top,
                             int x0, int y0, int x1, int y1) {
        Raster raster = frame.getRaster();
        if (frame.getColorModel() instanceof IndexColorModel icm && raster.getNumBands() == 1) {
            int[] rgb = new int[icm.getMapSize()];
            icm.getRGBs(rgb);
            int[] row = new int[Math.max(0, x1 - x0)];
            for (int y = y0; y < y1; y++) {
                raster.getSamples(x0 - left, y - top, x1 - x0, 1, 0, row);
                for (int x = x0; x < x1; x++) {
                    int index = row[x - x0];
                    if (index != transparent && index < rgb.length) {
                        canvas[y * width + x] = rgb[index] & 0xFFFFFF;
                    }
                }
            }
        } else {
            for (int y = y0; y < y1; y++) {
                for (int x = x0; x < x1; x++) {
                    int argb = frame.getRGB(x - left, y - top);
                    if ((argb >>> 24) != 0) {
                        canvas[y * width + x] = argb & 0xFFFFFF;
                    }
                }
            }
        }
    }

    private static int[] region(int[] canvas, int width, int x0, int y0, int x1, int y1) {
        int w = Math.max(0, x1 - x0);
        int[] out = new int[w * Math.max(0, y1 - y0)];
        for (int y = y0; y < y1; y++) {
            System.arraycopy(canvas, y * width + x0, out, (y - y0) * w, w);
        }
        return out;
    }

    private static Image toImage(int[] canvas, int width, int height) {
        byte[] px = new byte[canvas.length * 3];
        for (int i = 0; i < canvas.length; i++) {
            px[i * 3] = (byte) (canvas[i] >> 16);
            px[i * 3 + 1] = (byte) (canvas[i] >> 8);
            px[i * 3 + 2] = (byte) canvas[i];
        }
        return new Image(width, height, 3, px);
    }

    /** The global colour table's entry at the background colour index; black without a global table. */
    private static int backgroundRgb(Node globalTable) {
        if (globalTable == null) {
            return 0;
        }
        int index = intAttr(globalTable, "backgroundColorIndex");
        for (Node e = globalTable.getFirstChild(); e != null; e = e.getNextSibling()) {
            if (e.getNodeName().equals("ColorTableEntry") && intAttr(e, "index") == index) {
                return intAttr(e, "red") << 16 | intAttr(e, "green") << 8 | intAttr(e, "blue");
            }
        }
        return 0;
    }

    private static Node child(IIOMetadata metadata, String format) {
        return metadata == null ? null : metadata.getAsTree(format);
    }

    private static Node find(Node parent, String name) {
        if (parent == null) {
            return null;
        }
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n.getNodeName().equals(name)) {
                return n;
            }
        }
        return null;
    }

    private static int intAttr(Node node, String name) {
        return Integer.parseInt(node.getAttributes().getNamedItem(name).getNodeValue());
    }
}
