"""Failures in plain words, in one place: what kind of failure an exception is, the sentence that
says so, and the exit status that follows from the kind.

FashionFlow's own errors are `FashionFlowError`s: their message is already the sentence, and their
class says its `kind`. Anything else (a full disk, memory running out, a missing file, a bug) is
classified and worded here. The same translator serves the command line (worded for the person who
runs it, with an exit status) and the web app (worded for a visitor, who cannot see the server:
see `explain(error, doing=...)`).

A message may name settings, as "{batch_size} must be a positive whole number": the library's
reader sees the setting's name (batch_size), the command line's reader its flag (--batch-size).
"""

from __future__ import annotations

import errno
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from .memory import is_out_of_memory


@dataclass(frozen=True)
class Kind:
    """A kind of failure: its heading, and the command line's exit status for it.

    Exit statuses: 2 when the command has to change before running it again helps (a value, an
    input, a path, something to fetch first); 1 when it ran and failed or stopped (a full disk,
    memory, a diverging loss, a bug); 130 when interrupted."""

    name: str
    title: str
    exit_status: int


PHOTO = Kind("photo", "Photo", 2)  # a photo that cannot be used
INPUT = Kind("input", "Not usable", 2)  # a value, file or folder given cannot be used
MISSING = Kind("missing", "Not found", 2)  # something named is not there
UNREACHABLE = Kind("unreachable", "Download failed", 2)  # something to fetch could not be fetched
OUTPUT = Kind("output", "Not saved", 2)  # where the results go cannot be written
DISK_FULL = Kind("disk-full", "Disk full", 1)
OUT_OF_MEMORY = Kind("out-of-memory", "Out of memory", 1)
STOPPED = Kind("stopped", "Stopped", 1)  # the work stopped on its own (a loss that became NaN)
INTERNAL = Kind("internal", "Unexpected error", 1)  # a bug, or a failure nobody planned for
INTERRUPTED = Kind("interrupted", "Interrupted", 130)


class FashionFlowError(Exception):
    """An error worded for the person reading it; `kind` says what sort of failure it is.

    `settings` names the settings the message refers to, as `{name}` in it: None shows the name
    alone, a value shows the setting with it (`resume='latest'`, or `--resume latest` on the command line;
    True, a switch turned on: `overwrite=True`, or `--overwrite`).
    """

    kind: Kind = INPUT

    def __init__(self, message: str = "", *, settings: Mapping[str, object] | None = None):
        self.template = message
        self.settings = dict(settings or {})
        super().__init__(self.worded())

    def worded(self, flags: Mapping[str, str] | None = None) -> str:
        """The message, naming settings by their flags where `flags` (setting -> flag) has them."""
        if not self.settings:
            return self.template
        names = {}
        for name, value in self.settings.items():
            flag = (flags or {}).get(name)
            if flag is not None:
                names[name] = flag if value is None or value is True else f"{flag} {value}"
            else:
                names[name] = name if value is None else f"{name}={value!r}"
        return self.template.format(**names)


def literal(text: object) -> str:
    """`text` as it is inside a message that names settings (its braces are not placeholders)."""
    return str(text).replace("{", "{{").replace("}", "}}")


class SettingsError(FashionFlowError, ValueError):
    """Settings that cannot be used together or at all; the message names them and what is allowed."""


@dataclass(frozen=True)
class Explanation:
    kind: Kind
    message: str  # one or two plain sentences
    reason: str  # a short code for programs and manifests ("disk-full", "not-a-picture", ...)
    reference: str | None = None  # an unexpected error told to a visitor: where the log has the details

    @property
    def title(self) -> str:
        return self.kind.title


def kind_of(error: BaseException) -> Kind:
    """The kind of failure `error` stands for."""
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    if is_out_of_memory(error):
        return OUT_OF_MEMORY
    if is_disk_full(error):
        return DISK_FULL
    if isinstance(error, FashionFlowError):
        return error.kind
    if isinstance(error, FileNotFoundError):
        return MISSING
    if isinstance(error, ValueError) or is_refused_pickle(error):  # how Python code says an argument cannot be used
        return INPUT
    return INTERNAL


# How writers other than Python's own say that the disk is full: safetensors quotes the system's error, and
# torch's checkpoint writer ("PytorchStreamWriter") only notices that fewer bytes were written than it gave.
DISK_FULL_WORDS = ("No space left on device", "os error 28", "Disk quota exceeded", "os error 122")
TORCH_WRITE_FAILED = ("unexpected pos", "PytorchStreamWriter failed writing file")


def is_disk_full(error: BaseException) -> bool:
    if getattr(error, "reason", None) == "disk-full":
        return True
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(error)
    if isinstance(error, RuntimeError) and any(words in text for words in TORCH_WRITE_FAILED):
        return True
    return any(words in text for words in DISK_FULL_WORDS)


def is_refused_pickle(error: BaseException) -> bool:
    """torch.load(weights_only=True) refused a pickle that holds more than tensors (code, objects):
    nothing in it ran. Its message advises turning the safety off, which is never passed on."""
    import pickle

    seen = set()
    while error is not None and id(error) not in seen:  # also when a loader wrapped it in its own error
        if isinstance(error, pickle.UnpicklingError) and "weights_only" in str(error).lower():
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


REFUSED_PICKLE = (
    "holds Python objects besides tensors, and those are never loaded, since loading them could run code "
    "hidden in the file (nothing in it ran)"
)


def exit_status(error: BaseException) -> int:
    return kind_of(error).exit_status


def explain(
    error: BaseException,
    *,
    doing: str | None = None,
    flags: Mapping[str, str] | None = None,
    memory_advice: str = "Ask for less at once (a smaller batch, fewer frames), or run fewer jobs at once.",
) -> Explanation:
    """The kind, sentence and reason code of `error`.

    Without `doing`, worded for the person who runs FashionFlow (`flags` maps settings to the
    flags they typed; `memory_advice` says how to ask for less memory). With `doing` ("making the
    video"), worded for a visitor of the web app: only what they can act on (their photo, a busy
    server) is said; anything else is an unexpected error, with a reference for the operator.
    """
    kind = kind_of(error)
    reason = getattr(error, "reason", None) or ("error" if kind is INTERNAL else kind.name)
    if doing is not None:
        return _for_a_visitor(error, kind, reason, doing)
    if kind is OUT_OF_MEMORY:
        message = f"The computer ran out of memory. {memory_advice}"
    elif isinstance(error, FashionFlowError):
        message = error.worded(flags)
    elif kind is DISK_FULL:
        message = "The disk is full. Free some space, or write to another folder, and try again."
    elif kind is INTERRUPTED:
        message = "Interrupted."
    elif is_refused_pickle(error):
        message = (
            f"A file {REFUSED_PICKLE}. Files of weights need none: use safetensors files, or files from a source "
            "you trust."
        )
    elif kind is MISSING and getattr(error, "filename", None):
        message = f"No such file or folder: {error.filename}."
    elif kind in (MISSING, INPUT):
        message = str(error).strip() or f"{type(error).__name__}."
    else:
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else "no details"
        message = f"An unexpected error occurred ({type(error).__name__}: {detail})."
    return Explanation(kind, message, reason)


def _for_a_visitor(error: BaseException, kind: Kind, reason: str, doing: str) -> Explanation:
    if kind is DISK_FULL:
        message = (
            f"The server's disk is full, so nothing could be saved while {doing}. Please try again later; "
            "if it keeps happening, tell the site's operator."
        )
        return Explanation(kind, message, reason)
    if kind is OUT_OF_MEMORY:
        message = (
            f"The server ran out of memory while {doing}. Please try again in a moment, or with a smaller photo "
            "or fewer frames (under Advanced)."
        )
        return Explanation(kind, message, reason)
    if kind is PHOTO:
        return Explanation(kind, str(error), reason)
    reference = uuid.uuid4().hex[:8]
    message = (
        f"Something went wrong on the server while {doing}, and nothing was made. Please try again; if it "
        f"happens again, tell the site's operator and quote reference {reference}."
    )
    return Explanation(INTERNAL, message, "error", reference)


def first_sentence(text: str, limit: int = 300) -> str:
    """The first sentence (or line) of `text`, never cut mid-word; terminal colour codes removed.
    For quoting other programs' messages, which can run to pages."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text).strip()
    line = text.splitlines()[0].strip() if text else ""
    match = re.match(r"(.+?[.!?])(\s|$)", line)
    sentence = match.group(1) if match else line
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return sentence
