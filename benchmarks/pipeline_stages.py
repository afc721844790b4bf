"""Time per stage and peak memory of FashionFlowPipeline at the published size: our defaults against the
authors' recipe (1000-step ancestral DDPM, VAE decode one frame at a time). Prints a table, writes JSON.

    python benchmarks/pipeline_stages.py                    # CPU (and CUDA when present)
    python benchmarks/pipeline_stages.py --measure-steps 3 --measure-decode-frames 8

Models have the published architectures (SD v1-4 VAE, CLIP ViT-B/32, FashionFlowUNet, adapter) with
random weights: speed does not depend on the values. Denoising costs the same every step, so a few
measured steps are multiplied out to the full count, and VAE decoding is measured on a subset of
frames and scaled to all of them; the table marks such figures as extrapolated.
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModel

from fashionflow import ConditionAdapter, FashionFlowPipeline, FashionFlowUNet
from fashionflow._compat import clip_image_processor_class
from fashionflow.assembly import assemble_pipeline
from fashionflow.loading import default_dtype
from fashionflow.schedulers import default_steps, make_scheduler
from fashionflow.video import export_video

SD_VAE_CONFIG = dict(  # CompVis/stable-diffusion-v1-4, subfolder vae
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    sample_size=512,
    layers_per_block=2,
    norm_num_groups=32,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
)


def published_size_pipeline(device: str, dtype: torch.dtype) -> FashionFlowPipeline:
    torch.manual_seed(0)
    pipe = assemble_pipeline(
        AutoencoderKL(**SD_VAE_CONFIG),
        CLIPVisionModel(CLIPVisionConfig()),  # the defaults are ViT-B/32
        clip_image_processor_class()(),
        FashionFlowUNet(),
        ConditionAdapter(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device, dtype)


class PeakMemory:
    """Peak memory of a stage: CUDA's allocator counter, or the process's resident set sampled every 5 ms."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    @contextmanager
    def measure(self, record: dict):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            yield
            torch.cuda.synchronize()
            record["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
            return
        peak, stop = [_rss_mib()], threading.Event()

        def sample():
            while not stop.wait(0.005):
                peak[0] = max(peak[0], _rss_mib())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join()
            record["peak_mib"] = max(peak[0], _rss_mib())


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def timed(memory: PeakMemory, device: str, fn, record: dict):
    with memory.measure(record):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        record["seconds"] = time.perf_counter() - start
    return result


def run_recipe(
    pipe, device, photo, *, name, sampler, steps, chunk, frames, measure_steps, decode_frames, autocast, out_dir
):
    """Time each stage of one recipe; denoising and decoding partly measured, then scaled."""
    memory = PeakMemory(device)
    stages: dict[str, dict] = {}
    generator = torch.Generator().manual_seed(0)
    amp = torch.autocast("cuda", dtype=torch.float16) if autocast else _nothing()

    still = timed(memory, device, lambda: pipe.prepare_image(photo, "stretch"), stages.setdefault("prepare", {}))
    with torch.no_grad(), amp:
        context, first = timed(
            memory, device, lambda: pipe.encode_image([still], generator), stages.setdefault("encode", {})
        )

        scheduler = make_scheduler(sampler, pipe.scheduler.config)
        scheduler.set_timesteps(steps, device=first.device)
        latents = pipe.prepare_latents(first, frames, scheduler.init_noise_sigma, generator)
        step_kwargs = {"generator": generator} if sampler == "ddpm" else {}

        def denoise():
            nonlocal latents
            for t in scheduler.timesteps[:measure_steps]:
                noise = pipe.unet(latents.to(pipe.unet.dtype), t, context.to(pipe.unet.dtype)).sample.float()
                latents = scheduler.step(noise, t, latents, **step_kwargs).prev_sample
                latents[:, :, 0] = first

        # warm-up at the full size: the first call of a shape pays for kernel selection and allocation
        pipe.unet(latents.to(pipe.unet.dtype), 999, context.to(pipe.unet.dtype))
        record = stages.setdefault("denoise", {})
        timed(memory, device, denoise, record)
        record["seconds_per_step"] = record["seconds"] / measure_steps
        record["steps"] = steps
        record["measured_steps"] = measure_steps
        record["seconds"] = record["seconds_per_step"] * steps
        record["extrapolated"] = measure_steps < steps

        subset = latents[:, :, :decode_frames]
        record = stages.setdefault("decode", {})
        decoded = timed(memory, device, lambda: pipe.decode_latents(subset, chunk_size=chunk), record)
        record.update(
            frames=frames,
            measured_frames=decode_frames,
            chunk_size=chunk,
            seconds=record["seconds"] * frames / decode_frames,
            extrapolated=decode_frames < frames,
        )

    pictures = pipe.postprocess(decoded, "pil")[0]
    pictures = (pictures * (frames // len(pictures) + 1))[:frames]  # a full-length clip for the writer
    timed(memory, device, lambda: export_video(pictures, out_dir / f"{name}.mp4"), stages.setdefault("export", {}))
    return {
        "recipe": name,
        "sampler": sampler,
        "steps": steps,
        "decode_chunk_size": chunk,
        "autocast_fp16": autocast,
        "stages": stages,
        "total_seconds": sum(s["seconds"] for s in stages.values()),
        "peak_mib": max(s["peak_mib"] for s in stages.values()),
    }


@contextmanager
def _nothing():
    yield


def print_table(device_label: str, ours: dict, authors: dict) -> None:
    print(
        f"\n{device_label}: ours = {ours['sampler']} {ours['steps']} steps, decode {ours['decode_chunk_size']} frames/call;"
        f" authors = {authors['sampler']} {authors['steps']} steps, decode 1 frame/call"
    )
    print(f"{'stage':<16}{'ours s':>12}{'authors s':>14}{'ratio':>9}{'ours MiB':>11}{'authors MiB':>13}")
    for stage in ours["stages"]:
        a, b = ours["stages"][stage], authors["stages"][stage]
        mark = lambda r: "*" if r.get("extrapolated") else " "  # noqa: E731
        print(
            f"{stage:<16}{a['seconds']:>11.2f}{mark(a)}{b['seconds']:>13.2f}{mark(b)}{b['seconds'] / a['seconds']:>8.1f}x"
            f"{a['peak_mib']:>11.0f}{b['peak_mib']:>13.0f}"
        )
        if stage == "denoise":
            print(f"{'  per step':<16}{a['seconds_per_step']:>12.2f}{b['seconds_per_step']:>14.2f}")
    print(
        f"{'total':<16}{ours['total_seconds']:>12.1f}{authors['total_seconds']:>14.1f}"
        f"{authors['total_seconds'] / ours['total_seconds']:>8.1f}x{ours['peak_mib']:>11.0f}{authors['peak_mib']:>13.0f}"
    )
    print("* extrapolated from the measured steps / frames (see JSON: measured_steps, measured_frames)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    parser.add_argument("--frames", type=int, default=70)
    parser.add_argument("--measure-steps", type=int, default=2, help="denoising steps actually run per recipe")
    parser.add_argument("--measure-decode-frames", type=int, default=8, help="frames actually decoded per recipe")
    parser.add_argument("--sampler", default="dpm++")
    parser.add_argument("--steps", type=int, help="our steps (default: the sampler's default)")
    parser.add_argument("--decode-chunk-size", type=int, default=8)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/pipeline_stages.json"))
    args = parser.parse_args()

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (900, 700, 3), dtype=np.uint8))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for device in args.devices:
        dtype = default_dtype(device)
        pipe = published_size_pipeline(device, dtype)
        label = f"{device} ({torch.cuda.get_device_name(device) if device.startswith('cuda') else platform.processor() or 'cpu'},"
        label += (
            f" {str(dtype).removeprefix('torch.')}, attention {pipe.attention_backend}, {args.frames} frames 640x512)"
        )
        common = dict(frames=args.frames, measure_steps=args.measure_steps, out_dir=args.output.parent)
        ours = run_recipe(
            pipe,
            device,
            photo,
            name="ours",
            sampler=args.sampler,
            steps=args.steps or default_steps(args.sampler),
            chunk=args.decode_chunk_size,
            decode_frames=args.measure_decode_frames,
            autocast=False,
            **common,
        )
        # The authors ran a float32 model under fp16 autocast on CUDA, and float32 on the CPU.
        pipe = pipe.to(dtype=torch.float32) if device.startswith("cuda") else pipe
        authors = run_recipe(
            pipe,
            device,
            photo,
            name="authors",
            sampler="ddpm",
            steps=1000,
            chunk=1,
            decode_frames=args.measure_decode_frames,
            autocast=device.startswith("cuda"),
            **common,
        )
        print_table(label, ours, authors)
        results.append(
            {
                "device": device,
                "label": label,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "ours": ours,
                "authors": authors,
                "speedup": authors["total_seconds"] / ours["total_seconds"],
            }
        )
        del pipe
    args.output.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.output}")


if __name__ == "__main__":
    main()
