"""Still-image preparation: from whatever a shop uploads to the model's portrait frame.

`load_image` reads and normalises a photo (EXIF orientation, transparency onto white,
grayscale / CMYK / 16-bit / palette to 8-bit RGB, embedded colour profile to sRGB) and
refuses what cannot be used with an `ImageInputError` worded for a shop assistant, one
sentence per cause (`reason` names the cause for programs).
`frame_image` fits it to the model's frame (640 x 512, portrait) by crop, pad or stretch.

Memory: a photo is reduced while it is read, so that its short side stays at least
`working_side` pixels (the frame needs no more). JPEG photos are decoded at 1/2, 1/4 or 1/8
scale straight from the file (libjpeg's draft mode), so a 200-megapixel phone photo never
exists at full size in memory; other formats are decoded once at their own bit depth and
reduced strip by strip (`Image.reduce`), with no full-size float or 8-bit copies. Decodes
larger than `LARGE_DECODE_BYTES` take turns, so several large uploads at once do not add up.
"""

from __future__ import annotations

import ctypes
import io
import logging
import math
import os
import re
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .base.errors import PHOTO, FashionFlowError
from .defaults import DEFAULT_FIT, FIT_MODES

logger = logging.getLogger(__name__)

MIN_SIDE = 128  # pixels; smaller photos hold too little detail for a 640 x 512 frame
MAX_PIXELS = 250_000_000  # 250 MP: today's largest phone sensors take 200 MP photos
MAX_FILE_BYTES = 50 * 2**20
WORKING_SIDE = 1024  # default short side photos are reduced to while read (the frame's long side is 640)
LARGE_DECODE_BYTES = 64 * 2**20  # decodes above this take turns (see `_LARGE_DECODES`)

# Formats read here; anything else Pillow knows (EPS, which would run Ghostscript, PSD, ICO...)
# is named and refused, so that only well-trodden decoders ever see an upload.
Image.init()
READABLE_FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "WEBP", "AVIF", "BMP", "TIFF", "GIF") if f in Image.OPEN)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".jfif", ".png", ".webp", ".avif", ".bmp", ".tif", ".tiff", ".gif")
# Suffixes of pictures people expect to work but which cannot be read: tried anyway, so that the
# refusal says what they are and what to do.
UNSUPPORTED_PHOTO_SUFFIXES = (".heic", ".heif", ".svg", ".pdf", ".eps", ".psd", ".dng", ".cr2", ".cr3", ".nef", ".arw")

# Pillow refuses images over twice its own limit (2 x 89 MP) as decompression bombs while it opens
# them, before the size can be checked here; MAX_PIXELS, checked from the header, takes its place.
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # answered by `_check_pixels`
warnings.filterwarnings("ignore", message=r"(Possibly )?[Cc]orrupt EXIF", category=UserWarning)  # see `_orientation`

# One full-size decode of a large non-JPEG photo at a time per process: concurrent uploads of
# large PNGs would otherwise each hold their decoded pixels at once.
_LARGE_DECODES = threading.Semaphore(1)

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray

# The sentences people see, one per cause.
NOT_A_PICTURE = "This file is not a picture we can read. Please use a photo saved as JPEG, PNG or WebP."
DAMAGED = (
    "This image file is damaged or incomplete: its picture data ends early or is corrupt. "
    "Please save or export the photo again and use the new file."
)
METADATA_REFUSED = (
    "This photo carries embedded information (metadata) that is too large or malformed to read safely. "
    "Please save it again without metadata (for example with “Export as” in a photo editor) and use the new file."
)
OUT_OF_MEMORY = "There was not enough free memory to read this photo just now. Please try again in a moment, or use a smaller photo."


class ImageInputError(FashionFlowError, ValueError):
    """A photo that cannot be used; the message says why in plain words.

    `reason` names the cause: "missing", "not-a-picture", "unsupported-format", "damaged",
    "metadata", "file-too-large", "too-many-pixels", "too-small", "out-of-memory".
    """

    kind = PHOTO

    def __init__(self, message: str, reason: str = "not-a-picture"):
        super().__init__(message)
        self.reason = reason


def load_image(source: ImageInput, working_side: int | None = WORKING_SIDE) -> Image.Image:
    """Read a photo into an 8-bit RGB image, upright, with transparency composited onto white.

    Photos whose short side is longer than `working_side` are reduced while they are read (by a
    whole factor, so the short side stays at least `working_side`); `None` keeps the full size.
    """
    try:
        if isinstance(source, np.ndarray):
            return _normalise(_from_array(source), working_side)
        if isinstance(source, Image.Image):
            return _normalise(source, working_side, owned=False)
        return _read(source, working_side)
    except MemoryError:
        raise ImageInputError(OUT_OF_MEMORY, "out-of-memory") from None


def frame_image(image: Image.Image, height: int, width: int, fit: str = DEFAULT_FIT) -> Image.Image:
    """Fit `image` into a height x width frame.

    - "pad": keep the whole photo and its proportions; fill the margins with the colour of
      the photo's border (usually the studio background).
    - "crop": keep the proportions and fill the frame; cut the overflow, centred.
    - "stretch": resize to the frame ignoring the proportions (what the authors did).
    """
    if fit not in FIT_MODES:
        raise ValueError(f"Unknown fit {fit!r}; choose one of: {', '.join(FIT_MODES)}.")
    if fit == "stretch":
        return image.resize((width, height), Image.BILINEAR)
    if fit == "crop":
        return ImageOps.fit(image, (width, height), Image.BILINEAR, centering=(0.5, 0.5))
    scale = min(width / image.width, height / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    framed = Image.new("RGB", (width, height), _border_colour(image))
    framed.paste(image.resize(inner, Image.BILINEAR), ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return framed


def image_to_tensor(image: Image.Image):
    """RGB image -> float tensor (3, h, w) in [0, 1] (the authors' ToTensor)."""
    import torch  # here, not at the top: reading photos (and `--help`) need no torch

    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255


# reading ----------------------------------------------------------------------------------------------------


def _read(source, working_side: int | None) -> Image.Image:
    """Open a file or bytes, refuse what cannot be used from the header, then decode reduced."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = bytes(source)
        size = len(source)
    else:
        source = Path(source)
        if not source.is_file():
            raise ImageInputError(f"No photo was found at {source}.", "missing")
        size = source.stat().st_size
    if size == 0:
        raise ImageInputError(
            "This file is empty (0 bytes): the upload or copy did not finish. Please try again with the photo.", "empty"
        )
    if size > MAX_FILE_BYTES:
        raise ImageInputError(
            f"This file is too large ({size / 2**20:.0f} MB); the limit is {MAX_FILE_BYTES // 2**20} MB. "
            "Please export the photo at a lower quality or size; the video is made at 640 x 512 anyway.",
            "file-too-large",
        )
    try:
        return _normalise(_open(source), working_side)
    except _MetadataRefused:
        # The pixels may well be fine: read them without the text chunks Pillow refused.
        data = source if isinstance(source, bytes) else source.read_bytes()
        if not data.startswith(_PNG_SIGNATURE):
            raise ImageInputError(METADATA_REFUSED, "metadata") from None
        try:
            return _normalise(_open(_without_png_text(data)), working_side)
        except _MetadataRefused:
            raise ImageInputError(METADATA_REFUSED, "metadata") from None


class _MetadataRefused(Exception):
    """Pillow refused the photo's metadata (PNG text chunks beyond its safety limits)."""


def _open(source: Path | bytes) -> Image.Image:
    target = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return Image.open(target, formats=READABLE_FORMATS)
    except UnidentifiedImageError:
        raise ImageInputError(*_unreadable(source)) from None
    except Image.DecompressionBombError as error:  # over twice MAX_PIXELS: Pillow refuses it while opening
        claimed = re.search(r"\((\d+) pixels\)", str(error))
        raise ImageInputError(
            _too_many_pixels_message(int(claimed[1]) if claimed else None), "too-many-pixels"
        ) from None
    except ValueError as error:
        if "MAX_TEXT" in str(error):
            raise _MetadataRefused from None
        raise ImageInputError(DAMAGED, "damaged") from None
    except (OSError, SyntaxError, struct.error, EOFError):
        raise ImageInputError(DAMAGED, "damaged") from None


def _unreadable(source: Path | bytes) -> tuple[str, str]:
    """The sentence for a file Pillow will not open here: what it is, when that can be told."""
    if isinstance(source, bytes):
        head = source[:1024]
    else:
        with open(source, "rb") as file:
            head = file.read(1024)
    what = _sniff_unsupported(head)
    if what is None:
        try:  # a picture format Pillow knows but that is not read here (EPS, PSD, ICO, ...)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as other:
                what = f"an image in {other.format} format"
        except Exception:
            return NOT_A_PICTURE, "not-a-picture"
    if what.startswith(("a video", "a PDF", "a web page")):
        return f"This file is {what}, not a photo. Please use a photo saved as JPEG, PNG or WebP.", "not-a-picture"
    return (
        f"This file is {what}, which cannot be read here. Please save or export the photo as JPEG, PNG or WebP "
        "and use that file.",
        "unsupported-format",
    )


def _sniff_unsupported(head: bytes) -> str | None:
    if head[4:8] == b"ftyp":  # ISO media: HEIF photos, AVIF, camera raw, and videos
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "a HEIC photo (the iPhone's default format; choose “Most Compatible” or export as JPEG)"
        if brand.startswith(b"crx"):
            return "a Canon raw photo (CR3)"
        return "a video (MP4 / MOV)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing"
    if text.startswith(b"%pdf"):
        return "a PDF document"
    if text.startswith((b"<!doctype html", b"<html")):
        return "a web page"
    return None


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageInputError(_too_many_pixels_message(size), "too-many-pixels")
    if min(width, height) < MIN_SIDE:
        raise ImageInputError(
            f"This photo is too small ({width} x {height} pixels). Please use a photo at least {MIN_SIDE} pixels "
            "wide and high; larger photos give better videos.",
            "too-small",
        )


def _too_many_pixels_message(size: tuple[int, int] | int | None) -> str:
    if isinstance(size, tuple):
        what = f"{size[0]} x {size[1]} pixels, {size[0] * size[1] / 1e6:.0f} megapixels"
    else:
        what = f"{size / 1e6:.0f} megapixels" if size else f"over {2 * MAX_PIXELS // 1_000_000} megapixels"
    return (
        f"This photo has too many pixels ({what}); the limit is {MAX_PIXELS // 1_000_000} megapixels. "
        "Please resize it before using it; the video is made at 640 x 512 anyway."
    )


def _normalise(image: Image.Image, working_side: int | None, owned: bool = True) -> Image.Image:
    """Header checks, then decode (reduced), orientation and colour."""
    _check_pixels(image.size)
    try:
        image, orientation = _decode_reduced(image, working_side, owned)
    except ValueError as error:
        if "MAX_TEXT" in str(error):  # PNG text chunks after the pixels
            raise _MetadataRefused from None
        raise ImageInputError(DAMAGED, "damaged") from None
    except (OSError, SyntaxError, struct.error, EOFError, IndexError, Image.DecompressionBombError):
        raise ImageInputError(DAMAGED, "damaged") from None
    image = _apply_orientation(image, orientation)
    return _to_rgb(image)


def _decode_reduced(image: Image.Image, working_side: int | None, owned: bool = False) -> tuple[Image.Image, int]:
    """Decode, reduced by the largest whole factor that keeps the short side >= working_side; and
    the EXIF orientation (read after decoding: for PNG, Pillow decodes to find it).

    `owned`: the image was opened here (not the caller's), so its full-size pixels may be freed."""
    if working_side and getattr(image, "format", None) in ("JPEG", "MPO"):
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale directly, never larger than asked for.
        image.draft(None, (working_side, working_side))
    factor = min(image.size) // working_side if working_side else 1
    large = image.width * image.height * _bytes_per_pixel(image.mode) > LARGE_DECODE_BYTES
    with _LARGE_DECODES if large else _no_lock():
        image.load()
        orientation = _orientation(image)
        if factor < 2:
            return image, orientation
        reduced = _reduce_in_strips(image, factor)
        if large and owned:  # free the full-size pixels now, and give the memory back before the next turn
            image.close()
            _return_freed_memory()
        return reduced, orientation


def _return_freed_memory() -> None:
    """glibc keeps freed memory in per-thread arenas: without this, each thread that once decoded a
    large photo would keep its size resident. No-op where malloc_trim does not exist."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


class _no_lock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _bytes_per_pixel(mode: str) -> int:
    if mode in ("I", "F", "RGBA", "RGBa", "CMYK", "RGBX", "YCbCr"):
        return 4
    if mode.startswith("I;16") or mode in ("LA", "La", "PA"):
        return 2
    if mode == "RGB":
        return 3
    return 1


def _reduce_in_strips(image: Image.Image, factor: int) -> Image.Image:
    """`Image.reduce` a band of rows at a time: no full-size copy in another mode is ever made."""
    mode = _reducible_mode(image)
    width, height = image.size
    reduced = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    rows = factor * max(1, (8 * 2**20) // max(1, width * 4 * factor))  # ~8 MB of source pixels per band
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(top + rows, height)))
        if band.mode != mode:
            band = band.convert(mode)
        reduced.paste(band.reduce(factor), (0, top // factor))
    reduced.info = dict(image.info)  # colour profile, transparency
    return reduced


def _reducible_mode(image: Image.Image) -> str:
    """The mode a band is reduced in: Image.reduce does not take palettes, 1-bit or 16-bit modes."""
    if image.mode == "P":
        return "RGBA" if "transparency" in image.info or image.palette.mode == "RGBA" else "RGB"
    if image.mode == "1":
        return "L"
    if image.mode.startswith("I;16"):
        return "I"
    return image.mode


# orientation --------------------------------------------------------------------------------------------------

_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, read from the header; malformed EXIF counts as upright (the pixels are fine)."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception as error:  # Pillow's EXIF parser raises many types on malformed data
        logger.info("Ignoring unreadable EXIF data (%s)", type(error).__name__)
        return 1


def _apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    transpose = _ORIENTATION_TRANSPOSE.get(orientation)
    if transpose is None:
        return image
    info = image.info
    image = image.transpose(transpose)
    image.info = info
    return image


# PNG text chunks --------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _without_png_text(data: bytes) -> bytes:
    """The PNG with its text chunks (comments, XMP) left out; pixels and colour chunks are kept."""
    kept, position = [data[:8]], 8
    while position + 8 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        end = position + 12 + length
        if data[position + 4 : position + 8] not in _PNG_TEXT_CHUNKS:
            kept.append(data[position:end])
        position = end
    return b"".join(kept)


# arrays -----------------------------------------------------------------------------------------------------


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4)):
        raise ImageInputError(
            f"Expected an image array of shape (h, w), (h, w, 3) or (h, w, 4); got {array.shape}.", "not-a-picture"
        )
    _check_pixels((array.shape[1], array.shape[0]))
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating):  # floats are taken to be in [0, 1]
            array = np.clip(array * 255 + 0.5, 0, 255)
        elif array.dtype == np.uint16:
            array = array >> 8  # the top byte: no float copy of the whole image
        array = array.astype(np.uint8)
    return Image.fromarray(array.squeeze(-1) if array.ndim == 3 and array.shape[-1] == 1 else array)


# colour ---------------------------------------------------------------------------------------------------------


def _to_rgb(image: Image.Image) -> Image.Image:
    image = _to_srgb(image)
    if image.mode.startswith("I") or image.mode == "F":
        image = _high_depth_to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image.convert("RGB")


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert an embedded colour profile (Adobe RGB, Display P3, CMYK...) to sRGB when present."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image  # a broken profile: use the pixels as they are


def _high_depth_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float grey to 8 bits, a band of rows at a time (no full-size float copy)."""
    low, high = image.getextrema()
    if image.mode == "F":
        top = 1.0 if high <= 1.0 else 255.0
    else:
        top = 65535.0 if high > 255 else 255.0
    width, height = image.size
    grey = Image.new("L", image.size)
    rows = max(1, (4 * 2**20) // max(1, width))
    for start in range(0, height, rows):
        band = np.asarray(image.crop((0, start, width, min(start + rows, height))), dtype=np.float32)
        grey.paste(Image.fromarray(np.clip(band * (255 / top) + 0.5, 0, 255).astype(np.uint8)), (0, start))
    return grey


def _border_colour(image: Image.Image) -> tuple[int, int, int]:
    """Median colour of the outermost pixels: the background a studio photo is shot on."""
    array = np.asarray(image)
    border = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    return tuple(int(c) for c in np.median(border, axis=0))
