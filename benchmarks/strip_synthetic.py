"""A picture of what models trained by the training benchmark make: a held-out clip, then each model's video.

    python benchmarks/strip_synthetic.py RUN [RUN ...] -o docs/training-synthetic-strip.png

Each RUN is a folder `train_synthetic.py` wrote; all must hold the same clips (same seed and clip settings, as
runs that differ only in what they train do). Row 1 is the first held-out clip (real), then one row per RUN:
its `trained/` model's video from that clip's first frame, made as the benchmark makes it (dpm++ 25 steps,
generator seed 0), and the untrained model's as the last row. Every other frame, enlarged 2x (nearest).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the training benchmark beside this file

from train_synthetic import heldout_clips, sample_videos, synthesise_clips  # noqa: E402

from fashionflow.pipeline import FashionFlowPipeline  # noqa: E402

CLIP_SETTINGS = ("seed", "train_videos", "heldout_videos", "video_frames", "frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="folders written by benchmarks/train_synthetic.py")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG file")
    parser.add_argument("--steps", type=int, default=25, help="dpm++ steps (default 25, as the benchmark)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    settings = [json.loads((run / "results.json").read_text())["settings"] for run in args.runs]
    for run, other in zip(args.runs[1:], settings[1:]):
        differing = [k for k in CLIP_SETTINGS if other[k] != settings[0][k]]
        if differing:
            sys.exit(f"{run} was made from other clips than {args.runs[0]} ({', '.join(differing)} differ).")
    first = argparse.Namespace(**settings[0])
    stills, real = heldout_clips(synthesise_clips(first), args.runs[0] / "data", first.frames)

    videos = [real[0]]
    for folder in [run / "trained" for run in args.runs] + [args.runs[0] / "untrained"]:
        pipeline = FashionFlowPipeline.from_pretrained(folder)
        pipeline.set_progress_bar_config(disable=True)
        videos += sample_videos(pipeline, stills[:1], first.frames, args.steps, None)
        print(f"{folder}: {pipeline.scheduler.config.prediction_type}")
    rows = [np.concatenate(list(video[:: max(1, first.frames // 8)]), axis=1) for video in videos]
    picture = Image.fromarray(np.concatenate(rows, axis=0))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST).save(args.output, optimize=True)
    print(f"Written: {args.output} (rows: real, {', '.join(str(r) for r in args.runs)}, untrained)")


if __name__ == "__main__":
    main()
