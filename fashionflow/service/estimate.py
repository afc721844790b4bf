"""How long a generation will take on this server, from speeds it has measured.

A short calibration run when the model is loaded gives the first numbers; every finished
generation then refines them. The cost model is the pipeline's own: set-up (encoding the photo),
denoising (clips x steps x frames of a clip), decoding (frames of the video) and writing the files
(frames of the video, a loop's way back included).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import PIL.Image

from ..progress import StageTimings, format_seconds
from .settings import GenerationSettings

logger = logging.getLogger(__name__)

# Settings whose estimate exceeds this get a warning next to Generate.
LONG_RUN_SECONDS = 10 * 60
# How much a new measurement moves the learned speeds: the newest run counts most (the server's
# load changes), earlier ones smooth out the noise of a single run.
LEARNING_RATE = 0.5


@dataclass(frozen=True)
class Speeds:
    """Seconds per unit of work on one server. A denoising step costs a fixed part (the network's
    work that does not grow with the video) plus a part per frame."""

    setup_seconds: float  # preparing and encoding the photo
    step_seconds_fixed: float
    step_seconds_per_frame: float
    decode_seconds_per_frame: float
    export_seconds_per_frame: float  # both files, per frame of the written video

    def step_seconds(self, num_frames: int) -> float:
        return self.step_seconds_fixed + self.step_seconds_per_frame * num_frames

    def seconds_for(self, settings: GenerationSettings) -> float:
        return (
            self.setup_seconds
            + settings.num_clips * settings.steps * self.step_seconds(settings.num_frames)
            + settings.video_frames * self.decode_seconds_per_frame
            + settings.output_frames * self.export_seconds_per_frame
        )

    def updated(self, settings: GenerationSettings, timings: StageTimings) -> Speeds | None:
        """These speeds corrected by one finished run: its step time rescales the step cost (one run
        cannot tell the fixed part from the per-frame part); the other stages are taken as measured."""
        if timings.step_seconds is None or timings.decode_seconds_per_frame is None or timings.export_seconds is None:
            return None  # an unfinished run: nothing reliable to learn
        ratio = timings.step_seconds / max(self.step_seconds(settings.num_frames), 1e-9)
        return Speeds(
            setup_seconds=timings.setup_seconds,
            step_seconds_fixed=self.step_seconds_fixed * ratio,
            step_seconds_per_frame=self.step_seconds_per_frame * ratio,
            decode_seconds_per_frame=timings.decode_seconds_per_frame,
            export_seconds_per_frame=timings.export_seconds / settings.output_frames,
        )

    def blend(self, newer: Speeds, weight: float) -> Speeds:
        def mix(old: float, new: float) -> float:
            return (1 - weight) * old + weight * new

        return Speeds(
            mix(self.setup_seconds, newer.setup_seconds),
            mix(self.step_seconds_fixed, newer.step_seconds_fixed),
            mix(self.step_seconds_per_frame, newer.step_seconds_per_frame),
            mix(self.decode_seconds_per_frame, newer.decode_seconds_per_frame),
            mix(self.export_seconds_per_frame, newer.export_seconds_per_frame),
        )


@dataclass(frozen=True)
class Estimate:
    seconds: float
    measured: bool  # from this server's own runs, not a prior guess

    @property
    def long(self) -> bool:
        return self.seconds > LONG_RUN_SECONDS

    def describe(self) -> str:
        """ "About 40 s on this server" / "Roughly 2 min (not measured on this server yet)"."""
        time = format_seconds(self.seconds)
        if self.measured:
            return f"{time[0].upper()}{time[1:]} with these settings on this server."
        return f"Roughly {time.removeprefix('about ')} with these settings (not measured on this server yet)."


class SpeedBook:
    """The speeds this server has measured (thread-safe); `prior` stands in until the first measurement."""

    def __init__(self, prior: Speeds | None = None):
        self.prior = prior
        self._measured: Speeds | None = None
        self._lock = threading.Lock()

    @property
    def measured(self) -> Speeds | None:
        with self._lock:
            return self._measured

    def calibrated(self, speeds: Speeds) -> None:
        """Start from a calibration's measurements (replacing any earlier ones)."""
        with self._lock:
            self._measured = speeds

    def learn(self, settings: GenerationSettings, timings: StageTimings | None) -> None:
        """Refine the speeds with a finished run's timings."""
        if timings is None:
            return
        with self._lock:
            base = self._measured or self.prior or _all_per_frame(settings, timings)
            newer = base.updated(settings, timings) if base is not None else None
            if newer is None:
                return
            self._measured = newer if self._measured is None else self._measured.blend(newer, LEARNING_RATE)

    def estimate(self, settings: GenerationSettings) -> Estimate | None:
        measured = self.measured
        if measured is not None:
            return Estimate(measured.seconds_for(settings), measured=True)
        if self.prior is not None:
            return Estimate(self.prior.seconds_for(settings), measured=False)
        return None


def _all_per_frame(settings: GenerationSettings, timings: StageTimings) -> Speeds | None:
    """With nothing to go by, a first run's step time is taken as all per-frame work."""
    if timings.step_seconds is None:
        return None
    return Speeds(0.0, 0.0, timings.step_seconds / settings.num_frames, 0.0, 0.0)


def measure_speeds(setup: Any, speeds: SpeedBook, lock: threading.Lock | None = None, zero_gpu: bool = False) -> None:
    """Give the time estimates their first numbers: a short calibration run (in the background) once
    `setup` (a ModelSetup) has its model; on ZeroGPU, where there is no GPU outside a call to measure
    with, a rough prior (`zerogpu.py`) until the first video."""
    from .zerogpu import (
        ZEROGPU_DECODE_SECONDS_PER_FRAME,
        ZEROGPU_EXPORT_SECONDS_PER_FRAME,
        ZEROGPU_OVERHEAD_SECONDS,
        ZEROGPU_SECONDS_PER_FRAME_STEP,
    )

    if zero_gpu:
        speeds.prior = Speeds(
            ZEROGPU_OVERHEAD_SECONDS,
            0.0,
            ZEROGPU_SECONDS_PER_FRAME_STEP,
            ZEROGPU_DECODE_SECONDS_PER_FRAME,
            ZEROGPU_EXPORT_SECONDS_PER_FRAME,
        )
        return

    def measure(model) -> None:
        try:
            calibrate(model.pipeline, speeds, lock)
        except Exception:  # no estimate until the first video: not a reason to stop the app
            logger.exception("Measuring the server's speed failed")

    setup.when_ready(
        lambda model: threading.Thread(
            target=measure, args=(model,), name="fashionflow-calibration", daemon=True
        ).start()
    )


def calibrate(pipeline: Any, speeds: SpeedBook, lock: threading.Lock | None = None) -> Speeds:
    """Measure this server, so that the first visitor already gets an estimate: two denoising
    steps at the usual video length (not decoded: decoding 70 frames is the slow part on a CPU),
    and a 2-frame video made in full for the decoder, the files, and the step cost of a short
    video, after an unmeasured warm-up. Runs under the device `lock` like any generation, on a
    plain grey photo."""
    from ..pipeline import DEFAULT_NUM_FRAMES
    from ..progress import GenerationProgress
    from .generate import run_generation

    height, width = pipeline.frame_size
    photo = PIL.Image.new("RGB", (width, height), "gray")
    long_frames, short_frames = DEFAULT_NUM_FRAMES, getattr(pipeline.unet, "frame_multiple", 2)
    tracker = GenerationProgress(steps=2, num_frames=long_frames)
    with lock if lock is not None else contextlib.nullcontext():
        # A first call pays for one-off work (memory pools, kernel selection): not counted.
        pipeline(photo, num_frames=short_frames, num_inference_steps=1, output_type="latent")
        tracker.start()
        pipeline(photo, num_frames=long_frames, num_inference_steps=2, output_type="latent", progress=tracker.update)
    long = tracker.timings()
    short_settings = GenerationSettings(seed=0, steps=2, num_frames=short_frames, decode_chunk_size=short_frames)
    with tempfile.TemporaryDirectory(prefix="fashionflow-calibration-") as folder:
        short = run_generation(pipeline, photo, short_settings, folder, lock=lock).timings
    # The step time at two lengths gives its fixed and per-frame parts.
    per_frame = max(0.0, (long.step_seconds - short.step_seconds) / (long_frames - short_frames))
    measured = Speeds(
        setup_seconds=long.setup_seconds,
        step_seconds_fixed=max(0.0, long.step_seconds - per_frame * long_frames),
        step_seconds_per_frame=per_frame,
        decode_seconds_per_frame=short.decode_seconds_per_frame or 0.0,
        export_seconds_per_frame=(short.export_seconds or 0.0) / short_settings.output_frames,
    )
    speeds.calibrated(measured)
    logger.info("Measured this server: %s", measured)
    return measured
