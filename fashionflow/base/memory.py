"""Out of memory: recognising it however it surfaces (CUDA, MPS, the CPU's allocator), and handing
back what can be handed back, so that the next job (the next photo, the next visitor) has it."""

from __future__ import annotations

import gc
import re
import sys

_MEMORY_ERROR = re.compile(
    r"out of memory|can't allocate memory|cannot allocate memory|not enough memory|failed to allocate", re.I
)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA / MPS / CPU allocation failures, whichever way they surface."""
    if isinstance(error, MemoryError):
        return True
    torch = sys.modules.get("torch")  # only when torch is in use can its errors occur
    if torch is not None and isinstance(error, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)):
        return True
    if getattr(error, "reason", None) == "out-of-memory":
        return True
    return isinstance(error, RuntimeError) and bool(_MEMORY_ERROR.search(str(error)))


def release_memory() -> None:
    """Collect what nothing refers to any more and return the GPU's cached blocks to the driver.

    Call it after the failed work's exception (and its traceback, which holds the tensors) is gone."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
