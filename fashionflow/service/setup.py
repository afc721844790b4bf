"""A server that sets itself up: when the published weights are missing and downloading is allowed
(on Hugging Face Spaces by default), fetch and convert them in the background with the same code
as `python -m fashionflow download`, while the page says how far it has got.

`ModelSetup` is what the page asks "which model, and how is it going?": a loaded model, one on
its way (what is being fetched, how far), or why there is none. A failure is kept for the
operator and tried again by itself after a pause that grows with each failure, so that a visitor
told "try again in a few minutes" is told the truth: the download code leaves no half-written
folder and resumes the checkpoint where it stopped.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..base.environment import on_spaces, truth
from ..hub import CHECKPOINT_URL, DEFAULT_CACHE, DEFAULT_OUTPUT, download_official_pipeline
from ..progress import format_seconds
from .errors import DemoNotReadyError
from .model import ModelState
from .queue import ordinal

logger = logging.getLogger(__name__)

# Hugging Face Spaces mount a Space's persistent storage here (when the Space has it): weights
# kept there survive restarts, so they are fetched once.
SPACES_PERSISTENT_DIR = Path("/data")

# What the download code reports, in the words the page uses.
_FETCHING = {
    "CompVis/stable-diffusion-v1-4": "the image decoder (Stable Diffusion VAE)",
    "openai/clip-vit-base-patch32": "the image encoder (CLIP)",
    "FashionFlow_checkpoint.pth": "the FashionFlow model (the authors' checkpoint)",
}


def auto_download_allowed(environ: Mapping[str, str]) -> bool:
    """FASHIONFLOW_AUTO_DOWNLOAD if set, else on exactly when running on Hugging Face Spaces (SPACE_ID)."""
    value = environ.get("FASHIONFLOW_AUTO_DOWNLOAD", "")
    if value.strip():
        return truth(value, "FASHIONFLOW_AUTO_DOWNLOAD")
    return on_spaces(environ)


def weights_home(persistent: Path = SPACES_PERSISTENT_DIR, cache: Path = DEFAULT_CACHE) -> Path:
    """Where fetched weights live: the Space's persistent storage when it has some, else the cache."""
    if persistent.is_dir() and os.access(persistent, os.W_OK):
        return persistent / "fashionflow"
    return Path(cache)


@dataclass(frozen=True)
class Preparation:
    """How far the set-up has got: what is being done, and bytes done / in all for downloads."""

    step: str
    done_bytes: int = 0
    total_bytes: int | None = None

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else None

    def describe(self) -> str:
        """ "Fetching the image encoder (CLIP): 43% (260 of 605 MB)"."""
        if self.fraction is None:
            return self.step
        digits = 0 if self.total_bytes >= 100e6 else 1
        mb_done, mb_total = self.done_bytes / 1e6, self.total_bytes / 1e6
        return f"{self.step}: {self.fraction:.0%} ({mb_done:,.{digits}f} of {mb_total:,.{digits}f} MB)"


@dataclass(frozen=True)
class ModelStatus:
    """What the page says about the model. `kind` picks the look: "ready", "untrained" (a warning),
    "preparing" (progress), "failed" or "missing" (not ready); `details` are for the operator.
    `changing`: the model is on its way (being prepared, or tried again after a failure), so that the
    page keeps asking."""

    kind: str
    headline: str
    details: str = ""
    preparation: Preparation | None = None
    changing: bool = False

    @property
    def can_generate(self) -> bool:
        return self.kind in ("ready", "untrained")


# What visitors are told while the model is not ready: no commands, nothing only an operator can do,
# and "try again" only where the app does try again by itself.
PREPARING_FOR_VISITORS = (
    "This demo is still getting ready: it is downloading what it needs. Please try again in a few minutes."
)
RETRYING_FOR_VISITORS = (
    "This demo is not ready yet: it could not download what it needs, and tries again by itself. "
    "Please try again in a few minutes."
)
UNAVAILABLE_FOR_VISITORS = "This demo is not ready: it cannot make videos at the moment."
# After a failed preparation, the next try comes after this pause, which doubles after each failure
# up to the longest: quick when the Hub had a moment's trouble, rare when it is down for hours.
FIRST_RETRY_SECONDS = 30
LONGEST_RETRY_SECONDS = 3600


def retry_pauses(first: float, longest: float = LONGEST_RETRY_SECONDS) -> Iterator[float]:
    """The pauses before each new try: `first`, then twice as long each time, up to `longest`."""
    pause = first
    while True:
        yield min(pause, longest)
        pause *= 2


@dataclass(frozen=True)
class _Failure:
    error: str  # for the operator
    tries: int
    next_try: float | None  # monotonic time of the next try; None: not tried again


class ModelSetup:
    """The model the app serves, which may still be on its way."""

    def __init__(self, state: ModelState, on_spaces: bool = False, clock: Callable[[], float] = time.monotonic):
        self._state = state
        self.on_spaces = on_spaces
        self.clock = clock
        self._preparation: Preparation | None = None
        self._failure: _Failure | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready_callbacks: list[Callable[[ModelState], None]] = []

    @property
    def state(self) -> ModelState:
        with self._lock:
            return self._state

    @property
    def preparing(self) -> bool:
        with self._lock:
            return self._preparation is not None

    def when_ready(self, callback: Callable[[ModelState], None]) -> None:
        """Call `callback(state)` once a model is loaded (at once if it is already)."""
        with self._lock:
            ready = self._state.ready
            if not ready:
                self._ready_callbacks.append(callback)
        if ready:
            callback(self.state)

    def prepare_in_background(
        self,
        target: str | os.PathLike,
        load: Callable[[str], ModelState],
        *,
        cache_dir: str | os.PathLike = DEFAULT_CACHE,
        checkpoint_url: str = CHECKPOINT_URL,
        checkpoint_sha256: str | None = None,
        hub_endpoint: str | None = None,
        download: Callable[..., Path] = download_official_pipeline,
        first_retry_seconds: float | None = FIRST_RETRY_SECONDS,
    ) -> threading.Thread:
        """Fetch and convert the published weights into `target` (unless a previous start did),
        then `load` them; the page follows along through `status()`. A failure is tried again after
        `first_retry_seconds`, then after twice that, and so on up to an hour (None: not again);
        finished downloads are kept and an interrupted checkpoint resumes."""
        with self._lock:
            self._preparation = Preparation("Starting")
            self._failure = None

        def prepare() -> ModelState:
            folder = Path(target)
            if not (folder / "model_index.json").is_file():
                download(
                    folder,
                    checkpoint_url=checkpoint_url,
                    checkpoint_sha256=checkpoint_sha256,
                    cache_dir=cache_dir,
                    hub_endpoint=hub_endpoint,
                    force=folder.exists(),  # a folder without model_index.json is not ours to keep
                    progress=self._report,
                )
            self._set_preparation(Preparation("Loading the model"))
            state = load(str(folder))
            if not state.ready:
                raise RuntimeError(state.error or f"{folder} could not be loaded.")
            return state

        def run() -> None:
            started = time.monotonic()
            pauses = retry_pauses(first_retry_seconds) if first_retry_seconds is not None else iter(())
            for tries in itertools.count(1):
                try:
                    state = prepare()
                    break
                except Exception as error:  # any failure: the page says so, the operator gets the details
                    logger.exception("Preparing the model failed (try %d)", tries)
                    pause = next(pauses, None)
                    next_try = None if pause is None else self.clock() + pause
                    with self._lock:
                        self._preparation = None
                        self._failure = _Failure(f"{type(error).__name__}: {error}", tries, next_try)
                if pause is None or self._stop.wait(pause):
                    return
                logger.info("Preparing the model again (try %d)", tries + 1)
                self._set_preparation(Preparation("Trying again"))
            logger.info("Model prepared in %.0f s: %s", time.monotonic() - started, state.description)
            with self._lock:
                self._state, self._preparation, self._failure = state, None, None
                callbacks, self._ready_callbacks = self._ready_callbacks, []
            for callback in callbacks:
                callback(state)

        self._thread = threading.Thread(target=run, name="fashionflow-model-setup", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Try no more (a preparation under way finishes)."""
        self._stop.set()

    def _report(self, what: str, done: int, total: int | None) -> None:
        label = next((words for key, words in _FETCHING.items() if key in what), None)
        step = f"Fetching {label}" if label else what
        self._set_preparation(Preparation(step, done, total))

    def _set_preparation(self, preparation: Preparation) -> None:
        with self._lock:
            self._preparation = preparation

    def status(self) -> ModelStatus:
        with self._lock:
            state, preparation, failure = self._state, self._preparation, self._failure
        if state.ready:
            if state.untrained:
                return ModelStatus(
                    "untrained",
                    "Untrained test model: its videos are noise, not real results.",
                    f"Model: {state.description}",
                )
            return ModelStatus("ready", "Model ready.", f"Model: {state.description}")
        if preparation is not None:
            return ModelStatus(
                "preparing",
                "Preparing the model. This happens once; Generate turns on when it is ready, "
                "and this page updates by itself.",
                preparation=preparation,
                changing=True,
            )
        if failure is not None and failure.next_try is not None:
            wait = format_seconds(max(0.0, failure.next_try - self.clock()))
            return ModelStatus(
                "failed",
                f"This demo is not ready yet. It tries again by itself (next try in {wait.removeprefix('about ')}); "
                "please come back in a few minutes.",
                f"Preparing the model failed ({ordinal(failure.tries)} try): {failure.error}\n\nIt is tried "
                f"again by itself in {wait.removeprefix('about ')}; the pause doubles after each failure, up to an "
                "hour. Finished downloads are kept. See the app's log for the full error.",
                changing=True,
            )
        if failure is not None:
            return ModelStatus(
                "failed",
                UNAVAILABLE_FOR_VISITORS,
                f"Preparing the model failed: {failure.error}\n\nIt is tried again on the next start (restart the "
                "Space or the app); finished downloads are kept. See the app's log for the full error.",
            )
        if self.on_spaces:
            return ModelStatus(
                "missing",
                UNAVAILABLE_FOR_VISITORS,
                f"{state.error}\n\nOn Hugging Face Spaces, leave FASHIONFLOW_AUTO_DOWNLOAD unset (or true) so the "
                "app fetches the published weights itself, or set FASHIONFLOW_MODEL to a model folder or Hub id.",
            )
        return ModelStatus(
            "missing",
            "No model loaded: the app cannot make videos yet.",
            f"{state.error}\n\nThen restart the app.",
        )

    def require(self) -> ModelState:
        """The loaded model, or `ModelUnavailableError` saying why not: to a visitor in their words (while
        the model is on its way, and on Spaces), to the operator of a local app what to run."""
        status = self.status()
        state = self.state
        if state.ready:
            return state
        if status.kind == "preparing":
            raise DemoNotReadyError(PREPARING_FOR_VISITORS)
        if status.changing:
            raise DemoNotReadyError(RETRYING_FOR_VISITORS)
        if self.on_spaces or status.kind == "failed":
            raise DemoNotReadyError(UNAVAILABLE_FOR_VISITORS)
        state.require()  # the operator's own app: what to run
        return state


def prepare_model(settings, app_dir: str | os.PathLike, environ: Mapping[str, str] | None = None) -> ModelSetup:
    """The model the app's `settings` (LaunchSettings, or its parsed options) name, loaded now; or, when
    the published weights are missing and downloading is allowed, fetched, converted and loaded in
    the background while the page says how it goes. `app_dir`: where the default weights folder is
    also looked for (beside the app)."""
    from .model import load_model, resolve_model_name

    def load(name: str) -> ModelState:
        return load_model(
            name,
            device=settings.device,
            dtype=settings.dtype,
            attention_backend=settings.attention,
            cpu_offload=settings.cpu_offload,
        )

    name = resolve_model_name(settings.model, app_dir)
    state = load(name)
    setup = ModelSetup(state, on_spaces=on_spaces(environ))
    if not state.ready and settings.auto_download and published_weights_requested(settings.model):
        # Downloads and the assembled folder both in persistent storage when there is some, so
        # that a restart neither fetches again nor loses a half-finished download.
        home = weights_home()
        target = home / Path(settings.model).name
        logger.info("No weights at %s: fetching the published ones into %s in the background.", name, target)
        setup.prepare_in_background(
            target,
            load,
            cache_dir=home,
            checkpoint_url=settings.checkpoint_url,
            checkpoint_sha256=settings.checkpoint_sha256,
            first_retry_seconds=settings.download_retry,
        )
    else:
        logger.info("%s", state.description if state.ready else state.error)
    return setup


def published_weights_requested(name: str) -> bool:
    """Whether `name` asks for the published weights in their default place (what auto-download provides)."""
    return str(name) == str(DEFAULT_OUTPUT)
