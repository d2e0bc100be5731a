package koala4j.backend.cpu;

import java.util.Arrays;

import koala4j.tensor.Activation;
import koala4j.tensor.DType;
import koala4j.tensor.ResizeMode;
import koala4j.tensor.Tensor;
import koala4j.tensor.quant.Q4Storage;
import koala4j.tensor.quant.Q8Storage;

/** {@link CpuOps}' neural-network layers: conv, norms, softmax, attention, GEGLU and resampling. */
final class CpuLayers {

    private CpuLayers() {
    }

    static Tensor conv2d(CpuOps ops, Tensor x, Tensor weight, Tensor bias, int stride, int padding, int groups, Activation act) {
        if (x.rank() != 4 || weight.rank() != 4) {
            throw new IllegalArgumentException("conv2d: input " + Arrays.toString(x.shape()) + " and weight "
                    + Arrays.toString(weight.shape()) + ", expected [N, C, H, W] and [Cout, C/groups, kH, kW]");
        }
        int n = x.size(0);
        int cin = x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        int cout = weight.size(0);
        int kh = weight.size(2);
        int kw = weight.size(3);
        if (groups < 1 || cin % groups != 0 || weight.size(1) != cin / groups) {
            throw new IllegalArgumentException("conv2d: weight " + Arrays.toString(weight.shape()) + " for "
                    + cin + " input channels in " + groups + " groups, expected dim 1 = " + (groups > 0 ? cin / groups : "?"));
        }
        int ho = (h + 2 * padding - kh) / stride + 1;
        int wo = (w + 2 * padding - kw) / stride + 1;
        if (stride < 1 || ho < 1 || wo < 1) {
            throw new IllegalArgumentException("conv2d: input " + h + "x" + w + ", kernel " + kh + "x" + kw
                    + ", stride " + stride + ", padding " + padding + " give an empty output");
        }
        float[] out = new float[Math.toIntExact((long) n * cout * ho * wo)];
        Conv2d.conv2d(CpuOps.floats(x), 0, n, cin, h, w, CpuOps.source(weight.contiguous()), cout, kh, kw,
                CpuOps.biasVector(bias, cout, "conv2d"), stride, stride, padding, padding, groups, act, out, 0);
        return ops.dense(out, n, cout, ho, wo);
    }

    static Tensor groupNorm(CpuOps ops, Tensor x, int groups, Tensor gamma, Tensor beta, float eps, Activation act) {
        int n = x.size(0);
        int c = x.size(1);
        if (groups < 1 || c % groups != 0) {
            throw new IllegalArgumentException("group_norm: " + c + " channels do not split into " + groups + " groups");
        }
        int spatial = Math.toIntExact(x.numel() / Math.max(1, (long) n * c));
        float[] out = new float[Math.toIntExact(x.numel())];
        Norms.groupNorm(CpuOps.floats(x), 0, n, c, spatial, groups, CpuOps.biasVector(gamma, c, "group_norm weight"),
                CpuOps.biasVector(beta, c, "group_norm bias"), eps, act, out, 0);
        return ops.dense(out, x.shape());
    }

    static Tensor layerNorm(CpuOps ops, Tensor x, Tensor gamma, Tensor beta, float eps) {
        int cols = x.size(-1);
        int rows = Math.toIntExact(x.numel() / Math.max(cols, 1));
        float[] out = new float[Math.toIntExact(x.numel())];
        Norms.layerNorm(CpuOps.floats(x), 0, rows, cols, CpuOps.biasVector(gamma, cols, "layer_norm weight"),
                CpuOps.biasVector(beta, cols, "layer_norm bias"), eps, out, 0);
        return ops.dense(out, x.shape());
    }

    static Tensor rmsNorm(CpuOps ops, Tensor x, Tensor gamma, float eps) {
        int cols = x.size(-1);
        int rows = Math.toIntExact(x.numel() / Math.max(cols, 1));
        float[] out = new float[Math.toIntExact(x.numel())];
        Norms.rmsNorm(CpuOps.floats(x), 0, rows, cols, CpuOps.biasVector(gamma, cols, "rms_norm weight"), eps, out, 0);
        return ops.dense(out, x.shape());
    }

    static Tensor softmax(CpuOps ops, Tensor x, int axis) {
        return softmaxLike(ops, x, axis, false);
    }

    static Tensor logSoftmax(CpuOps ops, Tensor x, int axis) {
        return softmaxLike(ops, x, axis, true);
    }

    private static Tensor softmaxLike(CpuOps ops, Tensor x, int axis, boolean log) {
        int a = x.axis(axis);
        int last = x.rank() - 1;
        Tensor moved = a == last ? x : x.transpose(a, last);
        int cols = moved.size(-1);
        int rows = Math.toIntExact(moved.numel() / Math.max(cols, 1));
        float[] in = CpuOps.floats(moved);
        float[] out = new float[in.length];
        if (log) {
            Softmax.logSoftmax(in, 0, rows, cols, out, 0);
        } else {
            Softmax.softmax(in, 0, rows, cols, out, 0);
        }
        Tensor result = ops.dense(out, moved.shape());
        return a == last ? result : result.transpose(a, last).contiguous();
    }

    /** q/k/v view with a unit last-dim stride over heap F32, else a dense F32 copy. */
    private static Tensor attentionOperand(Tensor t, String name) {
        if (t.rank() != 4) {
            throw new IllegalArgumentException("attention: " + name + " of shape " + Arrays.toString(t.shape())
                    + ", expected [B, heads, N, D]");
        }
        Tensor v = CpuOps.f32View(t);
        return v.stride(-1) == 1 || v.size(-1) == 1 ? v : v.contiguous();
    }

    /** An F16 operand in a short[] with its last dim contiguous (a half-precision KV cache), or null. */
    private static Tensor halfOperand(Tensor t) {
        if (t.rank() != 4 || t.dtype() != DType.F16 || !(CpuOps.host(t).array() instanceof short[])) {
            return null;
        }
        Tensor c = t.stride(-1) == 1 || t.size(-1) == 1 ? t : t.contiguous();
        return CpuOps.host(c).array() instanceof short[] ? c : null;
    }

    /** A Q8_0 or Q4_0 operand with its last dim contiguous (an 8- or 4-bit KV cache), or null. */
    private static Tensor blockOperand(Tensor t) {
        return t.rank() == 4 && (t.storage() instanceof Q8Storage || t.storage() instanceof Q4Storage)
                && (t.stride(-1) == 1 || t.size(-1) == 1) ? t : null;
    }

    static Tensor attention(CpuOps ops, Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, float scale) {
        Tensor qv = attentionOperand(q, "query");
        Tensor kh = halfOperand(k);
        Tensor vh = kh == null ? null : halfOperand(v);
        boolean half = kh != null && vh != null;
        Tensor kq = blockOperand(k);
        Tensor vq = kq == null ? null : blockOperand(v);
        boolean quantised = kq != null && vq != null && kq.dtype() == vq.dtype();
        Tensor kv = half ? kh : quantised ? kq : attentionOperand(k, "key");
        Tensor vv = half ? vh : quantised ? vq : attentionOperand(v, "value");
        int b = qv.size(0);
        int heads = qv.size(1);
        int nq = qv.size(2);
        int d = qv.size(3);
        int kvHeads = kv.size(1);
        int nk = kv.size(2);
        int dv = vv.size(3);
        if (kv.size(0) != b || vv.size(0) != b || kv.size(3) != d || vv.size(1) != kvHeads || vv.size(2) != nk
                || kvHeads < 1 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention: query " + Arrays.toString(q.shape()) + ", key "
                    + Arrays.toString(k.shape()) + ", value " + Arrays.toString(v.shape())
                    + ": expected key/value [B, heads/g, Nk, D] with the query's B and D");
        }
        Attention.Mask maskRef = null;
        if (mask != null) {
            int[] full = {b, heads, nq, nk};
            Tensor mv = CpuOps.f32View(mask);
            if (mv.stride(-1) != 1 && mv.size(-1) != 1) {
                mv = mv.contiguous();
            }
            long[] st = Strided.broadcastStrides(mv.shape(), mv.strides(), full);
            if (st[3] != 1) {
                // a mask broadcast along keys: materialise it once (small: one value per query row)
                mv = ops.contiguous(mv.expand(full));
                st = mv.strides();
            }
            maskRef = new Attention.Mask(CpuOps.array(mv), Math.toIntExact(mv.offset()), st[0], st[1], st[2]);
        }
        float[] out = new float[Math.toIntExact((long) b * heads * nq * dv)];
        if (half) {
            Attention.attention(b, heads, kvHeads, nq, nk, d, dv, operand(qv), halfOperandRef(kv), halfOperandRef(vv),
                    maskRef, causal, scale, out, 0);
        } else if (quantised && kv.storage() instanceof Q8Storage) {
            Attention.attention(b, heads, kvHeads, nq, nk, d, dv, operand(qv), q8OperandRef(kv), q8OperandRef(vv),
                    maskRef, causal, scale, out, 0);
        } else if (quantised) {
            Attention.attention(b, heads, kvHeads, nq, nk, d, dv, operand(qv), q4OperandRef(kv), q4OperandRef(vv),
                    maskRef, causal, scale, out, 0);
        } else {
            Attention.attention(b, heads, kvHeads, nq, nk, d, dv, operand(qv), operand(kv), operand(vv), maskRef,
                    causal, scale, out, 0);
        }
        return ops.dense(out, b, heads, nq, dv);
    }

    private static Attention.Operand operand(Tensor t) {
        return new Attention.Operand(CpuOps.array(t), Math.toIntExact(t.offset()), t.stride(0), t.stride(1), t.stride(2));
    }

    private static Attention.Q8Operand q8OperandRef(Tensor t) {
        return new Attention.Q8Operand((Q8Storage) t.storage(), Math.toIntExact(t.offset()), t.stride(0), t.stride(1),
                t.stride(2));
    }

    private static Attention.Q4Operand q4OperandRef(Tensor t) {
        return new Attention.Q4Operand((Q4Storage) t.storage(), Math.toIntExact(t.offset()), t.stride(0), t.stride(1),
                t.stride(2));
    }

    private static Attention.HalfOperand halfOperandRef(Tensor t) {
        return new Attention.HalfOperand((short[]) CpuOps.host(t).array(), Math.toIntExact(t.offset()), t.stride(0),
                t.stride(1), t.stride(2));
    }

    static Tensor geglu(CpuOps ops, Tensor x) {
        int twice = x.size(-1);
        if (twice % 2 != 0) {
            throw new IllegalArgumentException("geglu: last dim " + twice + " is odd, expected hidden and gate halves");
        }
        int rows = Math.toIntExact(x.numel() / Math.max(twice, 1));
        float[] out = new float[rows * (twice / 2)];
        Activations.geglu(CpuOps.floats(x), 0, rows, twice / 2, out, 0);
        int[] shape = x.shape();
        shape[shape.length - 1] = twice / 2;
        return ops.dense(out, shape);
    }

    private static void requireNchw(Tensor x, String op) {
        if (x.rank() != 4) {
            throw new IllegalArgumentException(op + ": input of shape " + Arrays.toString(x.shape())
                    + ", expected [N, C, H, W]");
        }
    }

    static Tensor upsampleNearest2x(CpuOps ops, Tensor x) {
        requireNchw(x, "upsample_nearest2x");
        int planes = x.size(0) * x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        float[] out = new float[planes * 4 * h * w];
        Resample.upsampleNearest2x(CpuOps.floats(x), 0, planes, h, w, out, 0);
        return ops.dense(out, x.size(0), x.size(1), 2 * h, 2 * w);
    }

    static Tensor avgPool2d(CpuOps ops, Tensor x, int kernel, int stride, int padding, boolean ceilMode, boolean countIncludePad) {
        requireNchw(x, "avg_pool2d");
        if (kernel < 1 || stride < 1 || padding < 0 || padding > kernel / 2) {
            throw new IllegalArgumentException("avg_pool2d: kernel " + kernel + ", stride " + stride + ", padding "
                    + padding + ": expected kernel, stride >= 1 and 0 <= padding <= kernel/2");
        }
        int planes = x.size(0) * x.size(1);
        int h = x.size(2);
        int w = x.size(3);
        int ho = Resample.pooledSize(h, kernel, stride, padding, ceilMode);
        int wo = Resample.pooledSize(w, kernel, stride, padding, ceilMode);
        if (ho < 1 || wo < 1) {
            throw new IllegalArgumentException("avg_pool2d: input " + h + "x" + w + " is smaller than kernel " + kernel);
        }
        float[] out = new float[planes * ho * wo];
        Resample.avgPool2d(CpuOps.floats(x), 0, planes, h, w, kernel, stride, padding, countIncludePad, ceilMode, out, 0);
        return ops.dense(out, x.size(0), x.size(1), ho, wo);
    }

    static Tensor resize(CpuOps ops, Tensor x, int height, int width, ResizeMode mode, boolean alignCorners, boolean antialias) {
        requireNchw(x, "resize");
        if (height < 1 || width < 1) {
            throw new IllegalArgumentException("resize to " + height + "x" + width + ": expected a positive size");
        }
        int planes = x.size(0) * x.size(1);
        float[] out = new float[Math.toIntExact((long) planes * height * width)];
        Resample.Mode m = switch (mode) {
            case NEAREST -> Resample.Mode.NEAREST;
            case BILINEAR -> Resample.Mode.BILINEAR;
            case BICUBIC -> Resample.Mode.BICUBIC;
        };
        Resample.resize(CpuOps.floats(x), 0, planes, x.size(2), x.size(3), height, width, m, alignCorners, antialias, out, 0);
        return ops.dense(out, x.size(0), x.size(1), height, width);
    }
}
