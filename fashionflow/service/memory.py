"""Out of memory: recognising it however it surfaces, advice for the person, and freeing what is left."""

from __future__ import annotations

import gc

from ..errors import is_out_of_memory  # noqa: F401  (one definition, shared with the command line)
from .settings import GenerationSettings


def out_of_memory_message(settings: GenerationSettings, device: str) -> str:
    where = "The GPU" if device.startswith(("cuda", "mps")) else "The computer"
    return (
        f"{where} ran out of memory making {settings.num_frames} frames, decoding {settings.decode_chunk_size} "
        "at a time. Open Advanced and choose fewer frames or a smaller decode chunk size, or try again "
        "when fewer videos are being made."
    )


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
