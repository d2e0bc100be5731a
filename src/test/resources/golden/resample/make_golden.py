"""Regenerates resample.json: torch F.interpolate / F.avg_pool2d outputs pinning Resample's semantics.

Documentation only; the Java build never runs Python. Needs torch (CPU). Run from this folder:
    python3 make_golden.py
"""
import json

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = []


def short(v):
    """The shortest decimal that reads back (through a double, as Java's Jackson reads it) as the same float32."""
    f = float(np.format_float_positional(np.float32(v), unique=True, trim="-"))
    assert np.float32(f) == np.float32(v) or np.isnan(v)
    return f


def flat(t):
    return [short(v) for v in t.reshape(-1).tolist()]


def resize(h, w, oh, ow, mode, align_corners, antialias, planes=2):
    x = torch.randn(1, planes, h, w, dtype=torch.float32)
    kwargs = dict(size=(oh, ow), mode=mode, antialias=antialias)
    if mode != "nearest":
        kwargs["align_corners"] = align_corners
    y = F.interpolate(x, **kwargs)
    cases.append(dict(op="resize", call="F.interpolate(x, %s)" % ", ".join("%s=%r" % kv for kv in kwargs.items()),
                      planes=planes, h=h, w=w, outH=oh, outW=ow, mode=mode.upper(),
                      alignCorners=bool(align_corners), antialias=antialias, x=flat(x), out=flat(y)))


def pool(h, w, k, s, p, ceil, cip, planes=2):
    x = torch.randn(1, planes, h, w, dtype=torch.float32)
    y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
    cases.append(dict(op="avgPool2d", call="F.avg_pool2d(x, %d, %d, %d, ceil_mode=%r, count_include_pad=%r)"
                      % (k, s, p, ceil, cip), planes=planes, h=h, w=w, kernel=k, stride=s, pad=p, ceilMode=ceil,
                      countIncludePad=cip, outH=y.shape[2], outW=y.shape[3], x=flat(x), out=flat(y)))


for h, w, oh, ow in [(5, 7, 8, 3), (9, 11, 4, 6), (5, 7, 10, 14), (7, 5, 3, 12), (7, 3, 7, 9)]:
    resize(h, w, oh, ow, "nearest", False, False)
for mode in ["bilinear", "bicubic"]:
    for ac in [False, True]:
        for h, w, oh, ow in [(5, 7, 8, 11), (9, 11, 4, 6), (5, 7, 5, 13), (6, 6, 1, 1), (4, 9, 7, 2)]:
            resize(h, w, oh, ow, mode, ac, False)
        for h, w, oh, ow in [(13, 17, 4, 6), (9, 11, 9, 4), (5, 7, 8, 11), (12, 5, 5, 3), (6, 6, 1, 1)]:
            resize(h, w, oh, ow, mode, ac, True)
resize(24, 40, 9, 15, "bicubic", False, True)
resize(24, 40, 9, 15, "bilinear", False, True)

for h, w, k, s, p, ceil, cip in [(6, 8, 2, 2, 0, False, True), (7, 9, 3, 2, 1, False, True),
                                 (7, 9, 3, 2, 1, True, False), (5, 5, 2, 2, 1, True, True),
                                 (5, 5, 2, 2, 1, True, False), (6, 7, 3, 3, 1, True, False),
                                 (8, 8, 4, 3, 2, True, True), (8, 8, 4, 3, 2, True, False),
                                 (9, 6, 5, 4, 2, True, True)]:
    pool(h, w, k, s, p, ceil, cip)

x = torch.randn(1, 2, 3, 5)
cases.append(dict(op="upsampleNearest2x", call="F.interpolate(x, scale_factor=2, mode='nearest')", planes=2, h=3,
                  w=5, x=flat(x), out=flat(F.interpolate(x, scale_factor=2, mode="nearest"))))

# Output sizes of avg_pool2d over a grid of (in, kernel, stride, pad, ceil_mode); -1 where torch rejects the call.
sizes = []
for n in range(1, 13):
    for k in range(1, 6):
        for s in range(1, 5):
            for p in range(0, k // 2 + 2):
                for ceil in [False, True]:
                    try:
                        o = F.avg_pool2d(torch.zeros(1, 1, n, 1), (k, 1), (s, 1), (p, 0), ceil_mode=ceil).shape[2]
                    except RuntimeError:
                        o = -1
                    sizes.append([n, k, s, p, int(ceil), o])

with open("resample.json", "w") as f:
    json.dump(dict(torch=torch.__version__, note="torch CPU float32, manual_seed(0); inputs x and outputs out are "
                   "[planes, H, W] flattened row-major", cases=cases, pooledSizes=sizes), f)
