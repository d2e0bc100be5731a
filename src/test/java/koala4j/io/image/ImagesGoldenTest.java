package koala4j.io.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Golden checks against the end-to-end oracle runs (shared/golden/e2e, diffusers 0.36.0, transformers 4.57.6,
 * numpy 1.26.4, torch 2.13.0+cpu), copied to src/test/resources/golden/e2e_images.
 */
class ImagesGoldenTest {

    /**
     * runN.png is what diffusers wrote from the float image runN.image (NHWC in [0,1]) with numpy_to_pil, so
     * fromFloatHwc must give exactly its pixels (metric: every byte equal, tolerance 0). This pins "round", not
     * "truncate": truncation differs in ~6000 of the 12288 bytes. These images happen to have no value whose
     * float32 product with 255 is exactly k + 0.5, so half-even vs half-up is pinned by
     * ImagesTest.roundsHalfToEvenLikeNumpy instead.
     */
    @ParameterizedTest
    @CsvSource({"sdxl,0", "sdxl,1", "sdxl,2", "sdxl,3", "koala,0", "koala,1", "sd15,0", "sd15,1"})
    void floatImageGivesTheReferencePngPixels(String run, int index) throws IOException {
        String dir = "golden/e2e_images/" + run + "/";
        GoldenFloats.Tensor t = GoldenFloats.open(GoldenFloats.resource(dir + "expected.safetensors"))
                .tensor("run" + index + ".image");
        int h = t.shape()[1];
        int w = t.shape()[2];
        int c = t.shape()[3];
        Image fromFloats = Images.fromFloatHwc(t.data(), h, w, c);

        Path png = GoldenFloats.resource(dir + "run" + index + ".png");
        Image decoded = Images.read(png);
        assertEquals(w, decoded.width());
        assertEquals(h, decoded.height());
        assertArrayEquals(decoded.pixels(), fromFloats.pixels(), run + " run" + index);

        // The same through ImageIO's own getRGB, independent of Images.read's raster path.
        BufferedImage bi = ImageIO.read(png.toFile());
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int rgb = bi.getRGB(x, y);
                assertEquals((rgb >> 16) & 0xFF, fromFloats.get(x, y, 0));
                assertEquals((rgb >> 8) & 0xFF, fromFloats.get(x, y, 1));
                assertEquals(rgb & 0xFF, fromFloats.get(x, y, 2));
            }
        }

        // The CHW entry point agrees with the HWC one on the same (already denormalised) values.
        float[] chw = new float[t.data().length];
        for (int i = 0; i < h * w; i++) {
            for (int ch = 0; ch < c; ch++) {
                chw[ch * h * w + i] = t.data()[i * c + ch];
            }
        }
        assertEquals(fromFloats, Images.fromFloatChw(chw, c, h, w, false));
    }

    /**
     * CLIPImageProcessor as the LLaVA processors ran it: resize shortest edge to 32 with PIL BICUBIC, center crop
     * 32x32, then rescale 1/255 and normalise with the OpenAI CLIP mean/std. The recorded pixel_values are inverted
     * to bytes, {@code (pv * std + mean) * 255}, which lands within 2e-5 of an integer (asserted), so the uint8 image
     * after resize + crop is recovered exactly; it must equal ours byte for byte (tolerance 0).
     */
    @ParameterizedTest
    @CsvSource({"llava,run0", "llava,run1", "kollava_v0,run0", "kollava_v0,run1"})
    void clipPreprocessingMatchesTransformers(String run, String key) throws IOException {
        String dir = "golden/e2e_images/" + run + "/";
        JsonNode config = new ObjectMapper().readTree(GoldenFloats.resource(dir + "preprocessor_config.json").toFile());
        int shortest = config.get("size").get("shortest_edge").asInt();
        int cropH = config.get("crop_size").get("height").asInt();
        int cropW = config.get("crop_size").get("width").asInt();
        Images.Filter filter = Images.Filter.fromPilCode(config.get("resample").asInt());
        double[] mean = new double[3];
        double[] std = new double[3];
        for (int c = 0; c < 3; c++) {
            mean[c] = config.get("image_mean").get(c).asDouble();
            std[c] = config.get("image_std").get(c).asDouble();
        }

        Image image = Images.read(GoldenFloats.resource(dir + "image.png"));
        Image processed = Images.centerCrop(Images.resizeShortestEdge(image, shortest, filter), cropW, cropH);

        GoldenFloats.Tensor pv = GoldenFloats.open(GoldenFloats.resource(dir + "expected.safetensors"))
                .tensor(key + ".pixel_values");
        assertArrayEquals(new int[] {1, 3, cropH, cropW}, pv.shape());
        int plane = cropH * cropW;
        byte[] expected = new byte[plane * 3];
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < plane; i++) {
                double v = (pv.data()[c * plane + i] * std[c] + mean[c]) * 255.0;
                long rounded = Math.round(v);
                assertTrue(Math.abs(v - rounded) < 1e-3, "pixel_values do not invert to a byte: " + v);
                expected[i * 3 + c] = (byte) rounded;
            }
        }
        assertArrayEquals(expected, processed.pixels(), run + " " + key);
    }
}
