package koala4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import koala4j.tensor.Activation;
import koala4j.tensor.DType;

/**
 * {@link Conv2d} against its scalar twin {@link ScalarConv2d} (the direct seven-loop sum in double). Metric:
 * max|fast - scalar| / (1 + max|scalar|) <= 1e-5 over the whole output array: the fast path sums in float over
 * cin/groups*kh*kw <= 500 terms of inputs in [-1, 1], far inside that. Output elements outside [outOffset, outOffset
 * + n*cout*ho*wo) must be untouched.
 */
class Conv2dTest {

    /** n, cin, h, w, cout, k, stride, pad, groups. */
    static Stream<Arguments> shapes() {
        return Stream.of(
                // 1x1 convs (plain GEMM on the input), with and without groups
                Arguments.of(2, 5, 7, 9, 3, 1, 1, 0, 1), Arguments.of(1, 8, 17, 3, 6, 1, 1, 0, 2),
                Arguments.of(1, 6, 33, 40, 13, 1, 2, 0, 1), Arguments.of(1, 4, 5, 5, 4, 1, 1, 1, 1),
                // 3x3, stride 1 and 2, padding 0 and 1, odd and tiny images
                Arguments.of(2, 3, 17, 19, 5, 3, 1, 1, 1), Arguments.of(1, 4, 1, 1, 3, 3, 1, 1, 1),
                Arguments.of(1, 7, 3, 3, 2, 3, 1, 0, 1), Arguments.of(1, 5, 34, 66, 7, 3, 1, 1, 1),
                Arguments.of(1, 6, 33, 65, 4, 3, 2, 1, 1), Arguments.of(2, 3, 16, 16, 5, 3, 2, 0, 1),
                Arguments.of(1, 40, 13, 36, 14, 3, 1, 1, 1), Arguments.of(1, 33, 10, 40, 25, 3, 1, 0, 1),
                // groups 2 and depthwise (groups == cin, channel multiplier 1 and 2)
                Arguments.of(1, 8, 15, 17, 6, 3, 1, 1, 2), Arguments.of(2, 6, 12, 35, 6, 3, 1, 1, 6),
                Arguments.of(1, 4, 9, 9, 8, 3, 2, 1, 4), Arguments.of(1, 64, 6, 6, 64, 3, 1, 1, 64));
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void agreesWithDirectLoops(int n, int cin, int h, int w, int cout, int k, int stride, int pad, int groups) {
        Random rnd = new Random(n * 1000L + cin * 100L + h * 10L + w + groups);
        for (DType weightType : new DType[] {null, DType.F16}) {
            compare(rnd, n, cin, h, w, cout, k, stride, pad, groups, weightType, true, Activation.NONE);
        }
        compare(rnd, n, cin, h, w, cout, k, stride, pad, groups, null, false, Activation.SILU);
    }

    @Test
    void randomShapes() {
        Random rnd = new Random(11);
        int[] sizes = {1, 2, 3, 5, 8, 17, 33, 40};
        for (int trial = 0; trial < 30; trial++) {
            int groups = new int[] {1, 1, 2, 3}[rnd.nextInt(4)];
            int cin = groups * (1 + rnd.nextInt(6));
            int cout = groups * (1 + rnd.nextInt(6));
            int k = rnd.nextBoolean() ? 1 : 3;
            int stride = 1 + rnd.nextInt(2);
            int pad = rnd.nextInt(2);
            int h = sizes[rnd.nextInt(sizes.length)];
            int w = sizes[rnd.nextInt(sizes.length)];
            if (h + 2 * pad < k || w + 2 * pad < k) {
                continue;
            }
            Activation act = Activation.values()[rnd.nextInt(Activation.values().length)];
            compare(rnd, 1 + rnd.nextInt(2), cin, h, w, cout, k, stride, pad, groups,
                    rnd.nextBoolean() ? DType.F16 : null, rnd.nextBoolean(), act);
        }
    }

    @Test
    void everyActivationAndHalfWeights() {
        Random rnd = new Random(7);
        for (Activation act : Activation.values()) {
            for (DType weightType : new DType[] {null, DType.F16, DType.BF16, DType.F32}) {
                compare(rnd, 1, 6, 11, 35, 5, 3, 1, 1, 1, weightType, true, act);
            }
        }
    }

    static void compare(Random rnd, int n, int cin, int h, int w, int cout, int k, int stride, int pad, int groups,
                        DType weightType, boolean withBias, Activation act) {
        int ho = (h + 2 * pad - k) / stride + 1;
        int wo = (w + 2 * pad - k) / stride + 1;
        int xOffset = 3;
        int outOffset = 5;
        float[] x = GemmTest.random(rnd, xOffset + n * cin * h * w);
        FloatSource weight = GemmTest.source(GemmTest.random(rnd, cout * (cin / groups) * k * k), weightType);
        // larger bias so that activations see both signs well away from zero
        float[] bias = withBias ? scale(GemmTest.random(rnd, cout), 3f) : null;
        float[] out0 = GemmTest.random(rnd, outOffset + n * cout * ho * wo + 4);
        float[] fast = out0.clone();
        float[] slow = out0.clone();
        Conv2d.conv2d(x, xOffset, n, cin, h, w, weight, cout, k, k, bias, stride, stride, pad, pad, groups, act, fast,
                outOffset);
        ScalarConv2d.conv2d(x, xOffset, n, cin, h, w, weight, cout, k, k, bias, stride, stride, pad, pad, groups, act,
                slow, outOffset);
        String what = "n=%d cin=%d %dx%d cout=%d k=%d stride=%d pad=%d groups=%d weight=%s act=%s".formatted(
                n, cin, h, w, cout, k, stride, pad, groups, weightType, act);
        GemmTest.assertClose(slow, fast, what);
        for (int i = 0; i < out0.length; i++) {
            if (i < outOffset || i >= outOffset + n * cout * ho * wo) {
                assertEquals(out0[i], fast[i], "out[" + i + "] outside the output was written; " + what);
            }
        }
    }

    private static float[] scale(float[] v, float s) {
        for (int i = 0; i < v.length; i++) {
            v[i] *= s;
        }
        return v;
    }

    @Test
    void badGroupsAndEmptyOutputsNameTheirValues() {
        float[] x = new float[1000];
        float[] out = new float[1000];
        FloatSource weight = FloatSource.of(new float[1000]);
        var e = assertThrows(IllegalArgumentException.class, () -> Conv2d.conv2d(x, 0, 1, 6, 4, 4, weight, 4, 3, 3,
                null, 1, 1, 1, 1, 4, Activation.NONE, out, 0));
        assertTrue(e.getMessage().contains("in_channels=6") && e.getMessage().contains("groups=4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Conv2d.conv2d(x, 0, 1, 6, 4, 4, weight, 4, 3, 3,
                null, 1, 1, 1, 1, 3, Activation.NONE, out, 0));
        assertTrue(e.getMessage().contains("out_channels=4") && e.getMessage().contains("groups=3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Conv2d.conv2d(x, 0, 1, 2, 2, 2, weight, 2, 3, 3,
                null, 1, 1, 0, 0, 1, Activation.NONE, out, 0));
        assertTrue(e.getMessage().contains("output would be 0 x 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Conv2d.conv2d(x, 0, 1, 4, 20, 20, weight, 2, 3, 3,
                null, 1, 1, 1, 1, 1, Activation.NONE, out, 0));
        assertTrue(e.getMessage().contains("x has 1000 floats"), e.getMessage());
    }
}
