"""Time one FashionFlowUNet forward pass at the published size; print a table and write JSON.

    python benchmarks/unet_forward.py                      # CPU fp32 (+ CUDA fp16/bf16 when present)
    python benchmarks/unet_forward.py --frames 16 --repeats 3
    python benchmarks/unet_forward.py --frames 70 --chunking off on   # peak memory without / with chunking

Each case runs in a fresh subprocess so that its peak memory is its own: on the CPU the
peak resident set size above the process's size before the forward pass, on CUDA
torch.cuda.max_memory_allocated. Weights are random (timing does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_case(
    device: str,
    dtype: str,
    frames: int,
    height: int,
    width: int,
    warmup: int,
    repeats: int,
    backend: str,
    chunking: str = "on",
):
    from fashionflow import FashionFlowUNet

    torch.manual_seed(0)
    unet = FashionFlowUNet().to(device, DTYPES[dtype]).eval()
    unet.set_attention_backend(backend)
    if chunking == "off":
        unet.disable_forward_chunking()
    sample = torch.randn(1, 4, frames, height, width, device=device, dtype=DTYPES[dtype])
    context = torch.randn(1, 50, 768, device=device, dtype=DTYPES[dtype])
    timestep = torch.tensor([500], device=device)

    def forward():
        with torch.inference_mode():
            unet(sample, timestep, context)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    base = torch.cuda.memory_allocated() / 2**20 if device.startswith("cuda") else rss_mib()
    for _ in range(warmup):
        forward()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else peak_rss_mib()
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name(device)
        if device.startswith("cuda")
        else platform.processor() or "cpu",
        "dtype": dtype,
        "shape": [1, 4, frames, height, width],
        "attention_backend": unet.attention_backend,
        "forward_chunking": chunking,
        "seconds_per_forward": min(times),
        "seconds_all": times,
        "peak_memory_mib": peak,
        "peak_above_start_mib": peak - base,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[70, 16])
    parser.add_argument("--height", type=int, default=80, help="latent height (published: 80)")
    parser.add_argument("--width", type=int, default=64, help="latent width (published: 64)")
    parser.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    parser.add_argument("--cpu-dtypes", nargs="+", default=["float32"], choices=DTYPES)
    parser.add_argument("--cuda-dtypes", nargs="+", default=["float16", "bfloat16", "float32"], choices=DTYPES)
    parser.add_argument("--backend", default="auto", choices=["auto", "sdpa", "xformers"])
    parser.add_argument(
        "--chunking",
        nargs="+",
        default=["on"],
        choices=["on", "off"],
        help="cross-attention over chunks of tokens (on, the default) or all at once (off)",
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/unet_forward.json"))
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    args = parser.parse_args()

    if args.case:
        device, dtype, frames, chunking = args.case.split(":")
        result = run_case(
            device, dtype, int(frames), args.height, args.width, args.warmup, args.repeats, args.backend, chunking
        )
        print(json.dumps(result))
        return

    results = []
    for device in args.devices:
        for dtype in args.cpu_dtypes if device == "cpu" else args.cuda_dtypes:
            for frames in args.frames:
                for chunking in args.chunking:
                    command = [
                        sys.executable,
                        __file__,
                        "--case",
                        f"{device}:{dtype}:{frames}:{chunking}",
                        "--height",
                        str(args.height),
                        "--width",
                        str(args.width),
                        "--warmup",
                        str(args.warmup),
                        "--repeats",
                        str(args.repeats),
                        "--backend",
                        args.backend,
                    ]
                    done = subprocess.run(command, capture_output=True, text=True)
                    if done.returncode != 0:
                        print(f"{device} {dtype} {frames} frames failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                        continue
                    results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                    print_table(results[-1:], header=len(results) == 1)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.output}")


def print_table(results, header=True):
    if header:
        print(
            f"{'device':<8}{'dtype':<10}{'input (b,c,f,h,w)':<22}{'backend':<10}{'chunks':<8}{'s/forward':>10}"
            f"{'peak MiB':>10}{'+MiB':>9}"
        )
    for r in results:
        shape = "(" + ",".join(map(str, r["shape"])) + ")"
        print(
            f"{r['device']:<8}{r['dtype']:<10}{shape:<22}{r['attention_backend']:<10}{r['forward_chunking']:<8}"
            f"{r['seconds_per_forward']:>10.2f}{r['peak_memory_mib']:>10.0f}{r['peak_above_start_mib']:>9.0f}"
        )


if __name__ == "__main__":
    main()
