package koala4j.tensor.quant;

import koala4j.tensor.DType;

/** How a model keeps its Linear weights in memory: as stored in the checkpoint, or quantised at load. */
public enum Quantization {
    /** As stored (F32, F16 or BF16 in the mmap'ed file). */
    NONE(null),
    /** llama.cpp's Q8_0: 8.5 bits per weight (see {@link Q8Storage}). */
    Q8_0(DType.Q8_0),
    /** llama.cpp's Q4_0: 4.5 bits per weight (see {@link Q4Storage}). */
    Q4_0(DType.Q4_0);

    private final DType dtype;

    Quantization(DType dtype) {
        this.dtype = dtype;
    }

    /** The dtype weights are cast to, or null for {@link #NONE}. */
    public DType dtype() {
        return dtype;
    }

    /** Parses a command-line value: none, q8 / q8_0 or q4 / q4_0 (any case). */
    public static Quantization parse(String value) {
        return switch (value.toLowerCase(java.util.Locale.ROOT)) {
            case "none", "f16", "bf16", "f32" -> NONE;
            case "q8", "q8_0" -> Q8_0;
            case "q4", "q4_0" -> Q4_0;
            default -> throw new IllegalArgumentException("quantisation '" + value + "', expected none, q8 or q4");
        };
    }
}
