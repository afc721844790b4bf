"""The processes of one run: accelerate's view of them, the same for every command that splits work.

`python -m fashionflow ...` is one process; under `accelerate launch` or `torchrun` there are
several, on one machine or many, and each command splits its items between them
(`state.split_between_processes`), each process writing its own files.
"""

from __future__ import annotations

import datetime
import os

from .environment import truth


def process_state(device: str | None = None):
    """accelerate's `PartialState` for this run (one process, unless started by a launcher)."""
    import torch
    from accelerate import PartialState

    # Without a GPU, processes started by torchrun / `accelerate launch --cpu` must be told to use
    # the CPU: otherwise accelerate sees no accelerator and each one believes it runs alone.
    cpu = (
        (device or "").startswith("cpu")
        or not torch.cuda.is_available()
        or truth(os.environ.get("ACCELERATE_USE_CPU", ""), "ACCELERATE_USE_CPU")
    )
    # A process that finishes its share waits at the end for the others (before a manifest is
    # merged, say): allow a day (torch's default is 30 minutes).
    return PartialState(cpu=cpu, timeout=datetime.timedelta(hours=24))


def process_device(state, device: str | None = None) -> str | None:
    """The device this process works on: `device` when given; under a launcher the process's own
    (cuda:LOCAL_RANK); alone, None (the usual choice: the best one present)."""
    if device:
        return device
    return str(state.device) if state.num_processes > 1 else None
