package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import koala4j.tensor.Activation;

/**
 * Pointwise activations on float32 spans: {@link Activation} (torch.nn.functional.relu / silu / gelu, transformers'
 * quick_gelu), diffusers' {@code GEGLU} gate (models/activations.py) and the LLaMA MLP's SwiGLU
 * ({@code act_fn(gate_proj(x)) * up_proj(x)} in transformers' LlamaMLP).
 *
 * <p>Accuracy against the double-precision {@link Activation#apply(float)}: |fast - ref| &lt;= 2e-6 (1 + |ref|) on
 * finite inputs. Unlike torch, infinities never give NaN: silu, gelu, gelu_tanh and quick_gelu map -inf to -0 and
 * +inf to +inf (torch 2.13 returns NaN for silu(-inf) and gelu(+-inf)). NaN stays NaN.
 *
 * <p>{@code out} may be the input array at the same offset (in place); other overlaps are handled through a
 * temporary copy. Stateless and thread-safe; large spans are split over {@link Parallel}.
 */
public final class Activations {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Elements per parallel chunk: an exp-based activation costs ~40 flops per element. */
    private static final int GRAIN = 1 << 14;

    // exp: Cody–Waite reduction x = n ln2 + r, |r| <= ln2/2, then Cephes' expf polynomial.
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;        // 9 significant bits: n * LN2_HI is exact for |n| <= 2^15
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float EXP_MAX = 88.72283905f;       // ln(Float.MAX_VALUE)
    private static final float EXP_MIN = -87.33654475f;      // ln(Float.MIN_NORMAL): below it the result is flushed to 0
    private static final float ROUND_MAGIC = 0x1.8p23f;      // adding it rounds to an integer held in the low mantissa
    private static final int ROUND_MAGIC_BITS = Float.floatToRawIntBits(ROUND_MAGIC);

    private static final float INV_SQRT2 = 0.70710678118654752f;
    // gelu_tanh(x) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); these are -2 sqrt(2/pi) and that times 0.044715
    private static final float TANH_C1 = -1.5957691216057308f;
    private static final float TANH_C3 = -1.5957691216057308f * 0.044715f;
    private static final float QUICK_GELU_K = -1.702f;
    private static final float[] ERF_SERIES = erfSeries();

    private Activations() {
    }

    /** out[i] = act(x[i]) for i in [0, len). */
    public static void apply(Activation act, float[] x, int xOff, int len, float[] out, int outOff) {
        if (act == null) {
            throw new NullPointerException("act is null");
        }
        Spans.nonNegative("len", len);
        Spans.check("x", x, xOff, len);
        Spans.check("out", out, outOff, len);
        if (act == Activation.NONE) {
            if (x != out || xOff != outOff) {
                System.arraycopy(x, xOff, out, outOff, len);   // arraycopy is overlap-safe
            }
            return;
        }
        if (Spans.shiftedOverlap(x, xOff, len, out, outOff, len)) {
            float[] tmp = new float[len];
            apply(act, x, xOff, len, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, len);
            return;
        }
        Parallel.forRange(len, GRAIN, (from, to) -> applyRange(act, x, xOff + from, to - from, out, outOff + from));
    }

    /**
     * diffusers {@code GEGLU.forward} after its projection: {@code hidden, gate = x.chunk(2, dim=-1)} and
     * {@code out = hidden * F.gelu(gate)} (erf form).
     *
     * @param x   [rows, 2 cols]: hidden in columns [0, cols), gate in [cols, 2 cols)
     * @param out [rows, cols]; may be {@code x} at the same offset (then the tail of x's span is clobbered)
     */
    public static void geglu(float[] x, int xOff, int rows, int cols, float[] out, int outOff) {
        Spans.nonNegative("rows", rows);
        Spans.nonNegative("cols", cols);
        int inLen = Spans.size("geglu input [rows, 2*cols]", rows, 2L * cols);
        int outLen = Spans.size("geglu output [rows, cols]", rows, cols);
        Spans.check("x", x, xOff, inLen);
        Spans.check("out", out, outOff, outLen);
        if (outLen == 0) {
            return;
        }
        int grain = Math.max(1, GRAIN / cols);
        if (!Spans.overlap(x, xOff, inLen, out, outOff, outLen)) {
            Parallel.forRange(rows, grain, (from, to) -> {
                for (int r = from; r < to; r++) {
                    int h = xOff + r * 2 * cols;
                    gegluRow(x, h, h + cols, cols, out, outOff + r * cols);
                }
            });
        } else if (xOff == outOff) {
            // Output row r lands on input rows < r, so rows cannot run in parallel straight into out. Each row
            // first overwrites its own hidden half (element j reads hidden[j] and gate[j] before writing hidden[j]),
            // then one forward pass packs the halves together; arraycopy moves data to lower indices only.
            Parallel.forRange(rows, grain, (from, to) -> {
                for (int r = from; r < to; r++) {
                    int h = xOff + r * 2 * cols;
                    gegluRow(x, h, h + cols, cols, x, h);
                }
            });
            for (int r = 1; r < rows; r++) {
                System.arraycopy(x, xOff + r * 2 * cols, x, xOff + r * cols, cols);
            }
        } else {
            float[] tmp = new float[outLen];
            geglu(x, xOff, rows, cols, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, outLen);
        }
    }

    /**
     * transformers' {@code LlamaMLP}: {@code out = silu(gate) * up}. {@code out} may be {@code gate} or {@code up}
     * at the same offset.
     */
    public static void swiglu(float[] gate, int gateOff, float[] up, int upOff, int len, float[] out, int outOff) {
        Spans.nonNegative("len", len);
        Spans.check("gate", gate, gateOff, len);
        Spans.check("up", up, upOff, len);
        Spans.check("out", out, outOff, len);
        if (Spans.shiftedOverlap(gate, gateOff, len, out, outOff, len)
                || Spans.shiftedOverlap(up, upOff, len, out, outOff, len)) {
            float[] tmp = new float[len];
            swiglu(gate, gateOff, up, upOff, len, tmp, 0);
            System.arraycopy(tmp, 0, out, outOff, len);
            return;
        }
        Parallel.forRange(len, GRAIN, (from, to) -> {
            int n = to - from;
            int g0 = gateOff + from;
            int u0 = upOff + from;
            int o0 = outOff + from;
            int i = 0;
            for (int bound = S.loopBound(n); i < bound; i += L) {
                FloatVector g = FloatVector.fromArray(S, gate, g0 + i);
                FloatVector u = FloatVector.fromArray(S, up, u0 + i);
                silu(g).mul(u).intoArray(out, o0 + i);
            }
            if (i < n) {
                VectorMask<Float> m = S.indexInRange(i, n);
                FloatVector g = FloatVector.fromArray(S, gate, g0 + i, m);
                FloatVector u = FloatVector.fromArray(S, up, u0 + i, m);
                silu(g).mul(u).intoArray(out, o0 + i, m);
            }
        });
    }

    private static void applyRange(Activation act, float[] x, int xOff, int n, float[] out, int outOff) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L) {
            activate(act, FloatVector.fromArray(S, x, xOff + i)).intoArray(out, outOff + i);
        }
        if (i < n) {
            VectorMask<Float> m = S.indexInRange(i, n);
            activate(act, FloatVector.fromArray(S, x, xOff + i, m)).intoArray(out, outOff + i, m);
        }
    }

    private static void gegluRow(float[] x, int hOff, int gOff, int cols, float[] out, int outOff) {
        int j = 0;
        for (int bound = S.loopBound(cols); j < bound; j += L) {
            FloatVector h = FloatVector.fromArray(S, x, hOff + j);
            FloatVector g = FloatVector.fromArray(S, x, gOff + j);
            h.mul(gelu(g)).intoArray(out, outOff + j);
        }
        if (j < cols) {
            VectorMask<Float> m = S.indexInRange(j, cols);
            FloatVector h = FloatVector.fromArray(S, x, hOff + j, m);
            FloatVector g = FloatVector.fromArray(S, x, gOff + j, m);
            h.mul(gelu(g)).intoArray(out, outOff + j, m);
        }
    }

    /** a * b + c with a scalar c (the Vector API has no mixed vector/scalar fma). */
    private static FloatVector madd(FloatVector a, FloatVector b, float c) {
        return a.fma(b, FloatVector.broadcast(S, c));
    }

    /** The activation on one vector; other kernels (GroupNorm) fuse it into their epilogue through this. */
    static FloatVector activate(Activation act, FloatVector v) {
        return switch (act) {
            case NONE -> v;
            // -0 becomes +0 as in Activation.apply; NaN compares false and passes through, as in torch.relu
            case RELU -> v.blend(0f, v.compare(VectorOperators.LE, 0f));
            case SILU -> silu(v);
            case GELU -> gelu(v);
            case GELU_TANH -> sigmoidTimes(v, v.mul(v).fma(TANH_C3, TANH_C1).mul(v));
            case QUICK_GELU -> sigmoidTimes(v, v.mul(QUICK_GELU_K));
        };
    }

    static FloatVector silu(FloatVector v) {
        return sigmoidTimes(v, v.neg());
    }

    /**
     * x * sigmoid(-negArg) computed as x / (1 + exp(negArg)). The numerator is clamped to -MAX_VALUE so that
     * x = -inf gives -MAX / inf = -0 instead of -inf / inf = NaN; finite x are unchanged.
     */
    private static FloatVector sigmoidTimes(FloatVector x, FloatVector negArg) {
        return x.max(-Float.MAX_VALUE).div(exp(negArg).add(1f));
    }

    /**
     * gelu(x) = 0.5 x (1 + erf(x / sqrt 2)). For |z| &gt;= 1, 1 + erf(z) is formed as erfc(-z) when z &lt; 0 and
     * 2 - erfc(z) otherwise, so the negative tail keeps its relative accuracy instead of cancelling.
     */
    static FloatVector gelu(FloatVector x) {
        FloatVector z = x.mul(INV_SQRT2);
        FloatVector a = z.abs();
        FloatVector q = erfcOfAbs(a);
        FloatVector tail = q.neg().add(2f).blend(q, z.compare(VectorOperators.LT, 0f));
        FloatVector onePlusErf = erfSmall(z).add(1f).blend(tail, a.compare(VectorOperators.GE, 1f));
        return x.max(-Float.MAX_VALUE).mul(0.5f).mul(onePlusErf);
    }

    /**
     * erf(x), absolute error below 2e-7 (tested against a series / continued-fraction evaluation): the Maclaurin
     * series for |x| &lt; 1, where 1 - erfc(|x|) would lose up to 3e-7 to float rounding, and 1 - erfc beyond.
     */
    static FloatVector erf(FloatVector x) {
        FloatVector a = x.abs();
        FloatVector e = erfcOfAbs(a).neg().add(1f);
        e = e.blend(e.neg(), x.compare(VectorOperators.LT, 0f));
        return erfSmall(x).blend(e, a.compare(VectorOperators.GE, 1f));
    }

    /** erf(x) = x sum_n c_n x^2n, c_n = 2/sqrt(pi) (-1)^n / (n! (2n+1)), truncated after n = 10: error &lt; 2e-9 on |x| &lt;= 1. */
    private static FloatVector erfSmall(FloatVector x) {
        FloatVector x2 = x.mul(x);
        FloatVector p = FloatVector.broadcast(S, ERF_SERIES[ERF_SERIES.length - 1]);
        for (int n = ERF_SERIES.length - 2; n >= 0; n--) {
            p = madd(p, x2, ERF_SERIES[n]);
        }
        return p.mul(x);
    }

    private static float[] erfSeries() {
        float[] c = new float[11];
        double factorial = 1;
        for (int n = 0; n < c.length; n++) {
            factorial *= Math.max(1, n);
            c[n] = (float) (2 / Math.sqrt(Math.PI) * (n % 2 == 0 ? 1 : -1) / (factorial * (2 * n + 1)));
        }
        return c;
    }

    /**
     * erfc(a) for a &gt;= 0: Numerical Recipes' Chebyshev fit erfc(a) = t exp(-a^2 - 1.26551223 + t P(t)),
     * t = 1 / (1 + a/2), fractional error below 1.2e-7 everywhere. It is the same fit as {@link koala4j.tensor.Erf},
     * evaluated in float.
     */
    private static FloatVector erfcOfAbs(FloatVector a) {
        FloatVector t = FloatVector.broadcast(S, 1f).div(a.fma(0.5f, 1f));
        FloatVector p = t.fma(0.17087277f, -0.82215223f);
        p = madd(p, t, 1.48851587f);
        p = madd(p, t, -1.13520398f);
        p = madd(p, t, 0.27886807f);
        p = madd(p, t, -0.18628806f);
        p = madd(p, t, 0.09678418f);
        p = madd(p, t, 0.37409196f);
        p = madd(p, t, 1.00002368f);
        p = madd(p, t, -1.26551223f);
        return t.mul(exp(a.neg().fma(a, p)));
    }

    /**
     * e^x in float, relative error under 3e-7 for x in [ln MIN_NORMAL, ln MAX_VALUE]; below that range the result
     * is 0 (true values are sub-normal, under 1.2e-38), above it +inf, NaN stays NaN.
     */
    static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(EXP_MIN).min(EXP_MAX);
        FloatVector shifted = xc.fma(LOG2E, ROUND_MAGIC);           // ROUND_MAGIC + round(x log2 e)
        FloatVector n = shifted.sub(ROUND_MAGIC);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = r.fma(1.9875691500e-4f, 1.3981999507e-3f);
        p = madd(p, r, 8.3334519073e-3f);
        p = madd(p, r, 4.1665795894e-2f);
        p = madd(p, r, 1.6666665459e-1f);
        p = madd(p, r, 5.0000001201e-1f);
        FloatVector er = p.fma(r.mul(r), r).add(1f);
        // n is in [-126, 128]: 2^n = 2^(n>>1) * 2^(n - n>>1) keeps both factors normal floats at either end
        IntVector ni = shifted.reinterpretAsInts().sub(ROUND_MAGIC_BITS);
        IntVector half = ni.lanewise(VectorOperators.ASHR, 1);
        FloatVector pow2a = half.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector pow2b = ni.sub(half).add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector y = er.mul(pow2a).mul(pow2b);
        y = y.blend(0f, x.compare(VectorOperators.LT, EXP_MIN));
        return y.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, EXP_MAX));
    }
}
