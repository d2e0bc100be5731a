package koala4j.io.video;

import java.io.File;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

import koala4j.io.image.Image;
import koala4j.io.image.Images;

/**
 * The ffmpeg and ffprobe executables, run as child processes: ffprobe counts the frames, ffmpeg decodes the selected
 * ones to PNG files in a temporary folder. decord, which Video-LLaVA and LLaVA-NeXT read videos with, is libavcodec
 * underneath too, so the decoded frames are ffmpeg's in both; the RGB conversion is swscale's default (rgb24).
 */
record Ffmpeg(Path ffmpeg, Path ffprobe) {

    /** Both tools from the PATH, or empty when either is missing. */
    static Optional<Ffmpeg> onPath() {
        Optional<Path> ffmpeg = which("ffmpeg");
        Optional<Path> ffprobe = which("ffprobe");
        return ffmpeg.isPresent() && ffprobe.isPresent()
                ? Optional.of(new Ffmpeg(ffmpeg.get(), ffprobe.get())) : Optional.empty();
    }

    static Optional<Path> which(String name) {
        String path = System.getenv("PATH");
        if (path == null) {
            return Optional.empty();
        }
        for (String dir : path.split(File.pathSeparator)) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    /**
     * Frames of the first video stream: ffprobe's packet count ({@code -count_packets}), which reads the container
     * without decoding; one packet is one frame for the codecs of MP4/WebM/MKV/AVI files.
     */
    int frameCount(Path file) throws IOException {
        Result r = run(file, List.of(ffprobe.toString(), "-v", "error", "-select_streams", "v:0", "-count_packets",
                "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", file.toString()));
        if (r.exit != 0) {
            throw new VideoFileException(file, "ffprobe cannot read it (exit " + r.exit + "): " + r.tail());
        }
        String out = r.stdout.strip();
        if (out.isEmpty()) {
            throw new VideoFileException(file, "no video stream (ffprobe found none)");
        }
        try {
            int n = Integer.parseInt(out.lines().findFirst().orElse("").strip().replace(",", ""));
            if (n < 1) {
                throw new VideoFileException(file, "video stream without frames (ffprobe counted " + n + ")");
            }
            return n;
        } catch (NumberFormatException e) {
            throw new VideoFileException(file, "ffprobe printed \"" + out + "\", expected a frame count");
        }
    }

    /** Decodes the frames at {@code indices} (ascending, distinct, 0-based in display order). */
    List<Image> frames(Path file, int[] indices) throws IOException {
        StringBuilder select = new StringBuilder("select=");
        for (int i = 0; i < indices.length; i++) {
            // eq(n\,k): the backslash keeps the comma from ending the filter in the filtergraph syntax
            select.append(i == 0 ? "" : "+").append("eq(n\\,").append(indices[i]).append(')');
        }
        Path dir = Files.createTempDirectory("koala4j-frames");
        try {
            Result r = run(file, List.of(ffmpeg.toString(), "-nostdin", "-v", "error", "-i", file.toString(),
                    "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", select.toString(),
                    // passthrough: one output per selected frame, no duplicates to keep a constant rate; stop after
                    // the last selected frame instead of decoding the rest of the file
                    "-vsync", "passthrough", "-frames:v", Integer.toString(indices.length),
                    "-f", "image2", "-c:v", "png", "-pix_fmt", "rgb24", dir.resolve("f%06d.png").toString()));
            if (r.exit != 0) {
                throw new VideoFileException(file, "ffmpeg cannot decode it (exit " + r.exit + "): " + r.tail());
            }
            List<Path> pngs;
            try (Stream<Path> s = Files.list(dir)) {
                pngs = s.sorted(Comparator.comparing(Path::toString)).toList();
            }
            if (pngs.size() != indices.length) {
                throw new VideoFileException(file, "ffmpeg decoded " + pngs.size() + " of the " + indices.length
                        + " selected frames (last index " + indices[indices.length - 1] + "): the file has fewer"
                        + " decodable frames than packets, or is damaged");
            }
            List<Image> out = new ArrayList<>(pngs.size());
            for (Path png : pngs) {
                out.add(Images.read(png));
            }
            return out;
        } finally {
            try (Stream<Path> s = Files.list(dir)) {
                for (Path p : s.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(dir);
        }
    }

    private record Result(int exit, String stdout, String stderr) {
        /** The last lines of stderr, for an error message. */
        String tail() {
            List<String> lines = stderr.strip().lines().toList();
            String s = String.join(" | ", lines.subList(Math.max(0, lines.size() - 3), lines.size()));
            return s.isEmpty() ? "(no message)" : s.length() > 500 ? s.substring(s.length() - 500) : s;
        }
    }

    private static Result run(Path file, List<String> command) throws IOException {
        Path err = Files.createTempFile("koala4j-ffmpeg", ".log");
        Process p = null;
        try {
            p = new ProcessBuilder(command).redirectError(err.toFile()).start();
            p.getOutputStream().close();
            String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            int exit = p.waitFor();
            return new Result(exit, stdout, new String(Files.readAllBytes(err), StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while " + command.getFirst() + " read " + file);
        } finally {
            if (p != null && p.isAlive()) {
                p.destroyForcibly();
            }
            Files.deleteIfExists(err);
        }
    }
}
