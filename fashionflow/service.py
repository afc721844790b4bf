"""What the web app does, without the web page: checking requests, running one generation at a
time, cancelling, cleaning up files, and turning failures into sentences for shop staff.

Nothing here imports Gradio, so all of it is tested directly. `app.py` builds the page and
translates `ServiceError` into `gr.Error`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PIL.Image

from .image import DEFAULT_FIT, FIT_MODES, ImageInputError, frame_image, load_image
from .loading import DEFAULT_MODEL, WeightsNotFoundError, describe_pipeline, load_pipeline
from .pipeline import DEFAULT_DECODE_CHUNK_SIZE, DEFAULT_NUM_FRAMES
from .progress import GenerationProgress, ProgressUpdate, format_seconds
from .schedulers import DEFAULT_SAMPLER, SAMPLERS, default_steps
from .video import DEFAULT_FPS, boomerang, export_video

logger = logging.getLogger(__name__)

# The published model's frame (adapter latent 80 x 64, VAE scale 8): what the preview shows
# when no model is loaded, so that framing can be checked before the weights are there.
PUBLISHED_FRAME_SIZE = (640, 512)


# errors ---------------------------------------------------------------------------------------------------------


class ServiceError(Exception):
    """A failure worded for the person using the app; `title` heads the message box."""

    title = "Something went wrong"


class PhotoError(ServiceError):
    title = "Photo"


class SettingsError(ServiceError):
    title = "Settings"


class ModelUnavailableError(ServiceError):
    title = "No model loaded"


class OutOfMemoryError(ServiceError):
    title = "Out of memory"


class GenerationCancelled(ServiceError):
    title = "Cancelled"


# settings -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What a request may ask for. The page's sliders use the same numbers."""

    # Twice the published 70 frames: the model was trained on 70-frame clips and memory grows
    # with the length (temporal attention), so longer asks mostly buy out-of-memory errors.
    max_frames: int = 140
    max_steps: int = 1000  # the training schedule's length: no sampler can take more
    min_fps: int = 1
    max_fps: int = 60
    max_seed: int = 2**32 - 1  # what fits a number box and a URL without surprises


LIMITS = Limits()


@dataclass(frozen=True)
class GenerationSettings:
    """One request's settings, checked. `seed` is the seed actually used (never "random")."""

    seed: int
    sampler: str = DEFAULT_SAMPLER
    steps: int = default_steps(DEFAULT_SAMPLER)
    num_frames: int = DEFAULT_NUM_FRAMES
    fps: int = DEFAULT_FPS
    loop: bool = False
    decode_chunk_size: int = DEFAULT_DECODE_CHUNK_SIZE
    fit: str = DEFAULT_FIT

    @property
    def output_frames(self) -> int:
        """Frames in the written video: a loop plays forward then back without repeating the ends."""
        return 2 * self.num_frames - 2 if self.loop else self.num_frames


def random_seed(limits: Limits = LIMITS, rng: random.Random | None = None) -> int:
    return (rng or random.SystemRandom()).randint(0, limits.max_seed)


def validate_settings(
    *,
    fit: Any = DEFAULT_FIT,
    seed: Any = None,
    randomize_seed: Any = True,
    sampler: Any = DEFAULT_SAMPLER,
    steps: Any = None,
    num_frames: Any = DEFAULT_NUM_FRAMES,
    fps: Any = DEFAULT_FPS,
    loop: Any = False,
    decode_chunk_size: Any = DEFAULT_DECODE_CHUNK_SIZE,
    limits: Limits = LIMITS,
    rng: random.Random | None = None,
) -> GenerationSettings:
    """Check what a page or API caller sent; raise `SettingsError` saying what is allowed.

    Values arrive as JSON numbers (25.0), strings or booleans. A missing or zero step count
    means the sampler's default; a decode chunk larger than the video is the whole video.
    Everything else out of range is refused rather than quietly changed, so that a caller
    gets the video they asked for or a reason.
    """
    sampler = _choice(sampler, "Sampler", SAMPLERS)
    fit = _choice(fit, "Framing", FIT_MODES)
    num_frames = _whole_number(num_frames, "Frames", 2, limits.max_frames)
    if num_frames % 2:
        raise SettingsError(f"Frames must be an even number (the model makes frames in pairs); got {num_frames}.")
    if steps is None or (not isinstance(steps, str) and _is_number(steps) and steps == 0):
        steps = default_steps(sampler)
    steps = _whole_number(steps, "Steps", 1, limits.max_steps)
    fps = _whole_number(fps, "Frames per second", limits.min_fps, limits.max_fps)
    decode_chunk_size = min(_whole_number(decode_chunk_size, "Decode chunk size", 1, limits.max_frames), num_frames)
    loop = _flag(loop, "Loop")
    if _flag(randomize_seed, "Randomise seed"):
        seed = random_seed(limits, rng)
    else:
        if seed is None or seed == "":
            raise SettingsError("Enter a seed, or tick “Randomise seed”.")
        seed = _whole_number(seed, "Seed", 0, limits.max_seed)
    return GenerationSettings(
        seed=seed,
        sampler=sampler,
        steps=steps,
        num_frames=num_frames,
        fps=fps,
        loop=loop,
        decode_chunk_size=decode_chunk_size,
        fit=fit,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole_number(value: Any, label: str, low: int, high: int) -> int:
    if value is None or isinstance(value, bool):
        raise SettingsError(f"{label} must be a whole number from {low} to {high}; got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{label} must be a whole number from {low} to {high}; got {value!r}.") from None
    if not math.isfinite(number) or number != int(number):
        raise SettingsError(f"{label} must be a whole number from {low} to {high}; got {value!r}.")
    number = int(number)
    if not low <= number <= high:
        raise SettingsError(f"{label} must be from {low} to {high}; got {number}.")
    return number


def _choice(value: Any, label: str, choices) -> str:
    text = str(value).strip().lower() if value is not None else ""
    if text not in choices:
        raise SettingsError(f"{label} must be one of: {', '.join(choices)}; got {value!r}.")
    return text


def _flag(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SettingsError(f"{label} must be true or false; got {value!r}.")


# the photo --------------------------------------------------------------------------------------------------------


def read_photo(photo: Any) -> PIL.Image.Image:
    """The uploaded photo as an upright RGB image, or `PhotoError` in plain words.

    `photo` is what Gradio hands over without preprocessing (a dict with the uploaded file's
    "path"), a path, bytes, or an image.
    """
    if photo is None or (isinstance(photo, str) and not photo.strip()):
        raise PhotoError("Please upload a photo first (JPEG, PNG or WebP).")
    if isinstance(photo, Mapping):
        path = photo.get("path")
        if not path:
            raise PhotoError("The photo did not arrive completely. Please upload it again.")
        photo = path
    try:
        return load_image(photo)
    except ImageInputError as error:
        raise PhotoError(str(error)) from None


# the model ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelState:
    """The pipeline the app serves, or why there is none."""

    name: str
    pipeline: Any = None
    description: str = ""
    error: str | None = None
    untrained: bool = False

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the frames the model makes."""
        return tuple(self.pipeline.frame_size) if self.ready else PUBLISHED_FRAME_SIZE

    def require(self) -> None:
        if not self.ready:
            raise ModelUnavailableError(self.error or f"The model {self.name} is not loaded.")

    def status_markdown(self) -> str:
        """The page's status line: which weights, where, how; or exactly what to do."""
        if not self.ready:
            return (
                f"**No model loaded: the app cannot make videos yet.**\n\n{self.error}\n\n"
                "Then restart the app. On Hugging Face Spaces, set the `FASHIONFLOW_MODEL` variable to a "
                "model folder or Hub id instead."
            )
        if self.untrained:
            return f"**Untrained test model.** Model: {self.description}"
        return f"Model: {self.description}"


def resolve_model_name(name: str, app_dir: str | os.PathLike) -> str:
    """Where to look for `name`: the default weights folder also beside the app, not only under the
    working directory, so that `python /path/to/app.py` finds the checkout's weights."""
    if name != DEFAULT_MODEL or Path(name).exists():
        return name
    beside = Path(app_dir).resolve() / name
    return str(beside) if beside.exists() else name


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    dtype: str | None = None,
    attention_backend: str = "auto",
    cpu_offload: bool = False,
) -> ModelState:
    """Load the pipeline once; missing weights give a `ModelState` that says what to run, not an exception."""
    try:
        pipeline = load_pipeline(
            name, device=device, dtype=dtype, attention_backend=attention_backend, cpu_offload=cpu_offload
        )
    except WeightsNotFoundError as error:
        logger.warning("No model loaded: %s", error)
        return ModelState(name=str(name), error=str(error))
    return ModelState(
        name=str(name),
        pipeline=pipeline,
        description=describe_pipeline(pipeline, str(name)),
        untrained=bool(pipeline.config.untrained),
    )


def preview_photo(model: ModelState, photo: Any, fit: Any) -> PIL.Image.Image | None:
    """The photo framed as the model will see it; None when the photo was removed."""
    if photo is None:
        return None
    fit = _choice(fit, "Framing", FIT_MODES)
    height, width = model.frame_size
    return frame_image(read_photo(photo), height, width, fit)


# cancelling ------------------------------------------------------------------------------------------------------


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


# output files ----------------------------------------------------------------------------------------------------


class OutputStore:
    """Folders for the videos of each job, removed after `max_age_seconds` so the disk does not fill.

    The age counts from a job's last file, and a job still running is never removed. Only
    folders this class names (`job-...`) are removed, so a folder holding other files is safe.
    """

    PREFIX = "job-"

    def __init__(self, root: str | os.PathLike, max_age_seconds: float = 3600, clock: Callable[[], float] = time.time):
        self.root = Path(root)
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._running: set[Path] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def new_job(self) -> Path:
        """A new, empty job folder, counted as running until `finished` is called."""
        self.sweep()
        job = self.root / f"{self.PREFIX}{int(self.clock())}-{uuid.uuid4().hex[:12]}"
        job.mkdir(parents=True)
        with self._lock:
            self._running.add(job)
        return job

    def finished(self, job: str | os.PathLike) -> None:
        with self._lock:
            self._running.discard(Path(job))

    def sweep(self) -> int:
        """Remove job folders older than the maximum age; the number removed."""
        if not self.root.is_dir():
            return 0
        now, removed = self.clock(), 0
        with self._lock:
            running = set(self._running)
        for job in self.root.glob(f"{self.PREFIX}*"):
            if job in running:
                continue
            try:
                age = now - job.stat().st_mtime
            except OSError:
                continue  # removed meanwhile
            if job.is_dir() and age > self.max_age_seconds:
                shutil.rmtree(job, ignore_errors=True)
                removed += 1
        return removed

    def start_sweeper(self, interval_seconds: float) -> None:
        """Sweep every `interval_seconds` in a daemon thread, also when nobody generates."""
        if self._sweeper is not None:
            return

        def run() -> None:
            while not self._stop.wait(interval_seconds):
                try:
                    self.sweep()
                except Exception:  # a sweep that fails must not end the sweeping
                    logger.exception("Cleaning up old videos failed")

        self._sweeper = threading.Thread(target=run, name="fashionflow-output-sweeper", daemon=True)
        self._sweeper.start()

    def stop_sweeper(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None


def default_output_dir() -> Path:
    # The system temp folder: Gradio serves files from there without extra allowed paths.
    return Path(tempfile.gettempdir()) / "fashionflow-app"


# out of memory ---------------------------------------------------------------------------------------------------

_MEMORY_ERROR = re.compile(
    r"out of memory|can't allocate memory|cannot allocate memory|not enough memory|failed to allocate", re.I
)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA / MPS / CPU allocation failures, whichever way they surface."""
    import torch

    if isinstance(error, (MemoryError, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))):
        return True
    return isinstance(error, RuntimeError) and bool(_MEMORY_ERROR.search(str(error)))


def out_of_memory_message(settings: GenerationSettings, device: str) -> str:
    where = "The GPU" if device.startswith(("cuda", "mps")) else "The computer"
    return (
        f"{where} ran out of memory making {settings.num_frames} frames, decoding {settings.decode_chunk_size} "
        "at a time. Open Advanced and choose fewer frames or a smaller decode chunk size, or try again "
        "when fewer videos are being made."
    )


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ZeroGPU ------------------------------------------------------------------------------------------------------------

# GPU seconds a ZeroGPU call reserves, from the settings. ZeroGPU stops a call that outlives its
# reservation, and long reservations wait longer for a GPU and need more of the visitor's quota,
# so the estimate is an upper bound that is not wildly high. Not yet measured on a ZeroGPU slice:
# the per frame-step cost assumes the published U-Net (17 s per 70-frame step on 2 CPU cores,
# benchmarks/results/unet_forward.json) runs at least 60 times faster in bfloat16 on a slice of an
# H200. Decode and export are per frame; export (MP4 + GIF) runs on the CPU inside the reservation.
# The overhead covers moving the weights onto the GPU and encoding the photo.
ZEROGPU_SECONDS_PER_FRAME_STEP = 0.004
ZEROGPU_DECODE_SECONDS_PER_FRAME = 0.03
ZEROGPU_EXPORT_SECONDS_PER_FRAME = 0.08
ZEROGPU_OVERHEAD_SECONDS = 15
ZEROGPU_MARGIN = 1.25
ZEROGPU_MIN_SECONDS = 30


def gpu_seconds_estimate(settings: GenerationSettings) -> int:
    """Seconds of GPU time to reserve for one generation with `settings` (for `spaces.GPU(duration=...)`)."""
    seconds = (
        ZEROGPU_OVERHEAD_SECONDS
        + settings.steps * settings.num_frames * ZEROGPU_SECONDS_PER_FRAME_STEP
        + settings.num_frames * ZEROGPU_DECODE_SECONDS_PER_FRAME
        + settings.output_frames * ZEROGPU_EXPORT_SECONDS_PER_FRAME
    )
    return max(ZEROGPU_MIN_SECONDS, math.ceil(seconds * ZEROGPU_MARGIN))


# generating ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationResult:
    mp4: Path
    gif: Path
    settings: GenerationSettings
    seconds: float  # wall time of the generation

    def summary_markdown(self) -> str:
        s = self.settings
        length = s.output_frames / s.fps
        loop = ", looping" if s.loop else ""
        return (
            f"Seed used: **{s.seed}** · {s.sampler}, {s.steps} steps · {s.output_frames} frames at {s.fps} fps "
            f"({length:.1f} s{loop}) · made in {format_seconds(self.seconds).removeprefix('about ')}"
        )


ProgressReport = Callable[[ProgressUpdate], None]


def run_generation(
    pipeline: Any,
    image: PIL.Image.Image,
    settings: GenerationSettings,
    job_dir: str | os.PathLike,
    token: CancelToken | None = None,
    report: ProgressReport | None = None,
    lock: threading.Lock | None = None,
) -> GenerationResult:
    """Make the video for `image`, write it as MP4 and GIF into `job_dir`, and return the paths.

    Holds `lock` while the pipeline runs, so that one generation at a time uses the device even
    when an abandoned (cancelled) run is still reaching its next step. Raises `GenerationCancelled`
    when `token` is cancelled (checked at every step, decode chunk and file) and
    `OutOfMemoryError` with advice when memory runs out; `job_dir` is removed on any failure.
    """
    import torch

    token = token or CancelToken()
    job_dir = Path(job_dir)
    say = report or (lambda update: None)
    tracker = GenerationProgress(settings.steps, settings.num_frames, export_files=2)

    def on_progress(stage: str, done: int, total: int) -> None:
        token.raise_if_cancelled()
        say(tracker.update(stage, done, total))

    if lock is not None and lock.locked():
        say(ProgressUpdate(0.0, "Waiting for the previous video to finish"))
    out_of_memory = False
    with lock if lock is not None else contextlib.nullcontext():
        try:
            token.raise_if_cancelled()
            started = time.monotonic()
            say(tracker.start())
            output = pipeline(
                image,
                num_frames=settings.num_frames,
                sampler=settings.sampler,
                num_inference_steps=settings.steps,
                fit=settings.fit,
                generator=torch.Generator().manual_seed(settings.seed),
                decode_chunk_size=settings.decode_chunk_size,
                progress=on_progress,
            )
            frames = output.frames[0]
            del output
            if settings.loop:
                frames = boomerang(frames)
            on_progress("export", 0, 2)
            stem = f"fashionflow-{settings.seed}"
            mp4 = export_video(frames, job_dir / f"{stem}.mp4", settings.fps)
            on_progress("export", 1, 2)
            gif = export_video(frames, job_dir / f"{stem}.gif", settings.fps)
            on_progress("export", 2, 2)
        except GenerationCancelled:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        except Exception as error:
            shutil.rmtree(job_dir, ignore_errors=True)
            if not is_out_of_memory(error):
                raise
            out_of_memory = True
        if out_of_memory:
            # Outside the except block: the caught error's traceback holds the tensors that filled
            # the memory, and a new exception raised inside it would keep them as its context.
            release_memory()
            device = str(getattr(pipeline, "_execution_device", "cpu"))
            raise OutOfMemoryError(out_of_memory_message(settings, device))
    return GenerationResult(mp4=mp4, gif=gif, settings=settings, seconds=time.monotonic() - started)


# launch options ----------------------------------------------------------------------------------------------------


def env_defaults(environ: Mapping[str, str]) -> dict[str, Any]:
    """Launch settings from environment variables (how Hugging Face Spaces configures an app).

    FASHIONFLOW_MODEL, FASHIONFLOW_HOST (or GRADIO_SERVER_NAME), FASHIONFLOW_PORT (or
    GRADIO_SERVER_PORT), FASHIONFLOW_SHARE, FASHIONFLOW_DEVICE, FASHIONFLOW_DTYPE,
    FASHIONFLOW_ATTENTION, FASHIONFLOW_CPU_OFFLOAD, FASHIONFLOW_QUEUE_SIZE,
    FASHIONFLOW_OUTPUT_DIR, FASHIONFLOW_OUTPUT_TTL (seconds). On Spaces (SPACE_ID set) the app
    listens on 0.0.0.0.
    """
    on_spaces = bool(environ.get("SPACE_ID"))
    host = (
        environ.get("FASHIONFLOW_HOST")
        or environ.get("GRADIO_SERVER_NAME")
        or ("0.0.0.0" if on_spaces else "127.0.0.1")
    )
    return {
        "model": environ.get("FASHIONFLOW_MODEL") or DEFAULT_MODEL,
        "host": host,
        "port": _env_int(environ, ("FASHIONFLOW_PORT", "GRADIO_SERVER_PORT"), 7860),
        "share": _env_bool(environ, "FASHIONFLOW_SHARE"),
        "device": environ.get("FASHIONFLOW_DEVICE") or None,
        "dtype": environ.get("FASHIONFLOW_DTYPE") or None,
        "attention": environ.get("FASHIONFLOW_ATTENTION") or "auto",
        "cpu_offload": _env_bool(environ, "FASHIONFLOW_CPU_OFFLOAD"),
        "queue_size": _env_int(environ, ("FASHIONFLOW_QUEUE_SIZE",), 16),
        "output_dir": environ.get("FASHIONFLOW_OUTPUT_DIR") or str(default_output_dir()),
        "output_ttl": _env_int(environ, ("FASHIONFLOW_OUTPUT_TTL",), 3600),
    }


def _env_int(environ: Mapping[str, str], names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = environ.get(name)
        if value:
            try:
                number = int(value)
            except ValueError:
                number = 0
            if number < 1:
                raise ValueError(f"{name} must be a positive whole number; got {value!r}.")
            return number
    return default


def _env_bool(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be true or false; got {value!r}.")
