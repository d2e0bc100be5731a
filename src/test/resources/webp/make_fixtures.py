"""Lossy WebP fixtures for ImagesTest, and Pillow's (libwebp's) decoding of them as raw bytes.

Run with Pillow 12.3 (libwebp 1.x): python3 make_fixtures.py
The simple-loop-filter and multi-partition cases need libwebp's cwebp on PATH (Debian package "webp"), because
Pillow's save() exposes neither the filter type nor the token partitions; without cwebp they are left as they are.
"""
import json
import os
import shutil
import subprocess

import numpy as np
from PIL import Image, features

rng = np.random.default_rng(7)
h, w = 64, 96
y, x = np.mgrid[0:h, 0:w]
rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=-1).astype(np.int16)
rgb[16:40, 20:60] = [200, 40, 30]                      # a flat block with sharp edges
rgb += rng.integers(-12, 13, size=rgb.shape)           # texture
rgb = np.clip(rgb, 0, 255).astype(np.uint8)
alpha = (np.clip(x * 4, 0, 255)).astype(np.uint8)

cases = {}
Image.fromarray(rgb, "RGB").save("lossy_q80.webp", quality=80, method=4)
Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save("lossy_alpha.webp", quality=80, method=4)
gray = rgb.mean(axis=-1).astype(np.uint8)
Image.fromarray(np.dstack([gray, gray, gray]), "RGB").save("lossy_gray.webp", quality=80, method=4)
names = ["lossy_q80", "lossy_alpha", "lossy_gray"]


def photo(width, height, seed):
    """Smooth gradients, a disc, stripes, a checkerboard, noise and sharp coloured shapes: something of everything
    an encoder meets (flat areas for 16x16 prediction, edges for 4x4 modes, texture for large coefficients)."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([
        128 + 100 * np.sin(xx / 23.0) * np.cos(yy / 31.0),
        128 + 90 * np.cos((xx + yy) / 41.0),
        255 * xx / max(width - 1, 1) * 0.6 + 40 * np.sin(yy / 7.0),
    ], axis=-1)
    disc = (xx - width * 0.3) ** 2 + (yy - height * 0.4) ** 2 < (min(width, height) * 0.2) ** 2
    img[disc] = [250, 220, 20]
    img[(yy > height * 0.6) & (yy < height * 0.8) & ((xx // 3) % 2 == 0)] = [10, 10, 200]
    board = (xx > width * 0.65) & (yy < height * 0.35) & (((xx // 8) + (yy // 8)) % 2 == 0)
    img[board] = [0, 0, 0]
    img[int(height * 0.1):int(height * 0.2), int(width * 0.05):int(width * 0.95)] = [255, 255, 255]
    img += r.normal(0, 6, img.shape)
    img[int(height * 0.5):, int(width * 0.5):] += r.normal(0, 30, img[int(height * 0.5):, int(width * 0.5):].shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# More of the format: sizes that are not multiples of 16 (partial macroblocks, odd chroma), quality from 5 (coarse
# quantiser, strong loop filter) to 100, encoder methods 0 and 6 (different mode decisions), a larger photo-like
# image, and alpha (VP8X + ALPH) on it.
extra = {
    "lossy_1x1": (photo(1, 1, 1), dict(quality=80)),
    "lossy_17x9": (photo(17, 9, 2), dict(quality=80)),
    "lossy_33x65": (photo(33, 65, 3), dict(quality=75)),
    "lossy_q5": (photo(96, 80, 4), dict(quality=5)),
    "lossy_q50": (photo(96, 80, 4), dict(quality=50)),
    "lossy_q100": (photo(96, 80, 4), dict(quality=100)),
    "lossy_m0": (photo(96, 80, 5), dict(quality=70, method=0)),
    "lossy_m6": (photo(96, 80, 5), dict(quality=70, method=6)),
    "lossy_photo": (photo(320, 240, 6), dict(quality=85)),
}
for name, (pixels, opts) in extra.items():
    Image.fromarray(pixels, "RGB").save(name + ".webp", **opts)
    names.append(name)
big = photo(320, 240, 6)
a = (np.mgrid[0:240, 0:320][1] * 255 // 319).astype(np.uint8)
Image.fromarray(np.dstack([big, a]), "RGBA").save("lossy_photo_alpha.webp", quality=60)
names.append("lossy_photo_alpha")

cwebp = shutil.which("cwebp")
if cwebp:
    # -nostrong: the simple loop filter; -sharpness and -segments vary the filter and segment headers;
    # -partition_limit and a high quality give large partitions; -pass/-sns exercise other encoder paths.
    src = "photo_src.png"
    Image.fromarray(photo(160, 112, 8), "RGB").save(src)
    for name, args in (("lossy_simple_filter", ["-q", "40", "-nostrong", "-f", "60"]),
                       ("lossy_sharpness", ["-q", "30", "-sharpness", "6", "-f", "80", "-segments", "2"]),
                       ("lossy_one_segment", ["-q", "60", "-segments", "1", "-f", "0"])):
        subprocess.run([cwebp, "-quiet", *args, src, "-o", name + ".webp"], check=True)
        names.append(name)
    os.remove(src)
else:
    names += [n for n in ("lossy_simple_filter", "lossy_sharpness", "lossy_one_segment") if os.path.exists(n + ".webp")]

# Images.read gives RGB as PIL's convert("RGB") does (alpha dropped)
for name in names:
    im = Image.open(name + ".webp")
    im.load()
    decoded = im.convert("RGB")
    open(name + ".raw", "wb").write(decoded.tobytes())
    cases[name] = {"file": name + ".webp", "mode": decoded.mode, "width": decoded.width, "height": decoded.height}
json.dump({"pillow": Image.__version__, "libwebp": features.version("webp"), "cases": cases},
          open("manifest.json", "w"), indent=1, sort_keys=True)
