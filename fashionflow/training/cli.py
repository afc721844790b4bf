"""`python -m fashionflow prepare` and `python -m fashionflow train`: videos -> latent clips -> a trained model.

The flags are the fields of `PrepareConfig` and `TrainConfig` (`options.py`); a mistake in them is
refused, naming the flag, before anything loads (`train` checks its config first thing).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..base.options import add_arguments, check, flags_of, from_arguments
from .options import PrepareConfig, TrainConfig


def add_commands(commands) -> None:
    prepare = commands.add_parser(
        "prepare",
        help="encode training videos into latent clips (once, before training)",
        description="Take clips of consecutive frames from every video under VIDEOS, fit them to the model's frame "
        "size and encode them with its VAE into DATA (safetensors shards and an index). Run it again to "
        "continue an interrupted preparation; under `accelerate launch` the videos are split between processes.",
    )
    add_arguments(prepare, PrepareConfig)
    prepare.set_defaults(run=run_prepare, flags=flags_of(PrepareConfig))

    train = commands.add_parser(
        "train",
        help="train the U-Net and adapter on prepared data (also under `accelerate launch`)",
        description="Train FashionFlow's U-Net and condition adapter on DATA (made by `prepare`) with the published "
        "objective (predicting the noise, or the velocity: --prediction-type), writing checkpoints, metrics.jsonl, "
        "TensorBoard logs and finally RUN/pipeline. Several GPUs or machines: `accelerate launch -m fashionflow "
        "train ...`.",
    )
    add_arguments(train, TrainConfig)
    train.set_defaults(run=run_train, flags=flags_of(TrainConfig))


def run_prepare(args: argparse.Namespace) -> int:
    from .data import prepare_dataset

    config = from_arguments(PrepareConfig, args)
    check(config)
    summary = prepare_dataset(**asdict(config))
    print(
        f"Prepared {summary.clips} clip(s) from {summary.prepared} of {summary.videos} video(s) in {config.output}"
        + (f" ({summary.done_before} done by an earlier run)." if summary.done_before else ".")
    )
    for video, reason in summary.skipped:
        print(f"  skipped {video}: {reason}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .train import train

    result = train(from_arguments(TrainConfig, args))
    if result.pipeline_dir is not None:
        loss = f"{result.last_loss:.4f}" if result.last_loss is not None else "n/a"
        print(f"Done: {result.steps} steps, last loss {loss}. Metrics: {result.run_dir / 'metrics.jsonl'}")
        print(f"Try it: python -m fashionflow generate PHOTO.jpg -o video.mp4 --model {result.pipeline_dir}")
    return 0
