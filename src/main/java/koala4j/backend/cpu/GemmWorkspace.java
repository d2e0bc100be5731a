package koala4j.backend.cpu;

/**
 * Per-thread packing buffers of the GEMM and conv kernels, kept between calls so that a layer loop does not allocate.
 * Each buffer only grows; a thread holds at most a few MiB (the partial-sum scratch of one task is the largest).
 */
final class GemmWorkspace {

    private static final ThreadLocal<GemmWorkspace> LOCAL = ThreadLocal.withInitial(GemmWorkspace::new);

    private float[] a = new float[0];
    private float[] b = new float[0];
    private float[] tile = new float[0];
    private float[] scratch = new float[0];
    private float[] row = new float[0];
    private float[] vec = new float[0];
    private float[] out = new float[0];

    private GemmWorkspace() {
    }

    static GemmWorkspace get() {
        return LOCAL.get();
    }

    /** The packed A micro-panel. */
    float[] a(int size) {
        return a.length >= size ? a : (a = new float[size]);
    }

    /** The packed B block. */
    float[] b(int size) {
        return b.length >= size ? b : (b = new float[size]);
    }

    /** One finished micro-tile on its way through the epilogue. */
    float[] tile(int size) {
        return tile.length >= size ? tile : (tile = new float[size]);
    }

    /** Partial sums of a task's C region between k blocks. */
    float[] scratch(int size) {
        return scratch.length >= size ? scratch : (scratch = new float[size]);
    }

    /** One row or column converted from F16/BF16 while packing. */
    float[] row(int size) {
        return row.length >= size ? row : (row = new float[size]);
    }

    /** The left vector of a matrix-vector product. */
    float[] vec(int size) {
        return vec.length >= size ? vec : (vec = new float[size]);
    }

    /** Raw dot products of a matrix-vector task before the epilogue. */
    float[] out(int size) {
        return out.length >= size ? out : (out = new float[size]);
    }
}
