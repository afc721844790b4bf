"""Stopping one generation, also across the process boundary ZeroGPU puts between page and GPU, and
within a denoising step, which takes a minute for a long video on a CPU."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import GenerationCancelled


class CancelToken:
    """Stops one generation: the pipeline's progress callback checks it between steps.

    Besides the in-memory flag it can keep a marker file (put it in the job's folder, which goes
    when the job does), because on ZeroGPU the generation runs in a forked process that gets a
    pickled copy of the token and cannot see this process's flag.
    """

    def __init__(self, flag_file: str | os.PathLike | None = None):
        self.flag_file = Path(flag_file) if flag_file is not None else None
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()
        if self.flag_file is not None:
            try:
                self.flag_file.touch()
            except OSError:
                pass  # the job's folder is gone: the job is over, nothing left to stop

    @property
    def cancelled(self) -> bool:
        if self._event.is_set():
            return True
        if self.flag_file is not None and self.flag_file.exists():
            self._event.set()
            return True
        return False

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise GenerationCancelled("Generation cancelled.")

    def __getstate__(self) -> dict:
        return {"flag_file": self.flag_file, "cancelled": self._event.is_set()}

    def __setstate__(self, state: dict) -> None:
        self.flag_file = state["flag_file"]
        self._event = threading.Event()
        if state["cancelled"]:
            self._event.set()


# How often the blocks of a running model look at the token: often enough to stop within a second,
# rarely enough that the marker file of a ZeroGPU job is not looked for hundreds of times a step.
CHECK_EVERY_SECONDS = 0.2


@contextlib.contextmanager
def stops_inside(models: Iterable[Any], token: CancelToken) -> Iterator[None]:
    """While inside, every block of `models` (torch modules made of other modules: the U-Net's levels,
    resnets and attention, the decoder's) checks `token` before it runs, so that a cancelled job stops
    within a block rather than at the end of its step. Not for compiled models (the hooks would
    break their graphs): their steps are short anyway."""
    last_check = [time.monotonic()]

    def check(module: Any, args: Any) -> None:
        now = time.monotonic()
        if now - last_check[0] >= CHECK_EVERY_SECONDS:
            last_check[0] = now
            token.raise_if_cancelled()

    handles = [
        module.register_forward_pre_hook(check)
        for model in models
        for module in model.modules()
        if next(module.children(), None) is not None
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
