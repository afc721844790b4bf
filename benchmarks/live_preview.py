"""What the app's live preview costs: whole generations with it and without it, side by side in one run,
and what one look and the colour map's fit cost at the published size; prints tables, writes JSON.

    nice -n 10 python benchmarks/live_preview.py
    python benchmarks/live_preview.py --repeats 2 --published-size   # also whole published-size videos (slow)

"With" is what the app does while a visitor watches: `run_generation` hands its latents to a
`LivePreviews` after every step, and a second thread plays the page, asking for a look every 0.5 s
(the page's status clock), which is made (a few frames through the colour map, JPEG, HTML) when a
step has ended since the last and the looks are within their budget (`LOOK_BUDGET`). "Without" is the same generation with no watcher and no page.

Two measures of the cost, for each model:
- the preview's own work per video: the time spent in the watcher (every step) and in making the
  looks (the page's thread, on the same CPU), as a share of the video's time, in wall-clock seconds
  and in CPU seconds (the threads' own CPU time against the whole process's during the video: what
  a busy shared machine disturbs least). What the ceiling of 5% is checked against.
- the difference of the median end-to-end times with and without (runs interleaved ABBA). On a
  shared machine this is mostly noise at the level of a few percent; it is shown with the spread.
The map from latents to colours is fitted once per model, at load, in the background: its time
is shown apart ("fit at load"), not as part of any video.

Whole videos: `tiny-random` (steps of milliseconds: the worst case for a share); with
`--published-size`, also the published architecture with random weights (speed does not depend on
the values) at a short length, since a 70-frame video takes half an hour on this project's CPU.
One look (CPU time, median of `--look-repeats`) is measured on latents of both sizes: the tiny
model's (8 frames of 16 x 16) and the published model's (70 frames of 80 x 64); the fit, on the
tiny VAE and on one of Stable Diffusion's shape. The JSON records os.getloadavg().
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_stages import published_size_pipeline  # noqa: E402  (the published-size models, random weights)

from fashionflow import service  # noqa: E402
from fashionflow.latent_preview import LatentColours  # noqa: E402
from fashionflow.page.html import live_preview_html  # noqa: E402
from fashionflow.runtime import configure_cpu_threads  # noqa: E402

PAGE_POLL_SECONDS = 0.5  # the page's status clock (app.py's job timer), which asks for the looks
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


class Page(threading.Thread):
    """Plays the visitor's page: every `PAGE_POLL_SECONDS`, a look when there is a new step; times them."""

    def __init__(self, previews: service.LivePreviews, session: str):
        super().__init__(daemon=True)
        self.previews, self.session = previews, session
        self.done = threading.Event()
        self.looks, self.seconds, self.cpu_seconds, self.bytes = 0, 0.0, 0.0, 0

    def run(self) -> None:
        while not self.done.wait(PAGE_POLL_SECONDS):
            started, cpu_started = time.perf_counter(), time.thread_time()
            look = self.previews.look(self.session)
            if look is not None:
                self.looks += 1
                self.bytes += len(live_preview_html(look))
            self.seconds += time.perf_counter() - started
            self.cpu_seconds += time.thread_time() - cpu_started


def one_video(pipeline, photo, settings, watching: bool) -> dict:
    previews, session = service.LivePreviews(), "visitor"
    page, watch, watch_seconds, watch_cpu_seconds = None, None, [0.0], [0.0]
    if watching:
        keep = previews.watcher(session)

        def watch(snapshot):
            started, cpu_started = time.perf_counter(), time.thread_time()
            keep(snapshot)
            watch_seconds[0] += time.perf_counter() - started
            watch_cpu_seconds[0] += time.thread_time() - cpu_started

        page = Page(previews, session)
        page.start()
    with tempfile.TemporaryDirectory(prefix="fashionflow-live-preview-") as folder:
        started, cpu_started = time.perf_counter(), time.process_time()
        service.run_generation(pipeline, photo, settings, Path(folder) / "job", watch=watch)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    record = {"watching": watching, "seconds": seconds, "cpu_seconds": cpu_seconds}
    if page is not None:
        page.done.set()
        page.join()
        work, cpu_work = watch_seconds[0] + page.seconds, watch_cpu_seconds[0] + page.cpu_seconds
        record.update(
            looks=page.looks,
            look_seconds=page.seconds,
            watch_seconds=watch_seconds[0],
            preview_seconds=work,
            preview_share=work / seconds,
            preview_cpu_seconds=cpu_work,
            preview_cpu_share=cpu_work / cpu_seconds,
            bytes_per_look=page.bytes / max(page.looks, 1),
        )
    return record


def measure(name: str, pipeline, settings, repeats: int) -> dict:
    photo = Image.open(EXAMPLE).convert("RGB")
    started = time.perf_counter()
    LatentColours.fit(pipeline.vae, pipeline.execution_device)  # what the app does once, at load
    fit_seconds = time.perf_counter() - started
    one_video(pipeline, photo, settings, watching=True)  # warm-up (memory pools, the colour map's cache)
    runs = []
    for index in range(repeats):
        order = (False, True) if index % 2 == 0 else (True, False)  # ABBA: drift hits both alike
        for watching in order:
            runs.append(one_video(pipeline, photo, settings, watching))
            print(f"  {name}: {'with' if watching else 'without'} live preview {runs[-1]['seconds']:.2f} s", flush=True)
    without = [r["seconds"] for r in runs if not r["watching"]]
    with_ = [r for r in runs if r["watching"]]
    return {
        "model": name,
        "settings": {"steps": settings.steps, "num_frames": settings.num_frames, "sampler": settings.sampler},
        "fit_seconds": fit_seconds,
        "runs": runs,
        "median_without": statistics.median(without),
        "median_with": statistics.median(r["seconds"] for r in with_),
        "spread_without": [min(without), max(without)],
        "spread_with": [min(r["seconds"] for r in with_), max(r["seconds"] for r in with_)],
        "preview_share_max": max(r["preview_share"] for r in with_),
        "preview_cpu_share_max": max(r["preview_cpu_share"] for r in with_),
        "preview_seconds_median": statistics.median(r["preview_seconds"] for r in with_),
        "looks_median": statistics.median(r["looks"] for r in with_),
        "bytes_per_look": statistics.median(r["bytes_per_look"] for r in with_),
    }


def look_costs(tiny, repeats: int) -> list[dict]:
    """CPU milliseconds of one look and of the colour map's fit, at each model's latent size."""
    from diffusers import AutoencoderKL
    from pipeline_stages import SD_VAE_CONFIG

    torch.manual_seed(0)
    sd_shaped = AutoencoderKL(**SD_VAE_CONFIG).eval()
    rows = []
    for name, vae, shape in (
        ("tiny-random", tiny.vae, (1, 4, 8, 16, 16)),
        ("published size", sd_shaped, (1, 4, 70, 80, 64)),
    ):
        started = time.process_time()
        colours = LatentColours.fit(vae, "cpu")
        fit_cpu = time.process_time() - started
        previews, latents = service.LivePreviews(budget=float("inf")), torch.randn(*shape)
        keep, costs, sizes = previews.watcher("visitor"), [], []
        for step in range(repeats + 1):
            keep(service.LatentSnapshot(latents, step + 1, repeats + 1, colours))
            started = time.thread_time()
            html = live_preview_html(previews.look("visitor"))
            costs.append(time.thread_time() - started)
            sizes.append(len(html))
        rows.append(
            {
                "model": name,
                "latents": list(shape),
                "look_cpu_ms": 1000 * statistics.median(costs[1:]),  # the first one warms up
                "look_kb": statistics.median(sizes) / 1024,
                "fit_cpu_seconds": fit_cpu,
            }
        )
    return rows


def print_looks(rows: list[dict]) -> None:
    print("\nOne look and the fit at load (CPU time)")
    print("| model | latents (frames x h x w) | one look | its HTML | colour map fit at load |")
    print("|---|---|---|---|---|")
    for r in rows:
        _, _, frames, h, w = r["latents"]
        print(
            f"| {r['model']} | {frames} x {h} x {w} | {r['look_cpu_ms']:.1f} ms | {r['look_kb']:.0f} KB | "
            f"{r['fit_cpu_seconds']:.2f} s |"
        )


def print_table(results: list[dict], load: tuple) -> None:
    print(f"\nLive preview cost, {platform.processor() or platform.machine()}, load average {load[0]:.1f}")
    header = (
        "| model | steps x frames | video without | video with | difference | preview work per video | "
        "share of the video (worst run): time / CPU | looks per video | fit at load |"
    )
    print(header)
    print("|" + "---|" * 9)
    for r in results:
        s = r["settings"]
        difference = 100 * (r["median_with"] / r["median_without"] - 1)
        print(
            f"| {r['model']} | {s['steps']} x {s['num_frames']} | {r['median_without']:.2f} s "
            f"({r['spread_without'][0]:.2f}-{r['spread_without'][1]:.2f}) | {r['median_with']:.2f} s "
            f"({r['spread_with'][0]:.2f}-{r['spread_with'][1]:.2f}) | {difference:+.1f}% | "
            f"{1000 * r['preview_seconds_median']:.0f} ms | {100 * r['preview_share_max']:.2f}% / "
            f"{100 * r['preview_cpu_share_max']:.2f}% | "
            f"{r['looks_median']:.0f} ({r['bytes_per_look'] / 1024:.0f} KB each) | {r['fit_seconds']:.2f} s |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=4, help="videos with and without, each (default: 4)")
    parser.add_argument("--tiny-steps", type=int, default=100)
    parser.add_argument("--tiny-frames", type=int, default=16)
    parser.add_argument("--published-steps", type=int, default=4)
    parser.add_argument("--published-frames", type=int, default=8)
    parser.add_argument("--published-repeats", type=int, default=1)
    parser.add_argument("--published-size", action="store_true", help="also whole published-size videos (slow)")
    parser.add_argument("--look-repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: what the app takes)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/live_preview.json"))
    args = parser.parse_args()

    threads = configure_cpu_threads()
    if args.threads:
        torch.set_num_threads(threads := args.threads)
    load_before = os.getloadavg()
    results = []
    tiny = service.load_model("tiny-random").pipeline
    tiny.set_progress_bar_config(disable=True)
    settings = service.GenerationSettings(seed=0, steps=args.tiny_steps, num_frames=args.tiny_frames)
    results.append(measure("tiny-random", tiny, settings, args.repeats))
    if args.published_size:
        published = published_size_pipeline("cpu", torch.float32)
        settings = service.GenerationSettings(
            seed=0, steps=args.published_steps, num_frames=args.published_frames, decode_chunk_size=1
        )
        results.append(measure("published size (random weights)", published, settings, args.published_repeats))
    looks = look_costs(tiny, args.look_repeats)
    load_after = os.getloadavg()
    print_table(results, load_after)
    print_looks(looks)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"processor": platform.processor(), "threads": threads, "torch": torch.__version__},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "page_poll_seconds": PAGE_POLL_SECONDS,
        "results": results,
        "looks": looks,
    }
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
