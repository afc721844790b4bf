"""Still-image preparation: from whatever a shop uploads to the model's portrait frame.

`load_image` reads and normalises a photo (EXIF orientation, transparency onto white,
grayscale / CMYK / 16-bit / palette to 8-bit RGB, embedded colour profile to sRGB) and
refuses what cannot be used with an `ImageInputError` worded for a shop assistant.
`frame_image` fits it to the model's frame (640 x 512, portrait) by crop, pad or stretch.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

FIT_MODES = ("pad", "crop", "stretch")
DEFAULT_FIT = "pad"
# Files taken for photos when a folder is given (the CLI's batches, the app's examples).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MIN_SIDE = 128  # pixels; smaller photos hold too little detail for a 640 x 512 frame
MAX_PIXELS = 50_000_000  # 50 MP: larger files are refused before they are decoded
MAX_FILE_BYTES = 50 * 2**20

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray


class ImageInputError(ValueError):
    """A photo that cannot be used; the message says why in plain words."""


def load_image(source: ImageInput) -> Image.Image:
    """Read a photo into an 8-bit RGB image, upright, with transparency composited onto white."""
    if isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, Image.Image):
        image = source
    else:
        image = _open(source)
    _check_size(image)
    try:
        image.seek(0)  # first frame of an animated GIF / multi-page TIFF
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageInputError(f"This image file is damaged or incomplete and cannot be read ({error}).") from None
    if min(image.size) < MIN_SIDE:
        raise ImageInputError(
            f"This photo is too small ({image.width} x {image.height} pixels). "
            f"Please use a photo at least {MIN_SIDE} pixels wide and high; larger photos give better videos."
        )
    return image


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


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image -> float tensor (3, h, w) in [0, 1] (the authors' ToTensor)."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255


# reading ----------------------------------------------------------------------------------------------------


def _open(source) -> Image.Image:
    """Open lazily, refuse oversized files from their header, then decode."""
    if isinstance(source, bytes):
        size, target = len(source), io.BytesIO(source)
    else:
        target = Path(source)
        if not target.is_file():
            raise ImageInputError(f"No photo was found at {target}.")
        size = target.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImageInputError(_too_big_message(f"{size / 2**20:.0f} MB"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(target)
            _check_size(image)
            image.load()
    except UnidentifiedImageError:
        raise ImageInputError(
            "This file is not a picture we can read. Please upload a photo (JPEG, PNG or WebP)."
        ) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageInputError(_too_big_message("too many pixels")) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageInputError(f"This image file is damaged or incomplete and cannot be read ({error}).") from None
    return image


def _check_size(image: Image.Image) -> None:
    if image.width * image.height > MAX_PIXELS:
        raise ImageInputError(_too_big_message(f"{image.width} x {image.height} pixels"))


def _too_big_message(what: str) -> str:
    return (
        f"This photo is too large ({what}). Please use a photo under {MAX_PIXELS // 1_000_000} megapixels "
        f"and {MAX_FILE_BYTES // 2**20} MB; the video is made at 640 x 512 anyway."
    )


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4)):
        raise ImageInputError(f"Expected an image array of shape (h, w), (h, w, 3) or (h, w, 4); got {array.shape}.")
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating):  # floats are taken to be in [0, 1]
            array = np.clip(array * 255 + 0.5, 0, 255)
        elif array.dtype == np.uint16:
            array = array / 257.0
        array = array.astype(np.uint8)
    return Image.fromarray(array.squeeze(-1) if array.ndim == 3 and array.shape[-1] == 1 else array)


# colour ---------------------------------------------------------------------------------------------------------


def _to_rgb(image: Image.Image) -> Image.Image:
    image = _to_srgb(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
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
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: use the pixels as they are


def _high_depth_to_8bit(image: Image.Image) -> Image.Image:
    array = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = 1.0 if array.max(initial=0) <= 1.0 else 255.0
    else:
        top = 65535.0 if array.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(array / top * 255 + 0.5, 0, 255).astype(np.uint8))


def _border_colour(image: Image.Image) -> tuple[int, int, int]:
    """Median colour of the outermost pixels: the background a studio photo is shot on."""
    array = np.asarray(image)
    border = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    return tuple(int(c) for c in np.median(border, axis=0))
