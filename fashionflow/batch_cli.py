"""`python -m fashionflow generate`: a video from a photo, or one per photo of a folder or list (`batch.py`).

The flags are the fields of `GenerateSettings`; nothing heavy (torch, diffusers) is imported until
a model loads, so that `--help` and mistakes in the command answer at once.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .base import seeds
from .base.options import add_subcommand, check, from_arguments, option
from .defaults import (
    DECODERS,
    DEFAULT_FIT,
    DEFAULT_FPS,
    DEFAULT_NUM_FRAMES,
    DEFAULT_SAMPLER,
    FIT_MODES,
    MAX_FPS,
    MIN_FPS,
    NUM_TRAIN_TIMESTEPS,
    SAMPLER_NAMES,
    TINY_RANDOM,
    VIDEO_FORMATS,
    ModelSettings,
)


@dataclass(frozen=True, kw_only=True)
class GenerateSettings(ModelSettings):
    """Make a video of the person in PHOTO. With a folder of photos, or a list file (.txt, one photo path a
    line, relative to the list's folder), make one video per photo into the output folder, skipping photos
    whose video already exists, and record each photo in OUTPUT/manifest.jsonl. Under `accelerate launch`
    (or torchrun) the photos are shared among all processes."""

    photo: Path = option(help="a photo, a folder of photos, or a .txt list of photos", positional=True)
    output: Path = option(help="video file (.mp4/.gif), or a folder for several photos", short="-o")
    sampler: str = option(DEFAULT_SAMPLER, "default: {default}", choices=SAMPLER_NAMES)
    steps: int | None = option(
        None,
        "denoising steps (default: 25 for dpm++/unipc, 50 for ddim, 1000 for ddpm)",
        low=1,
        high=NUM_TRAIN_TIMESTEPS,
    )
    seed: int | None = option(
        None,
        "random seed (one photo: default a random one, printed; several: the base seed, default 0, from which "
        "each photo's seed derives with its name, so that reruns make the same videos)",
        low=seeds.MIN_SEED,
        high=seeds.MAX_SEED,
    )
    frames: int = option(DEFAULT_NUM_FRAMES, "even number of frames per clip (default: {default})", low=2, even=True)
    clips: int = option(
        1,
        "clips chained into one longer video, each starting where the one before ends: "
        "clips x (frames - 1) + 1 frames (default: {default})",
        low=1,
    )
    fit: str = option(DEFAULT_FIT, "how the photo fills the frame (default: {default})", choices=FIT_MODES)
    format: str | None = option(None, "video format for a batch (default: mp4)", choices=VIDEO_FORMATS)
    fps: int = option(DEFAULT_FPS, "frames per second of the video (default: {default})", low=MIN_FPS, high=MAX_FPS)
    loop: bool = option(False, "play forward then backward, for a seamless loop")
    decode_chunk_size: int | None = option(
        None, "frames per decoder call (default: chosen from the device and its free memory)", low=1
    )
    overwrite: bool = option(False, "in a batch, also redo photos that have a video")
    decoder: str = option(
        "full",
        "full: the VAE's decoder, for final videos (default); tiny: TAESD, a quick preview decoded ~8x faster",
        choices=DECODERS,
    )
    compile: bool = option(
        False, "torch.compile the U-Net and decoders (GPU; the first video of each size pays the compilation)"
    )


def add_command(commands) -> None:
    help = "make a video from a photo (or from every photo in a folder or list)"
    add_subcommand(commands, "generate", run, GenerateSettings, help=help, check_on_parse=True)


def run(args: argparse.Namespace) -> int:
    return generate(from_arguments(GenerateSettings, args))


def generate(settings: GenerateSettings) -> int:
    """Make the videos `settings` asks for; the exit status (0: every photo has its video)."""
    from .base.processes import process_device, process_state
    from .batch import LIST_SUFFIX, Job, Manifest, find_photos, plan_jobs, record_earlier_videos, run_jobs, say_line
    from .schedulers import default_steps

    check(settings)
    photo, output = settings.photo, settings.output
    if not photo.exists():
        raise FileNotFoundError(f"No photo, folder or list at {photo}.")
    several = photo.is_dir() or photo.suffix.lower() == LIST_SUFFIX
    output_is_video = output.suffix.lower().lstrip(".") in VIDEO_FORMATS
    suffixes = " or ".join(f".{f}" for f in VIDEO_FORMATS)
    if several and output_is_video:
        raise ValueError(f"{photo} holds several photos: give an output folder, not a file ({output}).")
    if not several and not output_is_video and (output.suffix or output.is_file()):
        raise ValueError(f"The output must end in {suffixes}, or be a folder; got {output}.")
    _check_model_name(settings.model)
    recorded = {
        "model": settings.model,
        "sampler": settings.sampler,
        "steps": settings.steps or default_steps(settings.sampler),
        "frames": settings.frames,
        "clips": settings.clips,
        "fit": settings.fit,
        "fps": settings.fps,
        "loop": settings.loop,
        "decode_chunk_size": settings.decode_chunk_size,
        "decoder": settings.decoder,
    }
    video_format = settings.format or VIDEO_FORMATS[0]

    if not several:  # one photo: its video, rewritten if it exists; no manifest
        seed = settings.seed if settings.seed is not None else seeds.random_seed()
        video = output if output_is_video else output / f"{photo.stem}.{video_format}"
        print(f"Seed: {seed}")
        job = Job(photo, photo.name, video, seed)
        outcome = run_jobs([job], lambda: _generator(settings, bars=True), settings=recorded, overwrite=True)
        return 1 if outcome.failed else 0

    state = process_state(settings.device)
    mark = f"[{state.process_index + 1}/{state.num_processes}] " if state.num_processes > 1 else ""
    photos, ignored = find_photos(photo)
    base_seed = settings.seed if settings.seed is not None else 0
    jobs = plan_jobs(photos, output, video_format, base_seed)
    if state.is_main_process:
        for path, why in ignored:
            print(f"skipped: {path.name}: {why}")
        if not jobs:
            raise FileNotFoundError(f"No photos in {photo}.")
        print(f"{len(jobs)} photo(s), base seed {base_seed}" + (f", {state.num_processes} processes" if mark else ""))
    if not jobs:
        return 2
    output.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(output, state.process_index)
    # Every process splits the same full, sorted list, whatever is already done: a photo belongs to
    # exactly one process of a run, however far an earlier run got.
    with state.split_between_processes(jobs) as mine:
        outcome = run_jobs(
            mine,
            lambda: _generator(settings, bars=not mark, device=process_device(state, settings.device)),
            settings=recorded,
            overwrite=settings.overwrite,
            manifest=manifest,
            rank=state.process_index,
            say=lambda line, failure: say_line(mark + line, failure),
        )
    state.wait_for_everyone()
    if not state.is_main_process:
        return 1 if outcome.failed else 0
    records = manifest.merge()
    record_earlier_videos(manifest, jobs, records, recorded)
    records = manifest.merge()
    made = sum(job.video.exists() for job in jobs)
    failed = len(jobs) - made
    print(
        f"Done: {made} of {len(jobs)} photo(s) have their video in {output}"
        + (f"; {failed} failed (reasons in {manifest.path})." if failed else ".")
    )
    return 1 if failed else 0


def _generator(settings: GenerateSettings, bars: bool, device: str | None = None):
    """Load the model once; return the function that makes one job's video."""
    import torch

    from .loading import describe_pipeline, load_pipeline_as

    pipeline = load_pipeline_as(settings, device, compile=settings.compile)
    multiple = pipeline.unet.frame_multiple
    if settings.frames % multiple:
        raise ValueError(f"--frames must be a multiple of {multiple} for this model; got {settings.frames}.")
    pipeline.decoder_model(settings.decoder)  # --decoder tiny on a model without one: say so before any photo
    pipeline.set_progress_bar_config(disable=True)  # the stage bars below replace it
    print(f"Model: {describe_pipeline(pipeline, settings.model)}")
    if settings.model == TINY_RANDOM:
        print("Note: tiny-random is an untrained model; its videos are noise. Use it to try the software.")

    def generate(job) -> None:
        with _StageBars(enabled=bars) as stage_bars:
            result = pipeline(
                job.photo,
                num_frames=settings.frames,
                num_clips=settings.clips,
                sampler=settings.sampler,
                num_inference_steps=settings.steps,
                fit=settings.fit,
                generator=torch.Generator().manual_seed(job.seed),
                decode_chunk_size=settings.decode_chunk_size,
                output_type="latent",  # nothing returned but the file: its frames go to it as they are decoded
                output_path=job.video,
                fps=settings.fps,
                loop=settings.loop,
                progress=stage_bars.update,
                decoder=settings.decoder,
            )
        if result.compile_seconds:
            print(f"  compiled for this video size in {result.compile_seconds:.1f} s (once per size)")

    return generate


def _check_model_name(model: str) -> None:
    """Refuse a --model that names nothing, before anything loads."""
    from .loading import WeightsNotFoundError, looks_like_hub_id, missing_model_message

    if model != TINY_RANDOM and not Path(model).exists() and not looks_like_hub_id(model):
        raise WeightsNotFoundError(missing_model_message(model))


class _StageBars:
    """One tqdm bar per pipeline stage (denoise, decode, export); none when not `enabled`."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def __enter__(self):
        self.bars = {}
        return self

    def update(self, stage: str, done: int, total: int) -> None:
        from tqdm.auto import tqdm

        if not self.enabled:
            return
        if stage not in self.bars:
            self.bars[stage] = tqdm(
                total=total, desc=f"  {stage}", unit="step" if stage == "denoise" else "frame", leave=False
            )
        bar = self.bars[stage]
        bar.update(done - bar.n)

    def __exit__(self, *exc):
        for bar in self.bars.values():
            bar.close()


__all__ = ["GenerateSettings", "add_command", "generate", "run"]
