package koala4j.io.safetensors;

import java.util.Set;
import koala4j.tensor.DType;

/** safetensors' dtype spellings ({@code Dtype} in huggingface/safetensors tensor.rs) and which of them koala4j reads. */
final class Dtypes {
    static final String SUPPORTED = "F32, F16, BF16, I32, I64";

    /** Every other dtype the reference knows, so an error can say "valid, but not read here" rather than "unknown". */
    private static final Set<String> KNOWN_UNSUPPORTED = Set.of("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8",
            "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "U32", "C64", "F64", "U64");

    private Dtypes() {}

    /** The dtype for a header's spelling (case-sensitive, as serde is), or {@code null} when koala4j cannot read it. */
    static DType fromName(String name) {
        return switch (name) {
            case "F32" -> DType.F32;
            case "F16" -> DType.F16;
            case "BF16" -> DType.BF16;
            case "I32" -> DType.I32;
            case "I64" -> DType.I64;
            default -> null;
        };
    }

    static boolean isKnownUnsupported(String name) {
        return KNOWN_UNSUPPORTED.contains(name);
    }

    /** The header spelling of a dtype, or {@code null} when safetensors has none for it. */
    static String nameOf(DType dtype) {
        return switch (dtype) {
            case F32 -> "F32";
            case F16 -> "F16";
            case BF16 -> "BF16";
            case I32 -> "I32";
            case I64 -> "I64";
            default -> null;   // a storage format of ours (e.g. a quantised one) that safetensors cannot name
        };
    }
}
