"""`python -m fashionflow evaluate`: the metrics of generated videos against real ones, or the paper's
whole test protocol for a model (generate from every test video's first frame, then measure).

The flags are the fields of `EvaluationSettings` (the metrics), `ProtocolSettings` (the protocol)
and `EvaluateSettings` (what to compare, and the model); nothing heavy is imported until it runs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from ..base.options import add_arguments, add_subcommand, check, described, flags_of, from_arguments, option
from ..defaults import ModelSettings
from .detectors import C3D, I3D
from .registry import METRICS
from .settings import EvaluationSettings, ProtocolSettings

PROTOCOL = "the test protocol (--model)"


@dataclass(frozen=True, kw_only=True)
class EvaluateSettings(ModelSettings):
    """Compare a folder of generated videos with a folder of real ones (--real/--generated), or run the
    paper's whole test protocol for a model (--model/--test-videos): one video per test video from its
    first frame, then the metrics. A folder holds video files or sub-folders of frame images, one per video.

    (These are what `evaluate` compares, the detector files, and for the protocol the model; the
    metrics' settings are `EvaluationSettings`, the protocol's `ProtocolSettings`.)"""

    real: Path | None = option(None, "folder of real videos (files or frame folders)", metavar="DIR")
    generated: Path | None = option(
        None, "folder of generated videos; with --model, where they are written", metavar="DIR"
    )
    json: Path = option(help="write the metrics, clip counts and settings here", metavar="OUT", required=True)
    i3d: str | None = option(
        None, f"I3D TorchScript file or URL for FVD (default: {I3D.url}, cached)", metavar="FILE|URL"
    )
    c3d: str | None = option(
        None, f"C3D TorchScript file or URL for video IS (published at {C3D.url})", metavar="FILE|URL"
    )
    metrics: tuple[str, ...] | None = option(
        None,
        "metrics to compute; any that cannot run is an error (default: fvd, plus those that can run: isv with a "
        "C3D file, ssim/psnr/lpips when videos pair by name)",
        nargs="+",
        choices=tuple(METRICS),
        each=True,
    )
    # the protocol's model (loaded only with --test-videos)
    model: str | None = option(None, "pipeline folder, Hub id, or tiny-random: generate from --test-videos first")
    test_videos: Path | None = option(None, "folder of test videos: each one's first frame is a still", metavar="DIR")
    device: str | None = option(None, "the metrics' --device", cli=False)


PROTOCOL_SETTINGS = ("model", "test_videos", "dtype", "attention", "cpu_offload")


def add_command(commands) -> None:
    help = "FVD, video IS, SSIM, PSNR of generated videos against real ones (StyleGAN-V's definitions)"
    parser = add_subcommand(commands, "evaluate", run, help=help)
    parser.description = described(EvaluateSettings)
    # the settings in two sections of --help: what to compare and how, then the protocol's
    add_arguments(parser, EvaluateSettings, exclude=PROTOCOL_SETTINGS)
    add_arguments(parser, EvaluationSettings)
    protocol = parser.add_argument_group(PROTOCOL)
    add_arguments(protocol, EvaluateSettings, only=PROTOCOL_SETTINGS)
    add_arguments(protocol, ProtocolSettings)
    parser.set_defaults(flags=flags_of(EvaluateSettings, EvaluationSettings, ProtocolSettings))


def run(args: argparse.Namespace) -> int:
    from . import evaluate, format_table, generate_test_videos, write_report
    from .evaluator import check_report_path

    metrics = from_arguments(EvaluationSettings, args)
    command = from_arguments(EvaluateSettings, args, device=metrics.device)
    protocol = from_arguments(ProtocolSettings, args, fit=metrics.fit)
    for settings in (command, metrics, protocol):
        check(settings)
    check_report_path(command.json)  # before hours of features, not after

    summary = None
    if command.model is not None or command.test_videos is not None:
        if command.model is None or command.test_videos is None:
            raise ValueError("The test protocol needs both --model and --test-videos.")
        if command.real is not None:
            raise ValueError("With --test-videos, the test videos are the real videos: leave out --real.")
        real = command.test_videos
        generated = command.generated or command.json.with_name(f"{command.json.stem}-generated")
        summary = generate_test_videos(
            command.model,
            command.test_videos,
            generated,
            protocol,
            device=command.device,
            dtype=command.dtype,
            attention=command.attention,
            cpu_offload=command.cpu_offload,
        )
        if summary is None:  # not the main process: the main one computes the metrics
            return 0
        print(
            f"Generated {summary['made']} video(s) into {generated} ({summary['already_made']} already there, "
            f"{len(summary['failed'])} failed) on {summary['processes']} process(es)."
        )
        for name, error in summary["failed"].items():
            print(f"  {name}: {error}", file=sys.stderr)
    elif command.real is None or command.generated is None:
        raise ValueError("Give --real DIR and --generated DIR (or --model and --test-videos for the whole protocol).")
    else:
        real, generated = command.real, command.generated

    report = evaluate(real, generated, command.metrics, command.i3d, command.c3d, metrics)
    if summary is not None:
        report["generation"] = summary
    print(format_table(report))  # first: the metrics are seen even if the report cannot be written
    write_report(report, command.json)
    print(f"Written: {command.json}")
    return 1 if summary is not None and summary["failed"] else 0
