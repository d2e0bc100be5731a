package koala4j.io.video;

/** Which frames of a video a model sees: rules of the reference implementations, to the index. */
public enum FrameSampling {

    /**
     * {@code numpy.linspace(0, total - 1, n, dtype=int)}: n indices evenly spread from the first frame to the last,
     * truncated toward zero, the last one exactly {@code total - 1}. What Video-LLaVA
     * ({@code languagebind/video/processing_video.py}, decord backend) and LLaVA-NeXT's video inference
     * ({@code load_video}, {@code np.linspace(0, total_frame_num - 1, n, dtype=int)}) use. More frames than the video
     * has repeat some indices, as numpy does.
     */
    LINSPACE,

    /**
     * {@code torch.arange(0, total, total / n).int()}: transformers' {@code BaseVideoProcessor.sample_frames}
     * (video_processing_utils.py), the start of each of n equal segments. Fewer frames than requested is an error
     * there and here.
     */
    ARANGE;

    /** The frame indices for a video of {@code total} frames, {@code count} of them, ascending. */
    public int[] indices(int total, int count) {
        if (total < 1) {
            throw new IllegalArgumentException("video with " + total + " frames: nothing to sample");
        }
        if (count < 1) {
            throw new IllegalArgumentException("sample " + count + " frames: expected >= 1");
        }
        return switch (this) {
            case LINSPACE -> linspace(total, count);
            case ARANGE -> arange(total, count);
        };
    }

    private static int[] linspace(int total, int count) {
        int[] out = new int[count];
        if (count == 1) {
            return out;                                   // numpy: div = 0, y = [0] * delta
        }
        double stop = total - 1;
        double step = stop / (count - 1);                 // float64, as numpy's delta / div
        for (int i = 0; i < count - 1; i++) {
            out[i] = (int) (i * step);                    // y = arange(num) * step + 0, then astype(int)
        }
        out[count - 1] = total - 1;                       // endpoint: y[-1] = stop
        return out;
    }

    private static int[] arange(int total, int count) {
        if (count > total) {
            throw new IllegalArgumentException("sample " + count + " frames of a " + total + "-frame video: "
                    + "transformers' sample_frames refuses more frames than the video has");
        }
        double step = (double) total / count;             // Python float division
        // torch.arange: length ceil((end - start) / step) in double; value start + step * i in double, stored as
        // float32 (the default dtype for a float step), then .int() truncates.
        int length = (int) Math.ceil(total / step);
        int[] out = new int[length];
        for (int i = 0; i < length; i++) {
            out[i] = (int) (float) (step * i);
        }
        return out;
    }
}
