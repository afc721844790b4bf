"""How long a generation will take on this server, fitted stage by stage to the runs it has made.

Every finished generation measures its stages (`progress.StageTimings`, which add up to its whole
time). Each stage costs a number of units, and a unit costs a constant part plus a part that grows:

    set-up      1 x a constant                                  reading and encoding the photo
    denoising   clips x steps x (a + b x frames of a clip)      the U-Net on one clip, once a step
    decoding    frames x (c + d / frames at once), per decoder   each frame of the video, plus each call's overhead
    files       1 x (e + f x frames written)                    starting the encoders, then each frame

The coefficients are fitted to the server's recent runs (the start-up calibration's included) by
least squares on relative errors. Newer runs count more, because the server's load changes; a run
that disagrees with the others (a moment of contention) is weighted down with Tukey's biweight, so
that one noisy run barely moves an estimate. Coefficients are never negative, and when the runs
cannot tell the two parts of a stage apart (all of one length) one part stands for both.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import PIL.Image
import PIL.ImageChops

from ..progress import StageTimings, format_seconds
from .settings import GenerationSettings

logger = logging.getLogger(__name__)

# Settings whose estimate exceeds this get a warning next to Generate.
LONG_RUN_SECONDS = 10 * 60
# The runs the fit looks at, and how fast older ones lose weight: a run this many runs old counts half.
RECENT_RUNS = 30
HALF_LIFE_RUNS = 5
# Tukey's biweight: residuals beyond this many robust scales get no weight. The scale is never taken
# below MIN_SCALE (relative error), so that runs which agree closely do not make ordinary noise an outlier.
BIWEIGHT_C = 4.685
MIN_SCALE = 0.1
ITERATIONS = 10
# Frames written by the calibration's measurement of the files, beside its 2-frame video: two lengths
# tell starting the encoders from writing each frame.
CALIBRATION_EXPORT_FRAMES = 16

Features = tuple[float, float]  # a unit's constant part (1) and the part that grows with the settings


@dataclass(frozen=True)
class StageWork:
    """One stage of a generation: how many units it costs, and the features of one unit."""

    units: float
    features: Features
    fold: int  # the feature that stands for both when the runs cannot tell them apart


def stage_work(settings: GenerationSettings) -> dict[str, StageWork]:
    """The stages of a generation with `settings`, by name (decoding is named by its decoder)."""
    at_once = min(settings.decode_chunk_size, settings.num_frames)  # a call decodes frames of one clip
    return {
        "setup": StageWork(1, (1.0, 0.0), fold=0),
        "denoise": StageWork(settings.num_clips * settings.steps, (1.0, settings.num_frames), fold=1),
        f"decode-{settings.decoder}": StageWork(settings.video_frames, (1.0, 1.0 / at_once), fold=0),
        "export": StageWork(1, (1.0, settings.output_frames), fold=1),
    }


def measured_units(settings: GenerationSettings, timings: StageTimings) -> dict[str, float]:
    """What one unit of each stage cost in a finished run (the stages it measured)."""
    seconds = {
        "setup": timings.setup_seconds,
        "denoise": timings.step_seconds,
        f"decode-{settings.decoder}": timings.decode_seconds_per_frame,
        "export": timings.export_seconds,
    }
    return {stage: value for stage, value in seconds.items() if value is not None and math.isfinite(value)}


@dataclass(frozen=True)
class Speeds:
    """A unit's cost per stage on one server: (constant seconds, seconds per growing unit)."""

    stages: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def seconds_for(self, settings: GenerationSettings) -> float | None:
        """The whole generation's seconds; None when a stage it needs has not been measured. The tiny
        decoder, until measured, counts as the full one (an estimate too long rather than too short)."""
        total = 0.0
        for stage, work in stage_work(settings).items():
            coefficients = self.stages.get(stage)
            if coefficients is None and stage == "decode-tiny":
                coefficients = self.stages.get("decode-full")
            if coefficients is None:
                return None
            total += work.units * (coefficients[0] * work.features[0] + coefficients[1] * work.features[1])
        return total


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


@dataclass(frozen=True)
class Observation:
    """One stage's unit cost in one run."""

    stage: str
    features: Features
    fold: int
    seconds: float


class SpeedBook:
    """The server's recent runs and the speeds fitted to them (thread-safe); `prior` stands in
    until the runs have measured every stage."""

    def __init__(self, prior: Speeds | None = None, recent_runs: int = RECENT_RUNS):
        self.prior = prior
        self._runs: deque[list[Observation]] = deque(maxlen=recent_runs)
        self._fitted: Speeds | None = None
        self._lock = threading.Lock()

    @property
    def measured(self) -> Speeds | None:
        """The fitted speeds, once every stage of a usual generation has been measured."""
        with self._lock:
            fitted = self._fitted
        if fitted is None or fitted.seconds_for(GenerationSettings(seed=0)) is None:
            return None
        return fitted

    def learn(self, settings: GenerationSettings, timings: StageTimings | None) -> None:
        """Add a finished run's timings (stages it did not finish teach nothing) and fit again."""
        if timings is None:
            return
        work = stage_work(settings)
        run = [
            Observation(stage, work[stage].features, work[stage].fold, seconds)
            for stage, seconds in measured_units(settings, timings).items()
        ]
        if not run:
            return
        with self._lock:
            self._runs.append(run)
            self._fitted = fit_speeds(self._runs)

    def estimate(self, settings: GenerationSettings) -> Estimate | None:
        measured = self.measured
        if measured is not None:
            seconds = measured.seconds_for(settings)
            if seconds is not None:
                return Estimate(seconds, measured=True)
        if self.prior is not None:
            seconds = self.prior.seconds_for(settings)
            if seconds is not None:
                return Estimate(seconds, measured=False)
        return None


def fit_speeds(runs: Iterable[list[Observation]]) -> Speeds:
    """Each stage's coefficients fitted to `runs` (oldest first): robust, relative, newer runs weigh more."""
    runs = list(runs)
    by_stage: dict[str, list[tuple[Observation, float]]] = {}
    for age, run in enumerate(reversed(runs)):
        recency = 0.5 ** (age / HALF_LIFE_RUNS)
        for observation in run:
            by_stage.setdefault(observation.stage, []).append((observation, recency))
    return Speeds({stage: fit_stage(seen) for stage, seen in by_stage.items()})


def fit_stage(seen: list[tuple[Observation, float]]) -> tuple[float, float]:
    """Non-negative (constant, growing) coefficients for one stage's observations, each with its
    weight: iteratively reweighted least squares on relative errors with Tukey's biweight."""
    rows = [(o.features, max(o.seconds, 1e-6)) for o, _ in seen]
    recency = [weight for _, weight in seen]
    growing = {round(features[1], 9) for features, _ in rows}
    fold = seen[0][0].fold
    columns = (0, 1) if len(growing) > 1 else (fold,)
    # Relative errors: each row divided by its own seconds, the target becomes 1.
    scaled = [[features[c] / seconds for c in columns] for features, seconds in rows]
    # Start from the newest runs that make up half the weight: when the server's speed has changed,
    # the fit then settles on the new speed, and treats the older runs as the ones that disagree.
    newest, total, weights = 0.0, sum(recency), [0.0] * len(rows)
    for i in sorted(range(len(rows)), key=lambda i: -recency[i]):
        weights[i] = recency[i]
        newest += recency[i]
        if newest >= total / 2 and _least_squares(scaled, weights):
            break
    coefficients = _nonnegative_least_squares(scaled, weights)
    for _ in range(ITERATIONS):
        residuals = [sum(x * c for x, c in zip(row, coefficients)) - 1.0 for row in scaled]
        scale = max(1.4826 * _weighted_median([abs(r) for r in residuals], recency), MIN_SCALE)
        weights = [w * _biweight(r / (BIWEIGHT_C * scale)) for r, w in zip(residuals, recency)]
        if not any(weights):  # every run disagrees with every other: keep the plain fit
            break
        coefficients = _nonnegative_least_squares(scaled, weights)
    result = [0.0, 0.0]
    for column, value in zip(columns, coefficients):
        result[column] = value
    return result[0], result[1]


def _biweight(u: float) -> float:
    return (1 - u * u) ** 2 if abs(u) < 1 else 0.0


def _weighted_median(values: list[float], weights: list[float]) -> float:
    pairs = sorted(zip(values, weights))
    half, running = sum(weights) / 2, 0.0
    for value, weight in pairs:
        running += weight
        if running >= half:
            return value
    return pairs[-1][0] if pairs else 0.0


def _nonnegative_least_squares(rows: list[list[float]], weights: list[float]) -> list[float]:
    """min sum w (row . c - 1)^2 over c >= 0, for one or two columns (all candidate supports tried)."""
    width = len(rows[0])
    best, best_loss = [0.0] * width, math.inf
    supports = [(0,), (1,), (0, 1)] if width == 2 else [(0,)]
    for support in supports:
        solution = _least_squares([[row[c] for c in support] for row in rows], weights)
        if solution is None or any(value < 0 for value in solution):
            continue
        full = [0.0] * width
        for column, value in zip(support, solution):
            full[column] = value
        loss = sum(w * (sum(x * c for x, c in zip(row, full)) - 1.0) ** 2 for row, w in zip(rows, weights))
        if loss < best_loss - 1e-12:
            best, best_loss = full, loss
    return best


def _least_squares(rows: list[list[float]], weights: list[float]) -> list[float] | None:
    """Weighted least squares towards 1 through the normal equations (one or two unknowns)."""
    if len(rows[0]) == 1:
        a = sum(w * row[0] ** 2 for row, w in zip(rows, weights))
        b = sum(w * row[0] for row, w in zip(rows, weights))
        return [b / a] if a > 0 else None
    a11 = sum(w * r[0] * r[0] for r, w in zip(rows, weights))
    a12 = sum(w * r[0] * r[1] for r, w in zip(rows, weights))
    a22 = sum(w * r[1] * r[1] for r, w in zip(rows, weights))
    b1 = sum(w * r[0] for r, w in zip(rows, weights))
    b2 = sum(w * r[1] for r, w in zip(rows, weights))
    determinant = a11 * a22 - a12 * a12
    if determinant <= 1e-12 * max(a11 * a22, 1e-300):
        return None  # the two parts cannot be told apart by these rows
    return [(b1 * a22 - b2 * a12) / determinant, (a11 * b2 - a12 * b1) / determinant]


def measure_speeds(setup: Any, speeds: SpeedBook, lock: threading.Lock | None = None, zero_gpu: bool = False) -> None:
    """Give the time estimates their first numbers: a short calibration run (in the background) once
    `setup` (a ModelSetup) has its model; on ZeroGPU, where there is no GPU outside a call to measure
    with, a rough prior (`zerogpu.py`) until the first video."""
    if zero_gpu:
        speeds.prior = zero_gpu_prior()
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


def zero_gpu_prior() -> Speeds:
    """ZeroGPU's rough figures (`zerogpu.py`) as speeds, labelled "not measured" until the first video."""
    from . import zerogpu

    return Speeds(
        {
            "setup": (zerogpu.ZEROGPU_OVERHEAD_SECONDS, 0.0),
            "denoise": (0.0, zerogpu.ZEROGPU_SECONDS_PER_FRAME_STEP),
            "decode-full": (zerogpu.ZEROGPU_DECODE_SECONDS_PER_FRAME, 0.0),
            "export": (0.0, zerogpu.ZEROGPU_EXPORT_SECONDS_PER_FRAME),
        }
    )


def calibrate(pipeline: Any, speeds: SpeedBook, lock: threading.Lock | None = None) -> Speeds | None:
    """Measure this server, so that the first visitor already gets an estimate, after an unmeasured
    warm-up: two denoising steps at the usual video length (not decoded: decoding 70 frames is the
    slow part on a CPU); a 2-frame video made in full (set-up, the step cost of a short video, the
    decoders, the files); and the files of a longer video. Runs under the device `lock` like any
    generation, on a plain grey photo."""
    from ..pipeline import DEFAULT_NUM_FRAMES
    from ..progress import GenerationProgress
    from ..video import export_video
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
    speeds.learn(GenerationSettings(seed=0, steps=2, num_frames=long_frames), tracker.timings())
    at_once = pipeline.decode_chunk_size_for("full", short_frames)
    decoders = getattr(pipeline, "decoders", ("full",))
    with tempfile.TemporaryDirectory(prefix="fashionflow-calibration-") as folder:
        for decoder in decoders:
            short = GenerationSettings(
                seed=0, steps=2, num_frames=short_frames, decode_chunk_size=at_once, decoder=decoder
            )
            speeds.learn(short, run_generation(pipeline, photo, short, Path(folder) / decoder, lock=lock).timings)
        # The files alone at a second length (no device needed): encoders' start-up apart from each frame.
        files = GenerationSettings(seed=0, num_frames=CALIBRATION_EXPORT_FRAMES)
        gradient = PIL.Image.linear_gradient("L").resize((width, height)).convert("RGB")
        frames = [PIL.ImageChops.offset(gradient, 0, 3 * i) for i in range(files.num_frames)]  # all different
        started = time.monotonic()
        for suffix in (".mp4", ".gif"):
            export_video(frames, Path(folder) / f"files{suffix}", files.fps)
        speeds.learn(files, StageTimings(None, None, None, export_seconds=time.monotonic() - started))
    measured = speeds.measured
    logger.info("Measured this server: %s", measured)
    return measured
