package koala4j.io.torchbin;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import koala4j.io.safetensors.TensorEntry;
import koala4j.tensor.DType;

/**
 * One {@code torch.save} file in the zip format of torch &gt;= 1.6 ({@code pytorch_model.bin},
 * {@code diffusion_pytorch_model.bin}, a shard), mapped into memory and read without running any pickle code.
 *
 * <p>Layout (written by {@code PyTorchStreamWriter}, caffe2/serialize/inline_container.cc): a zip archive whose
 * records all sit in one folder {@code <archive>/} (named after the first record): {@code data.pkl}, the pickled
 * state dict, in which each tensor is {@code _rebuild_tensor_v2(storage, offset, size, stride, ...)} and each storage
 * a persistent id {@code ('storage', torch.FloatStorage, key, location, numel)}; {@code data/<key>}, that storage's
 * raw little-endian bytes, STORED (uncompressed, 64-byte aligned); {@code byteorder}, {@code version} and others.
 *
 * <p>What {@link #open} does: maps the file; reads the zip directory ({@link ZipArchive}: zip64 too); unpickles
 * {@code data.pkl} with {@link Unpickler} + {@link TorchGlobals} (an allow-list: any other global, e.g.
 * {@code os.system}, is refused at its opcode, before anything else is read); requires the result to be a dict (or
 * OrderedDict) of str → tensor; and checks each tensor's view against its storage (size × stride from the offset
 * stays inside it). Refused with a {@link TorchbinException} naming the file: the legacy pre-1.6 format (pickle or
 * tar), TorchScript archives, big-endian storages, compressed storage records, and anything malformed.
 *
 * <p>Tensors: a contiguous view of a float32/float16/bfloat16/int64/int32 storage is a zero-copy slice of the mapping,
 * so tensors sharing a storage (tied weights) share bytes. A non-contiguous view (a saved transpose, a strided
 * slice) is gathered into a dense copy, as are float64 (→ float32) and int16/int8/uint8/bool (→ int32) tensors, the
 * conversions torch's {@code load_state_dict} makes when it copies them into parameters of those types. Copies are
 * made on first {@link #get}, kept until {@link #close}, and refused when a view would be larger than its storage and
 * over {@value #MAX_EXPANDED_COPY_BYTES} bytes (broadcast views saved with stride 0). Complex and quantized tensors
 * are listed by {@link #names} but {@link #get} refuses them.
 *
 * <p>Ownership: {@link #close()} unmaps the file and frees the copies; every {@link TensorEntry#data()} from this
 * file is invalid afterwards (access throws {@link IllegalStateException}). Thread-safety: safe for concurrent
 * {@link #get} after {@link #open}.
 */
final class TorchFile implements AutoCloseable {
    static final int MAX_DIMS = 16;
    /** data.pkl of a 13B model shard is well under 1 MB; anything past this is not a state dict. */
    static final int MAX_PICKLE_BYTES = 1 << 30;
    static final long MAX_EXPANDED_COPY_BYTES = 16L << 20;

    private final Path file;
    private final Arena arena;   // null for an in-memory image (tests): copies then use an automatic arena
    private final Map<String, Slot> slots;
    private final Map<String, TensorEntry> copies = new ConcurrentHashMap<>();

    /** One name of the state dict: its view, the dtype it is served as, and a ready entry when zero-copy. */
    private record Slot(String name, TorchGlobals.Tensor view, DType dtype, TensorEntry direct) {
    }

    private TorchFile(Path file, Arena arena, Map<String, Slot> slots) {
        this.file = file;
        this.arena = arena;
        this.slots = Collections.unmodifiableMap(slots);
    }

    /** Maps {@code file} read-only and reads it; see the class comment for what is checked. */
    static TorchFile open(Path file) {
        Objects.requireNonNull(file, "file");
        if (!Files.isRegularFile(file)) {
            throw new TorchbinException(file, null, Files.isDirectory(file)
                    ? "is a folder, expected a torch.save file (use TorchCheckpoint.open for folders)" : "no such file");
        }
        Arena arena = Arena.ofShared();
        boolean ok = false;
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment whole = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
            TorchFile opened = parse(file, whole, arena);
            ok = true;
            return opened;
        } catch (IOException e) {
            throw new TorchbinException(file, null, "cannot read (" + e + ")", e);
        } finally {
            if (!ok) arena.close();
        }
    }

    /** Reads an in-memory image of a file; package-private so the fuzz test can skip the disk. */
    static TorchFile parse(Path file, MemorySegment whole, Arena arena) {
        refuseOtherFormats(file, whole);
        ZipArchive zip = ZipArchive.read(file, whole);
        if (zip.entries().isEmpty()) {
            throw new TorchbinException(file, null, "zip archive is empty, expected a torch.save archive (<archive>/data.pkl, data/...)");
        }
        String first = zip.entries().getFirst().name();
        int slash = first.indexOf('/');
        if (slash < 0) {
            throw new TorchbinException(file, null, "first record %s is not inside a folder, expected <archive>/data.pkl and the like (torch.save's layout)"
                    .formatted(TorchbinException.quoted(first)));
        }
        String archive = first.substring(0, slash + 1);
        ZipArchive.Entry pickle = zip.get(archive + "data.pkl");
        if (pickle == null) {
            throw new TorchbinException(file, null, zip.get(archive + "constants.pkl") != null
                    ? "is a TorchScript archive (torch.jit.save), expected a torch.save checkpoint"
                    : "has no record %s, expected a torch.save archive".formatted(TorchbinException.quoted(archive + "data.pkl")));
        }
        ZipArchive.Entry byteorder = zip.get(archive + "byteorder");
        if (byteorder != null) {
            String order = new String(zip.read(byteorder, 16), StandardCharsets.US_ASCII);
            if (!order.equals("little")) {
                throw new TorchbinException(file, null, "byteorder record is %s, expected \"little\"%s".formatted(
                        TorchbinException.quoted(order), order.equals("big") ? " (big-endian storages are not read)" : ""));
            }
        }   // absent: written before torch 2.1 on a little-endian machine; torch.load assumes little too

        TorchGlobals torch = new TorchGlobals(key -> storageRecord(zip, archive, key));
        String record = archive + "data.pkl";
        Object state = new Unpickler(file, record, zip.read(pickle, MAX_PICKLE_BYTES), torch).load();
        if (!(state instanceof Py.Dict dict)) {
            throw new TorchbinException(file, null, "%s holds a %s, expected a dict of tensors (a state dict)".formatted(record, Py.typeName(state)));
        }
        Map<String, Slot> slots = new LinkedHashMap<>();
        for (Map.Entry<Object, Object> e : dict.items.entrySet()) {
            if (!(e.getKey() instanceof String name)) {
                throw new TorchbinException(file, null, "%s: key %s is a %s, expected a str (a state dict maps names to tensors)"
                        .formatted(record, Py.show(e.getKey()), Py.typeName(e.getKey())));
            }
            if (!(e.getValue() instanceof TorchGlobals.Tensor view)) {
                throw new TorchbinException(file, name, "holds a %s, expected a tensor (a state dict maps names to tensors)"
                        .formatted(Py.typeName(e.getValue())));
            }
            slots.put(name, slot(file, name, view));
        }
        return new TorchFile(file, arena, slots);
    }

    private static MemorySegment storageRecord(ZipArchive zip, String archive, String key) {
        String name = archive + "data/" + key;
        ZipArchive.Entry e = zip.get(name);
        if (e == null) {
            throw new Unpickler.Refusal("storage %s has no record %s".formatted(Py.show(key), TorchbinException.quoted(name)));
        }
        if (e.method() != ZipArchive.STORED) {
            throw new Unpickler.Refusal("storage record %s is compressed (method %d), expected it stored: torch.save writes storages uncompressed and koala4j maps them in place"
                    .formatted(TorchbinException.quoted(name), e.method()));
        }
        return zip.stored(e).asReadOnly();
    }

    /** Checks a view against its storage and decides how it is served. */
    private static Slot slot(Path file, String name, TorchGlobals.Tensor view) {
        TorchGlobals.Storage storage = view.storage();
        long[] size = view.size();
        long[] stride = view.stride();
        long numel;
        long last;   // the highest element index the view touches
        try {
            numel = 1;
            for (long d : size) numel = Math.multiplyExact(numel, d);
            last = view.offset();
            for (int i = 0; i < size.length; i++) {
                if (size[i] > 0) last = Math.addExact(last, Math.multiplyExact(size[i] - 1, stride[i]));
            }
        } catch (ArithmeticException overflow) {
            throw new TorchbinException(file, name, "size %s with stride %s overflows 64 bits".formatted(Arrays.toString(size), Arrays.toString(stride)));
        }
        if (numel > 0 && last >= storage.numel()) {
            throw new TorchbinException(file, name, "view (offset %d, size %s, stride %s) reaches element %d of storage %s, which has %d"
                    .formatted(view.offset(), Arrays.toString(size), Arrays.toString(stride), last,
                            TorchbinException.quoted(storage.key()), storage.numel()));
        }
        TorchStorage type = storage.type();
        DType dtype = type.dtype();
        if (dtype == null) {
            return new Slot(name, view, null, null);
        }
        if (type.direct != null && contiguous(size, stride)) {
            int es = type.elementSize;
            MemorySegment data = numel == 0 ? MemorySegment.ofArray(new byte[0])
                    : storage.bytes().asSlice(view.offset() * es, numel * es);
            return new Slot(name, view, dtype, new TensorEntry(name, dtype, size, data));
        }
        long copyBytes;
        try {
            copyBytes = Math.multiplyExact(numel, (long) dtype.byteSize());
        } catch (ArithmeticException overflow) {
            throw new TorchbinException(file, name, "size %s has more than 2^63-1 bytes".formatted(Arrays.toString(size)));
        }
        if (numel > storage.numel() && copyBytes > MAX_EXPANDED_COPY_BYTES) {
            throw new TorchbinException(file, name, "view of size %s (stride %s) repeats elements of a %d-element storage; its dense copy would be %d bytes, expected at most %d for such a view"
                    .formatted(Arrays.toString(size), Arrays.toString(stride), storage.numel(), copyBytes, MAX_EXPANDED_COPY_BYTES));
        }
        return new Slot(name, view, dtype, null);
    }

    /** torch's is_contiguous: row-major strides, ignoring dims of size 1; an empty tensor always is. */
    static boolean contiguous(long[] size, long[] stride) {
        for (long d : size) {
            if (d == 0) return true;
        }
        long expected = 1;
        for (int i = size.length - 1; i >= 0; i--) {
            if (size[i] != 1 && stride[i] != expected) return false;
            expected *= size[i];
        }
        return true;
    }

    private static void refuseOtherFormats(Path file, MemorySegment whole) {
        long size = whole.byteSize();
        byte[] head = whole.asSlice(0, Math.min(size, 512)).toArray(ValueLayout.JAVA_BYTE);
        if (head.length >= 4 && head[0] == 'P' && head[1] == 'K' && (head[2] == 3 || head[2] == 5)) {
            return;
        }
        if (head.length >= 2 && (head[0] & 0xFF) == 0x80 && head[1] >= 2 && head[1] <= 5) {
            throw new TorchbinException(file, null, "is in the legacy torch.save format (a bare pickle, written by torch < 1.6 or with"
                    + " _use_new_zipfile_serialization=False), which koala4j does not read; re-save it with torch >= 1.6"
                    + " (torch.save(torch.load(f), f)) or convert it to safetensors");
        }
        if (head.length >= 262 && new String(head, 257, 5, StandardCharsets.US_ASCII).equals("ustar")) {
            throw new TorchbinException(file, null, "is a tar archive: the legacy torch.save format of torch < 0.4, which koala4j"
                    + " does not read; re-save it with torch >= 1.6 or convert it to safetensors");
        }
        if (head.length >= 9 && head[8] == '{') {
            long n = MemorySegment.ofArray(head).get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (n > 0 && n <= size - 8) {
                throw new TorchbinException(file, null, "is a safetensors file, not a torch.save archive; open it as safetensors");
            }
        }
        StringBuilder hex = new StringBuilder();
        for (int i = 0; i < Math.min(4, head.length); i++) hex.append("%02x ".formatted(head[i] & 0xFF));
        throw new TorchbinException(file, null, "starts with %s, expected a zip archive (\"PK\\3\\4\") as torch.save (torch >= 1.6) writes"
                .formatted(head.length == 0 ? "nothing (empty file)" : "bytes " + hex.toString().trim()));
    }

    // ------------------------------------------------------------------------------------------------ access

    Path file() {
        return file;
    }

    /** Names in the order of the pickled dict. */
    Set<String> names() {
        return slots.keySet();
    }

    boolean contains(String name) {
        return slots.containsKey(name);
    }

    /** The tensor (a copy on first access when it is not a contiguous float/int view), or empty when absent. */
    Optional<TensorEntry> get(String name) {
        Slot slot = slots.get(name);
        if (slot == null) return Optional.empty();
        if (slot.direct() != null) return Optional.of(slot.direct());
        if (slot.dtype() == null) {
            TorchStorage type = slot.view().storage().type();
            throw new TorchbinException(file, name, "dtype %s (%s) is not read by koala4j, expected float32, float16, bfloat16,"
                    .formatted(type.torchDtype, type.describe()) + " int64 or int32 (float64, int16, int8, uint8 and bool are converted)");
        }
        return Optional.of(copies.computeIfAbsent(name, n -> copy(slot)));
    }

    private TensorEntry copy(Slot slot) {
        TorchGlobals.Tensor view = slot.view();
        long numel = 1;
        for (long d : view.size()) numel *= d;
        long bytes = numel * slot.dtype().byteSize();
        MemorySegment out = (arena != null ? arena : Arena.ofAuto()).allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
        DenseCopy.copy(view.storage().bytes(), view.storage().type(), view.offset(), view.size(), view.stride(), slot.dtype(), out);
        return new TensorEntry(slot.name(), slot.dtype(), view.size(), out);
    }

    /** Unmaps the file and frees the copies. Idempotent. */
    @Override
    public void close() {
        if (arena != null && arena.scope().isAlive()) {
            try {
                arena.close();
            } catch (IllegalStateException alreadyClosed) {
                // another thread closed it between the check and the call
            }
        }
    }

    @Override
    public String toString() {
        return "TorchFile[" + file + ", " + slots.size() + " tensors]";
    }
}
