package koala4j.io.torchbin;

import koala4j.tensor.DType;

/**
 * The typed storage classes a {@code torch.save} persistent id names ({@code ('storage', torch.FloatStorage, key,
 * location, numel)}; {@code torch/storage.py} {@code _dtype_to_storage_type_map}), with what koala4j makes of each:
 * read in place ({@link #direct}), converted to a dense copy ({@link #convertTo}), or refused when a tensor of it is
 * asked for.
 */
enum TorchStorage implements TorchGlobals.Described {
    FLOAT("FloatStorage", "float32", 4, DType.F32, null),
    HALF("HalfStorage", "float16", 2, DType.F16, null),
    BFLOAT16("BFloat16Storage", "bfloat16", 2, DType.BF16, null),
    LONG("LongStorage", "int64", 8, DType.I64, null),
    INT("IntStorage", "int32", 4, DType.I32, null),
    // what torch's load_state_dict does when it copies these into a float32 / integer parameter: converts
    DOUBLE("DoubleStorage", "float64", 8, null, DType.F32),
    SHORT("ShortStorage", "int16", 2, null, DType.I32),
    CHAR("CharStorage", "int8", 1, null, DType.I32),
    BYTE("ByteStorage", "uint8", 1, null, DType.I32),
    BOOL("BoolStorage", "bool", 1, null, DType.I32),
    // valid torch storages with no koala4j counterpart: listed so a file holding one still opens
    COMPLEX_DOUBLE("ComplexDoubleStorage", "complex128", 16, null, null),
    COMPLEX_FLOAT("ComplexFloatStorage", "complex64", 8, null, null),
    QUINT8("QUInt8Storage", "quint8", 1, null, null),
    QINT8("QInt8Storage", "qint8", 1, null, null),
    QINT32("QInt32Storage", "qint32", 4, null, null),
    QUINT4X2("QUInt4x2Storage", "quint4x2", 1, null, null),
    QUINT2X4("QUInt2x4Storage", "quint2x4", 1, null, null);

    final String className;
    final String torchDtype;
    final int elementSize;
    /** The dtype its bytes are read as, in place; {@code null} when they need converting or cannot be read. */
    final DType direct;
    /** The dtype a dense copy converts it to; {@code null} when read in place or not at all. */
    final DType convertTo;

    TorchStorage(String className, String torchDtype, int elementSize, DType direct, DType convertTo) {
        this.className = className;
        this.torchDtype = torchDtype;
        this.elementSize = elementSize;
        this.direct = direct;
        this.convertTo = convertTo;
    }

    /** The dtype koala4j hands out, or {@code null} when a tensor of this storage cannot be read. */
    DType dtype() {
        return direct != null ? direct : convertTo;
    }

    /** The storage for a class name such as {@code FloatStorage}, or {@code null}. */
    static TorchStorage byClassName(String name) {
        for (TorchStorage s : values()) {
            if (s.className.equals(name)) return s;
        }
        return null;
    }

    @Override
    public String describe() {
        return "torch." + className;
    }
}
