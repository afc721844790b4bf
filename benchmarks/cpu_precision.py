"""CPU precision and layout, side by side in one run: float32 as it ran before issue 19 (channels-first
convolutions), the automatic choice (what `load_pipeline` picks on this CPU: `runtime.choose_cpu_settings`),
and bfloat16 forced (with the layout chosen for it). Prints a table with the processor's capabilities,
writes JSON.

    nice -n 10 python benchmarks/cpu_precision.py               # published sizes, random weights
    python benchmarks/cpu_precision.py --smoke                  # every case on tiny models, in seconds
    nice -n 10 python benchmarks/cpu_precision.py --settings float32 auto --skip preview

Work measured per setting, each case in a fresh process (its peak memory is its own):
- U-Net step at 16 and 70 frames (published U-Net, 640 x 512 frames: latents 80 x 64);
- decoding, seconds per 640 x 512 frame, the full VAE (SD v1-4's architecture) and the tiny one (TAESD's);
- the quick preview: the whole pipeline call, photo to MP4, 16 frames, 10 dpm++ steps, tiny decoder;
- the 70-frame, 25-step video end to end: encode, `--measure-steps` steps, `--decode-frames` decoded frames,
  export, with the steps and frames multiplied out to 25 and 70 (marked *: every step costs the same);
- one training step (`train`, the loop as the command runs it) of benchmarks/train_synthetic.py's small
  model (3.7 M parameters, batch 4, 16 frames of 64 x 64): `--mixed-precision no` for float32 and auto,
  `bf16` (accelerate's CPU autocast) for bfloat16.

Time is given as wall seconds and as CPU seconds divided by the threads (about the wall time on an idle
machine: on a shared machine the wall time stretches, the CPU time much less). The JSON records the load
average around each case. On a CPU without bfloat16 units (AMX, AVX512-BF16) PyTorch emulates bfloat16, so
the bfloat16 column shows what the automatic choice avoids there, not what such units give.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cpu_preview import cpu_seconds, peak_rss_mib, photo, rss_mib  # noqa: E402
from pipeline_stages import PeakMemory  # noqa: E402

from fashionflow import runtime  # noqa: E402
from fashionflow.loading import apply_cpu_settings  # noqa: E402
from fashionflow.runtime import choose_cpu_settings, configure_cpu_threads, cpu_features, dtype_name  # noqa: E402
from fashionflow.schedulers import make_scheduler  # noqa: E402
from fashionflow.video import export_video  # noqa: E402

SETTINGS = ("float32", "auto", "bfloat16")
CASES = ("unet16", "video70", "tiny", "preview", "train")
VIDEO_STEPS = 25


def sizes(smoke: bool) -> dict:
    """Frames of each case: the published ones, or small ones for the tiny models of a smoke run."""
    if smoke:
        return dict(unet_frames=4, video_frames=8, preview_frames=4, preview_steps=2, train_frames=4)
    return dict(unet_frames=16, video_frames=70, preview_frames=16, preview_steps=10, train_frames=16)


def cpu_settings_for(setting: str):
    """What `setting` runs: float32 channels-first (before issue 19), this CPU's automatic choice, or bfloat16."""
    if setting == "float32":
        before = runtime.StageSettings(torch.float32, channels_last=False, why="as before issue 19")
        return runtime.CpuSettings(cpu_features(), unet=before, decoders=before)
    return choose_cpu_settings(torch.bfloat16 if setting == "bfloat16" else None)


def build(setting: str, smoke: bool):
    """The pipeline in `setting`: published architectures with random weights (tiny ones with --smoke)."""
    from diffusers import AutoencoderTiny

    if smoke:
        from fashionflow.tiny import build_tiny_pipeline

        pipe = build_tiny_pipeline()
    else:
        from pipeline_stages import published_size_pipeline

        pipe = published_size_pipeline("cpu", torch.float32)
        torch.manual_seed(1)
        pipe.register_modules(tiny_vae=AutoencoderTiny().eval())  # TAESD's configuration
    pipe.set_progress_bar_config(disable=True)
    apply_cpu_settings(pipe, cpu_settings_for(setting))
    return pipe


class Clock:
    """Wall and CPU seconds (all threads, and ffmpeg) of a stretch of work."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, cpu_seconds() - self.cpu


def median_after_first(values: list[float]) -> float:
    """The first run also sets kernels up: the median of the others, or the only one."""
    return float(np.median(values[1:])) if len(values) > 1 else values[0]


# cases (each runs in its own process) -------------------------------------------------------------------------------


@torch.no_grad()
def unet_steps(pipe, frames: int, steps: int) -> dict:
    latent_h, latent_w = pipe.adapter.config.latent_size
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, frames, latent_h, latent_w, generator=generator).to(pipe.unet.dtype)
    context = torch.randn(1, pipe.adapter.config.clip_tokens, pipe.unet.config.context_dim, generator=generator)
    walls, cpus = [], []
    for _ in range(steps):
        with Clock() as clock:
            pipe.unet(sample, 999, context.to(pipe.unet.dtype))
        walls.append(clock.wall)
        cpus.append(clock.cpu)
    return dict(seconds=median_after_first(walls), cpu_seconds=median_after_first(cpus), runs=walls)


@torch.no_grad()
def video(pipe, args, size: dict) -> dict:
    """The 70-frame video in parts, scaled to the whole (the U-Net step and the full decoder per frame with it)."""
    frames = size["video_frames"]
    stages, cpu = {}, {}
    generator = torch.Generator().manual_seed(0)
    with Clock() as clock:
        context, first = pipe.encode_image([pipe.prepare_image(photo(), "stretch")], generator)
    stages["encode"], cpu["encode"] = clock.wall, clock.cpu

    scheduler = make_scheduler("dpm++", pipe.scheduler.config)
    scheduler.set_timesteps(VIDEO_STEPS)
    latents = pipe.prepare_latents(first, frames, scheduler.init_noise_sigma, generator)
    walls, cpus = [], []
    for t in scheduler.timesteps[: args.measure_steps]:
        with Clock() as clock:
            noise = pipe.unet(latents.to(pipe.unet.dtype), t, context.to(pipe.unet.dtype)).sample.float()
            latents = scheduler.step(noise, t, latents).prev_sample
            latents[:, :, 0] = first
        walls.append(clock.wall)
        cpus.append(clock.cpu)
    step, step_cpu = median_after_first(walls), median_after_first(cpus)
    stages["denoise"], cpu["denoise"] = walls[0] + step * (VIDEO_STEPS - 1), cpus[0] + step_cpu * (VIDEO_STEPS - 1)

    chunk = pipe.decode_chunk_size_for("full", frames)
    count = max(args.decode_frames, chunk)
    count -= count % chunk
    memory, before = {}, rss_mib()
    with PeakMemory("cpu").measure(memory), Clock() as clock:
        decoded = pipe.decode_latents(latents[:, :, :count], chunk_size=chunk, decoder="full")
    per_frame, per_frame_cpu = clock.wall / count, clock.cpu / count
    stages["decode"], cpu["decode"] = per_frame * frames, per_frame_cpu * frames

    pictures = pipe.postprocess(decoded, "pil")[0]
    pictures = (pictures * (frames // len(pictures) + 1))[:frames]
    with tempfile.TemporaryDirectory() as folder, Clock() as clock:
        export_video(pictures, Path(folder) / "video.mp4")
    stages["export"], cpu["export"] = clock.wall, clock.cpu
    return dict(
        seconds=sum(stages.values()),
        cpu_seconds=sum(cpu.values()),
        stages=stages,
        cpu_stages=cpu,
        step_seconds=step,
        step_cpu_seconds=step_cpu,
        step_runs=walls,
        decode_seconds_per_frame=per_frame,
        decode_cpu_seconds_per_frame=per_frame_cpu,
        decode_chunk_size=chunk,
        decoded_frames=count,
        decode_peak_above_mib=memory["peak_mib"] - before,
        extrapolated=True,
    )


@torch.no_grad()
def tiny_decoder(pipe, args) -> dict:
    latent_h, latent_w = pipe.adapter.config.latent_size
    latents = torch.randn(1, 4, args.decode_frames, latent_h, latent_w, generator=torch.Generator().manual_seed(0))
    chunk = pipe.decode_chunk_size_for("tiny", args.decode_frames)
    pipe.decode_latents(latents[:, :, :1], chunk_size=1, decoder="tiny")  # sets kernels up
    memory, before = {}, rss_mib()
    with PeakMemory("cpu").measure(memory), Clock() as clock:
        pipe.decode_latents(latents, chunk_size=chunk, decoder="tiny")
    frames = args.decode_frames
    return dict(
        seconds=clock.wall / frames,
        cpu_seconds=clock.cpu / frames,
        decode_chunk_size=chunk,
        decode_peak_above_mib=memory["peak_mib"] - before,
    )


def preview(pipe, size: dict) -> dict:
    with tempfile.TemporaryDirectory() as folder, Clock() as clock:
        pipe(
            photo(),
            num_frames=size["preview_frames"],
            num_inference_steps=size["preview_steps"],
            decoder="tiny",
            generator=torch.Generator().manual_seed(0),
            output_path=Path(folder) / "preview.mp4",
        )
    return dict(seconds=clock.wall, cpu_seconds=clock.cpu)


def train_step(setting: str, args, size: dict) -> dict:
    """Seconds per optimiser step of `train` on the small model (median of the steps after the first)."""
    from accelerate.state import AcceleratorState, GradientState

    from fashionflow import loading
    from fashionflow.training.train import TrainConfig, train

    AcceleratorState._reset_state(True)  # a smoke run trains several times in one process, each its own way
    GradientState._reset_state()
    chosen = loading.choose_cpu_settings
    if setting == "float32":  # the layout of before: train loads its pipeline through load_pipeline
        loading.choose_cpu_settings = lambda dtype=None: cpu_settings_for("float32")
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(
            data=str(args.train_data),
            output=str(Path(folder) / "run"),
            model=str(args.train_data.parent / "model"),
            init="model",
            max_steps=args.train_steps,
            batch_size=4,
            learning_rate=1e-4,
            seed=0,
            log_every=1,
            checkpoint_every=10**6,
            validation_every=10**9,
            report_to=None,
            mixed_precision="bf16" if setting == "bfloat16" else "no",
        )
        try:
            with Clock() as clock:
                result = train(config, show_progress=False)
        finally:
            loading.choose_cpu_settings = chosen
    seconds = [m["seconds_per_step"] for m in result.metrics]
    return dict(
        seconds=median_after_first(seconds),
        run_cpu_seconds=clock.cpu,  # the whole run's, set-up included
        mixed_precision=config.mixed_precision,
        losses=[m["loss"] for m in result.metrics],
        runs=seconds,
    )


def make_train_data(folder: Path, smoke: bool, frames: int) -> Path:
    """Synthetic clips prepared (by `prepare`'s code) for train_synthetic's small model, random weights."""
    from diffusers import AutoencoderKL
    from train_synthetic import VAE_CONFIG, build_pipeline

    from fashionflow.tiny import build_tiny_pipeline
    from fashionflow.training.data import prepare_dataset
    from fashionflow.training.synthetic import write_synthetic_videos

    torch.manual_seed(0)
    pipe = build_tiny_pipeline() if smoke else build_pipeline(AutoencoderKL(**VAE_CONFIG), seed=0)
    pipe.save_pretrained(folder / "model")
    height, width = pipe.frame_size
    write_synthetic_videos(folder / "videos", 4, frames=frames + 2, height=height, width=width, seed=1)
    prepare_dataset(folder / "videos", folder / "data", model=str(folder / "model"), frames=frames, show_progress=False)
    return folder / "data"


def run_case(case: str, setting: str, args) -> dict:
    configure_cpu_threads()
    size = sizes(args.smoke)
    if case == "train":
        result = train_step(setting, args, size)
    elif case == "probe":
        shapes = dict(unet_video=(1, 8, 2, 16, 16), decoder_image=(1, 8, 32, 32)) if args.smoke else {}
        speeds = runtime.probe_speeds(**shapes)
        result = {
            f"{s}:{dtype_name(d)}:{'channels-last' if c else 'channels-first'}": t for (s, d, c), t in speeds.items()
        }
        return dict(probe=result)
    else:
        pipe = build(setting, args.smoke)
        if case == "unet16":
            result = unet_steps(pipe, size["unet_frames"], args.unet_steps)
        elif case == "video70":
            result = video(pipe, args, size)
        elif case == "tiny":
            result = tiny_decoder(pipe, args)
        else:
            result = preview(pipe, size)
    settings = cpu_settings_for(setting)
    return dict(
        result,
        case=case,
        setting=setting,
        runs_as=settings.describe(),
        threads=torch.get_num_threads(),
        peak_mib=peak_rss_mib(),
    )


# driver --------------------------------------------------------------------------------------------------------------


def measure(case: str, setting: str, args) -> dict:
    """One case: in a fresh process (its own peak memory and set-up), or in this one for a smoke run."""
    load_before = os.getloadavg()
    result = run_case(case, setting, args) if args.smoke else in_subprocess(case, setting, args)
    result["loadavg_before"], result["loadavg_after"] = load_before, os.getloadavg()
    return result


def in_subprocess(case: str, setting: str, args) -> dict:
    command = [sys.executable, __file__, "--case", case, "--setting", setting]
    command += ["--measure-steps", str(args.measure_steps), "--decode-frames", str(args.decode_frames)]
    command += ["--unet-steps", str(args.unet_steps), "--train-steps", str(args.train_steps)]
    command += ["--smoke"] if args.smoke else []
    command += ["--train-data", str(args.train_data)] if args.train_data else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{case} ({setting}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


ROWS = (  # (label, case, key of seconds, key of CPU seconds or None, extrapolated)
    ("U-Net step, {unet_frames} frames", "unet16", "seconds", "cpu_seconds", False),
    ("U-Net step, {video_frames} frames", "video70", "step_seconds", "step_cpu_seconds", False),
    ("decode, full VAE, s / frame", "video70", "decode_seconds_per_frame", "decode_cpu_seconds_per_frame", False),
    ("decode, tiny (TAESD), s / frame", "tiny", "seconds", "cpu_seconds", False),
    ("quick preview, {preview_frames} fr, {preview_steps} steps, tiny", "preview", "seconds", "cpu_seconds", False),
    ("{video_frames}-frame video, 25 steps, full VAE", "video70", "seconds", "cpu_seconds", True),
    ("train step, small model, batch 4, {train_frames} fr", "train", "seconds", None, False),
)


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"


def print_table(report: dict) -> None:
    size, results, settings = report["sizes"], report["results"], report["settings"]
    print(f"\nCPU: {report['processor']}; {report['features']}; torch {report['torch']}, {report['threads']} threads")
    print(f"auto runs: {report['auto']}")
    if report.get("probe"):
        probe = report["probe"]
        print("probe (ms, best of 3; the load path runs it only where bfloat16 units exist):")
        for stage in runtime.STAGES:
            cells = [f"{k.split(':', 1)[1]} {v * 1000:.1f}" for k, v in probe.items() if k.startswith(stage + ":")]
            print(f"  {stage}: " + ", ".join(cells))
    headers = {"float32": "float32, before", "auto": "auto", "bfloat16": "bfloat16"}
    width = 24
    print(f"\n{'work':<52}" + "".join(f"{headers[s]:>{width}}" for s in settings) + f"{'auto / float32':>16}")
    for label, case, key, cpu_key, extrapolated in ROWS:
        cells, values = [], {}
        for setting in settings:
            result = results.get(f"{case}:{setting}")
            if result is None:
                cells.append(f"{'-':>{width}}")
                continue
            values[setting] = result[key]
            cpu = result.get(cpu_key) if cpu_key else None
            cpu_text = f" ({_time(cpu / result['threads'])})" if cpu is not None else ""
            text = _time(result[key]) + ("*" if extrapolated else "") + cpu_text
            cells.append(f"{text:>{width}}")
        ratio = values["float32"] / values["auto"] if {"float32", "auto"} <= values.keys() else None
        print(f"{label.format(**size):<52}" + "".join(cells) + (f"{ratio:>15.2f}x" if ratio else f"{'':>16}"))
    for label, case, key in (
        ("peak memory of the video case, GB", "video70", "peak_mib"),
        ("full decoder, peak above the models, GB (chunk)", "video70", "decode_peak_above_mib"),
        ("tiny decoder, peak above the models, GB (chunk)", "tiny", "decode_peak_above_mib"),
    ):
        cells = []
        for setting in settings:
            result = results.get(f"{case}:{setting}")
            chunk = f" ({result['decode_chunk_size']})" if result and key != "peak_mib" else ""
            cells.append(f"{f'{result[key] / 1024:.2f}{chunk}' if result else '-':>{width}}")
        print(f"{label:<52}" + "".join(cells))
    print("Cells: wall time (CPU time / threads, about the wall time on an idle machine). * extrapolated from the")
    print("measured steps and frames (JSON: step_runs, decoded_frames). train: --mixed-precision bf16 for bfloat16.")
    loads = [r["loadavg_before"][0] for r in results.values() if "loadavg_before" in r]
    if loads:
        print(f"1-minute load average before the cases: {min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} CPUs.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--skip", nargs="*", default=[], choices=CASES + ("probe",), help="cases to leave out")
    parser.add_argument(
        "--smoke", "--quick", action="store_true", help="tiny models and frame counts, all in this process: a minute"
    )
    parser.add_argument("--unet-steps", type=int, default=3, help="U-Net forwards at 16 frames (first: set-up)")
    parser.add_argument("--measure-steps", type=int, default=2, help="70-frame steps run (the rest extrapolated)")
    parser.add_argument("--decode-frames", type=int, default=2, help="frames decoded per decoder measurement")
    parser.add_argument("--train-steps", type=int, default=5, help="training steps run (first: set-up)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/cpu_precision.json"))
    parser.add_argument("--tables-from", type=Path, help="print the table of a JSON written before, run nothing")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--train-data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.case:
        print(json.dumps(run_case(args.case, args.setting, args)))
        return
    if args.tables_from:
        print_table(json.loads(args.tables_from.read_text()))
        return

    report = dict(
        processor=platform.processor() or platform.machine(),
        features=cpu_features().describe(),
        torch=torch.__version__,
        threads=configure_cpu_threads(),
        auto=choose_cpu_settings().describe(),
        sizes=sizes(args.smoke),
        settings=args.settings,
        smoke=args.smoke,
        results={},
    )
    with open("/proc/cpuinfo") if Path("/proc/cpuinfo").exists() else open(os.devnull) as cpuinfo:
        names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    report["processor"] = names[0] if names else report["processor"]
    print(f"{report['processor']} ({report['features']}): auto runs {report['auto']}", flush=True)
    if "probe" not in args.skip:
        report["probe"] = measure("probe", "auto", args)["probe"]
    with tempfile.TemporaryDirectory() as folder:
        if "train" not in args.skip:
            args.train_data = make_train_data(Path(folder), args.smoke, sizes(args.smoke)["train_frames"])
        for case in CASES:
            if case in args.skip:
                continue
            for setting in args.settings:
                result = measure(case, setting, args)
                report["results"][f"{case}:{setting}"] = result
                print(f"{case} ({setting}): {_time(result['seconds'])}", flush=True)
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(json.dumps(report, indent=2))  # what is done survives a stopped run
    print_table(report)
    print(f"\nJSON: {args.output}")


if __name__ == "__main__":
    main()
