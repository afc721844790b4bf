"""The generations each browser session has running, so that its Cancel button can stop them."""

from __future__ import annotations

import os
import threading

from .cancel import CancelToken


class JobRegistry:
    """The running generations of each browser session, so that its Cancel button can stop them."""

    def __init__(self) -> None:
        self._jobs: dict[str, set[CancelToken]] = {}
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
        """Cancel every running generation of `session`; the number cancelled."""
        with self._lock:
            tokens = list(self._jobs.get(session or "", ()))
        for token in tokens:
            token.cancel()
        return len(tokens)

    def running(self, session: str | None) -> int:
        with self._lock:
            return len(self._jobs.get(session or "", ()))
