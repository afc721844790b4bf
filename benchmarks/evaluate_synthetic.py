"""The synthetic-trained small model against the untrained one, on held-out synthetic clips: does the
evaluation tell them apart?

    python benchmarks/evaluate_synthetic.py [--input benchmarks/results/train_synthetic]

`--input` is the folder the training benchmark writes: `trained/` and `untrained/` pipeline folders
and `heldout_videos/` (video files or frame folders). For each model the script runs the paper's
protocol (`fashionflow.evaluation.generate_test_videos`: first frame of each held-out clip as the
still, a video of the same length, per-video seeds) and then `evaluate` against the held-out clips:
FVD, video IS (with at least 10 clips), SSIM and PSNR; and, as a floor, the held-out clips against
themselves (PSNR of identical frames is infinite: written as null). It prints a table and writes
`benchmarks/results/evaluate_synthetic.json`.

Detectors: by default STAND-IN TorchScript networks with random weights (`stand_in_detectors.py`),
because the published I3D / C3D files cannot be downloaded here. FVD and IS measured with them are
NOT comparable to published FVD / IS; they only compare the two models on the same clips. Pass
`--i3d FILE --c3d FILE` (the published files) for real FVD / IS. Generation runs on CUDA when present.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # stand_in_detectors beside this file

from stand_in_detectors import make_stand_in_detectors  # noqa: E402

from fashionflow.evaluation import (  # noqa: E402
    EvaluationSettings,
    ProtocolSettings,
    evaluate,
    find_videos,
    generate_test_videos,
    write_report,
)

DEFAULT_INPUT = Path("benchmarks/results/train_synthetic")
DEFAULT_OUTPUT = Path("benchmarks/results/evaluate_synthetic")
MODELS = ("trained", "untrained")
NOT_COMPARABLE = "STAND-IN detectors (random weights): FVD / IS NOT comparable to published numbers"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT, help=f"default: {DEFAULT_INPUT}")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"generated videos and JSON (default: {DEFAULT_OUTPUT})"
    )
    parser.add_argument("--i3d", help="I3D TorchScript file or URL (default: the stand-in)")
    parser.add_argument("--c3d", help="C3D TorchScript file or URL (default: the stand-in)")
    parser.add_argument("--sampler", default="dpm++")
    parser.add_argument("--steps", type=int, help="default: the sampler's")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the per-video seeds")
    parser.add_argument(
        "--frames", type=int, help="FVD clip length (default: 16, or the shortest held-out clip if shorter)"
    )
    parser.add_argument("--device", help="default: cuda when present, else cpu")
    parser.add_argument("--overwrite", action="store_true", help="regenerate videos made by an earlier run")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    heldout = args.input / "heldout_videos"
    missing = [p for p in (args.input / "trained", args.input / "untrained", heldout) if not p.exists()]
    if missing:
        sys.exit(f"Missing {', '.join(map(str, missing))}: run the training benchmark first (it writes {args.input}).")

    stand_in = args.i3d is None or args.c3d is None
    if stand_in:
        detectors = make_stand_in_detectors(args.output / "stand_in_detectors")
    i3d = args.i3d or detectors["i3d"]
    c3d = args.c3d or detectors["c3d"]
    shortest = min(video.num_frames() for video in find_videos(heldout, "held-out").videos)
    frames = args.frames or min(16, shortest)
    print(
        f"Held-out clips: {len(find_videos(heldout).videos)} in {heldout}, shortest {shortest} frames; FVD clips of {frames} frames"
    )
    if stand_in:
        print(f"NOTE: {NOT_COMPARABLE}.")

    results = {}
    for model in MODELS:
        started = time.time()
        generated = args.output / f"generated-{model}"
        summary = generate_test_videos(
            str(args.input / model),
            heldout,
            generated,
            ProtocolSettings(sampler=args.sampler, steps=args.steps, seed=args.seed, overwrite=args.overwrite),
            device=args.device,
        )
        generation_s = time.time() - started
        report = evaluate(heldout, generated, None, i3d, c3d, EvaluationSettings(frames=frames, device=args.device))
        report["generation"] = {**summary, "seconds": round(generation_s, 1)}
        report["stand_in_detectors"] = stand_in
        write_report(report, args.output / f"{model}.json")
        results[model] = report

    # the floor: the held-out clips against themselves (real clips from a random start, "generated" from frame 0)
    reference = evaluate(heldout, heldout, None, i3d, c3d, EvaluationSettings(frames=frames, device=args.device))
    reference["generation"] = {"seconds": 0.0}
    write_report(reference, args.output / "heldout-reference.json")
    results["held-out itself"] = reference

    rows = [("model", "fvd (lower)", "isv (higher)", "ssim (higher)", "psnr dB (higher)", "clips", "generation s")]
    for model, r in results.items():
        rows.append(
            (
                model,
                _cell(r, "fvd", 2),
                _cell(r, "isv", 3),
                _cell(r, "ssim", 4),
                _cell(r, "psnr", 2),
                str(r["clips"]["fvd"]["generated"]["clips"]),
                f"{r['generation']['seconds']:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for i, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)))
        if i == 0:
            print("-|-".join("-" * w for w in widths))
    if stand_in:
        print(f"({NOT_COMPARABLE})")
    for model, r in results.items():
        for warning in r["warnings"]:
            print(f"{model}: WARNING: {warning}")

    summary = {
        "note": NOT_COMPARABLE if stand_in else "published detectors",
        "input": str(args.input),
        "frames": frames,
        "sampler": args.sampler,
        "steps": args.steps,
        "models": {
            m: {k: _finite(r.get(k)) for k in ("fvd", "isv", "isv_std", "ssim", "psnr")} for m, r in results.items()
        },
    }
    path = args.output.with_suffix(".json")
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"Written: {path} (per model: {args.output}/trained.json, untrained.json)")


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None  # strict JSON: inf PSNR becomes null


def _cell(report: dict, key: str, digits: int) -> str:
    return f"{report[key]:.{digits}f}" if report.get(key) is not None else "n/a"


if __name__ == "__main__":
    main()
