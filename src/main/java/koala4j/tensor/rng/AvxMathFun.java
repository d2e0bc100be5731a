package koala4j.tensor.rng;

/**
 * One lane of {@code log256_ps} and {@code sincos256_ps} from avx_mathfun.h (Pommier's SSE cephes ports, widened to
 * AVX by Garberoglio), the float32 maths that torch's AVX2 {@code normal_fill_16_AVX2} (ATen/native/cpu/avx_mathfun.h)
 * uses for Box-Muller. Written from the cephes algorithm; the operation order, and where GCC contracts a multiply and
 * an add into one FMA in torch's AVX2 build, follow the pinned sequence in golden/torch_rng (variant avx2_fma), which
 * reproduces torch's outputs bit for bit.
 *
 * <p>Java float arithmetic is IEEE single precision with round-to-nearest-even, and {@link Math#fma(float, float, float)}
 * rounds once, like {@code vfmadd}; so each line below gives the same bits as the vector lane. These are not accurate
 * general-purpose functions: cephes polynomials, about 1 ulp on the ranges torch feeds them.
 */
final class AvxMathFun {
    private AvxMathFun() {
    }

    // Constants are written as double literals cast to float, exactly how _PS256_CONST builds them.
    private static final float MIN_NORM_POS = Float.MIN_NORMAL;
    private static final float SQRTHF = (float) 0.707106781186547524;
    private static final float LOG_P0 = (float) 7.0376836292E-2;
    private static final float LOG_P1 = (float) -1.1514610310E-1;
    private static final float LOG_P2 = (float) 1.1676998740E-1;
    private static final float LOG_P3 = (float) -1.2420140846E-1;
    private static final float LOG_P4 = (float) 1.4249322787E-1;
    private static final float LOG_P5 = (float) -1.6668057665E-1;
    private static final float LOG_P6 = (float) 2.0000714765E-1;
    private static final float LOG_P7 = (float) -2.4999993993E-1;
    private static final float LOG_P8 = (float) 3.3333331174E-1;
    private static final float LOG_Q1 = (float) -2.12194440e-4;
    private static final float LOG_Q2 = (float) 0.693359375;

    private static final float FOPI = (float) 1.27323954473516; // 4 / pi
    private static final float DP1 = (float) -0.78515625;
    private static final float DP2 = (float) -2.4187564849853515625e-4;
    private static final float DP3 = (float) -3.77489497744594108e-8;
    private static final float COS_P0 = (float) 2.443315711809948E-005;
    private static final float COS_P1 = (float) -1.388731625493765E-003;
    private static final float COS_P2 = (float) 4.166664568298827E-002;
    private static final float SIN_P0 = (float) -1.9515295891E-4;
    private static final float SIN_P1 = (float) 8.3321608736E-3;
    private static final float SIN_P2 = (float) -1.6666654611E-1;

    /** {@code log256_ps} for one lane: natural log; NaN for x &lt;= 0 or NaN, subnormals clamped to the smallest normal. */
    static float log(float x) {
        if (!(x > 0f)) {
            return Float.NaN; // the vector code ORs an all-ones mask (a NaN) into lanes with x <= 0
        }
        x = Math.max(x, MIN_NORM_POS);
        int bits = Float.floatToRawIntBits(x);
        float e = (bits >>> 23) - 127;
        // keep the mantissa, force the exponent of 0.5: m in [0.5, 1)
        float m = Float.intBitsToFloat((bits & 0x807FFFFF) | 0x3F000000);
        e = e + 1f;
        // m < sqrt(1/2): use 2m - 1 and e - 1, so the polynomial argument stays in [sqrt(1/2) - 1, sqrt(2) - 1)
        boolean small = m < SQRTHF;
        float tmp = small ? m : 0f;
        m = m - 1f;
        e = e - (small ? 1f : 0f);
        m = m + tmp;
        float z = m * m;
        float y = LOG_P0;
        y = Math.fma(y, m, LOG_P1);
        y = Math.fma(y, m, LOG_P2);
        y = Math.fma(y, m, LOG_P3);
        y = Math.fma(y, m, LOG_P4);
        y = Math.fma(y, m, LOG_P5);
        y = Math.fma(y, m, LOG_P6);
        y = Math.fma(y, m, LOG_P7);
        y = Math.fma(y, m, LOG_P8);
        y = y * m;
        y = Math.fma(y, z, e * LOG_Q1); // GCC: y*z + e*q1 -> fma(y, z, e*q1)
        y = Math.fma(z, -0.5f, y);      // GCC: y - z*0.5 -> fnmadd
        m = m + y;
        return Math.fma(e, LOG_Q2, m);  // GCC: m + e*q2 -> fma
    }

    /**
     * {@code sincos256_ps} for one lane: writes sin(x) to {@code out[0]} and cos(x) to {@code out[1]}. The cephes
     * reduction by multiples of pi/4 is accurate for |x| up to about 8192; torch calls it with x in [0, 2 pi).
     */
    static void sincos(float x, float[] out) {
        int signSin = Float.floatToRawIntBits(x) & 0x80000000;
        x = Math.abs(x);
        int j = (int) (x * FOPI); // cvttps: truncation
        j = (j + 1) & ~1;         // j even: the octant pair whose centre is nearest
        float y = j;
        int swapSignSin = (j & 4) << 29;
        boolean sinPolyHere = (j & 2) == 0; // octants 0, 3, 4, 7 (after the +1): sin from the sin polynomial
        // extended-precision x - j*pi/4 in three parts; GCC contracts each step into an FMA
        x = Math.fma(y, DP1, x);
        x = Math.fma(y, DP2, x);
        x = Math.fma(y, DP3, x);
        int signCos = (~(j - 2) & 4) << 29;
        signSin ^= swapSignSin;
        float z = x * x;

        float yc = COS_P0;
        yc = Math.fma(yc, z, COS_P1);
        yc = Math.fma(yc, z, COS_P2);
        yc = yc * z;
        yc = Math.fma(yc, z, -(z * 0.5f)); // GCC: yc*z - z*0.5 -> fma(yc, z, -(z*0.5))
        yc = yc + 1f;

        float ys = SIN_P0;
        ys = Math.fma(ys, z, SIN_P1);
        ys = Math.fma(ys, z, SIN_P2);
        ys = ys * z;
        ys = Math.fma(ys, x, x);

        // The vector code selects with masks and adds of +0; neither polynomial can give -0, so a plain select is the same.
        float s = sinPolyHere ? ys : yc;
        float c = sinPolyHere ? yc : ys;
        out[0] = Float.intBitsToFloat(Float.floatToRawIntBits(s) ^ signSin);
        out[1] = Float.intBitsToFloat(Float.floatToRawIntBits(c) ^ signCos);
    }
}
