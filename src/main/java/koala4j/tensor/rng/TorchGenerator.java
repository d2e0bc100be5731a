package koala4j.tensor.rng;

/**
 * {@code torch.Generator()} on CPU ({@code at::CPUGeneratorImpl}, an mt19937): the same seed gives the same draws, in
 * the same order, as torch 2.x for {@code torch.rand} and {@code torch.randn} in float32. This is what lets a diffusers
 * pipeline called with {@code generator=torch.Generator().manual_seed(seed)} and koala4j start from the same latents.
 *
 * <p>Draw rules (torch ATen/native/cpu/DistributionTemplates.h, DistributionKernels.cpp, core/DistributionsHelper.h):
 * <ul>
 *   <li>uniform float: one 32-bit word, its 24 low bits times 2^-24;
 *   <li>uniform double: two words, the first one the high half, its 53 low bits times 2^-53;
 *   <li>randn with numel &gt;= 16 ({@code normal_fill}): numel uniform floats, then Box-Muller on each full block of 16
 *       (u1 from slots 0..7, u2 from slots 8..15); if numel is not a multiple of 16, 16 fresh uniforms overwrite the
 *       last 16 slots and are transformed in turn, so numel + 16 words are used. The float maths is torch's AVX2
 *       kernel ({@link Kernel#AVX2}) or its non-vectorised one ({@link Kernel#DEFAULT});
 *   <li>randn with numel &lt; 16 ({@code normal_distribution<double>}): Box-Muller in double, one value at a time, with
 *       the second value of each pair cached in the generator. The cache outlives the call; the numel &gt;= 16 path
 *       neither reads nor clears it; {@link #manualSeed} clears it.
 * </ul>
 *
 * <p>Not thread-safe: use one generator per request (torch guards its generator with a mutex instead).
 */
public final class TorchGenerator {
    /** Which of torch's two CPU Box-Muller kernels to reproduce for randn with numel &gt;= 16. */
    public enum Kernel {
        /**
         * {@code normal_fill_16_AVX2}: float32 avx_mathfun polynomials with FMA. torch uses it on any x86 CPU with AVX2
         * (the usual case; AVX-512 machines give the same values). Bit-exact with torch.
         */
        AVX2,
        /**
         * {@code normal_fill_16} from the non-vectorised build ({@code ATEN_CPU_CAPABILITY=default}, non-x86 CPUs):
         * libm logf/cosf/sinf. Here they are fdlibm's (StrictMath) double results rounded to float, so a value can differ
         * from a given libm's by an ulp or so (max 2.4e-7 absolute against torch on glibc in the golden set).
         */
        DEFAULT
    }

    private static final int BLOCK = 16;
    private static final int HALF = BLOCK / 2;
    /** {@code 2.0f * c10::pi<double>} is a double; the AVX2 kernel broadcasts it as a float. */
    private static final float TWO_PI_F = (float) (2.0 * Math.PI);
    private static final long MASK_53 = (1L << 53) - 1;

    private final Mt19937 engine;
    private long seed;
    private boolean hasCachedNormal;
    private double cachedNormal;

    /**
     * Same as {@code torch.Generator().manual_seed(seed)}. torch reads the seed as a uint64 (a negative Python int is
     * taken mod 2^64), which is this {@code long}'s two's-complement bits; pass seeds from 2^63 to 2^64 - 1 as
     * {@code Long.parseUnsignedLong}. mt19937 is seeded with the low 32 bits only, so seeds that agree mod 2^32
     * (for example 5 and 2^32 + 5) draw the same numbers.
     */
    public TorchGenerator(long seed) {
        this.engine = new Mt19937((int) seed);
        this.seed = seed;
    }

    private TorchGenerator(TorchGenerator other) {
        this.engine = other.engine.copy();
        this.seed = other.seed;
        this.hasCachedNormal = other.hasCachedNormal;
        this.cachedNormal = other.cachedNormal;
    }

    /**
     * {@code Generator.manual_seed(seed)}: reseeds the engine and clears the cached normal (torch also clears a cached
     * float normal that no float32 rand/randn path uses, so this class has none). See the constructor for the seed.
     */
    public void manualSeed(long seed) {
        engine.seed((int) seed);
        this.seed = seed;
        hasCachedNormal = false;
        cachedNormal = 0.0;
    }

    /** {@code Generator.initial_seed()}: the last seed given, as torch's uint64 bits (read with {@code Long.toUnsignedString}). */
    public long initialSeed() {
        return seed;
    }

    /** An independent generator with the same engine state, position and cached normal. */
    public TorchGenerator copy() {
        return new TorchGenerator(this);
    }

    /** The next raw 32-bit mt19937 word ({@code generator->random()}); read it as unsigned where the sign matters. */
    public int nextInt() {
        return engine.nextInt();
    }

    /** torch's {@code uniform_real_distribution<double>(0, 1)}: 53 low bits of a 64-bit draw (first word high) times 2^-53. */
    public double nextDouble() {
        long hi = Integer.toUnsignedLong(engine.nextInt());
        long lo = Integer.toUnsignedLong(engine.nextInt());
        return (((hi << 32) | lo) & MASK_53) * 0x1p-53;
    }

    /** torch's {@code uniform_real_distribution<float>(0, 1)}: 24 low bits of one word times 2^-24, exact in float. */
    private float nextFloat() {
        return (engine.nextInt() & 0xFFFFFF) * 0x1p-24f;
    }

    /** {@code torch.rand(shape, generator=g)} in float32 for a tensor of {@code numel} elements, in [0, 1). */
    public float[] rand(long numel) {
        float[] out = new float[checkedNumel(numel)];
        for (int i = 0; i < out.length; i++) {
            out[i] = nextFloat();
        }
        return out;
    }

    /** {@code torch.randn(shape, generator=g)} in float32 for a tensor of {@code numel} elements, with the AVX2 kernel. */
    public float[] randn(long numel) {
        return randn(numel, Kernel.AVX2);
    }

    /**
     * {@code torch.randn(shape, generator=g)} in float32 for a contiguous tensor of {@code numel} elements (numel is the
     * product of the shape; the values fill it in row-major order). {@code kernel} matters only for numel &gt;= 16.
     */
    public float[] randn(long numel, Kernel kernel) {
        int n = checkedNumel(numel);
        if (kernel == null) {
            throw new IllegalArgumentException("kernel is null, expected Kernel.AVX2 or Kernel.DEFAULT");
        }
        float[] data = new float[n];
        if (n < BLOCK) {
            for (int i = 0; i < n; i++) {
                data[i] = (float) nextNormalDouble();
            }
            return data;
        }
        for (int i = 0; i < n; i++) {
            data[i] = nextFloat();
        }
        float[] sinCos = new float[2];
        for (int i = 0; i + BLOCK <= n; i += BLOCK) {
            fill16(data, i, kernel, sinCos);
        }
        if (n % BLOCK != 0) {
            // torch redoes the last 16 slots from fresh uniforms rather than handle a partial block
            int tail = n - BLOCK;
            for (int i = 0; i < BLOCK; i++) {
                data[tail + i] = nextFloat();
            }
            fill16(data, tail, kernel, sinCos);
        }
        return data;
    }

    /** {@code at::normal_distribution<double>(0, 1)} with the generator's {@code next_double_normal_sample} cache. */
    private double nextNormalDouble() {
        if (hasCachedNormal) {
            hasCachedNormal = false;
            return cachedNormal;
        }
        double u1 = nextDouble();
        double u2 = nextDouble();
        // log1p(-u2) is log(1 - u2) with u2 in [0, 1): never log(0). StrictMath keeps the bits the same on every JVM.
        double r = Math.sqrt(-2.0 * StrictMath.log1p(-u2));
        double theta = 2.0 * Math.PI * u1;
        cachedNormal = r * StrictMath.sin(theta) + 0.0;
        hasCachedNormal = true;
        // "* std + mean" with std 1, mean +0: the + 0.0 turns a -0 into +0 as torch's transformation::normal does
        return r * StrictMath.cos(theta) + 0.0;
    }

    private static void fill16(float[] data, int offset, Kernel kernel, float[] sinCos) {
        switch (kernel) {
            case AVX2 -> normalFill16Avx2(data, offset, sinCos);
            case DEFAULT -> normalFill16(data, offset);
        }
    }

    /** {@code normal_fill_16_AVX2} (ATen/native/cpu/DistributionKernels.cpp): the 8 lanes of one __m256, one at a time. */
    private static void normalFill16Avx2(float[] data, int offset, float[] sinCos) {
        for (int j = 0; j < HALF; j++) {
            float u1 = 1f - data[offset + j]; // [0, 1) -> (0, 1] for log
            float u2 = data[offset + j + HALF];
            float radius = (float) Math.sqrt(-2f * AvxMathFun.log(u1)); // sqrt of a float via double rounds like sqrtps
            float theta = TWO_PI_F * u2;
            AvxMathFun.sincos(theta, sinCos);
            // fmadd(n, std, mean) with std 1, mean +0 is exactly n + 0
            data[offset + j] = radius * sinCos[1] + 0f;
            data[offset + j + HALF] = radius * sinCos[0] + 0f;
        }
    }

    /** {@code normal_fill_16} (ATen/native/cpu/DistributionTemplates.h), float maths through libm. */
    private static void normalFill16(float[] data, int offset) {
        for (int j = 0; j < HALF; j++) {
            float u1 = 1f - data[offset + j];
            float u2 = data[offset + j + HALF];
            float radius = (float) Math.sqrt(-2f * (float) StrictMath.log(u1));
            // 2.0f * pi<double> * u2 is evaluated in double and only then stored as float
            float theta = (float) (2.0 * Math.PI * u2);
            data[offset + j] = radius * (float) StrictMath.cos(theta) + 0f;
            data[offset + j + HALF] = radius * (float) StrictMath.sin(theta) + 0f;
        }
    }

    private static int checkedNumel(long numel) {
        if (numel < 0 || numel > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(
                    "numel " + numel + ", expected 0 to " + (Integer.MAX_VALUE - 8) + " (one Java float array)");
        }
        return (int) numel;
    }
}
