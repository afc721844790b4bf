"""Failures in plain words: which cause an exception stands for, and the sentence that says so.

Used by the command line (one line per photo) and the web app (a titled message); the library's
own errors (`ImageInputError`, `VideoWriteError`, `WeightsNotFoundError`) already carry their
sentence, and this module words the rest: full disks, memory, and the unexpected.
"""

from __future__ import annotations

import errno
import re
import sys
from dataclasses import dataclass

_MEMORY_ERROR = re.compile(
    r"out of memory|can't allocate memory|cannot allocate memory|not enough memory|failed to allocate", re.I
)


@dataclass(frozen=True)
class Explanation:
    title: str  # a heading: "Photo", "Disk full", "Out of memory", ...
    message: str  # one or two plain sentences
    reason: str  # a short code for programs and the manifest


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA / MPS / CPU allocation failures, whichever way they surface."""
    if isinstance(error, MemoryError):
        return True
    torch = sys.modules.get("torch")  # only when torch is in use can its errors occur
    if torch is not None and isinstance(error, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)):
        return True
    if getattr(error, "reason", None) == "out-of-memory":
        return True
    return isinstance(error, RuntimeError) and bool(_MEMORY_ERROR.search(str(error)))


def is_disk_full(error: BaseException) -> bool:
    if getattr(error, "reason", None) == "disk-full":
        return True
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def explain(error: BaseException) -> Explanation:
    """The title, sentence and reason code for `error`, for someone running FashionFlow themselves."""
    from .image import ImageInputError
    from .video import VideoWriteError

    if is_out_of_memory(error):
        return Explanation(
            "Out of memory",
            "The computer ran out of memory. Try fewer frames (--frames) or a smaller decode chunk "
            "(--decode-chunk-size), or run fewer jobs at once.",
            "out-of-memory",
        )
    if isinstance(error, ImageInputError):
        return Explanation("Photo", str(error), error.reason)
    if isinstance(error, VideoWriteError):
        return Explanation("Disk full" if error.reason == "disk-full" else "Video not saved", str(error), error.reason)
    if is_disk_full(error):
        return Explanation(
            "Disk full", "The disk is full. Free some space, or write to another folder, and try again.", "disk-full"
        )
    if isinstance(error, FileNotFoundError) and type(error) is not FileNotFoundError:
        return Explanation("Not found", str(error), "not-found")  # our own subclasses carry a sentence
    detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else "no details"
    return Explanation("Unexpected error", f"An unexpected error occurred ({type(error).__name__}: {detail}).", "error")
