"""Memory of one training step at the published size: U-Net + adapter, batch 1, 640 x 512 (80 x 64 latents).

    python benchmarks/train_memory.py                 # CUDA: measured at 70 frames, bf16 + gradient checkpointing
    python benchmarks/train_memory.py --frames 8 16   # CPU: measured at a few frame counts, fitted, extrapolated

On CUDA this is `torch.cuda.max_memory_allocated` around a real training step (autocast bf16, AdamW,
frozen VAE and CLIP of the published sizes with random weights, the condition encoded every step).
On a CPU it measures the peak resident memory of the same step in float32 in a fresh process per
frame count, fits a line in the frame count and extrapolates to 70 frames: an ESTIMATE, printed
as such, with the bf16 activations taken as half the float32 ones.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path("benchmarks/results/train_memory.json")


def one_step(frames: int, device: str, bf16: bool, checkpointing: bool) -> dict:
    """Build the trained models at the published size, run one optimiser step, report memory and time."""
    from fashionflow.models import ConditionAdapter, FashionFlowUNet
    from fashionflow.schedulers import published_scheduler
    from fashionflow.training.objective import Denoiser, diffusion_loss

    unet, adapter = FashionFlowUNet(), ConditionAdapter()
    if checkpointing:
        unet.enable_gradient_checkpointing()
    denoiser = Denoiser(unet, adapter).to(device).train()
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=1e-4, weight_decay=0.01)
    latents = torch.randn(1, 4, frames, 80, 64, device=device)
    clip_hidden, still_latents = torch.randn(1, 50, 768, device=device), torch.randn(1, 4, 80, 64, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)
    for _ in range(2):  # the second step has the optimiser state allocated
        with autocast:
            loss = diffusion_loss(denoiser, published_scheduler(), latents, clip_hidden, still_latents, "mean")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    seconds = (time.perf_counter() - start) / 2
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
    return {
        "frames": frames,
        "device": device,
        "bf16": bf16,
        "checkpointing": checkpointing,
        "peak_gib": peak,
        "seconds_per_step": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", help="frame counts (default: 70 on CUDA, 8 16 on a CPU)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one CPU measurement per process
    parser.add_argument("--no-checkpointing", action="store_true", help="measure without gradient checkpointing")
    args = parser.parse_args()
    checkpointing = not args.no_checkpointing

    if args.one is not None:
        print(json.dumps(one_step(args.one, "cpu", False, checkpointing)))
        return
    if torch.cuda.is_available():
        rows = [one_step(f, "cuda", True, checkpointing) for f in (args.frames or [70])]
        estimate = None
    else:
        rows = []
        for frames in args.frames or [8, 16]:  # a fresh process each: ru_maxrss only grows
            command = [sys.executable, __file__, "--one", str(frames)] + (["--no-checkpointing"] * (not checkpointing))
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        (f0, m0), (f1, m1) = [(r["frames"], r["peak_gib"]) for r in rows[:2]]
        per_frame = (m1 - m0) / (f1 - f0)
        fixed = m0 - per_frame * f0
        fp32_at_70 = fixed + per_frame * 70
        estimate = {
            "fp32_at_70_frames_gib": fp32_at_70,
            "per_frame_gib": per_frame,
            "fixed_gib": fixed,
            # bf16 autocast keeps the saved activations in bf16 (half); weights, gradients, AdamW stay fp32
            "bf16_at_70_frames_gib": fixed + per_frame * 70 / 2,
        }

    print("| frames | device | precision | gradient checkpointing | peak GiB | s / step |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        precision = "bf16 autocast" if r["bf16"] else "fp32"
        print(
            f"| {r['frames']} | {r['device']} | {precision} | {r['checkpointing']} | {r['peak_gib']:.2f} | "
            f"{r['seconds_per_step']:.1f} |"
        )
    if estimate:
        print(
            f"\nESTIMATE for 70 frames (linear fit in frames of CPU process peak memory, not measured on a GPU): "
            f"fp32 {estimate['fp32_at_70_frames_gib']:.1f} GiB, bf16 activations {estimate['bf16_at_70_frames_gib']:.1f} GiB "
            f"({estimate['per_frame_gib'] * 1024:.0f} MiB per frame, {estimate['fixed_gib']:.1f} GiB fixed)."
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "estimate": estimate}, indent=1))


if __name__ == "__main__":
    main()
