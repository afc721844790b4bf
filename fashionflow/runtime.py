"""Settings that depend on the machine a pipeline runs on: CPU threads, precision and memory layout on
a CPU, and frames per decoder call.

Chosen when the user does not give them; an explicit value always wins.

- CPU threads: PyTorch starts one thread per physical core of the host, also inside a container
  that may use only a few of them (a Space, a CI runner), where the extra threads only fight over
  those cores. We use no more threads than the cores this process may run on, and leave the
  count alone when the user set OMP_NUM_THREADS.
- Decode chunk: how many frames go through the VAE decoder at once. On a CPU a larger batch
  gains nothing for the full VAE (its convolutions already fill the cores) and costs about
  0.9 GB per extra 640 x 512 frame, so it decodes one frame at a time, or two for the tiny
  decoder when they fit. On a GPU, batching keeps it busy: as many frames as fit in half of the
  free memory, up to 16.
- Precision on a CPU: bfloat16 only where the processor multiplies in bfloat16 in hardware
  (Intel AMX, AVX512-BF16) and a short probe of the U-Net's and the decoders' convolutions
  confirms that it is faster there; float32 everywhere else, since without those units
  PyTorch emulates bfloat16 and runs it several times slower than float32. A stage that
  bfloat16 would harm (`BF16_HARMS`) stays float32.
- Layout on a CPU: convolutions run channels-last (the decoders' weights stored NHWC, the
  U-Net's video stored (b, f, h, w, c): models/layers.py). PyTorch's CPU convolution kernels
  (oneDNN) work in that layout, and in bfloat16 only 2-D convolutions have fast kernels
  everywhere. Where the probe runs, it measures both layouts and channels-first is kept if it
  is clearly faster.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .defaults import DECODERS as DECODERS  # ("full", "tiny"), where `--help` reads it without torch

logger = logging.getLogger(__name__)

# Peak working memory of one decoded frame, in values per output pixel (measured on the CPU in
# float32 with the published-size decoders: SD v1-4's VAE decoder ~0.9 GB for a 640 x 512 frame,
# TAESD's ~0.33 GB). Values take 4 bytes in float32, 2 in (b)float16.
DECODER_VALUES_PER_PIXEL = {"full": 700, "tiny": 260}
MAX_DECODE_CHUNK = {"cpu": {"full": 1, "tiny": 2}, "other": {"full": 16, "tiny": 16}}
CPU_MEMORY_SHARE = 0.25  # of the available memory that decoding may take (the app serves on)
GPU_MEMORY_SHARE = 0.5


# CPU threads ------------------------------------------------------------------------------------------------


def usable_cpu_count() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup (container) CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def _cgroup_cpu_quota() -> float | None:
    """The container's CPU limit in cores (cgroup v2 cpu.max, or v1 cfs quota), None when unlimited."""
    try:
        fields = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if fields and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def configure_cpu_threads() -> int:
    """Use at most one intra-op thread per usable core (unless OMP_NUM_THREADS says otherwise); returns the count."""
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    threads = min(torch.get_num_threads(), usable_cpu_count())
    if threads != torch.get_num_threads():
        logger.info("Using %d CPU threads (the cores this process may use).", threads)
        torch.set_num_threads(threads)
    return threads


# precision and layout on a CPU -----------------------------------------------------------------------------

BF16_MIN_SPEEDUP = 1.15  # bfloat16 must run the probe at least this much faster than float32 to be chosen
CHANNELS_FIRST_MIN_SPEEDUP = 1.1  # channels-first replaces channels-last only when clearly faster
# Stages that stay float32 even where bfloat16 is faster, with the measured reason (benchmarks/cpu_bf16_quality.py).
BF16_HARMS: dict[str, str] = {}
STAGES = ("unet", "decoders")  # the U-Net (with CLIP and the adapter), and the VAE / tiny decoder
PROBE_DTYPES = (torch.float32, torch.bfloat16)


@dataclass(frozen=True)
class CpuFeatures:
    """What the processor offers for bfloat16, as PyTorch detects it."""

    amx: bool  # Intel AMX tiles (Sapphire Rapids and later)
    avx512_bf16: bool  # AVX512-BF16 dot products (Cooper Lake, Sapphire Rapids, AMD Zen 4...)
    vector_isa: str  # the widest vector instructions PyTorch's CPU kernels use here ("AVX2", "AVX512"...)

    @property
    def bf16_units(self) -> str | None:
        """ "AMX", "AVX512-BF16", or None where bfloat16 is only emulated."""
        return "AMX" if self.amx else "AVX512-BF16" if self.avx512_bf16 else None

    def describe(self) -> str:
        units = [name for name, present in (("AMX", self.amx), ("AVX512-BF16", self.avx512_bf16)) if present]
        return f"{self.vector_isa}, " + (" and ".join(units) if units else "no bfloat16 units")


def cpu_features() -> CpuFeatures:
    """This processor's bfloat16 support (torch.cpu's checks; False where this PyTorch has none)."""

    def check(name: str) -> bool:
        probe = getattr(torch.cpu, name, None)
        return bool(probe()) if probe is not None else False

    return CpuFeatures(
        amx=check("_is_amx_tile_supported"),
        avx512_bf16=check("_is_avx512_bf16_supported"),
        vector_isa=torch.backends.cpu.get_cpu_capability(),
    )


@dataclass(frozen=True)
class StageSettings:
    """Precision and layout of one stage, and why that precision."""

    dtype: torch.dtype
    channels_last: bool
    why: str


@dataclass(frozen=True)
class CpuSettings:
    """What runs on this CPU: the U-Net (with CLIP and the adapter) and the decoders (the VAE, the tiny one)."""

    features: CpuFeatures
    unet: StageSettings
    decoders: StageSettings
    probe: dict | None = None  # seconds per (stage, dtype name, layout) when the probe ran

    def describe(self) -> str:
        """E.g. "float32 (this CPU has no bfloat16 units), channels-last convolutions"."""
        unet, decoders = self.unet, self.decoders
        if (unet.dtype, unet.why) == (decoders.dtype, decoders.why):
            precision = f"{dtype_name(unet.dtype)} ({unet.why})"
        else:
            precision = (
                f"U-Net {dtype_name(unet.dtype)} ({unet.why}), decoders {dtype_name(decoders.dtype)} ({decoders.why})"
            )
        if unet.channels_last == decoders.channels_last:
            layout = f"{_layout_name(unet.channels_last)} convolutions"
        else:
            layout = f"U-Net {_layout_name(unet.channels_last)}, decoders {_layout_name(decoders.channels_last)}"
        return f"{precision}, {layout}"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _layout_name(channels_last: bool) -> str:
    return "channels-last" if channels_last else "channels-first"


def choose_cpu_settings(dtype: torch.dtype | None = None) -> CpuSettings:
    """Precision and layout of each stage on this CPU; `dtype` (the user's) decides the precision when given.

    Without bfloat16 units nothing is measured: float32 (or `dtype`), channels-last. With them, the
    probe (`probe_speeds`, once per process) times both precisions and both layouts of each stage.
    """
    features = cpu_features()
    units = features.bf16_units
    if units is None:
        stage = StageSettings(
            dtype or torch.float32, channels_last=True, why="asked for" if dtype else "this CPU has no bfloat16 units"
        )
        return CpuSettings(features, unet=stage, decoders=stage)
    speeds = probe_speeds()
    choices = {stage: _choose_stage(stage, speeds, dtype, units) for stage in STAGES}
    return CpuSettings(
        features, **choices, probe={f"{s}:{dtype_name(d)}:{_layout_name(c)}": t for (s, d, c), t in speeds.items()}
    )


def _choose_stage(stage: str, speeds: dict, dtype: torch.dtype | None, units: str) -> StageSettings:
    def fastest(candidate: torch.dtype) -> tuple[bool, float]:
        """(channels_last, seconds): channels-last unless channels-first is clearly faster."""
        last, first = speeds[(stage, candidate, True)], speeds[(stage, candidate, False)]
        return (False, first) if last > first * CHANNELS_FIRST_MIN_SPEEDUP else (True, last)

    if dtype is not None:
        channels_last = fastest(dtype)[0] if dtype in PROBE_DTYPES else True
        return StageSettings(dtype, channels_last, "asked for")
    f32_layout, f32_seconds = fastest(torch.float32)
    bf16_layout, bf16_seconds = fastest(torch.bfloat16)
    speedup = f32_seconds / bf16_seconds
    if speedup < BF16_MIN_SPEEDUP:
        return StageSettings(torch.float32, f32_layout, f"{units}, but bfloat16 measured no faster: {speedup:.1f}x")
    if stage in BF16_HARMS:
        return StageSettings(torch.float32, f32_layout, BF16_HARMS[stage])
    return StageSettings(torch.bfloat16, bf16_layout, f"{units}: {speedup:.1f}x float32's speed in a short probe")


# The probe's workloads: a U-Net level-0 pseudo-3D convolution (64 channels, 4 frames at half the
# published latent size) and a decoder 3 x 3 convolution (128 channels at 64 x 64). Each costs about
# 0.5 GFLOP: a few milliseconds where bfloat16 units exist.
PROBE_UNET_VIDEO = (1, 64, 4, 40, 32)
PROBE_DECODER_IMAGE = (1, 128, 64, 64)
PROBE_REPEATS = 3
PROBE_SLOW_SECONDS = 0.5


@functools.cache
def probe_speeds(
    unet_video: tuple[int, ...] = PROBE_UNET_VIDEO, decoder_image: tuple[int, ...] = PROBE_DECODER_IMAGE
) -> dict[tuple[str, torch.dtype, bool], float]:
    """Seconds of each stage's probe workload per (stage, dtype, channels_last): the best of a few runs,
    measured once per process (about 0.1 s where bfloat16 units exist)."""
    from .models.layers import PseudoConv3d

    generator = torch.Generator().manual_seed(0)
    unet_conv = PseudoConv3d(unet_video[1], unet_video[1]).eval()
    decoder_conv = torch.nn.Conv2d(decoder_image[1], decoder_image[1], 3, padding=1).eval()
    video, image = torch.randn(unet_video, generator=generator), torch.randn(decoder_image, generator=generator)
    speeds = {}
    for dtype in PROBE_DTYPES:
        for channels_last in (True, False):
            unet_conv.to(dtype)
            unet_conv.channels_last = channels_last
            memory_format = torch.channels_last if channels_last else torch.contiguous_format
            decoder_conv.to(dtype=dtype, memory_format=memory_format)
            speeds[("unet", dtype, channels_last)] = _best_time(unet_conv, video.to(dtype))
            speeds[("decoders", dtype, channels_last)] = _best_time(decoder_conv, image.to(dtype))
    logger.info("CPU probe (seconds): %s", {f"{s}:{d}:{c}": round(t, 4) for (s, d, c), t in speeds.items()})
    return speeds


@torch.no_grad()
def _best_time(module: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    module(x)  # the first call sets up kernels
    first = time.perf_counter() - start
    if first > PROBE_SLOW_SECONDS:  # far too slow to be chosen (an emulated path): not worth repeating
        return first
    best = math.inf
    for _ in range(PROBE_REPEATS):
        start = time.perf_counter()
        module(x)
        best = min(best, time.perf_counter() - start)
    return best


# memory --------------------------------------------------------------------------------------------------------


def available_memory(device: torch.device | str) -> int:
    """Bytes that a new allocation on `device` can take now (RAM for the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # memory PyTorch holds in its cache counts as free for PyTorch
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "cpu":
        return _available_ram()
    return 8 * 2**30  # MPS and others report nothing useful: assume a modest 8 GB


def _available_ram() -> int:
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 * 2**30
    try:  # a container's memory limit (cgroup v2)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(available, 0)


def decode_bytes_per_frame(decoder: str, height: int, width: int, dtype: torch.dtype) -> int:
    """Estimated peak working memory of decoding one height x width frame with `decoder`."""
    return DECODER_VALUES_PER_PIXEL[decoder] * height * width * torch.finfo(dtype).bits // 8


def choose_decode_chunk_size(
    device: torch.device | str,
    decoder: str,
    height: int,
    width: int,
    dtype: torch.dtype,
    num_frames: int | None = None,
    free_bytes: int | None = None,
) -> int:
    """Frames per decoder call that fit the device: see the module docstring for the rule."""
    device = torch.device(device)
    free = available_memory(device) if free_bytes is None else free_bytes
    share = CPU_MEMORY_SHARE if device.type == "cpu" else GPU_MEMORY_SHARE
    fits = int(free * share) // decode_bytes_per_frame(decoder, height, width, dtype)
    limit = MAX_DECODE_CHUNK["cpu" if device.type == "cpu" else "other"][decoder]
    chunk = max(1, min(fits, limit))
    return min(chunk, num_frames) if num_frames else chunk
