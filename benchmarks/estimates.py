"""How well the app's time estimates hold: varied settings replayed through the service as the app
runs them, each estimate (made before its run, from the runs so far) against the time the run took.

    python benchmarks/estimates.py                        # the tiny untrained model, 24 requests
    python benchmarks/estimates.py --model weights/fashionflow-official --repeat 1

It starts as the app does (the calibration run), then makes each video in turn with
`service.run_generation` and lets the estimator learn from it, as the page's Generate does. A run
is "within" when the estimate is within +-35% of the time it took. The machine's load average is
printed before and after: timings on a shared machine are only as good as its quiet moments. Prints
a table and writes JSON (benchmarks/results/estimates.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from fashionflow import service

HERE = Path(__file__).resolve().parent
PHOTO = HERE.parent / "examples" / "astronaut.png"
TOLERANCE = 0.35

# (sampler, steps, frames, frames at once, loop, quick preview): what visitors ask for, in a plausible
# order: quick looks and repeats (the 25 x 16 three times in a row), short and long videos,
# loops, other samplers, the tiny decoder. Kept small enough to replay in minutes with the tiny model.
REQUESTS = [
    ("dpm++", 25, 16, 16, False, False),
    ("dpm++", 25, 16, 16, False, False),
    ("dpm++", 25, 16, 16, False, False),
    ("dpm++", 25, 8, 8, False, False),
    ("dpm++", 2, 8, 8, False, False),
    ("dpm++", 10, 32, 8, False, False),
    ("ddim", 50, 8, 8, False, False),
    ("dpm++", 25, 16, 8, True, False),
    ("unipc", 25, 24, 4, False, False),
    ("dpm++", 4, 70, 8, False, False),
    ("dpm++", 100, 4, 4, False, False),
    ("dpm++", 25, 12, 1, False, False),
    ("dpm++", 25, 12, 12, False, False),
    ("dpm++", 25, 16, 16, False, True),
    ("dpm++", 1, 2, 2, False, False),
    ("dpm++", 15, 20, 10, True, False),
    ("dpm++", 8, 48, 8, False, False),
    ("ddpm", 60, 6, 6, False, False),
    ("dpm++", 25, 8, 8, False, True),
    ("dpm++", 12, 36, 6, False, False),
    ("dpm++", 25, 16, 16, False, False),
    ("dpm++", 40, 10, 10, True, False),
    ("dpm++", 6, 60, 8, False, False),
    ("dpm++", 25, 70, 8, False, False),
]


def settings_for(request: tuple, model: service.ModelState) -> service.GenerationSettings:
    sampler, steps, frames, at_once, loop, quick = request
    quick = quick and model.has_quick_preview
    return service.validate_settings(
        seed=0,
        randomize_seed=False,
        sampler=sampler,
        steps=steps,
        num_frames=frames,
        decode_chunk_size=at_once,
        loop=loop,
        quick_preview=quick,
    )


def describe(s: service.GenerationSettings) -> str:
    extras = [word for word, on in (("loop", s.loop), ("quick preview", s.decoder == "tiny")) if on]
    return f"{s.sampler} {s.steps} steps x {s.num_frames} frames, {s.decode_chunk_size} at once" + "".join(
        f", {extra}" for extra in extras
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-random", help="pipeline folder, Hub id or tiny-random")
    parser.add_argument("--repeat", type=int, default=1, help="times to replay the list (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "estimates.json")
    args = parser.parse_args()

    load_before = os.getloadavg()
    model = service.load_model(args.model)
    if not model.ready:
        raise SystemExit(model.error)
    model.pipeline.set_progress_bar_config(disable=True)
    photo = service.read_photo(PHOTO)
    book = service.SpeedBook()
    started = time.monotonic()
    service.calibrate(model.pipeline, book)
    calibration_seconds = time.monotonic() - started

    rows = []
    print(f"{'#':>3}  {'settings':<48} {'estimate':>9} {'actual':>8} {'ratio':>6}  within")
    with tempfile.TemporaryDirectory(prefix="fashionflow-estimates-") as folder:
        for i, request in enumerate(REQUESTS * args.repeat, start=1):
            s = settings_for(request, model)
            estimate = book.estimate(s).seconds
            result = service.run_generation(model.pipeline, photo, s, Path(folder) / f"job-{i}")
            book.learn(s, result.timings)
            ratio = estimate / result.seconds
            within = abs(ratio - 1) <= TOLERANCE
            rows.append(
                dict(settings=describe(s), estimate=estimate, actual=result.seconds, ratio=ratio, within=within)
            )
            print(f"{i:>3}  {describe(s):<48} {estimate:>8.1f}s {result.seconds:>7.1f}s {ratio:>6.2f}  {within}")
    load_after = os.getloadavg()
    hits = sum(row["within"] for row in rows)
    print(f"\nwithin +-{TOLERANCE:.0%}: {hits} of {len(rows)} ({hits / len(rows):.0%})")
    print(f"calibration at start: {calibration_seconds:.1f} s; load average (1, 5, 15 min) before {load_before}")
    print(f"after {load_after}; {os.cpu_count()} CPUs")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = dict(
        model=args.model,
        machine=platform.platform(),
        cpus=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=load_after,
        calibration_seconds=calibration_seconds,
        tolerance=TOLERANCE,
        within=hits,
        runs=rows,
    )
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
