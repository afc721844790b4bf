"""The app's boundary: whatever goes wrong in a request becomes a `ServiceError`, a title and a
sentence for the visitor. Nothing technical reaches them; an unexpected error is logged with its
traceback under a short reference that the visitor's message quotes, so the operator can find it."""

from __future__ import annotations

import logging
import uuid

from ..errors import is_disk_full, is_out_of_memory
from ..image import ImageInputError
from .errors import DiskFullError, InternalError, OutOfMemoryError, PhotoError, ServiceError

logger = logging.getLogger("fashionflow.app")


def as_service_error(error: BaseException, doing: str) -> ServiceError:
    """`error` as the visitor should see it; `doing` completes "... while {doing}" ("making the video")."""
    if isinstance(error, ServiceError):
        return error
    if is_disk_full(error):
        logger.error("Disk full while %s: %s", doing, error)
        return DiskFullError(
            f"The server's disk is full, so nothing could be saved while {doing}. Please try again later; "
            "if it keeps happening, tell the site's operator."
        )
    if is_out_of_memory(error):
        logger.warning("Out of memory while %s: %r", doing, error)
        return OutOfMemoryError(
            f"The server ran out of memory while {doing}. Please try again in a moment, or with a smaller photo "
            "or fewer frames (under Advanced)."
        )
    if isinstance(error, ImageInputError):
        return PhotoError(str(error))
    reference = uuid.uuid4().hex[:8]
    logger.error(
        "Internal error, reference %s, while %s", reference, doing, exc_info=(type(error), error, error.__traceback__)
    )
    return InternalError(
        f"Something went wrong on the server while {doing}, and nothing was made. Please try again; if it "
        f"happens again, tell the site's operator and quote reference {reference}.",
        reference,
    )
