"""Regenerates norms.json: torch outputs pinning the semantics of Norms and Activations.

Norm references are torch evaluated in float64 on the float32 inputs (then rounded to float32): with means near 1e3
torch's own float32 kernels are off by up to 6e-5 (they form x * scale + shift, which cancels), and the cases record
that gap as torchF32MaxAbsDiff. Activations are torch float32 outputs.

Documentation only; the Java build never runs Python. Needs torch (CPU). Run from this folder:
    python3 make_golden.py
"""
import json

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)


def short(v):
    """The shortest decimal that reads back (through a double, as Java's Jackson reads it) as the same float32."""
    f = float(np.format_float_positional(np.float32(v), unique=True, trim="-"))
    assert np.float32(f) == np.float32(v)
    return f


def flat(t):
    return [short(v) for v in t.reshape(-1).tolist()]


cases = []


def f64(fn, x, gamma, beta):
    """fn in float64 on the float32 tensors, rounded to float32, and how far torch's float32 run is from it."""
    d = lambda t: None if t is None else t.double()
    y64 = fn(d(x), d(gamma), d(beta))
    gap = (fn(x, gamma, beta).double() - y64).abs().max().item()
    return y64.float(), gap

# GroupNorm then SiLU as diffusers' ResnetBlock2D does; the large mean shows a stable variance.
for n, c, hw, g, affine, act, mean in [(2, 6, 35, 3, True, "SILU", 0.0), (1, 64, 17, 32, True, "NONE", 0.0),
                                       (2, 4, 33, 2, False, "SILU", 1000.0), (1, 6, 9, 1, True, "NONE", -300.0)]:
    x = torch.randn(n, c, hw) + mean
    gamma = torch.randn(c) if affine else None
    beta = torch.randn(c) if affine else None
    call = "F.group_norm(x, %d, gamma, beta, eps=1e-6)" % g
    fn = lambda t, gm, bt: F.group_norm(t, g, gm, bt, eps=1e-6)
    if act == "SILU":
        call = "F.silu(%s)" % call
        fn = lambda t, gm, bt: F.silu(F.group_norm(t, g, gm, bt, eps=1e-6))
    y, gap = f64(fn, x, gamma, beta)
    cases.append(dict(op="groupNorm", call=call, n=n, channels=c, spatial=hw, groups=g, act=act, eps=1e-6,
                      x=flat(x), gamma=flat(gamma) if affine else None, beta=flat(beta) if affine else None,
                      out=flat(y), torchF32MaxAbsDiff=gap))

for rows, cols, affine, mean in [(3, 7, True, 0.0), (4, 130, False, 0.0), (2, 77, True, 1000.0)]:
    x = torch.randn(rows, cols) + mean
    gamma = torch.randn(cols) if affine else None
    beta = torch.randn(cols) if affine else None
    y, gap = f64(lambda t, gm, bt: F.layer_norm(t, (cols,), gm, bt, eps=1e-5), x, gamma, beta)
    cases.append(dict(op="layerNorm", call="F.layer_norm(x, (%d,), gamma, beta, eps=1e-5)" % cols, rows=rows,
                      cols=cols, eps=1e-5, x=flat(x), gamma=flat(gamma) if affine else None,
                      beta=flat(beta) if affine else None, out=flat(y), torchF32MaxAbsDiff=gap))

for rows, cols, weighted in [(3, 17, True), (2, 130, False)]:
    x = torch.randn(rows, cols) * 3
    gamma = torch.randn(cols) if weighted else None
    # transformers' LlamaRMSNorm.forward
    rms = lambda t, gm, bt: t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6) * (1 if gm is None else gm)
    y, gap = f64(rms, x, gamma, None)
    cases.append(dict(op="rmsNorm", call="x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * gamma",
                      rows=rows, cols=cols, eps=1e-6, x=flat(x), gamma=flat(gamma) if weighted else None,
                      out=flat(y), torchF32MaxAbsDiff=gap))

x = torch.cat([torch.linspace(-12, 12, 97), torch.randn(64) * 3])
for act, fn, call in [("SILU", F.silu, "F.silu(x)"), ("GELU", F.gelu, "F.gelu(x)"),
                      ("GELU_TANH", lambda t: F.gelu(t, approximate="tanh"), "F.gelu(x, approximate='tanh')"),
                      ("QUICK_GELU", lambda t: t * torch.sigmoid(1.702 * t), "x * torch.sigmoid(1.702 * x)"),
                      ("RELU", F.relu, "F.relu(x)")]:
    cases.append(dict(op="activation", act=act, call=call, x=flat(x), out=flat(fn(x))))

x = torch.randn(5, 2 * 19) * 2
hidden, gate = x.chunk(2, dim=-1)
cases.append(dict(op="geglu", call="hidden, gate = x.chunk(2, dim=-1); hidden * F.gelu(gate)", rows=5, cols=19,
                  x=flat(x), out=flat(hidden * F.gelu(gate))))
g, u = torch.randn(41) * 3, torch.randn(41)
cases.append(dict(op="swiglu", call="F.silu(gate) * up", gate=flat(g), up=flat(u), out=flat(F.silu(g) * u)))

with open("norms.json", "w") as f:
    json.dump(dict(torch=torch.__version__, note="torch CPU float32, manual_seed(0); arrays flattened row-major",
                   cases=cases), f)
