"""The video taking shape while it is made: each session's latest latents, kept as the pipeline hands
them over after every step, and a few of their frames in colour when the page asks for a look.

Keeping costs nothing: the step's latents are the pipeline's own tensor (not copied: its next step
makes a new one), and nothing is computed unless the page asks. A look costs a few milliseconds
(`fashionflow.latent_preview`: a 4 x 3 map of a few small frames, and JPEG) and is made only when a
step has ended since the last look and while the looks of a run have taken under `LOOK_BUDGET` of
the CPU time the server has spent since its first step: whatever the model, the machine, its load
and the page's clock (which ticks in wall-clock time, however little CPU the video gets), the
preview never takes more than that from the video.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

PREVIEW_FRAMES = 4  # frames of the video shown, spread from its first to its last
PREVIEW_HEIGHT = 192  # pixels: the same size on the page whatever the model's latent size
LOOK_BUDGET = 0.02  # the looks' CPU time, as a share of the server's CPU time since the run's first step


@dataclass(frozen=True)
class LatentSnapshot:
    """A running generation's latents after `step` of `steps`, with the model's map to colours."""

    latents: Any  # torch.Tensor (batch, channels, frames, h, w): the pipeline's own, not a copy
    step: int
    steps: int
    colours: Any  # fashionflow.latent_preview.LatentColours

    @property
    def num_frames(self) -> int:
        return self.latents.shape[2]

    def frames(self, count: int = PREVIEW_FRAMES, height: int = PREVIEW_HEIGHT) -> list:
        """[(frame index, PIL picture), ...]: `count` frames in colour, `height` pixels high."""
        from ..latent_preview import preview_frames

        return preview_frames(self.latents, self.colours, count, height)


@dataclass(frozen=True)
class Look:
    """What the page shows of a video taking shape: a few of its frames (index, JPEG) after `step` of `steps`."""

    frames: list[tuple[int, bytes]]
    num_frames: int
    step: int
    steps: int


Watcher = Callable[[LatentSnapshot], None]


@dataclass
class _Watched:
    latest: LatentSnapshot
    since: float  # the server's CPU time when the run's first step ended
    shown_step: int | None = None  # the step of the page's last look
    look_seconds: float = 0.0  # CPU time its looks took


class LivePreviews:
    """The latest snapshot of each session's running generation (thread-safe), and its looks so far.
    `budget` and `clock` (the process's CPU time) are for tests."""

    def __init__(self, budget: float = LOOK_BUDGET, clock: Callable[[], float] = time.process_time) -> None:
        self.budget, self.clock = budget, clock
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()

    def watcher(self, session: str | None) -> Watcher:
        """What `run_generation` calls after every step of `session`'s generation."""
        key = session or ""

        def keep(snapshot: LatentSnapshot) -> None:
            with self._lock:
                watched = self._watched.get(key)
                if watched is None:
                    self._watched[key] = _Watched(snapshot, since=self.clock())
                else:
                    watched.latest = snapshot

        return keep

    def look(self, session: str | None) -> Look | None:
        """A look at `session`'s video, or None: nothing running, no step ended since the last look, or
        the looks have had their share of the run's time for now."""
        key = session or ""
        with self._lock:
            watched = self._watched.get(key)
            if watched is None or watched.shown_step == watched.latest.step:
                return None
            if watched.look_seconds > self.budget * (self.clock() - watched.since):
                return None
            snapshot = watched.latest
            watched.shown_step = snapshot.step
        started = time.thread_time()
        try:
            frames = [(index, _jpeg(picture)) for index, picture in snapshot.frames()]
        finally:
            with self._lock:
                watched.look_seconds += time.thread_time() - started
        return Look(frames, snapshot.num_frames, snapshot.step, snapshot.steps)

    def hidden(self, session: str | None) -> None:
        """The page stopped showing looks (its setting was turned off): show the next one again when asked."""
        with self._lock:
            watched = self._watched.get(session or "")
            if watched is not None:
                watched.shown_step = None

    def forget(self, session: str | None) -> None:
        """`session`'s generation ended: let its latents go."""
        with self._lock:
            self._watched.pop(session or "", None)


def _jpeg(picture) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def fit_latent_colours(setup: Any, lock: threading.Lock | None = None) -> None:
    """Fit the model's map from latents to colours in the background once `setup` (a ModelSetup) has
    its model, under the device `lock` like any generation, so that no visitor waits for it."""
    from ..latent_preview import latent_colours
    from ..pipeline import execution_device

    def fit(model) -> None:
        try:
            with lock if lock is not None else contextlib.nullcontext():
                latent_colours(model.pipeline.vae, execution_device(model.pipeline))
        except Exception:  # no live preview then, never a reason to stop the app
            logger.exception("Fitting the live preview's colours failed")

    setup.when_ready(
        lambda model: threading.Thread(
            target=fit, args=(model,), name="fashionflow-preview-colours", daemon=True
        ).start()
    )
