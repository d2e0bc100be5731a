package koala4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import koala4j.tensor.BinaryOp;
import koala4j.tensor.UnaryOp;

/**
 * Vectorised rows for elementwise ops. A row has unit or zero (broadcast) strides; anything else takes the
 * scalar path, which is the reference formula of {@link BinaryOp#apply} / {@link UnaryOp#apply} and the
 * twin the tests compare with.
 */
final class Elementwise {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private Elementwise() {
    }

    static void binaryRow(BinaryOp op, float[] a, long aOff, long aStride, float[] b, long bOff, long bStride,
                          float[] out, long outOff, int n) {
        boolean vectorisable = (aStride == 1 || aStride == 0) && (bStride == 1 || bStride == 0)
                && op != BinaryOp.POW;
        if (!vectorisable) {
            scalarBinaryRow(op, a, aOff, aStride, b, bOff, bStride, out, outOff, n);
            return;
        }
        int ao = (int) aOff;
        int bo = (int) bOff;
        int oo = (int) outOff;
        int i = 0;
        int bound = S.loopBound(n);
        FloatVector aScalar = aStride == 0 ? FloatVector.broadcast(S, a[ao]) : null;
        FloatVector bScalar = bStride == 0 ? FloatVector.broadcast(S, b[bo]) : null;
        for (; i < bound; i += S.length()) {
            FloatVector va = aScalar != null ? aScalar : FloatVector.fromArray(S, a, ao + i);
            FloatVector vb = bScalar != null ? bScalar : FloatVector.fromArray(S, b, bo + i);
            apply(op, va, vb).intoArray(out, oo + i);
        }
        if (i < n) {
            scalarBinaryRow(op, a, aOff + i * aStride, aStride, b, bOff + i * bStride, bStride, out, outOff + i, n - i);
        }
    }

    private static FloatVector apply(BinaryOp op, FloatVector a, FloatVector b) {
        return switch (op) {
            case ADD -> a.add(b);
            case SUB -> a.sub(b);
            case MUL -> a.mul(b);
            case DIV -> a.div(b);
            case MAXIMUM -> a.max(b);
            case MINIMUM -> a.min(b);
            case EQ -> select(a.compare(VectorOperators.EQ, b));
            case NE -> select(a.compare(VectorOperators.NE, b));
            case LT -> select(a.compare(VectorOperators.LT, b));
            case LE -> select(a.compare(VectorOperators.LE, b));
            case GT -> select(a.compare(VectorOperators.GT, b));
            case GE -> select(a.compare(VectorOperators.GE, b));
            case POW -> throw new IllegalStateException("pow takes the scalar path");
        };
    }

    private static FloatVector select(VectorMask<Float> m) {
        return FloatVector.zero(S).blend(1f, m);
    }

    static void scalarBinaryRow(BinaryOp op, float[] a, long aOff, long aStride, float[] b, long bOff, long bStride,
                                float[] out, long outOff, int n) {
        for (int i = 0; i < n; i++) {
            out[(int) (outOff + i)] = op.apply(a[(int) (aOff + i * aStride)], b[(int) (bOff + i * bStride)]);
        }
    }

    /**
     * A dense run of a unary op; {@code out} may be {@code x}. The transcendental ops (exp, log, tanh, sigmoid, sin,
     * cos, pow) take the scalar reference formula: the Vector API's EXP / SIN / ... are computed by C2's own vector
     * routines once the loop is compiled and per lane by {@code Math} before, so the same call gave other last bits
     * early in a process (rotary cos / sin on the LLaMA path, the VAE's exp); the double-precision reference is the
     * same on every JIT tier and rounds once. They are small tensors on every path that uses them.
     */
    static void unary(UnaryOp op, float arg, float[] x, int xOff, float[] out, int outOff, int n) {
        switch (op) {
            case EXP, LOG, TANH, SIGMOID, SIN, COS, POW_SCALAR -> {
                scalarUnary(op, arg, x, xOff, out, outOff, n);
                return;
            }
            default -> {
            }
        }
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, xOff + i);
            FloatVector r = switch (op) {
                case NEG -> v.neg();
                case ABS -> v.abs();
                case SQRT -> v.sqrt();
                case RSQRT -> FloatVector.broadcast(S, 1f).div(v.sqrt());
                case SQUARE -> v.mul(v);
                case RECIPROCAL -> FloatVector.broadcast(S, 1f).div(v);
                case ADD_SCALAR -> v.add(arg);
                case MUL_SCALAR -> v.mul(arg);
                case RSUB_SCALAR -> FloatVector.broadcast(S, arg).sub(v);
                case CLAMP_MIN -> v.max(arg).blend(v, v.test(VectorOperators.IS_NAN));
                case CLAMP_MAX -> v.min(arg).blend(v, v.test(VectorOperators.IS_NAN));
                default -> throw new IllegalStateException(op + " takes the scalar path");
            };
            r.intoArray(out, outOff + i);
        }
        for (; i < n; i++) {
            out[outOff + i] = op.apply(x[xOff + i], arg);
        }
    }

    /** The scalar twin of {@link #unary}. */
    static void scalarUnary(UnaryOp op, float arg, float[] x, int xOff, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i++) {
            out[outOff + i] = op.apply(x[xOff + i], arg);
        }
    }
}
