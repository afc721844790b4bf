"""The settings of `evaluate` (the metrics) and of the paper's test protocol (generating the videos
first): the library's defaults are the command line's, and each setting's flag and check come from
its field (`base.options`). Light: `--help` reads them without torch."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import seeds
from ..base.options import option
from ..defaults import (
    DEFAULT_DECODE_CHUNK_SIZE,
    DEFAULT_FIT,
    DEFAULT_FPS,
    DEFAULT_SAMPLER,
    FIT_MODES,
    MAX_FPS,
    MIN_FPS,
    NUM_TRAIN_TIMESTEPS,
    SAMPLER_NAMES,
)
from ..hub import DEFAULT_CACHE
from .registry import DEFAULT_CLIP_FRAMES, GENERATED_FORMATS, MAX_CLIPS


@dataclass(frozen=True)
class EvaluationSettings:
    """How the metrics are computed (StyleGAN-V's protocol unless changed)."""

    frames: int = option(DEFAULT_CLIP_FRAMES, "FVD clip length (default: {default})", low=1)
    max_clips: int = option(MAX_CLIPS, "clips per side at most (default: {default})", low=1)
    clip_seed: int = option(
        0, "seeds the start frame of each real clip (default: {default})", low=seeds.MIN_SEED, high=seeds.MAX_SEED
    )
    batch_size: int = option(8, "clips per detector call (default: {default})", low=1)
    num_workers: int = option(
        0, "processes reading videos besides this one (default: {default})", flag="--workers", low=0
    )
    fit: str = option(
        DEFAULT_FIT,
        "how stills and real frames are fitted to the model's frame (default: {default})",
        choices=FIT_MODES,
    )
    device: str | None = option(None, "cuda, cpu, ... (default: the best one present)")
    cache_dir: str | None = option(
        None, f"detector downloads and real-video statistics (default: {DEFAULT_CACHE})", metavar="DIR"
    )
    cache_real_statistics: bool = option(
        True,
        "recompute the real videos' FVD statistics instead of reusing those of an earlier run on the same clips",
        off_flag="--no-statistics-cache",
    )


@dataclass(frozen=True)
class ProtocolSettings:
    """How the test protocol generates one video per test video (`generate_test_videos`)."""

    sampler: str = option(DEFAULT_SAMPLER, "default: {default}", choices=SAMPLER_NAMES)
    steps: int | None = option(None, "denoising steps (default: the sampler's)", low=1, high=NUM_TRAIN_TIMESTEPS)
    seed: int = option(
        0,
        "base seed; each video's seed comes from it and the video's name (default: {default})",
        low=seeds.MIN_SEED,
        high=seeds.MAX_SEED,
    )
    fit: str = option(DEFAULT_FIT, "how each still is fitted (the evaluation's --fit)", choices=FIT_MODES, cli=False)
    video_frames: int | None = option(None, "frames per generated video (default: the test video's length)", low=1)
    decode_chunk_size: int = option(DEFAULT_DECODE_CHUNK_SIZE, "frames per VAE decode call (default: {default})", low=1)
    output_format: str = option(
        "frames",
        "frames: PNG folders, lossless (default); mp4: H.264",
        flag="--generated-format",
        choices=GENERATED_FORMATS,
    )
    fps: int = option(DEFAULT_FPS, "frame rate of mp4 output", low=MIN_FPS, high=MAX_FPS, cli=False)
    overwrite: bool = option(False, "remake videos that already exist")
