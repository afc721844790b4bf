"""Settings that depend on the machine a pipeline runs on: CPU threads and frames per decoder call.

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
"""

from __future__ import annotations

import logging
import math
import os
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
