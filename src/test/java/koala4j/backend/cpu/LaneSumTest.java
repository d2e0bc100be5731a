package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import jdk.incubator.vector.FloatVector;

import org.junit.jupiter.api.Test;

import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.UnaryOp;
import koala4j.tensor.quant.Q8Storage;

/**
 * Horizontal sums ({@link GemmVector#sum}) and the kernels built on them give the same bits from a process's first
 * call on, interpreted, under C1 and under C2: with the Vector API's {@code reduceLanes(ADD)} the same Q8_0 product
 * gave other last bits in its first few hundred calls than afterwards. Exact equality, no tolerance.
 */
class LaneSumTest {

    /** Lane 0 of the tree sum: lane i + lane (i ^ d) for d = VL/2, ..., 1, in float. */
    private static float treeSum(float[] lanes) {
        float[] a = lanes.clone();
        for (int d = a.length / 2; d >= 1; d /= 2) {
            float[] b = new float[a.length];
            for (int i = 0; i < a.length; i++) {
                b[i] = a[i] + a[i ^ d];
            }
            a = b;
        }
        return a[0];
    }

    @Test
    void sumIsTheDocumentedTree() {
        Random rnd = new Random(11);
        int vl = GemmVector.VL;
        float[][] lanes = new float[64][vl];
        float[] expected = new float[lanes.length];
        for (int v = 0; v < lanes.length; v++) {
            for (int i = 0; i < vl; i++) {
                // magnitudes 2^-20 .. 2^20 so that another order rounds differently
                lanes[v][i] = (float) (rnd.nextGaussian() * Math.scalb(1.0, rnd.nextInt(41) - 20));
            }
            expected[v] = treeSum(lanes[v]);
        }
        FloatVector[] vectors = new FloatVector[lanes.length];
        for (int v = 0; v < lanes.length; v++) {
            vectors[v] = FloatVector.fromArray(GemmVector.F, lanes[v], 0);
        }
        for (int round = 0; round < 400; round++) {
            for (int v = 0; v < lanes.length; v++) {
                assertEquals(Float.floatToRawIntBits(expected[v]), Float.floatToRawIntBits(GemmVector.sum(vectors[v])),
                        "vector " + v + " in round " + round);
            }
        }
    }

    @Test
    void matrixVectorProductsRepeatBitForBit() {
        Random rnd = new Random(5);
        int k = 512;
        int n = 64;
        float[] weights = new float[n * k];
        for (int i = 0; i < weights.length; i++) {
            weights[i] = (float) rnd.nextGaussian();
        }
        Q8Storage q8 = Q8Gemm.quantize(FloatSource.of(weights), 0, weights.length);
        Gemm.MatrixRef f16 = new Gemm.MatrixRef(GemmTest.source(weights, DType.F16), 0, k, true, 0);
        Gemm.MatrixRef f32 = new Gemm.MatrixRef(FloatSource.of(weights), 0, k, true, 0);
        for (int m : new int[] {1, 4}) {
            float[] x = new float[m * k];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rnd.nextGaussian();
            }
            float[] firstQ8 = null;
            float[] firstF16 = null;
            float[] firstF32 = null;
            Gemm.MatrixRef a = new Gemm.MatrixRef(FloatSource.of(x), 0, k, false, 0);
            for (int call = 0; call < 3000; call++) {
                float[] q = new float[m * n];
                Q8Gemm.linear(x, 0, m, k, q8, 0, n, null, Activation.NONE, q);
                float[] h = new float[m * n];
                Gemm.gemm(1, m, n, k, a, f16, h, 0, n, 0, Gemm.Epilogue.NONE);
                float[] f = new float[m * n];
                Gemm.gemm(1, m, n, k, a, f32, f, 0, n, 0, Gemm.Epilogue.NONE);
                if (call == 0) {
                    firstQ8 = q;
                    firstF16 = h;
                    firstF32 = f;
                } else {
                    assertArrayEquals(firstQ8, q, "Q8_0, " + m + " rows, call " + call);
                    assertArrayEquals(firstF16, h, "F16, " + m + " rows, call " + call);
                    assertArrayEquals(firstF32, f, "F32, " + m + " rows, call " + call);
                }
            }
        }
    }

    /**
     * The activations fused into a product's epilogue (SiLU, quick_gelu, GELU, GELU tanh) give the same bits from the
     * first call on: with the Vector API's EXP / TANH, which C2 compiles to its own vector routines and the
     * interpreter computes lane by lane with Math.exp / Math.tanh, a decoding step gave other last bits before and
     * after C2 compiled the kernel (a batched step against a lone one then differed now and then).
     */
    @Test
    void activationsRepeatBitForBit() {
        Random rnd = new Random(9);
        float[] x = new float[1000];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rnd.nextGaussian() * Math.scalb(1.0, rnd.nextInt(8) - 3));
        }
        x[0] = -100f;
        x[1] = 100f;
        x[2] = 0f;
        x[3] = -0f;
        for (Activation act : new Activation[] {Activation.SILU, Activation.QUICK_GELU, Activation.GELU,
                Activation.GELU_TANH}) {
            float[] first = null;
            for (int call = 0; call < 3000; call++) {
                float[] y = new float[x.length];
                GemmVector.finishRow(x.clone(), 0, y, 0, x.length, 1f, null, 0, false, 0f, act, false);
                if (first == null) {
                    first = y;
                } else {
                    assertArrayEquals(first, y, act + ", call " + call);
                }
            }
        }
    }

    /**
     * The elementwise transcendental ops (rotary cos / sin on the LLaMA path, the VAE's exp) give the same bits on
     * every call of a process, before and after C2 compiles their loop, as the scalar reference of each op does.
     */
    @Test
    void transcendentalOpsRepeatBitForBit() {
        Random rnd = new Random(11);
        float[] x = new float[1000];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rnd.nextGaussian() * Math.scalb(1.0, rnd.nextInt(12) - 3));
        }
        x[0] = 2047f; // a rotary angle of a late position
        x[1] = 100f;
        x[2] = 0f;
        x[3] = -0f;
        for (UnaryOp op : new UnaryOp[] {UnaryOp.EXP, UnaryOp.LOG, UnaryOp.TANH, UnaryOp.SIGMOID, UnaryOp.SIN,
                UnaryOp.COS, UnaryOp.POW_SCALAR}) {
            float arg = 0.7f;
            float[] reference = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                reference[i] = op.apply(x[i], arg);
            }
            for (int call = 0; call < 3000; call++) {
                float[] y = new float[x.length];
                Elementwise.unary(op, arg, x, 0, y, 0, x.length);
                assertArrayEquals(reference, y, op + ", call " + call);
            }
        }
    }
}
