package koala4j.io.video;

import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageOutputStream;

/** Writes animated GIFs with ImageIO for the tests: each frame its own palette, offset, disposal and transparency. */
final class GifWriter {

    /**
     * One frame: {@code indices} (row-major, width x height) into {@code palette} (0xRRGGBB entries), drawn at
     * (left, top); {@code transparent} is the transparent index or -1; {@code disposal} one of ImageIO's names
     * ("none", "doNotDispose", "restoreToBackgroundColor", "restoreToPrevious").
     */
    record Frame(int left, int top, int width, int height, int[] palette, byte[] indices, int transparent,
                 String disposal) {
    }

    /** A frame of one colour filling a {@code width x height} canvas. */
    static Frame solid(int width, int height, int rgb) {
        return new Frame(0, 0, width, height, new int[] {rgb, 0}, new byte[width * height], -1, "none");
    }

    private GifWriter() {
    }

    static void write(Path file, int screenWidth, int screenHeight, List<Frame> frames) throws IOException {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("gif").next();
        try (ImageOutputStream out = ImageIO.createImageOutputStream(Files.newOutputStream(file))) {
            writer.setOutput(out);
            writer.prepareWriteSequence(null);
            for (Frame f : frames) {
                int size = Math.max(2, Integer.highestOneBit(f.palette().length - 1) << 1);
                byte[] r = new byte[size];
                byte[] g = new byte[size];
                byte[] b = new byte[size];
                for (int i = 0; i < f.palette().length; i++) {
                    r[i] = (byte) (f.palette()[i] >> 16);
                    g[i] = (byte) (f.palette()[i] >> 8);
                    b[i] = (byte) f.palette()[i];
                }
                IndexColorModel cm = new IndexColorModel(8, size, r, g, b);
                BufferedImage img = new BufferedImage(f.width(), f.height(), BufferedImage.TYPE_BYTE_INDEXED, cm);
                img.getRaster().setDataElements(0, 0, f.width(), f.height(), f.indices());
                IIOMetadata meta = writer.getDefaultImageMetadata(new ImageTypeSpecifier(img), null);
                String format = meta.getNativeMetadataFormatName();
                IIOMetadataNode root = (IIOMetadataNode) meta.getAsTree(format);
                IIOMetadataNode descriptor = node(root, "ImageDescriptor");
                descriptor.setAttribute("imageLeftPosition", Integer.toString(f.left()));
                descriptor.setAttribute("imageTopPosition", Integer.toString(f.top()));
                IIOMetadataNode control = node(root, "GraphicControlExtension");
                control.setAttribute("disposalMethod", f.disposal());
                control.setAttribute("userInputFlag", "FALSE");
                control.setAttribute("transparentColorFlag", f.transparent() >= 0 ? "TRUE" : "FALSE");
                control.setAttribute("transparentColorIndex", Integer.toString(Math.max(0, f.transparent())));
                control.setAttribute("delayTime", "10");
                meta.setFromTree(format, root);
                writer.writeToSequence(new IIOImage(img, null, meta), null);
            }
            writer.endWriteSequence();
        } finally {
            writer.dispose();
        }
        if (screenWidth > 0) {
            setLogicalScreen(file, screenWidth, screenHeight);
        }
    }

    /**
     * ImageIO sizes the logical screen after the first frame; the tests want a given one, so the two little-endian
     * shorts after the 6-byte signature are rewritten.
     */
    private static void setLogicalScreen(Path file, int width, int height) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        bytes[6] = (byte) width;
        bytes[7] = (byte) (width >> 8);
        bytes[8] = (byte) height;
        bytes[9] = (byte) (height >> 8);
        Files.write(file, bytes);
    }

    private static IIOMetadataNode node(IIOMetadataNode root, String name) {
        for (int i = 0; i < root.getLength(); i++) {
            if (root.item(i).getNodeName().equals(name)) {
                return (IIOMetadataNode) root.item(i);
            }
        }
        IIOMetadataNode n = new IIOMetadataNode(name);
        root.appendChild(n);
        return n;
    }
}
