"""Lossy WebP fixtures for ImagesTest, and Pillow's (libwebp's) decoding of them as raw bytes.

Run with Pillow 12.3 (libwebp 1.x): python3 make_fixtures.py
Cases that need encoder settings Pillow's save() lacks call the libwebp Pillow bundles through ctypes.
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


def libwebp_encode(rgb, **opts):
    """WebPEncode of the libwebp that Pillow bundles, through ctypes, for WebPConfig fields that Pillow's save()
    does not expose (token partitions, filter type and sharpness, segments). Struct layouts of libwebp 1.x
    (encoder ABI 0x0210): WebPConfig's fields in order; in WebPPicture, width/height at bytes 8/12 and
    writer/custom_ptr at 96/104 (64-bit)."""
    import ctypes
    import glob
    lib = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(Image.__file__), "..", "pillow.libs", "libwebp-*.so*"))[0])
    names = ["lossless", "quality", "method", "image_hint", "target_size", "target_PSNR", "segments", "sns_strength",
             "filter_strength", "filter_sharpness", "filter_type", "autofilter", "alpha_compression",
             "alpha_filtering", "alpha_quality", "pass", "show_compressed", "preprocessing", "partitions",
             "partition_limit", "emulate_jpeg_size", "thread_level", "low_memory", "near_lossless", "exact",
             "use_delta_palette", "use_sharp_yuv", "qmin", "qmax"]

    class Config(ctypes.Structure):
        _fields_ = [(n, ctypes.c_float if n in ("quality", "target_PSNR") else ctypes.c_int) for n in names]

    class MemoryWriter(ctypes.Structure):
        _fields_ = [("mem", ctypes.c_void_p), ("size", ctypes.c_size_t), ("max_size", ctypes.c_size_t),
                    ("pad", ctypes.c_uint32)]

    abi = 0x0210
    config = Config()
    assert lib.WebPConfigInitInternal(ctypes.byref(config), 0, ctypes.c_float(75), abi)
    for key, value in opts.items():
        setattr(config, key, value)
    assert lib.WebPValidateConfig(ctypes.byref(config))
    picture = (ctypes.c_uint8 * 4096)()
    assert lib.WebPPictureInitInternal(picture, abi)
    height, width, _ = rgb.shape
    ctypes.c_int.from_buffer(picture, 8).value = width
    ctypes.c_int.from_buffer(picture, 12).value = height
    pixels = np.ascontiguousarray(rgb)
    assert lib.WebPPictureImportRGB(picture, pixels.ctypes.data_as(ctypes.c_void_p), width * 3)
    writer = MemoryWriter()
    lib.WebPMemoryWriterInit(ctypes.byref(writer))
    ctypes.c_void_p.from_buffer(picture, 96).value = ctypes.cast(lib.WebPMemoryWrite, ctypes.c_void_p).value
    ctypes.c_void_p.from_buffer(picture, 104).value = ctypes.addressof(writer)
    assert lib.WebPEncode(ctypes.byref(config), picture)
    data = ctypes.string_at(writer.mem, writer.size)
    lib.WebPPictureFree(picture)
    lib.WebPMemoryWriterClear(ctypes.byref(writer))
    return data


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
# Flat areas: macroblocks without coefficients, coded with the skip flag (which libwebp 1.6 uses with methods 0-2).
flat = np.full((72, 120, 3), (90, 140, 200), np.uint8)
flat[20:50, 30:70] = (240, 240, 240)
flat[40:60, 80:110] = (200, 30, 60)
Image.fromarray(flat, "RGB").save("lossy_flat.webp", quality=50, method=2)
names.append("lossy_flat")
big = photo(320, 240, 6)
a = (np.mgrid[0:240, 0:320][1] * 255 // 319).astype(np.uint8)
Image.fromarray(np.dstack([big, a]), "RGBA").save("lossy_photo_alpha.webp", quality=60)
names.append("lossy_photo_alpha")

# Token partitions (2, 4 and 8: macroblock rows take turns; libwebp 1.6 writes them only with methods 0-2), the
# simple filter with sharpness, and four segments with strong spatial noise shaping, through libwebp's encoder API.
for name, opts in (("lossy_partitions2", dict(quality=70.0, partitions=1, method=2)),
                   ("lossy_partitions4", dict(quality=70.0, partitions=2, method=1)),
                   ("lossy_partitions8", dict(quality=85.0, partitions=3, method=0)),
                   ("lossy_simple_sharp", dict(quality=35.0, filter_type=0, filter_sharpness=5, filter_strength=70)),
                   ("lossy_segments_sns", dict(quality=45.0, segments=4, sns_strength=100, filter_strength=50,
                                               filter_sharpness=2))):
    open(name + ".webp", "wb").write(libwebp_encode(photo(144, 176, 9), **opts))
    names.append(name)

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
