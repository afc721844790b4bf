"""The uploaded photo: read it, and frame it as the model will see it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import PIL.Image

from ..image import FIT_MODES, ImageInputError, frame_image, load_image
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
