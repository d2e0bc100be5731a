package koala4j.io.torchbin;

import java.nio.file.Path;

/**
 * A PyTorch checkpoint ({@code torch.save} zip archive, its index, or a folder) that cannot be used. The message
 * reads {@code "<file>: tensor \"<name>\": <what was found>, expected <what>"} (without the tensor part when the
 * problem is not about one tensor), and is one problem: the first found.
 */
public final class TorchbinException extends RuntimeException {
    private final Path file;
    private final String tensor;

    TorchbinException(Path file, String tensor, String detail) {
        this(file, tensor, detail, null);
    }

    TorchbinException(Path file, String tensor, String detail, Throwable cause) {
        super(file + ": " + (tensor == null ? "" : "tensor " + quoted(tensor) + ": ") + detail, cause);
        this.file = file;
        this.tensor = tensor;
    }

    /** The file (or folder) the problem is in. */
    public Path file() {
        return file;
    }

    /** The tensor the problem is about, or {@code null} when it is about the file as a whole. */
    public String tensor() {
        return tensor;
    }

    /** Quoted and cut short: names in hostile files can be megabytes long. */
    static String quoted(String s) {
        return "\"" + (s.length() <= 200 ? s : s.substring(0, 199) + "…") + "\"";
    }
}
