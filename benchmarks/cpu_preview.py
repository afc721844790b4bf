"""CPU end to end at the published size: a 16-frame quick preview against the 70-frame default video,
before (the defaults until issue 11) and after, side by side in one run; prints tables, writes JSON.

    nice -n 10 python benchmarks/cpu_preview.py
    python benchmarks/cpu_preview.py --preview-steps 8 --measure-steps 2 --baseline-decode-frames 8

Models have the published architectures (SD v1-4 VAE, CLIP ViT-B/32, FashionFlowUNet, adapter, and
TAESD's AutoencoderTiny for the tiny decoder) with random weights: time does not depend on the values.
Every recipe runs in a fresh subprocess, so its peak memory (the process's peak resident set) is its own.

- quick preview: 16 frames, dpm++ with few steps, tiny decoder, decode chunk chosen for the machine;
  the whole pipeline call is run and timed (photo in, MP4 out).
- 70-frame videos (25 dpm++ steps) take ~30 min here, so `--measure-steps` steps are run and the rest
  multiplied out (every step costs the same; the first one, which also sets up kernels, is counted
  as measured), and a few frames are decoded and scaled to 70. Such figures are marked *.
  "before": decode chunk 8, cross-attention over all tokens at once (the defaults until issue 11);
  "after": decode chunk chosen for the machine, cross-attention in chunks of tokens.
- decoders: seconds per 640 x 512 frame and peak memory above the loaded models, full VAE vs tiny.

Other people's work on the machine slows every figure: the JSON records os.getloadavg() around each
recipe; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_stages import published_size_pipeline  # noqa: E402  (the published-size models, random weights)

from fashionflow.runtime import configure_cpu_threads  # noqa: E402
from fashionflow.schedulers import make_scheduler  # noqa: E402
from fashionflow.video import export_video  # noqa: E402

PREVIEW_FRAMES = 16
VIDEO_FRAMES = 70
VIDEO_STEPS = 25
BEFORE_DECODE_CHUNK = 8


def build(tiny_decoder: bool):
    from diffusers import AutoencoderTiny

    pipe = published_size_pipeline("cpu", torch.float32)
    if tiny_decoder:
        torch.manual_seed(1)
        pipe.register_modules(tiny_vae=AutoencoderTiny().eval())  # TAESD's configuration (1.2 M decoder weights)
    return pipe


def photo() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (900, 700, 3), dtype=np.uint8))


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_seconds() -> float:
    """CPU time this process has used (all threads): divided by the threads, roughly what the wall time
    would be on an otherwise idle machine; shared cores stretch the wall time, much less this."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime  # children: ffmpeg


# recipes (each runs in its own subprocess) ----------------------------------------------------------------------


def quick_preview(args) -> dict:
    """The whole pipeline call, photo to MP4, timed stage by stage through its progress reports."""
    configure_cpu_threads()
    pipe = build(tiny_decoder=True)
    loaded = rss_mib()
    marks: dict[str, float] = {}
    encode = pipe.encode_image

    def timed_encode(*a, **k):
        start = time.perf_counter()
        result = encode(*a, **k)
        marks["encode"] = time.perf_counter() - start
        return result

    pipe.encode_image = timed_encode

    def progress(stage, done, total):
        marks.setdefault(f"{stage}_first", time.perf_counter())
        marks[f"{stage}_last"] = time.perf_counter()

    chunk = pipe.decode_chunk_size_for("tiny", PREVIEW_FRAMES)
    with tempfile.TemporaryDirectory() as folder:
        start, cpu_start = time.perf_counter(), cpu_seconds()
        pipe(
            photo(),
            num_frames=PREVIEW_FRAMES,
            num_inference_steps=args.preview_steps,
            decoder="tiny",
            generator=torch.Generator().manual_seed(0),
            output_path=Path(folder) / "preview.mp4",
            progress=progress,
        )
        total = time.perf_counter() - start
        cpu_total = cpu_seconds() - cpu_start
    denoise_start = marks["denoise_first"] - (marks["denoise_last"] - marks["denoise_first"]) / max(
        args.preview_steps - 1, 1
    )  # the first report comes after the first step
    stages = {
        "encode": marks["encode"],
        "denoise": marks["denoise_last"] - denoise_start,
        "decode": marks["decode_last"] - marks["denoise_last"],
        "export": marks["export_last"] - marks["decode_last"],
    }
    return dict(
        recipe="quick preview",
        frames=PREVIEW_FRAMES,
        steps=args.preview_steps,
        decoder="tiny",
        decode_chunk_size=chunk,
        forward_chunking=True,
        stages=stages,
        total_seconds=total,
        cpu_seconds=cpu_total,
        threads=torch.get_num_threads(),
        extrapolated=False,
        peak_mib=peak_rss_mib(),
        models_mib=loaded,
    )


def video(args, *, before: bool, decoder: str = "full") -> dict:
    """A 70-frame video in parts: encode, `measure_steps` steps, a few decoded frames, export; scaled to the whole."""
    if not before:
        configure_cpu_threads()
    pipe = build(tiny_decoder=decoder == "tiny")
    if before:
        pipe.unet.disable_forward_chunking()
    loaded = rss_mib()
    generator = torch.Generator().manual_seed(0)
    stages, measured, cpu = {}, {}, {}
    with torch.no_grad():
        start, cpu_start = time.perf_counter(), cpu_seconds()
        still = pipe.prepare_image(photo(), "stretch")
        context, first = pipe.encode_image([still], generator)
        stages["encode"], cpu["encode"] = time.perf_counter() - start, cpu_seconds() - cpu_start

        scheduler = make_scheduler("dpm++", pipe.scheduler.config)
        scheduler.set_timesteps(VIDEO_STEPS)
        latents = pipe.prepare_latents(first, VIDEO_FRAMES, scheduler.init_noise_sigma, generator)
        step_seconds, step_cpu = [], []
        for t in scheduler.timesteps[: args.measure_steps]:
            start, cpu_start = time.perf_counter(), cpu_seconds()
            noise = pipe.unet(latents, t, context).sample
            latents = scheduler.step(noise, t, latents).prev_sample
            latents[:, :, 0] = first
            step_seconds.append(time.perf_counter() - start)
            step_cpu.append(cpu_seconds() - cpu_start)
        per_step = float(np.median(step_seconds[1:])) if len(step_seconds) > 1 else step_seconds[0]
        stages["denoise"] = step_seconds[0] + per_step * (VIDEO_STEPS - 1)
        per_step_cpu = float(np.median(step_cpu[1:])) if len(step_cpu) > 1 else step_cpu[0]
        cpu["denoise"] = step_cpu[0] + per_step_cpu * (VIDEO_STEPS - 1)
        measured["step_seconds"], measured["step_cpu_seconds"] = step_seconds, step_cpu

        chunk = BEFORE_DECODE_CHUNK if before else pipe.decode_chunk_size_for(decoder, VIDEO_FRAMES)
        frames = max(args.baseline_decode_frames if before else args.decode_frames, chunk)
        frames -= frames % chunk
        start, cpu_start = time.perf_counter(), cpu_seconds()
        decoded = pipe.decode_latents(latents[:, :, :frames], chunk_size=chunk, decoder=decoder)
        per_frame = (time.perf_counter() - start) / frames
        stages["decode"] = per_frame * VIDEO_FRAMES
        cpu["decode"] = (cpu_seconds() - cpu_start) / frames * VIDEO_FRAMES
        measured.update(decoded_frames=frames, decode_seconds_per_frame=per_frame)

    pictures = pipe.postprocess(decoded, "pil")[0]
    pictures = (pictures * (VIDEO_FRAMES // len(pictures) + 1))[:VIDEO_FRAMES]
    with tempfile.TemporaryDirectory() as folder:
        start, cpu_start = time.perf_counter(), cpu_seconds()
        export_video(pictures, Path(folder) / "video.mp4")
        stages["export"], cpu["export"] = time.perf_counter() - start, cpu_seconds() - cpu_start
    name = "70 frames, before" if before else f"70 frames, after{', tiny decoder' if decoder == 'tiny' else ''}"
    return dict(
        recipe=name,
        frames=VIDEO_FRAMES,
        steps=VIDEO_STEPS,
        decoder=decoder,
        decode_chunk_size=chunk,
        forward_chunking=not before,
        stages=stages,
        total_seconds=sum(stages.values()),
        extrapolated=True,
        cpu_seconds=sum(cpu.values()),
        cpu_stages=cpu,
        threads=torch.get_num_threads(),
        measured=measured,
        peak_mib=peak_rss_mib(),
        models_mib=loaded,
    )


def decoder_speed(args, decoder: str, chunk: int) -> dict:
    """Seconds per 640 x 512 frame and peak memory above the loaded models, one decoder, one chunk size."""
    configure_cpu_threads()
    pipe = build(tiny_decoder=True)
    latents = torch.randn(1, 4, args.decoder_frames, 80, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pipe.decode_latents(latents[:, :, :1], chunk_size=1, decoder=decoder)  # first call sets up kernels
        base = rss_mib()
        start, cpu_start = time.perf_counter(), cpu_seconds()
        pipe.decode_latents(latents, chunk_size=chunk, decoder=decoder)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    return dict(
        decoder=decoder,
        decode_chunk_size=chunk,
        frames=args.decoder_frames,
        seconds_per_frame=seconds / args.decoder_frames,
        cpu_seconds_per_frame=cpu / args.decoder_frames,
        threads=torch.get_num_threads(),
        peak_above_models_mib=peak_rss_mib() - base,
    )


# driver -----------------------------------------------------------------------------------------------------------------


def run_in_subprocess(case: str, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--case",
        case,
        "--preview-steps",
        str(args.preview_steps),
        "--measure-steps",
        str(args.measure_steps),
        "--decode-frames",
        str(args.decode_frames),
        "--baseline-decode-frames",
        str(args.baseline_decode_frames),
        "--decoder-frames",
        str(args.decoder_frames),
    ]
    load_before = os.getloadavg()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["loadavg_before"], result["loadavg_after"] = load_before, os.getloadavg()
    return result


def run_case(case: str, args) -> dict:
    if case == "preview":
        return quick_preview(args)
    if case == "before":
        return video(args, before=True)
    if case == "after":
        return video(args, before=False)
    if case == "after-tiny":
        return video(args, before=False, decoder="tiny")
    decoder, chunk = case.split(":")
    return decoder_speed(args, decoder, int(chunk))


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def print_tables(recipes: list[dict], decoders: list[dict]) -> None:
    print(
        f"\n{'recipe':<30}{'frames':>7}{'steps':>6}{'decoder':>8}{'chunk':>6}{'encode':>8}{'denoise':>9}"
        f"{'decode':>8}{'export':>8}{'total':>10}{'CPU/threads':>12}{'peak GB':>9}{'load':>6}"
    )
    for r in recipes:
        s, mark = r["stages"], "*" if r["extrapolated"] else " "
        idle = r["cpu_seconds"] / r["threads"] if "cpu_seconds" in r else None
        print(
            f"{r['recipe']:<30}{r['frames']:>7}{r['steps']:>6}{r['decoder']:>8}{r['decode_chunk_size']:>6}"
            f"{s['encode']:>7.1f}s{s['denoise']:>8.0f}s{mark}{s['decode']:>6.0f}s{mark}{s['export']:>7.1f}s"
            f"{_minutes(r['total_seconds']):>9}{mark}{_minutes(idle):>12}{r['peak_mib'] / 1024:>9.1f}"
            f"{r['loadavg_before'][0]:>6.1f}"
        )
    print("* extrapolated from the measured steps and frames (JSON: measured). CPU/threads: CPU time used divided by")
    print("  the threads, about the wall time on an idle machine. load: 1-minute load average before the recipe.")
    print(f"\n{'decoder':<10}{'chunk':>6}{'s / frame':>11}{'CPU/threads':>13}{'peak MiB above models':>24}{'load':>6}")
    for d in decoders:
        idle = d["cpu_seconds_per_frame"] / d["threads"] if "cpu_seconds_per_frame" in d else float("nan")
        print(
            f"{d['decoder']:<10}{d['decode_chunk_size']:>6}{d['seconds_per_frame']:>11.2f}{idle:>13.2f}"
            f"{d['peak_above_models_mib']:>24.0f}{d['loadavg_before'][0]:>6.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preview-steps", type=int, default=10, help="dpm++ steps of the quick preview")
    parser.add_argument("--measure-steps", type=int, default=2, help="70-frame steps actually run per recipe")
    parser.add_argument("--decode-frames", type=int, default=2, help="frames actually decoded, after")
    parser.add_argument("--baseline-decode-frames", type=int, default=8, help="frames actually decoded, before")
    parser.add_argument("--decoder-frames", type=int, default=4, help="frames per decoder measurement")
    parser.add_argument(
        "--skip", nargs="*", default=[], help="recipes to leave out: preview before after after-tiny decoders"
    )
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/cpu_preview.json"))
    parser.add_argument("--tables-from", type=Path, help="print the tables of a JSON written before, run nothing")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one recipe, print its JSON
    args = parser.parse_args()

    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return
    if args.tables_from:
        saved = json.loads(args.tables_from.read_text())
        print_tables(saved["recipes"], saved["decoders"])
        return

    recipes, decoders = [], []
    for case in ("preview", "before", "after", "after-tiny"):
        if case not in args.skip:
            recipes.append(run_in_subprocess(case, args))
            print(f"{recipes[-1]['recipe']}: {recipes[-1]['total_seconds']:.0f} s", flush=True)
    if "decoders" not in args.skip:
        for case in ("full:1", "full:2", "tiny:1", "tiny:2"):
            decoders.append(run_in_subprocess(case, args))
            print(f"decoder {case}: {decoders[-1]['seconds_per_frame']:.2f} s/frame", flush=True)
    print_tables(recipes, decoders)
    result = dict(
        machine=platform.processor() or platform.machine(),
        cpus=os.cpu_count(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        recipes=recipes,
        decoders=decoders,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"\nJSON: {args.output}")


if __name__ == "__main__":
    main()
