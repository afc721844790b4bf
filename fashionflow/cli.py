"""Command line: `python -m fashionflow {generate,download,convert,prepare,train,evaluate} ...` (also installed
as `fashionflow`).

This module only gathers the commands: each one's flags and what it runs live beside the code it
runs (`batch_cli.py`, `hub_cli.py`, `convert_cli.py`, `evaluation/cli.py`), made from its settings
dataclass. Only light modules are imported to build the parser (no torch, no diffusers), so that
`--help` and mistakes in a command answer at once; `main` turns any failure into one line and an
exit status that follows from its kind (`base.errors`).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .image import PHOTO_SUFFIXES  # noqa: F401  (kept importable from here)


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace("x", ",").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from . import batch_cli, convert_cli, hub_cli
    from .defaults import DEFAULT_MODEL
    from .evaluation import cli as evaluation_cli

    parser = argparse.ArgumentParser(
        prog="python -m fashionflow", description="FashionFlow: fashion videos from one photo."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    batch_cli.add_command(commands)
    hub_cli.add_command(commands)
    convert_cli.add_command(commands)
    _add_training_commands(commands, DEFAULT_MODEL)
    evaluation_cli.add_command(commands)
    return parser


# prepare / train ------------------------------------------------------------------------------------------------------


def _add_training_commands(commands, default_model: str) -> None:
    # light modules only, as for the other commands: `--help` must not import torch
    from .defaults import SAMPLER_NAMES as SAMPLERS
    from .image import FIT_MODES
    from .training.options import (
        DEFAULT_FRAMES,
        DEFAULT_PREPARE_FIT,
        INIT_CHOICES,
        LOSS_REDUCTIONS,
        LR_SCHEDULES,
        MIXED_PRECISION,
        PREDICTION_TYPES,
        VIDEO_SUFFIXES,
        TrainConfig,
    )

    defaults = TrainConfig(data="", output="")
    prepare = commands.add_parser(
        "prepare",
        help="encode training videos into latent clips (once, before training)",
        description="Take clips of consecutive frames from every video under VIDEOS, fit them to the model's frame "
        "size and encode them with its VAE into DATA (safetensors shards and an index). Run it again to "
        "continue an interrupted preparation; under `accelerate launch` the videos are split between processes.",
    )
    prepare.add_argument(
        "videos", type=Path, help=f"folder searched recursively for videos ({', '.join(VIDEO_SUFFIXES)})"
    )
    prepare.add_argument("-o", "--output", type=Path, required=True, help="folder for the prepared data (DATA)")
    prepare.add_argument(
        "--model", default=default_model, help=f"pipeline whose VAE and frame size to use (default: {default_model})"
    )
    prepare.add_argument(
        "--frames", type=int, default=DEFAULT_FRAMES, help=f"frames per clip (default: {DEFAULT_FRAMES}, as the paper)"
    )
    prepare.add_argument(
        "--clips-per-video",
        type=int,
        default=1,
        help="clips taken from each video, at random starts in equal stretches of it (default: 1, as the authors)",
    )
    prepare.add_argument(
        "--fit",
        default=DEFAULT_PREPARE_FIT,
        choices=FIT_MODES,
        help=f"how frames fill the model's frame, as in generate (default: {DEFAULT_PREPARE_FIT}; the authors stretched)",
    )
    prepare.add_argument("--seed", type=int, default=0, help="seed of the clip starts and VAE samples (default: 0)")
    prepare.add_argument("--device", help="cuda, cpu, ... (default: the best one present)")
    prepare.add_argument("--encode-batch-size", type=int, default=8, help="frames per VAE call (default: 8)")
    prepare.set_defaults(run=_run_prepare)

    train = commands.add_parser(
        "train",
        help="train the U-Net and adapter on prepared data (also under `accelerate launch`)",
        description="Train FashionFlow's U-Net and condition adapter on DATA (made by `prepare`) with the published "
        "objective (predicting the noise, or the velocity: --prediction-type), writing checkpoints, metrics.jsonl, TensorBoard logs and finally RUN/pipeline. "
        "Several GPUs or machines: `accelerate launch -m fashionflow train ...`.",
    )
    train.add_argument("data", type=Path, help="prepared data folder (from `prepare`)")
    train.add_argument("-o", "--output", type=Path, required=True, help="run folder (RUN)")
    train.add_argument(
        "--model",
        default=default_model,
        help=f"pipeline whose VAE, CLIP and schedule are used (default: {default_model})",
    )
    train.add_argument(
        "--init",
        default=defaults.init,
        choices=INIT_CHOICES,
        help="start the U-Net and adapter from the model's weights (fine-tune, default) or from fresh weights of its configuration (scratch)",
    )
    train.add_argument(
        "--prediction-type",
        choices=PREDICTION_TYPES,
        help="what the U-Net learns to predict: the noise (epsilon, the published model's) or the velocity "
        "(v_prediction). Default: v_prediction when training starts from untrained weights (--init scratch, "
        "tiny-random), else the model's own; a resumed run keeps its checkpoints'",
    )
    train.add_argument("--max-steps", type=int, help="optimiser steps to train (default: as many as --epochs take)")
    train.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this many minutes of training, saving as at the end (for a job's time limit)",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help=f"passes over the data when --max-steps is not given (default: {defaults.epochs})",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"clips per process per step (default: {defaults.batch_size}, as the authors)",
    )
    train.add_argument(
        "--gradient-accumulation-steps", type=int, default=1, help="micro-batches per optimiser step (default: 1)"
    )
    train.add_argument(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help=f"AdamW learning rate (default: {defaults.learning_rate:g})",
    )
    train.add_argument(
        "--weight-decay",
        type=float,
        default=defaults.weight_decay,
        help=f"AdamW weight decay (default: {defaults.weight_decay:g})",
    )
    train.add_argument(
        "--lr-schedule",
        default=defaults.lr_schedule,
        choices=LR_SCHEDULES,
        help="learning-rate schedule after warm-up (default: constant)",
    )
    train.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps (default: 0)")
    train.add_argument(
        "--max-grad-norm", type=float, help="clip gradients to this norm (default: no clipping, as the authors)"
    )
    train.add_argument(
        "--loss-reduction",
        default=defaults.loss_reduction,
        choices=LOSS_REDUCTIONS,
        help="per-frame losses averaged (mean: the paper's better variant, default) or summed (sum: the authors' code)",
    )
    train.add_argument(
        "--mixed-precision", default="no", choices=MIXED_PRECISION, help="no (fp32, default), bf16 or fp16"
    )
    train.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: much less memory, about a third slower",
    )
    train.add_argument(
        "--ema",
        action="store_true",
        help="keep an exponential moving average of the weights (diffusers' EMAModel); used for validation and the final pipeline",
    )
    train.add_argument(
        "--ema-decay", type=float, default=defaults.ema_decay, help=f"EMA decay (default: {defaults.ema_decay})"
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seed of the initial weights, data order, timesteps and noise (default: 0)"
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=defaults.checkpoint_every,
        help=f"save RUN/checkpoint-STEP every N steps (default: {defaults.checkpoint_every}; also at the end and on Ctrl-C)",
    )
    train.add_argument(
        "--checkpoints-limit",
        type=int,
        default=defaults.checkpoints_limit,
        help=f"keep the newest N checkpoints (default: {defaults.checkpoints_limit})",
    )
    train.add_argument(
        "--resume",
        help="continue from 'latest' (the newest checkpoint in RUN; a new run when there is none) or a checkpoint folder",
    )
    train.add_argument(
        "--validation-videos",
        type=int,
        default=0,
        help="prepared videos held out of training for the validation loss and stills (default: 0)",
    )
    train.add_argument(
        "--validation-stills",
        type=Path,
        nargs="+",
        default=(),
        help="photos (or a folder) to make validation videos from (default: the held-out clips' first frames)",
    )
    train.add_argument(
        "--validation-every",
        type=int,
        default=defaults.validation_every,
        help=f"validate every N steps, and at the start and end (default: {defaults.validation_every})",
    )
    train.add_argument("--validation-frames", type=int, help="frames of validation videos (default: the clips' length)")
    train.add_argument(
        "--validation-sampler",
        default=defaults.validation_sampler,
        choices=list(SAMPLERS),
        help=f"sampler for validation videos (default: {defaults.validation_sampler})",
    )
    train.add_argument(
        "--validation-steps",
        type=int,
        default=defaults.validation_steps,
        help=f"denoising steps of validation videos (default: {defaults.validation_steps})",
    )
    train.add_argument(
        "--validation-seeds",
        type=_int_list,
        default=defaults.validation_seeds,
        help="seeds of validation videos, comma-separated (default: 0)",
    )
    train.add_argument(
        "--log-every",
        type=int,
        default=defaults.log_every,
        help=f"write metrics every N steps, averaged over them (default: {defaults.log_every})",
    )
    train.add_argument("--num-workers", type=int, default=0, help="data-loading worker processes (default: 0)")
    train.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    train.add_argument(
        "--report-to",
        default="tensorboard",
        choices=["tensorboard", "none"],
        help="experiment tracker besides metrics.jsonl (default: tensorboard, in RUN/logs)",
    )
    train.set_defaults(run=_run_train)  # fmt: skip


def _run_prepare(args: argparse.Namespace) -> int:
    from .training.data import prepare_dataset

    summary = prepare_dataset(
        args.videos, args.output, model=args.model, frames=args.frames, clips_per_video=args.clips_per_video,
        fit=args.fit, seed=args.seed, device=args.device, encode_batch_size=args.encode_batch_size,
    )  # fmt: skip
    print(
        f"Prepared {summary.clips} clip(s) from {summary.prepared} of {summary.videos} video(s) in {args.output}"
        + (f" ({summary.done_before} done by an earlier run)." if summary.done_before else ".")
    )
    for video, reason in summary.skipped:
        print(f"  skipped {video}: {reason}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from .training.options import TrainConfig
    from .training.train import train

    config = TrainConfig(
        data=str(args.data), output=str(args.output), model=args.model, init=args.init,
        prediction_type=args.prediction_type, max_steps=args.max_steps, max_minutes=args.max_minutes,
        epochs=args.epochs, batch_size=args.batch_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay, lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps, max_grad_norm=args.max_grad_norm, loss_reduction=args.loss_reduction,
        mixed_precision=args.mixed_precision, gradient_checkpointing=args.gradient_checkpointing, ema=args.ema,
        ema_decay=args.ema_decay, seed=args.seed, checkpoint_every=args.checkpoint_every,
        checkpoints_limit=args.checkpoints_limit, resume=args.resume, validation_videos=args.validation_videos,
        validation_stills=tuple(str(p) for p in args.validation_stills), validation_every=args.validation_every,
        validation_frames=args.validation_frames, validation_sampler=args.validation_sampler,
        validation_steps=args.validation_steps, validation_seeds=tuple(args.validation_seeds),
        log_every=args.log_every, num_workers=args.num_workers, cpu=args.cpu,
        report_to=None if args.report_to == "none" else args.report_to,
    )  # fmt: skip
    result = train(config)
    if result.pipeline_dir is not None:
        loss = f"{result.last_loss:.4f}" if result.last_loss is not None else "n/a"
        print(f"Done: {result.steps} steps, last loss {loss}. Metrics: {result.run_dir / 'metrics.jsonl'}")
        print(f"Try it: python -m fashionflow generate PHOTO.jpg -o video.mp4 --model {result.pipeline_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status follows from how it ended (`base.errors.Kind`): 0 done,
    2 the command needs changing (named by flag), 1 it ran and failed, 130 interrupted."""
    from .base.errors import INTERNAL, explain

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help (0) or a malformed argument, named by argparse (2)
        return exit.code if isinstance(exit.code, int) else 2
    try:
        return args.run(args)
    except Exception as error:  # worded once, as the web app words its failures
        explanation = explain(error, flags=getattr(args, "flags", None))
        if explanation.kind is INTERNAL:
            traceback.print_exc()
        print(f"error: {explanation.message}", file=sys.stderr)
        return explanation.kind.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
