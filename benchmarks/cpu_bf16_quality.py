"""What bfloat16 does to FashionFlow's outputs against float32, stage by stage; prints tables, writes JSON.

    nice -n 10 python benchmarks/cpu_bf16_quality.py                                  # reference vectors only
    nice -n 10 python benchmarks/cpu_bf16_quality.py --trained benchmarks/results/train_synthetic

1. The authors' reference vectors (../shared/reference, or $FASHIONFLOW_REFERENCE): their small U-Net and
   adapter (converted as the published checkpoint is) on their inputs, float32 and bfloat16 against the
   outputs of their own code; and a U-Net of the published size (71.7 M parameters, random weights, the
   zero- and identity-initialised layers given random values so every path counts) on the same inputs
   (2 x 8 frames of 32 x 32 latents, their context), bfloat16 against float32. Errors are ||a - b|| / ||b||.
2. With `--trained RUN` (the folder benchmarks/train_synthetic.py writes: trained/ and heldout_videos/): the
   trained small model's videos from the held-out stills (each clip's first frame; same seed, dpm++) made in
   float32, in bfloat16 everywhere, and in bfloat16 with the VAE in float32; per variant the PSNR against the
   float32 video, and train_synthetic's measures (colour error of the figure to the still, motion energy);
   the VAE alone (the float32 video's latents decoded in bfloat16 against float32); and the U-Net's output
   error on one denoising input per still.

The precision runs as `load_pipeline` would set it (runtime.choose_cpu_settings with the dtype given),
channels-last. On a CPU without bfloat16 units PyTorch emulates bfloat16: slower, but the same rounding
as the units (bfloat16 products summed in float32), so the errors measured here hold there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train_synthetic import FRAME, colour_error, motion_energy  # noqa: E402

from fashionflow import FashionFlowUNet, convert_checkpoint  # noqa: E402
from fashionflow.loading import apply_cpu_settings  # noqa: E402
from fashionflow.runtime import choose_cpu_settings, configure_cpu_threads, cpu_features  # noqa: E402

REFERENCE = Path(os.environ.get("FASHIONFLOW_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference"))
F32, BF16 = torch.float32, torch.bfloat16


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.float() - theirs.float()).norm() / theirs.float().norm()).item()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 videos (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def set_layout_and_dtype(model, dtype: torch.dtype):
    model.to(dtype)
    if isinstance(model, FashionFlowUNet):
        model.set_convolution_layout("channels-last")
    return model


# 1. reference vectors ------------------------------------------------------------------------------------------


@torch.no_grad()
def reference_errors(published_size: bool) -> dict:
    from safetensors.torch import load_file

    small = REFERENCE / "official-small"
    io = load_file(small / "small_io.safetensors")
    unet, adapter = convert_checkpoint(small / "small_unet.safetensors", small / "small_adapter.safetensors")
    rows = {}
    for dtype in (F32, BF16):
        for layout in ("channels-first", "channels-last"):
            unet.to(dtype).eval().set_convolution_layout(layout)
            adapter.to(dtype).eval()
            context = adapter(io["clip_last_hidden_state"].to(dtype), io["vae_latent"].to(dtype))
            noise = unet(io["x"].to(dtype), io["timestep"], io["adapter_out"].to(dtype)).sample
            rows[f"reference small U-Net, {str(dtype)[6:]}, {layout}"] = dict(
                unet_vs_authors=relative_error(noise, io["unet_out"]),
                adapter_vs_authors=relative_error(context, io["adapter_out"]),
            )
    if published_size:
        unet = published_unet_every_path_random()
        start = time.perf_counter()
        reference = set_layout_and_dtype(unet, F32)(io["x"], io["timestep"], io["adapter_out"]).sample
        f32_seconds = time.perf_counter() - start
        start = time.perf_counter()
        bf16 = set_layout_and_dtype(unet, BF16)(io["x"].to(BF16), io["timestep"], io["adapter_out"].to(BF16)).sample
        rows["published-size U-Net (random weights), bfloat16 vs float32"] = dict(
            unet_vs_float32=relative_error(bf16, reference),
            max_abs_difference=(bf16.float() - reference).abs().max().item(),
            output_std=reference.std().item(),
            seconds_float32=f32_seconds,
            seconds_bfloat16=time.perf_counter() - start,
        )
    return rows


def published_unet_every_path_random() -> FashionFlowUNet:
    """The published configuration, seeded; layers that start at zero or as the identity (attention outputs,
    temporal convolutions, their biases) get random values of their layer's scale, as in the reference."""
    torch.manual_seed(0)
    unet = FashionFlowUNet().eval()
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if parameter.ndim >= 2 and ("to_out" in name or "temporal_conv" in name):
                fan_in = parameter[0].numel()
                parameter.copy_(torch.randn_like(parameter) / math.sqrt(fan_in))
            elif parameter.ndim == 1 and parameter.abs().max() == 0:
                parameter.copy_(torch.randn_like(parameter) * 0.02)
    return unet


# 2. the trained synthetic model -----------------------------------------------------------------------------------


def load_in(folder: Path, unet_dtype: torch.dtype, vae_dtype: torch.dtype):
    """The trained pipeline with CLIP, adapter and U-Net in `unet_dtype`, the VAE in `vae_dtype`, channels-last."""
    from fashionflow.loading import load_pipeline

    pipe = load_pipeline(str(folder), device="cpu", dtype=F32)
    settings = choose_cpu_settings(unet_dtype)
    if vae_dtype != unet_dtype:
        from dataclasses import replace

        settings = replace(settings, decoders=replace(settings.decoders, dtype=vae_dtype, why="kept float32"))
    apply_cpu_settings(pipe, settings)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def heldout_stills(run: Path, count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, the clip's frames at the model's size, its first frame as written: 2x enlarged) per held-out clip."""
    from fashionflow.evaluation.videos import find_videos

    rows = []
    for name, video in sorted(find_videos(run / "heldout_videos").by_name().items())[:count]:
        frames = video.read(0, video.num_frames())
        small = frames[:, ::2, ::2] if frames.shape[1] == 2 * FRAME else frames  # undo the 2x nearest enlargement
        rows.append((name, small, frames[0]))
    return rows


@torch.no_grad()
def trained_model_comparison(run: Path, count: int, frames: int, steps: int) -> dict:
    from PIL import Image

    variants = {"float32": (F32, F32), "bfloat16": (BF16, BF16), "bfloat16, VAE float32": (BF16, F32)}
    stills = heldout_stills(run, count)
    videos, latents, seconds = {}, {}, {}
    for variant, (unet_dtype, vae_dtype) in variants.items():
        pipe = load_in(run / "trained", unet_dtype, vae_dtype)
        videos[variant], latents[variant] = [], []
        start = time.perf_counter()
        for _, _, first in stills:
            out = pipe(
                Image.fromarray(first),
                num_frames=frames,
                sampler="dpm++",
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(0),
                output_type="latent",
            ).frames
            latents[variant].append(out)
            decoded = pipe.decode_latents(out)[0]  # (f, 3, H, W) in [0, 1]
            videos[variant].append((decoded.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
        seconds[variant] = time.perf_counter() - start
        print(f"  {variant}: {len(stills)} videos in {seconds[variant]:.0f} s", flush=True)

    reference = videos["float32"]
    rows = {"real held-out clips": _measures([s[:frames] for _, s, _ in stills], stills)}
    for variant in variants:
        rows[variant] = _measures(videos[variant], stills)
        rows[variant]["psnr_vs_float32_db"] = float(np.mean([psnr(a, b) for a, b in zip(videos[variant], reference)]))
        rows[variant]["seconds"] = seconds[variant]

    # the VAE alone: the float32 run's latents decoded in bfloat16 against float32
    f32_pipe, bf16_vae = load_in(run / "trained", F32, F32), load_in(run / "trained", F32, BF16)
    vae_psnr, vae_colour = [], []
    for latent, (_, small, _) in zip(latents["float32"], stills):
        a = (f32_pipe.decode_latents(latent)[0].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        b = (bf16_vae.decode_latents(latent)[0].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        vae_psnr.append(psnr(b, a))
        vae_colour.append(abs(colour_error(b, small[0]) - colour_error(a, small[0])))
    rows["VAE decoder alone, bfloat16 vs float32"] = dict(
        psnr_vs_float32_db=float(np.mean(vae_psnr)), colour_error_change=float(np.mean(vae_colour))
    )

    # the U-Net alone: one denoising input per still, bfloat16 against float32
    unet_errors = []
    generator = torch.Generator().manual_seed(1)
    for latent in latents["float32"]:
        context, _ = f32_pipe.encode_image([f32_pipe.prepare_image(Image.fromarray(stills[0][2]))], generator)
        noisy = latent + torch.randn(latent.shape, generator=generator)
        f32_pipe.unet.to(F32)
        expected = f32_pipe.unet(noisy, 500, context).sample
        f32_pipe.unet.to(BF16)
        unet_errors.append(relative_error(f32_pipe.unet(noisy.to(BF16), 500, context.to(BF16)).sample, expected))
    rows["trained U-Net alone, bfloat16 vs float32 (t = 500)"] = dict(unet_vs_float32=float(np.mean(unet_errors)))
    return rows


def _measures(videos: list[np.ndarray], stills) -> dict:
    return dict(
        colour_error=float(np.mean([colour_error(v, s[0]) for v, (_, s, _) in zip(videos, stills)])),
        motion_energy=float(np.mean([motion_energy(v) for v in videos])),
    )


def print_rows(title: str, rows: dict) -> None:
    print(f"\n{title}")
    for name, values in rows.items():
        cells = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        print(f"  {name}: {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trained", type=Path, help="a train_synthetic.py output folder (trained/, heldout_videos/)")
    parser.add_argument("--stills", type=int, default=8, help="held-out clips to make videos from")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--no-published-size", action="store_true", help="leave out the published-size U-Net")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/cpu_bf16_quality.json"))
    args = parser.parse_args()

    configure_cpu_threads()
    report = dict(cpu=cpu_features().describe(), torch=torch.__version__, threads=torch.get_num_threads())
    if (REFERENCE / "official-small" / "small_io.safetensors").is_file():
        report["reference"] = reference_errors(not args.no_published_size)
        print_rows("Reference vectors (relative errors):", report["reference"])
    else:
        print(f"Reference vectors not found at {REFERENCE} (set FASHIONFLOW_REFERENCE): skipped.")
    if args.trained is not None:
        print(f"Trained model {args.trained / 'trained'}: {args.stills} held-out stills, {args.frames} frames")
        report["trained"] = trained_model_comparison(args.trained, args.stills, args.frames, args.steps)
        print_rows("Trained synthetic model (PSNR against the float32 video, 0-255 measures):", report["trained"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nJSON: {args.output}")


if __name__ == "__main__":
    main()
