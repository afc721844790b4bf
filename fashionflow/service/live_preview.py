"""The video taking shape while it is made: each session's latest latents, kept as the pipeline hands
them over after every step, and a few of their frames in colour when the page asks for a look.

Keeping costs nothing: the step's latents are the pipeline's own tensor (not copied: its next step
makes a new one), and nothing is computed unless the page asks. A look costs a few milliseconds
(`fashionflow.latent_preview`: a 4 x 3 map of a few small frames, off the device's thread) and is
made at most once per step and per poll of the page, so a video costs at most a few looks a second.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

PREVIEW_FRAMES = 4  # frames of the video shown, spread from its first to its last
PREVIEW_HEIGHT = 192  # pixels: the same size on the page whatever the model's latent size


@dataclass(frozen=True)
class LatentSnapshot:
    """A running generation's latents after `step` of `steps`, with the model's map to colours."""

    latents: Any  # torch.Tensor (batch, channels, frames, h, w): the pipeline's own, not a copy
    step: int
    steps: int
    colours: Any  # fashionflow.latent_preview.LatentColours

    def frames(self, count: int = PREVIEW_FRAMES, height: int = PREVIEW_HEIGHT) -> list:
        """[(frame index, PIL picture), ...]: `count` frames in colour, `height` pixels high."""
        from ..latent_preview import preview_frames

        return preview_frames(self.latents, self.colours, count, height)


Watcher = Callable[[LatentSnapshot], None]


class LivePreviews:
    """The latest snapshot of each session's running generation (thread-safe), and which step its page
    was last shown, so that a look is made only when there is something new to see."""

    def __init__(self) -> None:
        self._latest: dict[str, LatentSnapshot] = {}
        self._shown: dict[str, int] = {}
        self._lock = threading.Lock()

    def watcher(self, session: str | None) -> Watcher:
        """What `run_generation` calls after every step of `session`'s generation."""

        def keep(snapshot: LatentSnapshot) -> None:
            with self._lock:
                self._latest[session or ""] = snapshot

        return keep

    def fresh(self, session: str | None) -> LatentSnapshot | None:
        """`session`'s latest snapshot if its page has not been shown it yet (then it counts as shown)."""
        key = session or ""
        with self._lock:
            snapshot = self._latest.get(key)
            if snapshot is None or self._shown.get(key) == snapshot.step:
                return None
            self._shown[key] = snapshot.step
            return snapshot

    def hidden(self, session: str | None) -> None:
        """The page stopped showing looks (its setting was turned off): show the next one again when asked."""
        with self._lock:
            self._shown.pop(session or "", None)

    def forget(self, session: str | None) -> None:
        """`session`'s generation ended: let its latents go."""
        with self._lock:
            self._latest.pop(session or "", None)
            self._shown.pop(session or "", None)


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
