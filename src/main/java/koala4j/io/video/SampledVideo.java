package koala4j.io.video;

import java.nio.file.Path;
import java.util.List;

import koala4j.io.image.Image;

/**
 * Frames taken from a video: {@code frames.get(i)} is frame {@code indices.get(i)} (0-based, in display order) of
 * the {@code totalFrames} the file holds, as 8-bit RGB.
 */
public record SampledVideo(Path file, int totalFrames, List<Integer> indices, List<Image> frames) {

    public SampledVideo {
        indices = List.copyOf(indices);
        frames = List.copyOf(frames);
        if (indices.size() != frames.size()) {
            throw new IllegalArgumentException(file + ": " + indices.size() + " indices but " + frames.size()
                    + " frames");
        }
    }
}
