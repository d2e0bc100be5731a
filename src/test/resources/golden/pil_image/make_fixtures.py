"""Regenerates the PIL fixtures for koala4j.io.image tests (run by hand; never part of the build).

Writes, next to this script:
  read_<name>.<ext> + read_<name>.rgb   an image file and PIL's np.array(Image.open(f).convert("RGB")) bytes
  resize_src_rgb.rgb / resize_src_rgba.rgba / resize_src_tall.rgb   resize sources (raw interleaved uint8)
  resize_<src>_<FILTER>_<W>x<H>.raw     PIL Image.resize((W, H), FILTER) of the source, raw interleaved uint8
  manifest.json                          PIL/numpy versions and every file's shape
"""
import json, os, struct, zlib
import numpy as np
import PIL
from PIL import Image, features

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240611)
manifest = {"pillow": PIL.__version__, "numpy": np.__version__,
            "libjpeg_turbo": features.version("libjpeg_turbo"), "read": {}, "resize": {}}


def out(name):
    return os.path.join(HERE, name)


def smooth_rgb(w, h):
    y, x = np.mgrid[0:h, 0:w]
    r = 128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 255.0 * x / max(w - 1, 1)
    b = 255.0 * y / max(h - 1, 1)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def record_read(name, path):
    rgb = np.array(Image.open(path).convert("RGB"))
    rgb.tofile(out(f"read_{name}.rgb"))
    manifest["read"][name] = {"file": os.path.basename(path), "width": rgb.shape[1], "height": rgb.shape[0],
                              "pil_mode": Image.open(path).mode}


# ---- read fixtures ----
base = smooth_rgb(23, 17)
Image.fromarray(base).save(out("read_rgb.png"))
record_read("rgb", out("read_rgb.png"))

alpha = rng.integers(0, 256, (17, 23, 1), dtype=np.uint8)
Image.fromarray(np.concatenate([base, alpha], -1), "RGBA").save(out("read_rgba.png"))
record_read("rgba", out("read_rgba.png"))

Image.fromarray(base[..., 1], "L").save(out("read_gray.png"))
record_read("gray", out("read_gray.png"))

Image.fromarray(np.stack([base[..., 0], alpha[..., 0]], -1), "LA").save(out("read_la.png"))
record_read("la", out("read_la.png"))

pal = Image.fromarray(base).quantize(colors=12)
pal.info["transparency"] = 3
pal.save(out("read_palette.png"), transparency=3)
record_read("palette", out("read_palette.png"))

pal.save(out("read_palette4bit.png"), bits=4)
record_read("palette4bit", out("read_palette4bit.png"))

Image.fromarray(base[..., 2] > 128).save(out("read_bilevel.png"))
record_read("bilevel", out("read_bilevel.png"))


def write_png16_rgb(path, arr16):
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


write_png16_rgb(out("read_rgb16.png"), rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16))
record_read("rgb16", out("read_rgb16.png"))

Image.fromarray(base, "RGB").save(out("read_q75_420.jpg"), quality=75)
record_read("jpeg420", out("read_q75_420.jpg"))
Image.fromarray(base, "RGB").save(out("read_q90_444.jpg"), quality=90, subsampling=0)
record_read("jpeg444", out("read_q90_444.jpg"))
Image.fromarray(base[..., 0], "L").save(out("read_gray.jpg"), quality=80)
record_read("jpeggray", out("read_gray.jpg"))

frames = [Image.fromarray(base).quantize(colors=16), Image.fromarray(255 - base).quantize(colors=16)]
frames[0].save(out("read_anim.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
record_read("gif", out("read_anim.gif"))

Image.fromarray(base).save(out("read_rgb24.bmp"))
record_read("bmp24", out("read_rgb24.bmp"))
Image.fromarray(base).quantize(colors=32).save(out("read_pal8.bmp"))
record_read("bmp8", out("read_pal8.bmp"))

Image.fromarray(base).save(out("read_lossless.webp"), lossless=True)
record_read("webp", out("read_lossless.webp"))

# ---- text chunk fixture: every kind of chunk PIL writes ----
from PIL import PngImagePlugin
info = PngImagePlugin.PngInfo()
info.add_text("prompt", "a koala, 50% photo; café")                 # tEXt (Latin-1)
info.add_text("negative", "blurry " * 40, zip=True)                  # zTXt
info.add_itxt("ko", "코알라 사진", lang="ko", tkey="한국어", zip=True)  # iTXt, compressed, with language tag
info.add_itxt("plain", "plain iTXt ✓", zip=False)                   # iTXt, uncompressed
Image.fromarray(base).save(out("text_pil.png"), pnginfo=info)
manifest["text_pil"] = dict(Image.open(out("text_pil.png")).text)

# ---- resize fixtures ----
noise = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
src_rgb = np.where(rng.random((30, 40, 1)) < 0.5, noise, smooth_rgb(40, 30))
src_rgb.tofile(out("resize_src_rgb.rgb"))
src_rgba = np.concatenate([src_rgb, rng.integers(0, 256, (30, 40, 1), dtype=np.uint8)], -1)
src_rgba[:5, :, 3] = 0
src_rgba[5:10, :, 3] = 255
src_rgba.tofile(out("resize_src_rgba.rgba"))
src_tall = rng.integers(0, 256, (250, 2, 3), dtype=np.uint8)
src_tall.tofile(out("resize_src_tall.rgb"))
manifest["resize_sources"] = {"rgb": [40, 30, 3], "rgba": [40, 30, 4], "tall": [2, 250, 3]}

FILTERS = {"NEAREST": Image.NEAREST, "BILINEAR": Image.BILINEAR, "BICUBIC": Image.BICUBIC, "LANCZOS": Image.LANCZOS}
cases = []
for f in FILTERS:
    for size in [(17, 11), (67, 53), (90, 13), (3, 2), (40, 17), (41, 30), (1, 1)]:
        cases.append(("rgb", f, size))
    cases.append(("rgba", f, (17, 11)))
    cases.append(("rgba", f, (67, 53)))
    cases.append(("tall", f, (3, 100)))
srcs = {"rgb": Image.fromarray(src_rgb, "RGB"), "rgba": Image.fromarray(src_rgba, "RGBA"),
        "tall": Image.fromarray(src_tall, "RGB")}
for src, f, (w, h) in cases:
    name = f"resize_{src}_{f}_{w}x{h}.raw"
    np.array(srcs[src].resize((w, h), FILTERS[f])).tofile(out(name))
    manifest["resize"][name] = {"src": src, "filter": f, "width": w, "height": h}

with open(out("manifest.json"), "w") as fh:
    json.dump(manifest, fh, indent=1, sort_keys=True)
