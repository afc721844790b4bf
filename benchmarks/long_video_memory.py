"""Peak memory of a video of 1, 2 and 4 chained clips written to a file: flat, because the frames go
to the encoder as they are decoded; beside it the same videos with their frames returned, and
written the way the pipeline wrote them before (all frames decoded, then handed over).

    python benchmarks/long_video_memory.py            # table + benchmarks/results/long_video_memory.json
    python benchmarks/long_video_memory.py --quick    # 1 and 2 clips, small frames: a smoke run

The model is the `tiny-random` architecture (untrained, a few hundred thousand weights) at the
published 640 x 512 frame, so that what grows with the video, its decoded frames (3.9 MB each in
float32, 1 MB as 8-bit pictures), is not hidden by the model's own working memory, which does not
grow with it. Each run is a fresh process (no run inherits another's memory), each row the median
of `--repeats` runs (the allocator's peak varies by some tens of MB from run to run): "peak" is the
process's peak resident memory during the call (Linux: VmHWM, reset through /proc/self/clear_refs once
the model is built), "above the model" that peak less the memory of the loaded model and libraries
(the same in every row; the call's own one-off costs, such as imports on first use, are in it).
ffmpeg runs as a process of its own, not counted here; its memory does not grow with the length
either (x264 keeps a fixed window of frames).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

MODES = {
    "file": "streamed to the file, latents returned (output_type='latent', as the CLI)",
    "file+pil": "streamed to the file, PIL frames returned (output_type='pil', the default)",
    "before": "all frames decoded, then written (the pipeline before streaming)",
}

MEASURE = textwrap.dedent("""
    import json, sys, time
    import torch
    from fashionflow.assembly import assemble_pipeline, clip_tokens, random_image_encoder
    from fashionflow.models import ConditionAdapter, FashionFlowUNet
    from fashionflow.tiny import TINY_CLIP_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG
    from fashionflow.video import export_video
    from diffusers import AutoencoderKL
    from PIL import Image

    mode, clips, frames, height, width, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    image_encoder, feature_extractor = random_image_encoder(TINY_CLIP_CONFIG)
    adapter = ConditionAdapter(latent_size=(height // 8, width // 8), clip_tokens=clip_tokens(image_encoder),
                               context_dim=TINY_UNET_CONFIG["context_dim"])
    pipe = assemble_pipeline(AutoencoderKL(**TINY_VAE_CONFIG), image_encoder, feature_extractor,
                             FashionFlowUNet(**TINY_UNET_CONFIG), adapter, untrained=True)
    pipe.set_progress_bar_config(disable=True)
    photo = Image.new("RGB", (width, height), "gray")

    def resident_mb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) / 1024

    def run(num_clips, path):
        kwargs = dict(num_frames=frames, num_inference_steps=2, num_clips=num_clips, decode_chunk_size=1,
                      generator=torch.Generator().manual_seed(0))
        if mode == "file":
            pipe(photo, output_type="latent", output_path=path, **kwargs)
        elif mode == "file+pil":
            pipe(photo, output_type="pil", output_path=path, **kwargs)
        else:  # what __call__ did before: the whole video decoded, as PIL frames, then exported
            latents = pipe(photo, output_type="latent", **kwargs).frames
            pictures = pipe.postprocess(pipe.decode_latents(latents, 1), "pil")[0]
            del latents
            export_video(pictures, path)

    open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current size
    loaded = resident_mb("VmRSS")
    started = time.perf_counter()
    run(clips, folder + "/video.mp4")
    peak = resident_mb("VmHWM")
    print(json.dumps({"loaded_mb": loaded, "peak_mb": peak, "above_loaded_mb": peak - loaded,
                      "seconds": time.perf_counter() - started}))
""")


def measure(mode: str, clips: int, frames: int, height: int, width: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="long-video-memory-") as folder:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, mode, str(clips), str(frames), str(height), str(width), folder],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{mode}, {clips} clip(s) failed:\n{done.stderr[-3000:]}")
        from fashionflow.video import probe_video

        video_frames = probe_video(Path(folder) / "video.mp4").frames
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "video_frames": video_frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    parser.add_argument("--size", default="640x512", help="frame size HEIGHTxWIDTH (default the published 640x512)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per row (default 3): the allocator's peak varies by tens of MB"
    )
    parser.add_argument("--quick", action="store_true", help="1 and 2 clips of 128 x 128 frames, one run each")
    args = parser.parse_args()
    height, width = (int(n) for n in args.size.lower().split("x"))
    counts = (1, 2, 4)
    if args.quick:
        height, width, counts, args.repeats = 128, 128, (1, 2), 1

    rows = []
    for mode in MODES:
        for clips in counts:
            runs = [measure(mode, clips, args.frames, height, width) for _ in range(args.repeats)]
            row = {"mode": mode, "clips": clips, "video_frames": runs[0]["video_frames"], "runs": runs}
            for key in ("peak_mb", "above_loaded_mb"):
                row[key] = float(np.median([run[key] for run in runs]))
            rows.append(row)
            peaks = ", ".join(f"{run['peak_mb']:.0f}" for run in runs)
            print(f"  {mode}, {clips} clip(s): peak {peaks} MB", flush=True)
    base = {r["mode"]: r for r in rows if r["clips"] == 1}

    print(
        f"\nPeak memory of one call (median of {args.repeats} runs, each in a fresh process), {args.frames}-frame "
        f"clips of {height} x {width}, 2 steps, decoding 1 frame a call:\n"
    )
    print("| how | clips | frames | peak (runs) | x 1 clip | above the model | x 1 clip |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        one = base[r["mode"]]
        spread = "-".join(
            f"{v:.0f}" for v in (min(x["peak_mb"] for x in r["runs"]), max(x["peak_mb"] for x in r["runs"]))
        )
        print(
            f"| {MODES[r['mode']]} | {r['clips']} | {r['video_frames']} | {r['peak_mb']:.0f} MB ({spread}) | "
            f"{r['peak_mb'] / one['peak_mb']:.2f} | {r['above_loaded_mb']:.0f} MB | "
            f"{r['above_loaded_mb'] / one['above_loaded_mb']:.2f} |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "frames_per_clip": args.frames,
        "frame_size": [height, width],
        "repeats": args.repeats,
        "modes": MODES,
        "rows": rows,
        "load_average": os.getloadavg(),
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = RESULTS / "long_video_memory.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"\nResults: {out}")


if __name__ == "__main__":
    main()
