package koala4j.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Walks several strided operands over one output shape, one innermost row at a time, after merging the dims
 * that every operand can treat as one. Offsets and strides are in elements.
 */
final class Strided {

    /** Receives one row: its length, each operand's offset, and each operand's stride within the row. */
    @FunctionalInterface
    interface RowBody {
        void row(int n, long[] offsets, long[] innerStrides);
    }

    private Strided() {
    }

    /** numpy broadcasting of two shapes; the error names both. */
    static int[] broadcast(int[] a, int[] b) {
        int rank = Math.max(a.length, b.length);
        int[] out = new int[rank];
        for (int i = 0; i < rank; i++) {
            int da = i - (rank - a.length) >= 0 ? a[i - (rank - a.length)] : 1;
            int db = i - (rank - b.length) >= 0 ? b[i - (rank - b.length)] : 1;
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException("shapes " + Arrays.toString(a) + " and " + Arrays.toString(b)
                        + " do not broadcast (dim " + i + ": " + da + " vs " + db + ")");
            }
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    /** Strides of a view with {@code shape}/{@code strides} broadcast to {@code target} (0 where repeated). */
    static long[] broadcastStrides(int[] shape, long[] strides, int[] target) {
        long[] out = new long[target.length];
        int lead = target.length - shape.length;
        for (int i = 0; i < target.length; i++) {
            if (i < lead) {
                out[i] = 0;
            } else if (shape[i - lead] == target[i]) {
                out[i] = shape[i - lead] == 1 ? 0 : strides[i - lead];
            } else if (shape[i - lead] == 1) {
                out[i] = 0;
            } else {
                throw new IllegalArgumentException("cannot broadcast " + Arrays.toString(shape) + " to "
                        + Arrays.toString(target));
            }
        }
        return out;
    }

    /**
     * Calls {@code body} for every innermost row of {@code shape}; rows are split over threads when there is
     * enough work. Operand {@code k} has base offset {@code bases[k]} and strides {@code strides[k]}.
     */
    static void forEachRow(int[] shape, long[] bases, long[][] strides, boolean parallel, RowBody body) {
        int ops = bases.length;
        // drop size-1 dims, then merge neighbours that are contiguous with each other for every operand
        int[] dims = new int[shape.length];
        long[][] st = new long[ops][shape.length];
        int rank = 0;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 0) {
                return;
            }
            if (shape[d] == 1) {
                continue;
            }
            if (rank > 0) {
                boolean mergeable = true;
                for (int k = 0; k < ops; k++) {
                    if (st[k][rank - 1] != strides[k][d] * shape[d]) {
                        mergeable = false;
                        break;
                    }
                }
                if (mergeable) {
                    dims[rank - 1] *= shape[d];
                    for (int k = 0; k < ops; k++) {
                        st[k][rank - 1] = strides[k][d];
                    }
                    continue;
                }
            }
            dims[rank] = shape[d];
            for (int k = 0; k < ops; k++) {
                st[k][rank] = strides[k][d];
            }
            rank++;
        }
        if (rank == 0) {
            body.row(1, bases.clone(), new long[ops]);
            return;
        }
        int n = dims[rank - 1];
        long[] inner = new long[ops];
        for (int k = 0; k < ops; k++) {
            inner[k] = st[k][rank - 1];
        }
        long rowsLong = 1;
        for (int d = 0; d < rank - 1; d++) {
            rowsLong *= dims[d];
        }
        int rows = Math.toIntExact(rowsLong);
        final int outerRank = rank - 1;
        Parallel.Range range = (from, to) -> {
            long[] offsets = new long[ops];
            int[] idx = new int[Math.max(outerRank, 1)];
            // position of row `from` in the outer dims
            long r = from;
            for (int d = outerRank - 1; d >= 0; d--) {
                idx[d] = (int) (r % dims[d]);
                r /= dims[d];
            }
            for (int row = from; row < to; row++) {
                for (int k = 0; k < ops; k++) {
                    long off = bases[k];
                    for (int d = 0; d < outerRank; d++) {
                        off += idx[d] * st[k][d];
                    }
                    offsets[k] = off;
                }
                body.row(n, offsets, inner);
                for (int d = outerRank - 1; d >= 0; d--) {
                    if (++idx[d] < dims[d]) {
                        break;
                    }
                    idx[d] = 0;
                }
            }
        };
        long work = rowsLong * n;
        if (parallel && rows > 1 && work >= 1 << 15) {
            Parallel.forRange(rows, Math.max(1, (1 << 14) / Math.max(n, 1)), range);
        } else {
            range.run(0, rows);
        }
    }

    /**
     * Copies a strided view of {@code elementBytes}-sized elements into a dense destination (row-major over
     * {@code shape}), any dtype.
     */
    static void copyToDense(MemorySegment src, long srcOffset, int[] shape, long[] srcStrides,
                            MemorySegment dst, long dstOffset, int elementBytes) {
        long[] dense = koala4j.tensor.Tensor.denseStrides(shape);
        copy(src, srcOffset, srcStrides, dst, dstOffset, dense, shape, elementBytes);
    }

    /** Copies between two strided views of the same shape. */
    static void copy(MemorySegment src, long srcOffset, long[] srcStrides,
                     MemorySegment dst, long dstOffset, long[] dstStrides, int[] shape, int elementBytes) {
        forEachRow(shape, new long[] {srcOffset, dstOffset}, new long[][] {srcStrides, dstStrides}, true,
                (n, off, inner) -> {
                    if (inner[0] == 1 && inner[1] == 1) {
                        MemorySegment.copy(src, off[0] * elementBytes, dst, off[1] * elementBytes, (long) n * elementBytes);
                        return;
                    }
                    switch (elementBytes) {
                        case 4 -> {
                            for (int i = 0; i < n; i++) {
                                dst.setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, off[1] + i * inner[1],
                                        src.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, off[0] + i * inner[0]));
                            }
                        }
                        case 2 -> {
                            for (int i = 0; i < n; i++) {
                                dst.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, off[1] + i * inner[1],
                                        src.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, off[0] + i * inner[0]));
                            }
                        }
                        case 8 -> {
                            for (int i = 0; i < n; i++) {
                                dst.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, off[1] + i * inner[1],
                                        src.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, off[0] + i * inner[0]));
                            }
                        }
                        default -> throw new IllegalStateException("element size " + elementBytes);
                    }
                });
    }
}
