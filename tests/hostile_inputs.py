"""Hostile and unlucky inputs: corrupt, truncated, huge, deep, odd colour modes, metadata bombs,
polyglots, wrong extensions, names with shell characters and unicode. Each case is a file and
what must come of it: a video, or a refusal with its reason code and a phrase of its sentence."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

VIDEO = "video"
# Words that must never reach a person: internal names, exception types, addresses.
TECHNICAL = re.compile(r"PIL|Pillow|Plugin|[A-Z][a-z]+Error\b|Traceback|0x[0-9a-f]{4}|MAX_|errno|\bNone\b")


@dataclass(frozen=True)
class Case:
    filename: str
    make: Callable[[], bytes]
    reason: str = VIDEO  # or the refusal's reason code
    phrase: str = ""  # part of the refusal's sentence
    in_app: bool = True  # False: refused by the web server's upload limit before our code sees it

    @property
    def refused(self) -> bool:
        return self.reason != VIDEO

    def write(self, folder: Path) -> Path:
        path = folder / self.filename
        if self.reason == "file-too-large":  # a sparse file: 51 MB on paper, nothing on disk
            with open(path, "wb") as file:
                file.write(self.make())
                file.truncate(51 * 2**20)
        else:
            path.write_bytes(self.make())
        return path


def pixels(width=200, height=240, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def jpeg() -> bytes:
    return encode(Image.fromarray(pixels()), "JPEG", quality=90)


def png() -> bytes:
    return encode(Image.fromarray(pixels()), "PNG")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))


def png_48_bit() -> bytes:
    """16 bits per channel RGB, which Pillow cannot write: encoded by hand."""
    height, width = 240, 200
    values = (np.random.default_rng(1).random((height, width, 3)) * 65535).astype(">u2")
    rows = b"".join(b"\0" + values[y].tobytes() for y in range(height))
    return png_header(width, height, 16, 2) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")


def text_bomb() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (2 * PngImagePlugin.MAX_TEXT_CHUNK), zip=True)  # 2 MB of text in 2 KB
    return encode(Image.fromarray(pixels()), "PNG", pnginfo=info)


def many_text_chunks() -> bytes:
    """Text chunks adding up to more than Pillow's total text limit (64 MB), in a small file."""
    data = png()
    end = data.rindex(b"IEND") - 4
    one = png_chunk(b"zTXt", b"note\0\0" + zlib.compress(b"y" * (PngImagePlugin.MAX_TEXT_CHUNK - 1024), 9))
    return data[:end] + one * 70 + data[end:]


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(pixels()).convert("CMYK"), "JPEG")


def huge_icc_jpeg() -> bytes:
    return encode(Image.fromarray(pixels()), "JPEG", icc_profile=b"not a colour profile" * 4000)  # 80 KB


def bad_exif_jpeg() -> bytes:
    return encode(Image.fromarray(pixels()), "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff\x00\x01")


def animated_gif() -> bytes:
    frames = [Image.fromarray(pixels(seed=i)) for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def multipage_tiff() -> bytes:
    pages = [Image.fromarray(pixels(seed=i)) for i in range(2)]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def apng() -> bytes:
    frames = [Image.fromarray(pixels(seed=i)) for i in range(3)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:])


def palette_transparent() -> bytes:
    image = Image.fromarray(pixels()).convert("P", palette=Image.Palette.ADAPTIVE)
    return encode(image, "PNG", transparency=0)


def float_tiff() -> bytes:
    return encode(Image.fromarray(np.random.default_rng(2).random((240, 200), dtype=np.float32)), "TIFF")


def bomb() -> bytes:
    return encode(Image.new("1", (30000, 30000)), "PNG", optimize=True)  # 900 MP in a few hundred KB


def truncated(make: Callable[[], bytes], fraction: float) -> Callable[[], bytes]:
    return lambda: make()[: int(len(make()) * fraction)]


CASES = [
    # a video is made
    Case("portrait.jpg", jpeg),
    Case("png-named-as.jpg", png),  # wrong extensions: the content decides
    Case("jpeg-named-as.png", jpeg),
    Case("deep-48-bit.png", png_48_bit),
    Case("deep-16-bit-grey.png", lambda: encode(Image.fromarray(pixels()[..., 0].astype(np.uint16) * 257), "PNG")),
    Case("float-32-bit.tif", float_tiff),
    Case("cmyk.jpg", cmyk_jpeg),
    Case("one-bit.png", lambda: encode(Image.fromarray(pixels()).convert("1"), "PNG")),
    Case("palette-transparent.png", palette_transparent),
    Case("grey-alpha.png", lambda: encode(Image.fromarray(pixels()).convert("LA"), "PNG")),
    Case("rgba.webp", lambda: encode(Image.fromarray(pixels()).convert("RGBA"), "WEBP")),
    Case("animated.gif", animated_gif),
    Case("two-pages.tif", multipage_tiff),
    Case("animated.png", apng),
    Case("bitmap.bmp", lambda: encode(Image.fromarray(pixels()), "BMP")),
    Case("very-wide.png", lambda: encode(Image.fromarray(pixels(4000, 130)), "PNG")),
    Case("text-bomb.png", text_bomb),  # metadata bombs: the pixels are fine
    Case("many-text-chunks.png", many_text_chunks),
    Case("huge-colour-profile.jpg", huge_icc_jpeg),
    Case("malformed-exif.jpg", bad_exif_jpeg),
    Case("png-zip-polyglot.png", lambda: png() + b"PK\x03\x04" + b"\0" * 26 + b"evil.sh"),  # polyglots
    Case("jpeg-html-polyglot.jpg", lambda: jpeg() + b"<html><script>alert(1)</script></html>"),
    Case("$(touch pwned); `id` 'q' \"d\" & | ; <x>.png", png),  # shell characters
    Case("ünïcödé 照片 🙂.jpg", jpeg),  # unicode
    Case("-o dash-first.png", png),
    # refused, each with its own sentence
    Case("empty.jpg", lambda: b"", "empty", "This file is empty"),
    Case("random-bytes.jpg", lambda: np.random.default_rng(3).bytes(5000), "not-a-picture", "not a picture we can read"),
    Case("corrupt-body.jpg", lambda: jpeg()[:600] + np.random.default_rng(4).bytes(4000), "damaged", "damaged or incomplete"),
    Case("truncated.png", truncated(png, 0.5), "damaged", "damaged or incomplete"),
    Case("truncated.jpg", truncated(jpeg, 0.4), "damaged", "damaged or incomplete"),
    Case("claims-300-mp.png", lambda: png_header(20000, 15000) + png_chunk(b"IEND", b""), "too-many-pixels",
         "too many pixels (20000 x 15000 pixels, 300 megapixels)"),
    Case("bomb.png", bomb, "too-many-pixels", "too many pixels (900 megapixels)"),
    Case("tiny.png", lambda: encode(Image.fromarray(pixels(60, 60)), "PNG"), "too-small", "too small (60 x 60 pixels)"),
    Case("over-50-mb.jpg", jpeg, "file-too-large", "too large (51 MB)", in_app=False),
    Case("iphone.heic", lambda: b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 500, "unsupported-format",
         "a HEIC photo"),
    Case("drawing.svg", lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
         "unsupported-format", "an SVG drawing"),
    Case("svg-named-as.png", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
         "unsupported-format", "an SVG drawing"),
    Case("vector.eps", lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 200 240\nshowpage\n",
         "unsupported-format", "an image in EPS format"),
    Case("document.jpg", lambda: b"%PDF-1.7\n1 0 obj <<>> endobj\n", "not-a-picture", "a PDF document, not a photo"),
    Case("page.png", lambda: b"<!DOCTYPE html><html><body>hello</body></html>", "not-a-picture", "a web page"),
    Case("clip.jpg", lambda: b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41" + b"\0" * 200, "not-a-picture",
         "a video (MP4 / MOV), not a photo"),
    Case("gif-js-polyglot.gif", lambda: b"GIF89a/*\x00\x00\x00\x00\x00*/=1;alert(1);", "not-a-picture",
         "not a picture we can read"),
]  # fmt: skip
