"""`python -m fashionflow prepare` and `python -m fashionflow train`: videos -> latent clips -> a trained model.

The flags are the fields of `PrepareConfig` and `TrainConfig` (`options.py`); a mistake in them is
refused, naming the flag, before anything loads (`train` checks its config first thing).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..base.options import add_subcommand, check, from_arguments
from .options import PrepareConfig, TrainConfig


def add_commands(commands) -> None:
    help = "encode training videos into latent clips (once, before training)"
    add_subcommand(commands, "prepare", run_prepare, PrepareConfig, help=help)
    help = "train the U-Net and adapter on prepared data (also under `accelerate launch`)"
    add_subcommand(commands, "train", run_train, TrainConfig, help=help)


def run_prepare(args: argparse.Namespace) -> int:
    from .data import prepare_dataset

    config = from_arguments(PrepareConfig, args)
    check(config)
    try:
        summary = prepare_dataset(**asdict(config))
    except Exception as error:  # damaged shards that cannot be made again: what was done is said all the same
        if getattr(error, "summary", None) is not None:
            _print_summary(error.summary, config)
        raise
    _print_summary(summary, config)
    return 0


def _print_summary(summary, config: PrepareConfig) -> None:
    print(
        f"Prepared {summary.clips} clip(s) from {summary.prepared} of {summary.videos} video(s) in {config.output}"
        + (f" ({summary.done_before} done by an earlier run)." if summary.done_before else ".")
    )
    for shard, problem in summary.remade:
        print(f"  remade {shard}: it was damaged ({problem})")
    for video, reason in summary.skipped:
        print(f"  skipped {video}: {reason}")


def run_train(args: argparse.Namespace) -> int:
    from .train import train

    result = train(from_arguments(TrainConfig, args))
    if result.pipeline_dir is not None:
        loss = f"{result.last_loss:.4f}" if result.last_loss is not None else "n/a"
        print(f"Done: {result.steps} steps, last loss {loss}. Metrics: {result.run_dir / 'metrics.jsonl'}")
        print(f"Try it: python -m fashionflow generate PHOTO.jpg -o video.mp4 --model {result.pipeline_dir}")
    return 0
