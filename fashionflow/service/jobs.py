"""The generations each browser session has running, so that its Cancel button can stop them, and
how each session's last one ended, so that its page can say so."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

from .cancel import CancelToken


@dataclass(frozen=True)
class Outcome:
    """How a session's last generation ended: `kind` is "done", "cancelled", "error" or "not ready"."""

    kind: str
    message: str


class JobRegistry:
    """The running generations of each browser session, so that its Cancel button can stop them."""

    MAX_OUTCOMES = 1000  # sessions whose last outcome is kept (oldest forgotten first)

    def __init__(self) -> None:
        self._jobs: dict[str, set[CancelToken]] = {}
        self._outcomes: OrderedDict[str, Outcome] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, session: str | None, flag_file: str | os.PathLike | None = None) -> CancelToken:
        token = CancelToken(flag_file)
        with self._lock:
            self._jobs.setdefault(session or "", set()).add(token)
        return token

    def finish(self, session: str | None, token: CancelToken) -> None:
        with self._lock:
            tokens = self._jobs.get(session or "")
            if tokens is not None:
                tokens.discard(token)
                if not tokens:
                    del self._jobs[session or ""]

    def cancel_session(self, session: str | None) -> int:
        """Cancel every running generation of `session`; the number cancelled now (one already
        cancelled and still winding down is not counted again: Gradio may report a visitor's
        leaving twice)."""
        with self._lock:
            tokens = [token for token in self._jobs.get(session or "", ()) if not token.cancelled]
        for token in tokens:
            token.cancel()
        return len(tokens)

    def running(self, session: str | None) -> int:
        with self._lock:
            return len(self._jobs.get(session or "", ()))

    def record_outcome(self, session: str | None, outcome: Outcome) -> None:
        with self._lock:
            self._outcomes[session or ""] = outcome
            self._outcomes.move_to_end(session or "")
            while len(self._outcomes) > self.MAX_OUTCOMES:
                self._outcomes.popitem(last=False)

    def forget_outcome(self, session: str | None) -> None:
        with self._lock:
            self._outcomes.pop(session or "", None)

    def last_outcome(self, session: str | None) -> Outcome | None:
        with self._lock:
            return self._outcomes.get(session or "")
