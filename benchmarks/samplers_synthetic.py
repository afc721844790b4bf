"""Samplers and step counts on the synthetic-trained model: how many steps make the same video?

    nice -n 10 python benchmarks/samplers_synthetic.py [--input benchmarks/results/train_synthetic]
    python benchmarks/samplers_synthetic.py --stills 2 --quick     # a smoke run: two stills, fewer DDPM steps

`--input` is a folder the training benchmark (`train_synthetic.py`) wrote. Its held-out clips are
re-synthesised from the recorded seed (the same arrays as there), and its `trained/` model makes a video from
each held-out still with every sampler of the table: dpm++ 10 and 25 steps, UniPC 10 and 25, DDIM 50, and the
authors' 1000-step ancestral DDPM (`sampler="ddpm"`), all from generator seed 0 per still as in the training
benchmark (its dpm++ 25 row is the same videos). A second 1000-step DDPM from seed 1 shows how far apart two
samples of the model lie when nothing but the seed differs.

Measures, each the mean over the stills:
- colour error of the figure to the still, and motion energy against the real clips (the training benchmark's
  definitions, 0-255);
- distance to the 1000-step DDPM video of the same still and seed: the root mean square difference over every
  pixel and channel of frames 1.. (frame 0 is the still itself in every video), 0-255. The deterministic
  samplers start from the same noise as DDPM but DDPM adds fresh noise at every step, so not even a perfect
  solver reaches 0: the DDPM-to-DDPM row is the scale to read the others against;
- seconds per video on this machine (noisy on a shared machine).

Prints a table and writes INPUT/samplers.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the training benchmark beside this file

from train_synthetic import (  # noqa: E402
    colour_error,
    heldout_clips,
    motion_energy,
    sample_videos,
    synthesise_clips,
    vae_round_trip,
)

from fashionflow.pipeline import FashionFlowPipeline  # noqa: E402

# (sampler, steps, seed); the first DDPM row is the reference of the distances
REFERENCE = ("ddpm", 1000, 0)
ROWS = (("dpm++", 10, 0), ("dpm++", 25, 0), ("unipc", 10, 0), ("unipc", 25, 0), ("ddim", 50, 0), REFERENCE)
SECOND_SAMPLE = ("ddpm", 1000, 1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=Path("benchmarks/results/train_synthetic"))
    parser.add_argument("--output", type=Path, help="JSON file (default: INPUT/samplers.json)")
    parser.add_argument("--stills", type=int, help="use the first N held-out stills (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as the training run)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: DDPM with 50 steps instead of 1000; numbers mean nothing"
    )
    return parser.parse_args()


def rms_distance(video: np.ndarray, reference: np.ndarray) -> float:
    """Root mean square pixel difference (0-255) of frames 1.., over every pixel and channel."""
    return float(np.sqrt(((video[1:].astype(np.float64) - reference[1:]) ** 2).mean()))


def row_name(row: tuple[str, int, int]) -> str:
    sampler, steps, seed = row
    return f"{sampler} {steps}" + (f", seed {seed}" if seed else "")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    results_file = args.input / "results.json"
    if not results_file.is_file() or not (args.input / "trained").is_dir():
        sys.exit(f"{args.input} holds no results.json and trained/: run benchmarks/train_synthetic.py first.")
    settings = argparse.Namespace(**json.loads(results_file.read_text())["settings"])
    clips = synthesise_clips(settings)
    stills, real = heldout_clips(clips, args.input / "data", settings.frames)
    stills, real = stills[: args.stills], real[: args.stills]

    pipeline = FashionFlowPipeline.from_pretrained(args.input / "trained")
    pipeline.set_progress_bar_config(disable=True)
    prediction_type = pipeline.scheduler.config.prediction_type
    rows = (*ROWS, SECOND_SAMPLE)
    if args.quick:
        rows = tuple((sampler, 50 if sampler == "ddpm" else steps, seed) for sampler, steps, seed in rows)
    reference_row = next(row for row in rows if row[0] == "ddpm" and row[2] == 0)

    videos, seconds = {}, {}
    for row in rows:
        sampler, steps, seed = row
        started = time.perf_counter()
        videos[row] = sample_videos(pipeline, stills, settings.frames, steps, None, sampler=sampler, seed=seed)
        seconds[row] = (time.perf_counter() - started) / len(stills)
        print(f"{sampler} {steps} steps, seed {seed}: {seconds[row]:.1f} s per video", flush=True)

    reference = videos[reference_row]
    named = {row_name(row): row for row in rows}
    table = {"real held-out clips": real, "real clips through the VAE": [vae_round_trip(pipeline.vae, v) for v in real]}
    table.update({name: videos[row] for name, row in named.items()})
    real_motion = float(np.mean([motion_energy(v) for v in real]))
    measured = {}
    for name, vids in table.items():
        row = named.get(name)
        measured[name] = {
            "colour_error": float(np.mean([colour_error(v, s) for v, (_, s) in zip(vids, stills)])),
            "motion_energy": float(np.mean([motion_energy(v) for v in vids])),
            "distance_to_ddpm_1000": float(np.mean([rms_distance(v, r) for v, r in zip(vids, reference)])),
            "seconds_per_video": seconds.get(row),
            **({"sampler": row[0], "steps": row[1], "seed": row[2]} if row else {}),
        }

    print(
        f"\n{len(stills)} held-out stills of {args.input}, {settings.frames} frames, trained/ model "
        f"({prediction_type}); {args.threads} CPU thread(s), load average {os.getloadavg()[0]:.1f}\n"
    )
    print(
        f"| sampler, steps | colour error (0-255) | motion energy (x real) | RMS distance to {row_name(reference_row)} "
        "| s per video |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, m in measured.items():
        time_cell = f"{m['seconds_per_video']:.1f}" if m["seconds_per_video"] is not None else "-"
        print(
            f"| {name} | {m['colour_error']:.1f} | {m['motion_energy']:.2f} ({m['motion_energy'] / real_motion:.2f}x) "
            f"| {m['distance_to_ddpm_1000']:.1f} | {time_cell} |"
        )
    output = args.output or args.input / "samplers.json"
    summary = {
        "input": str(args.input),
        "prediction_type": prediction_type,
        "stills": [name for name, _ in stills],
        "frames": settings.frames,
        "quick": args.quick,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min_at_end": os.getloadavg()[0],
        "distance": "RMS pixel difference (0-255) of frames 1.. to the DDPM 1000-step video of the same still and seed",
        "rows": measured,
    }
    output.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\nWritten: {output}")


if __name__ == "__main__":
    main()
