"""Running one generation: the pipeline under the device lock, progress, cancelling, MP4 and GIF out."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PIL.Image

from ..base.memory import is_out_of_memory, release_memory
from ..progress import GenerationProgress, ProgressUpdate, StageTimings, format_seconds
from ..video import boomerang, export_video
from .cancel import CancelToken, stops_inside
from .errors import GenerationCancelled, OutOfMemoryError
from .live_preview import LatentSnapshot, Watcher
from .settings import FRAMES_AT_A_TIME, SAMPLER_CHOICES, GenerationSettings, count

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationResult:
    mp4: Path
    gif: Path
    settings: GenerationSettings
    seconds: float  # wall time of the generation
    timings: StageTimings | None = None  # per stage, for estimating the next ones
    untrained: bool = False  # made by an untrained (test) model: noise, and labelled so

    def summary_markdown(self) -> str:
        s = self.settings
        length = s.output_frames / s.fps
        loop = ", looping" if s.loop else ""
        clips = f", {s.num_clips} clips" if s.num_clips > 1 else ""
        preview = " · quick preview" if s.decoder == "tiny" else ""
        method = SAMPLER_CHOICES[s.sampler].short
        summary = (
            f"Seed used: **{s.seed}** · {method}, {count(s.steps, 'step')} · {s.output_frames} frames at {s.fps} fps "
            f"({length:.1f} s{clips}{loop}){preview} · made in {format_seconds(self.seconds).removeprefix('about ')}"
        )
        if self.untrained:
            summary = f"**{UNTRAINED_CAPTION}**\n\n{summary}"
        return summary


UNTRAINED_CAPTION = "Made by an untrained test model: this video is noise, not a real result."


ProgressReport = Callable[[ProgressUpdate], None]


def out_of_memory_message(settings: GenerationSettings, device: str) -> str:
    """What to change when a generation ran out of memory, with its own numbers."""
    where = "The GPU" if device.startswith(("cuda", "mps")) else "The computer"
    return (
        f"{where} ran out of memory making {settings.num_frames} frames, finishing {settings.decode_chunk_size} "
        f"at a time. Open Advanced and choose fewer frames or fewer “{FRAMES_AT_A_TIME}”, or try again "
        "when fewer videos are being made."
    )


def _step_watcher(pipeline: Any, settings: GenerationSettings, watch: Watcher | None) -> Callable | None:
    """The pipeline's `callback_on_step_end` that hands `watch` each step's latents (None: no watching).
    The map to colours is the model's, fitted once (at load, by `fit_latent_colours`, or else here)."""
    if watch is None:
        return None
    from ..latent_preview import latent_colours
    from ..pipeline import execution_device

    try:
        colours = latent_colours(pipeline.vae, execution_device(pipeline))
    except Exception:  # a video without a live preview, rather than no video
        logger.exception("Fitting the live preview's colours failed; making the video without it")
        return None

    steps = settings.num_clips * settings.steps  # a chained video's steps are counted over its clips

    def step_ended(pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
        watch(LatentSnapshot(tensors["latents"], index + 1, steps, colours))
        return {}  # the latents go on unchanged

    return step_ended


def run_generation(
    pipeline: Any,
    image: PIL.Image.Image,
    settings: GenerationSettings,
    job_dir: str | os.PathLike,
    token: CancelToken | None = None,
    report: ProgressReport | None = None,
    lock: threading.Lock | None = None,
    untrained: bool = False,
    watch: Watcher | None = None,
) -> GenerationResult:
    """Make the video for `image`, write it as MP4 and GIF into `job_dir`, and return the paths.

    Holds `lock` while the pipeline runs, so that one generation at a time uses the device even
    when an abandoned (cancelled) run is still reaching its next step. Raises `GenerationCancelled`
    when `token` is cancelled (checked before every block of the U-Net and the decoder, and at every
    step, decode chunk and file) and `OutOfMemoryError` with advice when memory runs out; `job_dir`
    is removed on any failure.
    `untrained` puts "untrained" in the file names and a caption in the summary, so that a shared
    video or link never passes noise off as a result. `watch`, when given, is handed the latents
    after every step (`LatentSnapshot`), for the page's live preview.
    """
    import torch

    token = token or CancelToken()
    job_dir = Path(job_dir)
    say = report or (lambda update: None)
    tracker = GenerationProgress(settings.steps, settings.video_frames, export_files=2, clips=settings.num_clips)

    def on_progress(stage: str, done: int, total: int) -> None:
        token.raise_if_cancelled()
        say(tracker.update(stage, done, total))

    if lock is not None and lock.locked():
        say(ProgressUpdate(0.0, "Waiting for the previous job to finish"))
    out_of_memory = False
    with lock if lock is not None else contextlib.nullcontext():
        try:
            token.raise_if_cancelled()
            started = time.monotonic()
            say(tracker.start())
            with stops_inside(_models_to_watch(pipeline, settings.decoder), token):
                output = pipeline(
                    image,
                    num_frames=settings.num_frames,
                    num_clips=settings.num_clips,
                    sampler=settings.sampler,
                    num_inference_steps=settings.steps,
                    fit=settings.fit,
                    generator=torch.Generator().manual_seed(settings.seed),
                    decode_chunk_size=settings.decode_chunk_size,
                    progress=on_progress,
                    decoder=settings.decoder,
                    callback_on_step_end=_step_watcher(pipeline, settings, watch),
                )
            frames = output.frames[0]
            del output
            if settings.loop:
                frames = boomerang(frames)
            on_progress("export", 0, 2)
            stem = f"fashionflow-untrained-{settings.seed}" if untrained else f"fashionflow-{settings.seed}"
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
            from ..pipeline import execution_device

            device = str(execution_device(pipeline))
            raise OutOfMemoryError(out_of_memory_message(settings, device))
    return GenerationResult(
        mp4=mp4,
        gif=gif,
        settings=settings,
        seconds=time.monotonic() - started,
        timings=tracker.timings(),
        untrained=untrained,
    )


def _models_to_watch(pipeline: Any, decoder: str) -> list:
    """The models whose blocks look for a cancel: the U-Net and the decoder, unless compiled (hooks
    would break their graphs, and compiled steps are short anyway)."""
    if getattr(pipeline, "compile_settings", None) is not None or not hasattr(pipeline, "unet"):
        return []
    return [pipeline.unet, pipeline.decoder_model(decoder)]
