"""Are chained clips one seamless video? Motion at the joins against within the clips, and the figure's
colour clip by clip, on the model `benchmarks/train_synthetic.py` trains.

    nice -n 10 python benchmarks/chained_clips.py     # table + benchmarks/results/chained_clips/{results.json,strip.png}
    python benchmarks/chained_clips.py --model RUN/trained --heldout RUN/heldout_videos

For every held-out clip of the training benchmark (its first frame is the still) the model makes a video
of `--clips` chained clips of its own clip length (dpm++, `--steps` steps, seed 0), clip k+1 starting
from the last latent frame of clip k. Measures,
with the training benchmark's own functions (`colour_error`, `motion_energy`):

- motion at the joins: the frame-to-frame motion energy from the last frame a clip was given to the
  first frame it made, at each join, against the mean over every other pair of frames (within the
  clips). Goal: a join no more than 1.5 times the motion within.
- the figure's colour error to the still, clip by clip (the frames each clip made). Goal: no growth
  from clip 1 to the last.

The real held-out clips give the floor of both. Results average over the held-out clips.
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
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from train_synthetic import colour_error, motion_energy  # noqa: E402  (the training benchmark's measures)

from fashionflow.pipeline import FashionFlowPipeline  # noqa: E402
from fashionflow.video import chained_frames  # noqa: E402

TRAINED = HERE / "results" / "train_synthetic"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=TRAINED / "trained", help="pipeline folder")
    parser.add_argument("--heldout", type=Path, default=TRAINED / "heldout_videos", help="held-out clips (MP4)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "chained_clips", help="result folder")
    parser.add_argument("--clips", type=int, default=4, help="clips chained per video")
    parser.add_argument("--frames", type=int, help="frames per clip (default: the model's training clips, 16)")
    parser.add_argument("--steps", type=int, default=25, help="dpm++ steps per clip")
    parser.add_argument("--videos", type=int, help="use only the first N held-out clips")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)")
    return parser.parse_args()


def read_video(path: Path) -> np.ndarray:
    """Frames (f, H, W, 3) uint8 of a video file."""
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def fitted(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Frames brought to the model's frame size (the held-out clips are stored enlarged)."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BOX)) for f in frames])


def clip_spans(num_frames: int, num_clips: int) -> list[tuple[int, int]]:
    """(first frame it made, end) of each clip in the joined video: each clip makes every frame but the one
    it was given (the still's latent for clip 1, the last frame of the clip before for the others)."""
    return [(k * (num_frames - 1) + 1, k * (num_frames - 1) + num_frames) for k in range(num_clips)]


def measure(video: np.ndarray, still: np.ndarray, num_frames: int, num_clips: int) -> dict:
    """Motion at the joins and within the clips, and the colour error clip by clip, of one joined video."""
    steps = [motion_energy(video[i : i + 2]) for i in range(len(video) - 1)]  # pair i: frames i -> i + 1
    spans = clip_spans(num_frames, num_clips)
    joins = [first - 1 for first, _ in spans[1:]]  # the last given frame -> the first frame the clip made
    within = [m for i, m in enumerate(steps) if i not in joins]
    return {
        "join_motion": float(np.mean([steps[i] for i in joins])) if joins else None,
        "within_motion": float(np.mean(within)),
        "first_step_motion": steps[0],  # clip 1: the still's frame -> its first frame made, the same kind of step
        # colour_error leaves out its video's frame 0: here the frame before the clip's first one
        "colour_by_clip": [colour_error(video[first - 1 : end], still) for first, end in spans],
    }


def strip(video: np.ndarray, num_frames: int, num_clips: int) -> np.ndarray:
    """One row per clip, every 2nd frame and its last: each row begins with the frame the clip was given
    (marked by a dark bar above it: the still's latent for clip 1, the row above's last frame after)."""
    rows = []
    for k in range(num_clips):
        start = k * (num_frames - 1)
        shown = sorted({*range(start, start + num_frames, 2), start + num_frames - 1})
        given = start + 1
        tiles = []
        for i in shown:
            bar = np.full((3, video.shape[2], 3), 60 if i < given else 255, np.uint8)
            tiles += [np.concatenate([bar, video[i]]), np.full((video.shape[1] + 3, 2, 3), 255, np.uint8)]
        rows += [np.concatenate(tiles[:-1], axis=1), np.full((4, 1, 3), 255, np.uint8)]
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows[:-1]]
    return np.concatenate(rows, axis=0)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    pipe = FashionFlowPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    height, width = pipe.frame_size
    num_frames = args.frames or 16
    paths = sorted(args.heldout.glob("*.mp4"))[: args.videos]
    if not paths:
        sys.exit(f"No held-out clips (*.mp4) in {args.heldout}; run benchmarks/train_synthetic.py first.")
    args.output.mkdir(parents=True, exist_ok=True)

    rows: dict[str, list[dict]] = {"real held-out clips": []}
    videos: list[np.ndarray] = []
    started = time.perf_counter()
    for path in paths:
        real = fitted(read_video(path), height, width)
        still = real[0]
        rows["real held-out clips"].append(measure(real[:num_frames], still, num_frames, 1))
        output = pipe(
            Image.fromarray(read_video(path)[0]),
            num_frames=num_frames,
            num_clips=args.clips,
            sampler="dpm++",
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        )
        video = (output.frames[0] * 255).round().astype(np.uint8)
        assert len(video) == chained_frames(num_frames, args.clips)
        videos.append(video)
        rows.setdefault("chained", []).append(measure(video, still, num_frames, args.clips))
        print(f"  {path.name}: done ({(time.perf_counter() - started) / 60:.1f} min)", flush=True)

    summary = {}
    for name, per_video in rows.items():
        joins = [r["join_motion"] for r in per_video if r["join_motion"] is not None]
        summary[name] = {
            "join_motion": float(np.mean(joins)) if joins else None,
            "within_motion": float(np.mean([r["within_motion"] for r in per_video])),
            "first_step_motion": float(np.mean([r["first_step_motion"] for r in per_video])),
            "colour_by_clip": np.mean([r["colour_by_clip"] for r in per_video], axis=0).tolist(),
        }

    print(
        f"\n{len(paths)} held-out clips, {args.clips} clips of {num_frames} frames chained "
        f"({width} x {height}, dpm++ {args.steps} steps, seed 0); motion energy 0-255, colour error 0-255\n"
    )
    colour_heads = " | ".join(f"colour clip {k + 1}" for k in range(args.clips))
    print(f"| video | join motion | within motion | join / within | still -> frame 1 | {colour_heads} |")
    print("|---|---:|---:|---:|---:|" + "---:|" * args.clips)
    for name, s in summary.items():
        join = f"{s['join_motion']:.2f}" if s["join_motion"] is not None else "-"
        ratio = f"{s['join_motion'] / s['within_motion']:.2f}x" if s["join_motion"] is not None else "-"
        colours = " | ".join(
            [f"{c:.1f}" for c in s["colour_by_clip"]] + ["-"] * (args.clips - len(s["colour_by_clip"]))
        )
        print(f"| {name} | {join} | {s['within_motion']:.2f} | {ratio} | {s['first_step_motion']:.2f} | {colours} |")

    picture = Image.fromarray(strip(videos[0], num_frames, args.clips))  # the first held-out clip's video
    picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST).save(
        args.output / "strip.png", optimize=True
    )
    results = {
        "model": str(args.model),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "frames_per_clip": num_frames,
        "heldout_clips": [p.name for p in paths],
        "summary": summary,
        "per_video": rows,
        "minutes": (time.perf_counter() - started) / 60,
        "load_average": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
    }
    (args.output / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nResults: {args.output / 'results.json'}; strip: {args.output / 'strip.png'}")


if __name__ == "__main__":
    main()
