"""Progress and time left for one generation, from the pipeline's `(stage, done, total)` reports.

The pipeline reports three stages: "denoise" (once per sampler step, counting the steps of all
clips of a chained video), "decode" (once per chunk of frames through the VAE, counting frames)
and "export" (the video files). `GenerationProgress` turns those
reports into one fraction for a progress bar and a sentence with the time left, with no
dependency on any user interface. The sentences are for shop staff, in plain words ("Making the
video: step 3 of 25"), not the stages' technical names.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

STAGES = ("denoise", "decode", "export")

# Cost of one unit of a stage relative to one denoising step of the same video. Used for the
# bar (which must move sensibly from the first report) and for the time left of stages that
# have not started yet; a stage's own measured rate replaces it once the stage runs. Decoding
# and writing scale with the frame count as a denoising step does, so the ratios carry over
# between video lengths. They are deliberately rough: only the order of magnitude matters.
DECODE_COST_PER_FRAME = 0.06
EXPORT_COST_PER_FILE = 0.5


@dataclass(frozen=True)
class ProgressUpdate:
    """What a progress display shows: `fraction` in [0, 1], a sentence, and seconds left when known."""

    fraction: float
    desc: str
    seconds_left: float | None = None


def format_seconds(seconds: float) -> str:
    """Time for people: "about 40 s", "about 3 min", "under a second"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {math.ceil(seconds)} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"about {round(minutes)} min"
    return f"about {minutes / 60:.1f} h"


@dataclass(frozen=True)
class StageTimings:
    """Measured seconds of one generation's stages, for estimating later ones (None: not measured).
    They add up to the generation's whole time: set-up + steps x step + frames x decode + export."""

    setup_seconds: float | None  # before the first step: preparing and encoding the photo
    step_seconds: float | None  # one denoising step of one clip (all its frames)
    decode_seconds_per_frame: float | None  # the decoder's first call included
    export_seconds: float | None  # from the last decoded frame to the last file written


@dataclass
class _StageClock:
    entered: float  # when the stage began: the previous report (the pipeline reports finished units)
    first_time: float
    first_done: int
    last_time: float = 0.0  # the stage's latest report
    # seconds per unit between consecutive reports after the first (a step's own time, when a report is a step)
    per_unit: list[float] = field(default_factory=list)


class GenerationProgress:
    """Overall fraction done and time left for a generation of `steps` steps per clip, `clips` clips and
    `num_frames` frames decoded (the whole video's).

    The fraction comes from a fixed cost model, so it only moves forward. The time left comes
    from measured seconds per unit: a stage's own rate once it has reported, otherwise the
    measured step time scaled by the stage's relative cost. Rates are taken between reports of
    the same stage, so set-up work before a stage's first unit (encoding the photo) does not
    inflate them for the rest of the run.
    """

    def __init__(
        self,
        steps: int,
        num_frames: int,
        export_files: int = 2,
        clock: Callable[[], float] = time.monotonic,
        clips: int = 1,
    ):
        if steps < 1 or num_frames < 1 or clips < 1 or export_files < 0:
            raise ValueError("steps, num_frames and clips must be positive, export_files not negative.")
        self.clock = clock
        self.clips = clips
        self.units = {"denoise": steps * clips, "decode": num_frames, "export": export_files}
        self.unit_cost = {"denoise": 1.0, "decode": DECODE_COST_PER_FRAME, "export": EXPORT_COST_PER_FILE}
        self.done = dict.fromkeys(STAGES, 0)
        self.clocks: dict[str, _StageClock] = {}
        self.started = self.last_report = clock()
        self._fraction = 0.0

    def start(self) -> ProgressUpdate:
        """The first report, before the pipeline has said anything: the clock starts now."""
        self.started = self.last_report = self.clock()
        return ProgressUpdate(0.0, "Preparing the photo")

    def update(self, stage: str, done: int, total: int) -> ProgressUpdate:
        """Record that `done` of `total` units of `stage` are finished; return what to show."""
        if stage not in STAGES:
            raise ValueError(f"Unknown stage {stage!r}; expected one of {STAGES}.")
        now = self.clock()
        for earlier in STAGES[: STAGES.index(stage)]:
            self.done[earlier] = self.units[earlier]  # a later stage reporting means the earlier ones ended
        if total > 0:
            self.units[stage] = total  # the pipeline's count wins (a batch decodes more frames)
        done = max(self.done[stage], min(done, self.units[stage]))
        if stage not in self.clocks:
            self.clocks[stage] = _StageClock(entered=self.last_report, first_time=now, first_done=done)
        elif done > self.done[stage]:
            clock = self.clocks[stage]
            clock.per_unit.append((now - clock.last_time) / (done - self.done[stage]))
        self.done[stage] = done
        self.clocks[stage].last_time = self.last_report = now

        seconds_left = self._seconds_left(stage)
        return ProgressUpdate(self.fraction, self._describe(stage, seconds_left), seconds_left)

    @property
    def fraction(self) -> float:
        total = sum(self.units[s] * self.unit_cost[s] for s in STAGES)
        done = sum(self.done[s] * self.unit_cost[s] for s in STAGES)
        # Never backwards, even when a stage's unit count turns out different from the plan.
        self._fraction = max(self._fraction, min(1.0, done / total) if total else 1.0)
        return self._fraction

    def seconds_per_unit(self, stage: str) -> float | None:
        """Measured seconds per unit of `stage`, or None before it has finished a unit."""
        clock = self.clocks.get(stage)
        if clock is None:
            return None
        done = self.done[stage]
        if done > clock.first_done:
            return max(0.0, self.last_report - clock.first_time) / (done - clock.first_done)
        if clock.first_done > 0:
            return max(0.0, clock.first_time - clock.entered) / clock.first_done
        return None

    def timings(self) -> StageTimings:
        """What this generation measured, per stage, so that the stages add up to its whole time:
        the set-up, one step, decoding per frame and the files, each from the end of the stage before.
        A step is the median of the steps after the first (the first one's report also closes the
        set-up); what the steps took beyond that (the first steps at a new video size run slower
        while the CPU libraries prepare their kernels) is a one-off cost, counted with the set-up."""
        step = setup = None
        denoise = self.clocks.get("denoise")
        if denoise is not None and denoise.per_unit:  # two reports: set-up and steps apart
            step = statistics.median(denoise.per_unit)
            setup = max(0.0, denoise.last_time - denoise.entered - step * self.done["denoise"])
        return StageTimings(
            setup_seconds=setup,
            step_seconds=step,
            decode_seconds_per_frame=self._stage_seconds("decode", per_unit=True),
            export_seconds=self._stage_seconds("export"),
        )

    def _stage_seconds(self, stage: str, per_unit: bool = False) -> float | None:
        """A finished stage's seconds from the end of the stage before (per unit: divided by its units)."""
        clock = self.clocks.get(stage)
        if clock is None or self.done[stage] < self.units[stage]:
            return None
        seconds = max(0.0, clock.last_time - clock.entered)
        return seconds / self.units[stage] if per_unit else seconds

    def _seconds_left(self, stage: str) -> float | None:
        step_seconds = self.seconds_per_unit("denoise")
        left = 0.0
        for s in STAGES[STAGES.index(stage) :]:
            remaining = self.units[s] - self.done[s]
            if remaining <= 0:
                continue
            rate = self.seconds_per_unit(s) if s == stage else None
            if rate is None:
                if step_seconds is None:
                    return None
                rate = step_seconds * self.unit_cost[s]
            left += remaining * rate
        return left

    def _describe(self, stage: str, seconds_left: float | None) -> str:
        done, total = self.done[stage], self.units[stage]
        if stage == "denoise" and self.clips > 1:
            per_clip = total // self.clips
            clip = min(self.clips, done // per_clip + 1)  # the clip being denoised (the last one when done)
            what = f"Clip {clip} of {self.clips} · making the video: step {done - (clip - 1) * per_clip} of {per_clip}"
        elif stage == "denoise":
            what = f"Making the video: step {done} of {total}"  # denoising
        elif stage == "decode":
            what = f"Finishing the frames: {done} of {total}"  # decoding the latents into pictures
        elif done < total:
            what = "Saving the MP4 and GIF"
        else:
            return "Done"
        if seconds_left is None:
            return f"{what} · estimating the time left"
        return f"{what} · {format_seconds(seconds_left)} left"
