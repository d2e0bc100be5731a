package koala4j.io.video;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import koala4j.io.image.Image;
import koala4j.io.image.Png;
import koala4j.io.video.GifWriter.Frame;

class VideoReaderTest {

    /** numpy 2.4 {@code np.linspace(0, total - 1, n, dtype=int)} for these (total, n), copied from its output. */
    @Test
    void linspaceIndicesAreNumpys() {
        Map<int[], int[]> cases = Map.of(
                new int[] {20, 8}, new int[] {0, 2, 5, 8, 10, 13, 16, 19},
                new int[] {8, 8}, new int[] {0, 1, 2, 3, 4, 5, 6, 7},
                new int[] {5, 8}, new int[] {0, 0, 1, 1, 2, 2, 3, 4},
                new int[] {100, 8}, new int[] {0, 14, 28, 42, 56, 70, 84, 99},
                new int[] {1, 8}, new int[] {0, 0, 0, 0, 0, 0, 0, 0},
                new int[] {37, 1}, new int[] {0},
                new int[] {1000, 16}, new int[] {0, 66, 133, 199, 266, 333, 399, 466, 532, 599, 666, 732, 799, 865,
                        932, 999},
                new int[] {30, 8}, new int[] {0, 4, 8, 12, 16, 20, 24, 29},
                new int[] {2, 3}, new int[] {0, 0, 1});
        cases.forEach((in, expected) -> assertArrayEquals(expected, FrameSampling.LINSPACE.indices(in[0], in[1]),
                "linspace(0, " + (in[0] - 1) + ", " + in[1] + ")"));
    }

    /**
     * {@code torch.arange(0, total, total / n).int()}: the same values as numpy's arange for these sizes (checked with
     * numpy 2.4; the float32 rounding torch adds changes none of them).
     */
    @Test
    void arangeIndicesAreTransformersSampleFrames() {
        assertArrayEquals(new int[] {0, 2, 5, 7, 10, 12, 15, 17}, FrameSampling.ARANGE.indices(20, 8));
        assertArrayEquals(new int[] {0, 12, 25, 37, 50, 62, 75, 87}, FrameSampling.ARANGE.indices(100, 8));
        assertArrayEquals(new int[] {0, 3, 7, 11, 15, 18, 22, 26}, FrameSampling.ARANGE.indices(30, 8));
        assertArrayEquals(new int[] {0, 3, 6}, FrameSampling.ARANGE.indices(10, 3));
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, FrameSampling.ARANGE.indices(8, 8));
        var e = assertThrows(IllegalArgumentException.class, () -> FrameSampling.ARANGE.indices(5, 8));
        assertTrue(e.getMessage().contains("5-frame"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> FrameSampling.LINSPACE.indices(0, 8));
        assertThrows(IllegalArgumentException.class, () -> FrameSampling.LINSPACE.indices(10, 0));
    }

    /** 20 solid frames written by ImageIO, colour = f(index); the 8 linspace frames come back with their colours. */
    @Test
    void gifFramesAreSampledUniformly(@TempDir Path dir) throws IOException {
        Path gif = dir.resolve("clip.gif");
        List<Frame> frames = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            frames.add(GifWriter.solid(6, 4, colour(i)));
        }
        GifWriter.write(gif, 0, 0, frames);

        VideoReader reader = VideoReader.withoutFfmpeg();
        assertEquals(20, reader.frameCount(gif));
        SampledVideo video = reader.sample(gif, VideoReader.DEFAULT_FRAMES);
        assertEquals(20, video.totalFrames());
        assertEquals(List.of(0, 2, 5, 8, 10, 13, 16, 19), video.indices());
        for (int i = 0; i < 8; i++) {
            assertSolid(video.frames().get(i), 6, 4, colour(video.indices().get(i)), 0, "frame " + video.indices().get(i));
        }
        // explicit indices: any order, repeats
        List<Image> picked = reader.frames(gif, new int[] {7, 3, 7});
        assertSolid(picked.get(0), 6, 4, colour(7), 0, "7");
        assertSolid(picked.get(1), 6, 4, colour(3), 0, "3");
        assertSolid(picked.get(2), 6, 4, colour(7), 0, "7 again");
        assertThrows(IllegalArgumentException.class, () -> reader.frames(gif, new int[] {20}));
        // a GIF is recognised by its signature, not its name
        Path renamed = Files.copy(gif, dir.resolve("clip.mp4"));
        assertEquals(List.of(0, 19), reader.sample(renamed, 2).indices());
    }

    /**
     * Composition on a 4x4 logical screen whose background (global table entry 1) is white: a full red frame; a green
     * 2x2 at (1,1) disposed with restoreToPrevious; a blue/transparent 2x1 at (0,0) disposed with
     * restoreToBackgroundColor; a yellow pixel at (3,3). Expected canvases worked out from GIF89a by hand; ffmpeg
     * 5.1's GIF decoder (libavcodec, what decord reads with) gives the same four frames. Pillow 12 differs in one
     * place: it disposes frame 2 to its transparent index's colour (magenta) instead of the background.
     */
    @Test
    void gifFramesAreComposedWithTheirDisposalMethods(@TempDir Path dir) throws IOException {
        int red = 0xFF0000;
        int white = 0xFFFFFF;
        int green = 0x00FF00;
        int blue = 0x0000FF;
        int yellow = 0xFFFF00;
        Path gif = dir.resolve("anim.gif");
        GifWriter.write(gif, 4, 4, List.of(
                new Frame(0, 0, 4, 4, new int[] {red, white}, new byte[16], -1, "none"),
                new Frame(1, 1, 2, 2, new int[] {green, 0}, new byte[4], -1, "restoreToPrevious"),
                new Frame(0, 0, 2, 1, new int[] {blue, 0xFF00FF}, new byte[] {0, 1}, 1, "restoreToBackgroundColor"),
                new Frame(3, 3, 1, 1, new int[] {yellow, 0}, new byte[1], -1, "none")));
        // the first frame's palette is the global table: point the background index (byte 11) at white
        byte[] bytes = Files.readAllBytes(gif);
        assertTrue((bytes[10] & 0x80) != 0, "ImageIO wrote a global colour table");
        bytes[11] = 1;
        Files.write(gif, bytes);

        List<Image> f = VideoReader.withoutFfmpeg().frames(gif, new int[] {0, 1, 2, 3});
        int[][] expected = new int[4][16];
        Arrays.fill(expected[0], red);
        Arrays.fill(expected[1], red);
        for (int p : new int[] {5, 6, 9, 10}) {
            expected[1][p] = green;
        }
        Arrays.fill(expected[2], red);
        expected[2][0] = blue;                                           // (1,0) is transparent: red shows through
        Arrays.fill(expected[3], red);                                   // green was restored to the previous red
        expected[3][0] = white;                                          // frame 2's rectangle back to background
        expected[3][1] = white;
        expected[3][15] = yellow;
        for (int i = 0; i < 4; i++) {
            assertEquals(4, f.get(i).width());
            assertEquals(4, f.get(i).height());
            for (int p = 0; p < 16; p++) {
                int x = p % 4;
                int y = p / 4;
                int got = f.get(i).get(x, y, 0) << 16 | f.get(i).get(x, y, 1) << 8 | f.get(i).get(x, y, 2);
                assertEquals(expected[i][p], got, "frame %d pixel (%d,%d)".formatted(i, x, y));
            }
        }
    }

    @Test
    void badFilesAreErrorsNamingTheFile(@TempDir Path dir) throws IOException {
        VideoReader gifOnly = VideoReader.withoutFfmpeg();
        Path mp4 = dir.resolve("movie.mp4");
        Files.write(mp4, new byte[] {0, 0, 0, 24, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm'});
        var e = assertThrows(VideoFileException.class, () -> gifOnly.sample(mp4, 8));
        assertTrue(e.getMessage().startsWith(mp4.toString()) && e.getMessage().contains("ffmpeg"), e.getMessage());

        Path gif = dir.resolve("cut.gif");
        GifWriter.write(gif, 0, 0, List.of(GifWriter.solid(8, 8, 0x123456), GifWriter.solid(8, 8, 0x654321)));
        byte[] whole = Files.readAllBytes(gif);
        Files.write(gif, Arrays.copyOf(whole, 30));
        e = assertThrows(VideoFileException.class, () -> gifOnly.sample(gif, 2));
        assertTrue(e.getMessage().startsWith(gif.toString()) && e.getMessage().contains("GIF"), e.getMessage());

        Path empty = Files.write(dir.resolve("empty.gif"), new byte[0]);
        e = assertThrows(VideoFileException.class, () -> gifOnly.frameCount(empty));
        assertTrue(e.getMessage().contains("empty"), e.getMessage());
        assertThrows(NoSuchFileException.class, () -> gifOnly.frameCount(dir.resolve("missing.gif")));
        e = assertThrows(VideoFileException.class, () -> gifOnly.frameCount(dir));
        assertTrue(e.getMessage().contains("folder"), e.getMessage());

        VideoReader withTools = VideoReader.create();
        if (withTools.ffmpeg().isPresent()) {
            Path junk = Files.write(dir.resolve("junk.mp4"), "not a video at all".repeat(50).getBytes());
            e = assertThrows(VideoFileException.class, () -> withTools.sample(junk, 8));
            assertTrue(e.getMessage().startsWith(junk.toString()) && e.getMessage().contains("ffprobe"), e.getMessage());
        }
    }

    /**
     * An H.264 MP4 (libx264 High profile with B-frames, yuv420p, keyframe every 10) made by ffmpeg from 30 grey
     * frames, grey level 8 * index + 4. The sampled frames are the linspace indices, each uniform within 3 levels of
     * its grey (limited-range YUV 4:2:0 and x264's quantiser round flat colours by a level or two), which pins the
     * frame order: neighbours are 8 levels apart.
     */
    @Test
    void mp4FramesAreDecodedWithFfmpeg(@TempDir Path dir) throws Exception {
        VideoReader reader = VideoReader.create();
        assumeTrue(reader.ffmpeg().isPresent(), "ffmpeg and ffprobe are not on the PATH: MP4 decoding is not tested"
                + " here (.ci/run installs ffmpeg, so CI runs this test)");
        for (int i = 0; i < 30; i++) {
            byte[] px = new byte[32 * 24 * 3];
            Arrays.fill(px, (byte) grey(i));
            Png.write(dir.resolve("in%03d.png".formatted(i)), new Image(32, 24, 3, px), Map.of());
        }
        Path mp4 = dir.resolve("clip.mp4");
        Process p = new ProcessBuilder(reader.ffmpeg().get().toString(), "-nostdin", "-v", "error", "-framerate", "10",
                "-i", dir.resolve("in%03d.png").toString(), "-c:v", "libx264", "-profile:v", "high", "-bf", "2",
                "-g", "10", "-pix_fmt", "yuv420p", mp4.toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, "ffmpeg could not make the test MP4: " + log);

        assertEquals(30, reader.frameCount(mp4));
        SampledVideo video = reader.sample(mp4, 8);
        assertEquals(List.of(0, 4, 8, 12, 16, 20, 24, 29), video.indices());
        for (int i = 0; i < 8; i++) {
            int g = grey(video.indices().get(i));
            assertSolid(video.frames().get(i), 32, 24, g << 16 | g << 8 | g, 3, "frame " + video.indices().get(i));
        }
        SampledVideo all = reader.sample(mp4, 30, FrameSampling.ARANGE);
        for (int i = 0; i < 30; i++) {
            int g = grey(i);
            assertSolid(all.frames().get(i), 32, 24, g << 16 | g << 8 | g, 3, "frame " + i + " of 30");
        }
    }

    private static int grey(int index) {
        return 8 * index + 4;
    }

    private static int colour(int i) {
        return (i * 12) << 16 | (255 - i * 12) << 8 | (i * 7 + 3);
    }

    private static void assertSolid(Image img, int width, int height, int rgb, int tolerance, String what) {
        assertEquals(width, img.width(), what);
        assertEquals(height, img.height(), what);
        assertEquals(3, img.channels(), what);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                for (int c = 0; c < 3; c++) {
                    int want = rgb >> (16 - 8 * c) & 0xFF;
                    int got = img.get(x, y, c);
                    assertTrue(Math.abs(got - want) <= tolerance, "%s (%d,%d) channel %d: %d, expected %d ± %d"
                            .formatted(what, x, y, c, got, want, tolerance));
                }
            }
        }
    }
}
