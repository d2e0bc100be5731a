package koala4j.io.video;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

import koala4j.io.image.Image;

/**
 * Reads frames of a video for a video-language model. GIFs (recognised by their signature, whatever the file name)
 * are decoded in Java with ImageIO and composed as displayed (see {@code GifFrames}); every other file goes to
 * ffmpeg/ffprobe when they are installed (MP4/H.264 and whatever else ffmpeg reads), and is an error naming the file
 * when they are not. Stateless and thread-safe; each call opens the file anew.
 */
public final class VideoReader {

    /** Frames per video when the caller does not say: Video-LLaVA's and LLaVA-NeXT-Video's 8. */
    public static final int DEFAULT_FRAMES = 8;

    private final Ffmpeg ffmpeg;

    private VideoReader(Ffmpeg ffmpeg) {
        this.ffmpeg = ffmpeg;
    }

    /** GIFs, plus every format of the ffmpeg and ffprobe found on the PATH, if both are there. */
    public static VideoReader create() {
        return new VideoReader(Ffmpeg.onPath().orElse(null));
    }

    /** GIFs only: other files are an error that says ffmpeg is needed. */
    public static VideoReader withoutFfmpeg() {
        return new VideoReader(null);
    }

    /** GIFs, plus every format of the given ffmpeg and ffprobe executables. */
    public static VideoReader withFfmpeg(Path ffmpeg, Path ffprobe) {
        for (Path tool : List.of(ffmpeg, ffprobe)) {
            if (!Files.isRegularFile(tool) || !Files.isExecutable(tool)) {
                throw new IllegalArgumentException(tool + ": not an executable file");
            }
        }
        return new VideoReader(new Ffmpeg(ffmpeg, ffprobe));
    }

    /** The ffmpeg executable this reader decodes non-GIF videos with, if any. */
    public Optional<Path> ffmpeg() {
        return Optional.ofNullable(ffmpeg).map(Ffmpeg::ffmpeg);
    }

    /** The number of frames in the file (GIF: images; other formats: packets of the first video stream). */
    public int frameCount(Path file) throws IOException {
        return isGif(file) ? GifFrames.read(file, null).total() : tools(file).frameCount(file);
    }

    /** {@link #sample(Path, int, FrameSampling)} with {@link FrameSampling#LINSPACE}. */
    public SampledVideo sample(Path file, int count) throws IOException {
        return sample(file, count, FrameSampling.LINSPACE);
    }

    /** {@code count} frames chosen by {@code sampling} from all the frames of the file. */
    public SampledVideo sample(Path file, int count, FrameSampling sampling) throws IOException {
        int total = frameCount(file);
        int[] indices = sampling.indices(total, count);
        return new SampledVideo(file, total, Arrays.stream(indices).boxed().toList(), read(file, indices, total));
    }

    /** The frames at {@code indices} (0-based, display order, any order, repeats allowed). */
    public List<Image> frames(Path file, int[] indices) throws IOException {
        return read(file, indices, frameCount(file));
    }

    private List<Image> read(Path file, int[] indices, int total) throws IOException {
        if (indices.length == 0) {
            return List.of();
        }
        int[] distinct = Arrays.stream(indices).sorted().distinct().toArray();
        if (distinct[0] < 0 || distinct[distinct.length - 1] >= total) {
            throw new IllegalArgumentException(file + ": frame index " + (distinct[0] < 0 ? distinct[0]
                    : distinct[distinct.length - 1]) + " outside the video's " + total + " frames");
        }
        List<Image> decoded = isGif(file) ? GifFrames.read(file, distinct).frames() : tools(file).frames(file, distinct);
        List<Image> out = new ArrayList<>(indices.length);
        for (int index : indices) {
            out.add(decoded.get(Arrays.binarySearch(distinct, index)));
        }
        return out;
    }

    private Ffmpeg tools(Path file) throws VideoFileException {
        if (ffmpeg == null) {
            throw new VideoFileException(file, "not a GIF, and other video formats (MP4/H.264, WebM, ...) are decoded"
                    + " with ffmpeg, which is not installed: no ffmpeg and ffprobe on the PATH"
                    + " (Debian/Ubuntu: apt-get install ffmpeg)");
        }
        return ffmpeg;
    }

    private static boolean isGif(Path file) throws IOException {
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "video file not found");
        }
        if (Files.isDirectory(file)) {
            throw new VideoFileException(file, "is a folder, expected a video file");
        }
        byte[] head;
        try (InputStream in = Files.newInputStream(file)) {
            head = in.readNBytes(6);
        }
        if (head.length == 0) {
            throw new VideoFileException(file, "not a video: the file is empty");
        }
        return GifFrames.isGif(head);
    }
}
