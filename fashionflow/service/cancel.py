"""Stopping one generation, also across the process boundary ZeroGPU puts between page and GPU."""

from __future__ import annotations

import os
import threading
from pathlib import Path

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
