"""The settings of `prepare` (`PrepareConfig`) and `train` (`TrainConfig`), their choices and defaults.

Each field carries its flag's help and its rule (`base.options`): the command line's flags and the
checks `train` runs are made from them, so the library's defaults are the command line's. Nothing
heavy is imported here (no torch, no accelerate), so that `python -m fashionflow --help` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..base import seeds
from ..base.options import option
from ..defaults import DEFAULT_MODEL, DEFAULT_NUM_FRAMES, DEFAULT_SAMPLER, FIT_MODES, NUM_TRAIN_TIMESTEPS, SAMPLER_NAMES
from ..defaults import PREDICTION_TYPES as PREDICTION_TYPES  # "epsilon" (the noise) or "v_prediction" (the velocity)

# prepare
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi")
DEFAULT_FRAMES = DEFAULT_NUM_FRAMES  # the paper's clip length, the published model's
DEFAULT_PREPARE_FIT = "pad"  # generation's default: training sees frames fitted the way users' photos will be

# train
LOSS_REDUCTIONS = ("mean", "sum")
INIT_CHOICES = ("model", "scratch")
MIXED_PRECISION = ("no", "bf16", "fp16")
LR_SCHEDULES = ("constant", "linear", "cosine")
TRACKERS = ("tensorboard",)


def _seed(help: str, default: int = 0):
    return option(default, help, low=seeds.MIN_SEED, high=seeds.MAX_SEED)


@dataclass(frozen=True, kw_only=True)
class PrepareConfig:
    """Take clips of consecutive frames from every video under VIDEOS, fit them to the model's frame size and
    encode them with its VAE into DATA (safetensors shards and an index). Run it again to continue an
    interrupted preparation; under `accelerate launch` the videos are split between processes.

    (`data.prepare_dataset` takes these settings as its arguments.)"""

    videos: Path = option(help=f"folder searched recursively for videos ({', '.join(VIDEO_SUFFIXES)})", positional=True)
    output: Path = option(help="folder for the prepared data (DATA)", short="-o")
    model: str = option(DEFAULT_MODEL, "pipeline whose VAE and frame size to use (default: {default})")
    frames: int = option(DEFAULT_FRAMES, "frames per clip (default: {default}, as the paper)", low=1)
    clips_per_video: int = option(
        1, "clips taken from each video, at random starts in equal stretches of it (default: 1, as the authors)", low=1
    )
    fit: str = option(
        DEFAULT_PREPARE_FIT,
        "how frames fill the model's frame, as in generate (default: {default}; the authors stretched)",
        choices=FIT_MODES,
    )
    seed: int = _seed("seed of the clip starts and VAE samples (default: {default})")
    device: str | None = option(None, "cuda, cpu, ... (default: the best one present)")
    encode_batch_size: int = option(8, "frames per VAE call (default: {default})", low=1)


@dataclass(frozen=True)
class TrainConfig:
    """Train FashionFlow's U-Net and condition adapter on DATA (made by `prepare`) with the published
    objective (predicting the noise, or the velocity: --prediction-type), writing checkpoints,
    metrics.jsonl, TensorBoard logs and finally RUN/pipeline. Several GPUs or machines:
    `accelerate launch -m fashionflow train ...`.

    Every setting of a run; written to RUN/config.json and to TensorBoard's hparams. Defaults are
    the authors' (AdamW lr 1e-4, weight decay 0.01, constant rate, fp32, no EMA, no clipping, batch 2
    per process), except the loss reduction: "mean", see `loss_reduction`.
    """

    data: str = option(help="prepared data folder (from `prepare`)", positional=True)
    output: str = option(help="run folder (RUN)", short="-o")
    model: str = option(DEFAULT_MODEL, "pipeline whose VAE, CLIP and schedule are used (default: {default})")
    init: str = option(
        "model",
        "start the U-Net and adapter from the model's weights (fine-tune, default) or from fresh weights of its "
        "configuration (scratch)",
        choices=INIT_CHOICES,
    )
    # What the U-Net learns to predict. None: "v_prediction" when training starts from untrained weights (a
    # noise-predicting small model samples drifted colours, see objective.py), else the model's own; a resumed
    # run keeps its checkpoints'. Resolved by objective.choose_prediction_type.
    prediction_type: str | None = option(
        None,
        "what the U-Net learns to predict: the noise (epsilon, the published model's) or the velocity "
        "(v_prediction). Default: v_prediction when training starts from untrained weights (--init scratch, "
        "tiny-random), else the model's own; a resumed run keeps its checkpoints'",
        choices=PREDICTION_TYPES,
    )
    max_steps: int | None = option(None, "optimiser steps to train (default: as many as --epochs take)", low=1)
    max_minutes: float | None = option(
        None, "stop after this many minutes of training, saving as at the end (for a job's time limit)", positive=True
    )
    epochs: int = option(1, "passes over the data when --max-steps is not given (default: {default})", low=1)
    batch_size: int = option(2, "clips per process per step (default: {default}, as the authors)", low=1)
    gradient_accumulation_steps: int = option(1, "micro-batches per optimiser step (default: {default})", low=1)
    learning_rate: float = option(1e-4, "AdamW learning rate (default: {default})", positive=True)
    weight_decay: float = option(0.01, "AdamW weight decay (default: {default})")
    adam_beta1: float = option(0.9, "AdamW beta1", cli=False)
    adam_beta2: float = option(0.999, "AdamW beta2", cli=False)
    adam_epsilon: float = option(1e-8, "AdamW epsilon", cli=False)
    lr_schedule: str = option(
        "constant", "learning-rate schedule after warm-up (default: {default})", choices=LR_SCHEDULES
    )
    warmup_steps: int = option(0, "linear warm-up steps (default: {default})", low=0)
    max_grad_norm: float | None = option(None, "clip gradients to this norm (default: no clipping, as the authors)")
    # "mean" over frames: the paper's better-scoring variant, and a loss (and gradient norm) whose size
    # does not grow with the clip length, so learning rates and clipping carry over between lengths.
    loss_reduction: str = option(
        "mean",
        "per-frame losses averaged (mean: the paper's better variant, default) or summed (sum: the authors' code)",
        choices=LOSS_REDUCTIONS,
    )
    mixed_precision: str = option("no", "no (fp32, default), bf16 or fp16", choices=MIXED_PRECISION)
    gradient_checkpointing: bool = option(
        False, "recompute activations in the backward pass: much less memory, about a third slower"
    )
    ema: bool = option(
        False,
        "keep an exponential moving average of the weights (diffusers' EMAModel); used for validation and the "
        "final pipeline",
    )
    ema_decay: float = option(0.9999, "EMA decay (default: {default})")
    seed: int = _seed("seed of the initial weights, data order, timesteps and noise (default: {default})")
    checkpoint_every: int = option(
        500, "save RUN/checkpoint-STEP every N steps (default: {default}; also at the end and on Ctrl-C)", low=1
    )
    checkpoints_limit: int | None = option(3, "keep the newest N checkpoints (default: {default})", low=1)
    resume: str | None = option(
        None,
        "continue from 'latest' (the newest checkpoint in RUN; a new run when there is none) or a checkpoint folder",
    )
    validation_videos: int = option(
        0, "prepared videos held out of training for the validation loss and stills (default: {default})", low=0
    )
    validation_stills: tuple[str, ...] = option(
        (),
        "photos (or a folder) to make validation videos from (default: the held-out clips' first frames)",
        nargs="+",
    )
    validation_every: int = option(500, "validate every N steps, and at the start and end (default: {default})", low=1)
    validation_frames: int | None = option(None, "frames of validation videos (default: the clips' length)", low=1)
    validation_sampler: str = option(
        DEFAULT_SAMPLER, "sampler for validation videos (default: {default})", choices=SAMPLER_NAMES
    )
    validation_steps: int = option(
        25, "denoising steps of validation videos (default: {default})", low=1, high=NUM_TRAIN_TIMESTEPS
    )
    validation_seeds: tuple[int, ...] = option(
        (0,),
        "seeds of validation videos, comma-separated (default: {default})",
        comma_list=True,
        low=seeds.MIN_SEED,
        high=seeds.MAX_SEED,
        each=True,
    )
    max_validation_stills: int = option(4, "held-out stills made into validation videos at most", low=1, cli=False)
    log_every: int = option(10, "write metrics every N steps, averaged over them (default: {default})", low=1)
    num_workers: int = option(0, "data-loading worker processes (default: {default})", low=0)
    cpu: bool = option(False, "train on the CPU even when a GPU is present")
    report_to: str | None = option(
        "tensorboard",
        "experiment tracker besides metrics.jsonl (default: tensorboard, in RUN/logs)",
        choices=TRACKERS,
        none_word="none",
    )
