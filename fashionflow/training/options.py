"""Choices, defaults and the run settings (`TrainConfig`) of `prepare` and `train`.

Nothing heavy is imported here (no torch, no accelerate), so that `python -m fashionflow --help`
stays instant; the modules that do the work import their defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..defaults import PREDICTION_TYPES as PREDICTION_TYPES  # "epsilon" (the noise) or "v_prediction" (the velocity)
from ..hub import DEFAULT_OUTPUT

DEFAULT_MODEL = str(DEFAULT_OUTPUT)  # loading.DEFAULT_MODEL

# prepare
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi")
DEFAULT_FRAMES = 70
DEFAULT_PREPARE_FIT = "pad"  # generation's default: training sees frames fitted the way users' photos will be

# train
LOSS_REDUCTIONS = ("mean", "sum")
INIT_CHOICES = ("model", "scratch")
MIXED_PRECISION = ("no", "bf16", "fp16")
LR_SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run; written to RUN/config.json and to TensorBoard's hparams.

    Defaults are the authors' (AdamW lr 1e-4, weight decay 0.01, constant rate, fp32, no EMA,
    no clipping, batch 2 per process), except the loss reduction: "mean", see `loss_reduction`.
    """

    data: str
    output: str
    model: str = DEFAULT_MODEL
    init: str = "model"  # "model": fine-tune the model's U-Net and adapter; "scratch": fresh weights of its config
    # What the U-Net learns to predict. None: "v_prediction" when training starts from untrained weights (a
    # noise-predicting small model samples drifted colours, see objective.py), else the model's own; a resumed
    # run keeps its checkpoints'. Resolved by objective.choose_prediction_type.
    prediction_type: str | None = None
    max_steps: int | None = None  # optimiser steps; when None, `epochs` decides
    max_minutes: float | None = None  # stop (saving as at the end) after this much training time, e.g. a job's limit
    epochs: int = 1
    batch_size: int = 2  # clips per process and micro-step
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: float | None = None  # the authors clip nothing
    # "mean" over frames: the paper's better-scoring variant, and a loss (and gradient norm) whose size
    # does not grow with the clip length, so learning rates and clipping carry over between lengths.
    loss_reduction: str = "mean"
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    ema: bool = False
    ema_decay: float = 0.9999
    seed: int = 0
    checkpoint_every: int = 500
    checkpoints_limit: int | None = 3
    resume: str | None = None
    validation_videos: int = 0  # prepared videos held out for the validation loss (and stills)
    validation_stills: tuple[str, ...] = ()  # photos for validation videos; default: the held-out clips' stills
    validation_every: int = 500
    validation_frames: int | None = None  # default: the prepared clips' length
    validation_sampler: str = "dpm++"
    validation_steps: int = 25
    validation_seeds: tuple[int, ...] = (0,)
    max_validation_stills: int = 4
    log_every: int = 10
    num_workers: int = 0
    cpu: bool = False  # train on the CPU even where a GPU is present
    report_to: str | None = "tensorboard"
