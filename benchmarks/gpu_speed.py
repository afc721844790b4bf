"""GPU speed of FashionFlow at the published size: ms per U-Net step against the FLOP floor, seconds per
decoded frame, end-to-end seconds for a 70-frame video and peak GPU memory, for eager vs torch.compile,
bfloat16 vs float16 vs float32, and PyTorch SDPA vs xformers attention. Prints a table, writes JSON.

    python benchmarks/gpu_speed.py                      # the default grid (see --cases)
    python benchmarks/gpu_speed.py --cases bfloat16:sdpa:compiled --steps 25
    python benchmarks/gpu_speed.py --all                # every dtype x attention x eager/compiled

Without CUDA it says so and exits (status 0): there is nothing to measure.

Models have the published architectures (SD v1-4 VAE, CLIP ViT-B/32, FashionFlowUNet, adapter, TAESD)
with random weights: speed does not depend on the values. Each case runs in a fresh subprocess, so
its peak memory (torch.cuda.max_memory_allocated) and its compiled kernels are its own.

- U-Net step: (1, 4, 70, 80, 64), timed with CUDA events over --repeats calls after warm-up. The
  floor is the step's FLOPs (counted with torch.utils.flop_counter on the meta device: ~1.62 TFLOP,
  1.45 of them convolutions; issue 11 quotes 1.47) divided by the GPU's dense tensor-core peak for
  the dtype (float32 convolutions run as TF32, PyTorch's default for cuDNN).
- compiled: `pipe.enable_compile()` (mode reduce-overhead: CUDA graphs). Compile time is reported
  apart (the first calls of a shape), and every timing is taken after it.
- decoders: seconds per 640 x 512 frame at the decode chunk the pipeline picks for the device,
  for the full VAE (float32 when the pipeline is float16, as the pipeline upcasts it) and TAESD;
  eager cases also time the full decoder in channels-last layout.
- end to end: one pipeline call, photo to frames, 70 frames, 25 dpm++ steps, full decoder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_CASES = [
    "bfloat16:sdpa:eager",
    "bfloat16:xformers:eager",
    "bfloat16:sdpa:compiled",
    "float16:sdpa:eager",
    "float16:xformers:eager",
    "float16:sdpa:compiled",
    "float32:sdpa:eager",
    "float32:sdpa:compiled",
]
ISSUE_STEP_TFLOP = 1.47

# Dense tensor-core peak TFLOPS: (bfloat16/float16, TF32) by a part of the device name; from NVIDIA's datasheets.
PEAK_TFLOPS = [
    ("H200", (989.4, 494.7)),
    ("H100 NVL", (835.0, 417.5)),
    ("H100 PCIe", (756.0, 378.0)),
    ("H100", (989.4, 494.7)),  # SXM (HBM3)
    ("A100", (312.0, 156.0)),
    ("L40S", (362.0, 183.0)),
    ("L4", (121.0, 60.0)),
    ("A10G", (70.0, 35.0)),
    ("T4", (65.0, 8.1)),  # no bfloat16 or TF32 tensor cores: float16 / float32 peaks
]


def peak_tflops(device_name: str, dtype: str, override: float | None) -> float | None:
    if override:
        return override
    for part, (half, tf32) in PEAK_TFLOPS:
        if part in device_name:
            return tf32 if dtype == "float32" else half
    return None


def count_step_flops(frames: int, height: int, width: int) -> tuple[float, float]:
    """(all FLOPs, convolution FLOPs) of one U-Net forward, counted on the meta device (no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    from fashionflow import FashionFlowUNet

    with torch.device("meta"):
        unet = FashionFlowUNet().eval()
        sample, context = torch.empty(1, 4, frames, height, width), torch.empty(1, 50, 768)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        unet(sample, torch.tensor(500, device="meta"), context)
    convolutions = counter.get_flop_counts().get("Global", {}).get(torch.ops.aten.convolution, 0)
    return float(counter.get_total_flops()), float(convolutions)


# one case (in its own process) ---------------------------------------------------------------------------------


def build_pipeline(device: str, dtype: torch.dtype, attention: str, smoke: bool = False):
    from diffusers import AutoencoderTiny

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pipeline_stages import published_size_pipeline

    from fashionflow.tiny import build_tiny_pipeline

    if smoke:  # the tiny model, to check this script's logic on a CPU
        pipe = build_tiny_pipeline()
    else:
        pipe = published_size_pipeline("cpu", torch.float32)
        torch.manual_seed(1)
        pipe.register_modules(tiny_vae=AutoencoderTiny().eval())
    pipe.to(device, dtype)
    pipe.unet.set_attention_backend(attention)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class Device:
    """Timing with CUDA events and the allocator's peak on CUDA; wall time and no memory figure elsewhere (--smoke)."""

    def __init__(self, device: torch.device):
        self.device, self.cuda = device, device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        self.sync()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mib(self) -> float:
        return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else 0.0

    def time(self, fn, repeats: int) -> list[float]:
        """Seconds per call of fn, one per repeat."""
        times = []
        for _ in range(repeats):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize(self.device)
                times.append(start.elapsed_time(end) / 1000)
            else:
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
        return times


def run_case(args, dtype_name: str, attention: str, how: str) -> dict:
    import numpy as np
    from PIL import Image

    device = torch.device(args.device)
    dtype = DTYPES[dtype_name]
    pipe = build_pipeline(args.device, dtype, attention, args.smoke)
    result = dict(dtype=dtype_name, attention_requested=attention, attention=pipe.attention_backend, mode=how)
    if attention == "xformers" and pipe.attention_backend != "xformers":
        result["skipped"] = "xformers is not installed or does not work on this GPU"
        return result
    if how == "compiled":
        pipe.enable_compile(mode=args.compile_mode, backend="aot_eager" if args.smoke else "inductor")
        result["compile"] = pipe.compile_settings.describe()
    gpu = Device(device)
    h, w = pipe.adapter.config.latent_size
    generator = torch.Generator(device).manual_seed(0)
    cuda_graphs = pipe.uses_cuda_graphs

    # 1. U-Net step
    unet = pipe.unet
    sample = torch.randn(1, 4, args.frames, h, w, device=device, dtype=dtype, generator=generator)
    context = torch.randn(
        1, pipe.adapter.config.clip_tokens, unet.config.context_dim, device=device, dtype=dtype, generator=generator
    )
    timestep = torch.tensor(500, device=device)

    def step():
        if cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        unet(sample, timestep, context)

    with torch.no_grad():
        gpu.reset_peak()
        start = time.perf_counter()
        for _ in range(3 if cuda_graphs else 1):  # compilation / CUDA-graph recording / kernel selection
            step()
        gpu.sync()
        result["unet_first_calls_s"] = time.perf_counter() - start
        for _ in range(args.warmup):
            step()
        times = gpu.time(step, args.repeats)
        result["unet_ms_per_step"] = 1000 * min(times)
        result["unet_ms_all"] = [1000 * t for t in times]
        result["unet_peak_mib"] = gpu.peak_mib()

    # 2. decoders, seconds per frame at the chunk the pipeline picks for this device
    pipe.upcast_vae_if_needed()
    decoders = {}
    latents = torch.randn(1, 4, args.decode_frames, h, w, device=device, generator=generator)
    for decoder in ("full", "tiny"):
        chunk = pipe.decode_chunk_size_for(decoder, args.decode_frames)
        with torch.no_grad():
            pipe.decode_latents(latents[:, :, :chunk], chunk_size=chunk, decoder=decoder)  # warm-up / compilation
            gpu.reset_peak()
            seconds = min(gpu.time(lambda c=chunk, d=decoder: pipe.decode_latents(latents, chunk_size=c, decoder=d), 2))
        decoders[decoder] = dict(chunk=chunk, s_per_frame=seconds / args.decode_frames, peak_mib=gpu.peak_mib())
    if how == "eager":  # the full decoder in NHWC layout, as enable_compile puts it on CUDA
        pipe.vae.to(memory_format=torch.channels_last)
        chunk = decoders["full"]["chunk"]
        with torch.no_grad():
            pipe.decode_latents(latents[:, :, :chunk], chunk_size=chunk)
            seconds = min(gpu.time(lambda: pipe.decode_latents(latents, chunk_size=chunk), 2))
        decoders["full_channels_last"] = dict(chunk=chunk, s_per_frame=seconds / args.decode_frames)
        pipe.vae.to(memory_format=torch.contiguous_format)
    result["decoders"] = decoders

    # 3. end to end: photo -> frames (full decoder); compilation of its shapes reported apart
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (900, 700, 3), dtype=np.uint8))
    kwargs = dict(num_frames=args.frames, num_inference_steps=args.steps, output_type="np")
    with torch.no_grad():
        first = pipe(photo, **kwargs)  # warm-up; compiled: pays the compilation of the shapes not seen yet
        result["end_to_end_first_call_compile_s"] = first.compile_seconds
        gpu.reset_peak()
        start = time.perf_counter()
        out = pipe(photo, **kwargs, generator=torch.Generator().manual_seed(0))
        gpu.sync()
        result["end_to_end_s"] = time.perf_counter() - start
        result["end_to_end_peak_mib"] = gpu.peak_mib()
        result["end_to_end_frames_finite"] = bool(np.isfinite(out.frames).all())
    return result


# driver -----------------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="DTYPE:ATTENTION:eager|compiled ...")
    parser.add_argument("--all", action="store_true", help="every dtype x {sdpa, xformers} x {eager, compiled}")
    parser.add_argument("--frames", type=int, default=70)
    parser.add_argument("--steps", type=int, default=25, help="denoising steps of the end-to-end run")
    parser.add_argument("--decode-frames", type=int, default=16, help="frames decoded per decoder timing")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--compile-mode", help="torch.compile mode (default: reduce-overhead on CUDA)")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense peak for the floor, when not in the table")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/gpu_speed.json"))
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # the tiny model on --device cpu
    args = parser.parse_args()

    if not torch.cuda.is_available() and not args.smoke:
        print("No CUDA GPU here (torch.cuda.is_available() is False): nothing to measure. Run this on a GPU machine.")
        return 0
    if args.case:
        print(json.dumps(run_case(args, *args.case.split(":"))))
        return 0

    cases = args.cases
    if args.all:
        cases = [f"{d}:{a}:{m}" for d in DTYPES for a in ("sdpa", "xformers") for m in ("eager", "compiled")]
    device_name = (
        torch.cuda.get_device_name(args.device) if torch.device(args.device).type == "cuda" else "cpu (smoke test)"
    )
    flops, conv_flops = count_step_flops(args.frames, 80, 64)
    print(
        f"{device_name}; U-Net step at {args.frames} frames: {flops / 1e12:.2f} TFLOP "
        f"({conv_flops / 1e12:.2f} in convolutions; issue 11 quotes {ISSUE_STEP_TFLOP})",
        flush=True,
    )

    results = []
    for case in cases:
        command = [
            sys.executable,
            __file__,
            "--case",
            case,
            "--device",
            args.device,
            "--frames",
            str(args.frames),
            "--steps",
            str(args.steps),
            "--decode-frames",
            str(args.decode_frames),
            "--warmup",
            str(args.warmup),
            "--repeats",
            str(args.repeats),
        ]
        if args.compile_mode:
            command += ["--compile-mode", args.compile_mode]
        if args.smoke:
            command += ["--smoke"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{case} failed:\n{done.stderr[-3000:]}", file=sys.stderr, flush=True)
            results.append(dict(case=case, error=done.stderr[-3000:]))
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result.update(case=case, wall_s=time.perf_counter() - started)
        peak = peak_tflops(device_name, result["dtype"], args.peak_tflops)
        if peak and "unet_ms_per_step" in result:
            result["floor_ms"] = flops / (peak * 1e12) * 1000
            result["fraction_of_peak"] = result["floor_ms"] / result["unet_ms_per_step"]
        results.append(result)
        print_row(result, header=len(results) == 1)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            dict(
                device=device_name,
                torch=torch.__version__,
                step_flops=flops,
                step_conv_flops=conv_flops,
                results=results,
            ),
            indent=2,
        )
    )
    print(f"\nJSON: {args.output}")
    return 0


def print_row(r: dict, header: bool) -> None:
    if header:
        print(
            f"\n{'dtype':<10}{'attention':<10}{'mode':<10}{'ms/step':>9}{'floor ms':>9}{'% peak':>7}"
            f"{'s/frame full':>13}{'s/frame tiny':>13}{'70 frames s':>12}{'peak GiB':>9}{'compile s':>10}"
        )
    if "skipped" in r:
        print(f"{r['dtype']:<10}{r['attention_requested']:<10}{r['mode']:<10}  skipped: {r['skipped']}")
        return
    floor = f"{r['floor_ms']:.2f}" if "floor_ms" in r else "n/a"
    share = f"{100 * r['fraction_of_peak']:.0f}%" if "fraction_of_peak" in r else "n/a"
    compile_s = r["unet_first_calls_s"] if r["mode"] == "compiled" else 0.0
    print(
        f"{r['dtype']:<10}{r['attention']:<10}{r['mode']:<10}{r['unet_ms_per_step']:>9.2f}{floor:>9}{share:>7}"
        f"{r['decoders']['full']['s_per_frame']:>13.3f}{r['decoders']['tiny']['s_per_frame']:>13.4f}"
        f"{r['end_to_end_s']:>12.2f}{r['end_to_end_peak_mib'] / 1024:>9.2f}{compile_s:>10.1f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
