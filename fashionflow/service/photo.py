"""The uploaded photo: read it, frame it as the model will see it, and warn when framing cuts off
the person; and the example photos."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import PIL.Image

from ..image import FIT_MODES, PHOTO_SUFFIXES, ImageInputError, frame_image, load_image
from .errors import OutOfMemoryError, PhotoError
from .model import ModelState
from .settings import choice


def read_photo(photo: Any) -> PIL.Image.Image:
    """The uploaded photo as an upright RGB image, or `PhotoError` in plain words.

    `photo` is what Gradio hands over without preprocessing (a dict with the uploaded file's
    "path"), a path, bytes, or an image.
    """
    if photo is None or (isinstance(photo, str) and not photo.strip()):
        raise PhotoError("Please upload a photo first (JPEG, PNG or WebP).")
    if isinstance(photo, Mapping):
        path = photo.get("path")
        if not path:
            raise PhotoError("The photo did not arrive completely. Please upload it again.")
        photo = path
    try:
        return load_image(photo)
    except ImageInputError as error:
        if error.reason == "out-of-memory":
            raise OutOfMemoryError(str(error)) from None
        raise PhotoError(str(error)) from None


def preview_photo(model: ModelState, photo: Any, fit: Any) -> PIL.Image.Image | None:
    """The photo framed as the model will see it; None when the photo was removed."""
    if photo is None:
        return None
    fit = choice(fit, "Framing", FIT_MODES)
    height, width = model.frame_size
    return frame_image(read_photo(photo), height, width, fit)


# Crop cutting this much (or more) off the top and bottom together gets a note under the preview:
# in a full-length photo, that is where the head and the feet are.
CROP_NOTE_FRACTION = 0.04


def crop_note(photo_size: tuple[int, int], frame_size: tuple[int, int], fit: str) -> str | None:
    """A warning when Crop cuts off the top and bottom of a photo taller than the frame, else None.

    `photo_size` is (width, height) as PIL gives it, `frame_size` (height, width) as the model has it.
    """
    if fit != "crop":
        return None
    width, height = photo_size
    frame_height, frame_width = frame_size
    kept = (frame_height / frame_width) / (height / width)  # share of the photo's height in the frame
    if kept >= 1 - CROP_NOTE_FRACTION:
        return None
    return (
        f"Crop cuts {1 - kept:.0%} off the top and bottom of this photo: the head or the feet may be missing. "
        "Choose “Pad” to keep the whole person."
    )


def example_photos(folder: str | os.PathLike) -> list[Path]:
    """The photos in `folder` (by name), for the page's examples; an operator's folder replaces ours."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"The examples folder {folder} does not exist.")
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"The examples folder {folder} holds no photos ({', '.join(PHOTO_SUFFIXES)}).")
    return photos


def photo_label(path: str | os.PathLike) -> str:
    """A readable name for an example photo, from its file name: "grace_hopper.jpg" -> "Grace hopper"."""
    words = Path(path).stem.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else "Photo"
