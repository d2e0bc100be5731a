"""Lossy WebP fixtures for ImagesTest, and Pillow's (libwebp's) decoding of them as raw bytes.

Run with Pillow 12.3 (libwebp 1.x): python3 make_fixtures.py
"""
import json

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
# Images.read gives RGB as PIL's convert("RGB") does (alpha dropped)
for name, mode in (("lossy_q80", "RGB"), ("lossy_alpha", "RGB"), ("lossy_gray", "RGB")):
    im = Image.open(name + ".webp")
    im.load()
    decoded = im.convert(mode)
    open(name + ".raw", "wb").write(decoded.tobytes())
    cases[name] = {"file": name + ".webp", "mode": decoded.mode, "width": decoded.width, "height": decoded.height}
json.dump({"pillow": Image.__version__, "libwebp": features.version("webp"), "cases": cases},
          open("manifest.json", "w"), indent=1, sort_keys=True)
