"""The app's boundary: whatever goes wrong in a request becomes a `ServiceError`, a title and a
sentence for the visitor (worded by `base.errors.explain`, the translator the command line uses
too). Nothing technical reaches them; an unexpected error is logged with its traceback under a
short reference that the visitor's message quotes, so the operator can find it."""

from __future__ import annotations

import logging

from ..base.errors import DISK_FULL, INTERNAL, OUT_OF_MEMORY, PHOTO, explain
from .errors import DiskFullError, InternalError, OutOfMemoryError, PhotoError, ServiceError

logger = logging.getLogger("fashionflow.app")

_SERVICE_ERRORS = {DISK_FULL: DiskFullError, OUT_OF_MEMORY: OutOfMemoryError, PHOTO: PhotoError}


def as_service_error(error: BaseException, doing: str) -> ServiceError:
    """`error` as the visitor should see it; `doing` completes "... while {doing}" ("making the video")."""
    if isinstance(error, ServiceError):
        return error
    explanation = explain(error, doing=doing)
    if explanation.kind is INTERNAL:
        logger.error(
            "Internal error, reference %s, while %s",
            explanation.reference,
            doing,
            exc_info=(type(error), error, error.__traceback__),
        )
        return InternalError(explanation.message, explanation.reference)
    if explanation.kind is DISK_FULL:
        logger.error("Disk full while %s: %s", doing, error)
    elif explanation.kind is OUT_OF_MEMORY:
        logger.warning("Out of memory while %s: %r", doing, error)
    return _SERVICE_ERRORS[explanation.kind](explanation.message)
