"""torch.compile for a FashionFlowPipeline: the U-Net and the decoders, for the fixed shapes of a request.

A request fixes every shape: (batch, 4, frames, h, w) for the U-Net at every step, and
(chunk, 4, h, w) for the decoder. Each module is compiled for static shapes, so the first call
of a new shape pays the compilation (seconds to minutes) and every later call runs the compiled
kernels; `warm_up` pays it up front and says how long it took, so that it is reported apart from
the generation's own time. On CUDA the default mode, "reduce-overhead", also captures CUDA
graphs: one launch per U-Net step instead of thousands of small ones.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch

logger = logging.getLogger(__name__)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class CompileSettings:
    mode: str
    backend: str
    channels_last: bool
    seconds: dict[tuple, float] = field(default_factory=dict)  # shape key -> seconds spent compiling it

    @property
    def uses_cuda_graphs(self) -> bool:
        """Inductor's "reduce-overhead" and "max-autotune" modes capture CUDA graphs."""
        return self.backend == "inductor" and self.mode in ("reduce-overhead", "max-autotune")

    def describe(self) -> str:
        what = "compiled" if self.backend == "inductor" else f"compiled ({self.backend})"
        return f"{what}, mode {self.mode}" + (", channels-last decoder" if self.channels_last else "")


def default_compile_mode(device: torch.device) -> str:
    """CUDA graphs on CUDA (the shapes of a request are fixed); plain inductor code elsewhere."""
    return "reduce-overhead" if device.type == "cuda" else "default"


def compile_pipeline(
    pipeline, mode: str | None = None, backend: str = "inductor", channels_last: bool | None = None
) -> CompileSettings:
    """Compile the U-Net and the decoders of `pipeline` in place (their weights and names stay the same)."""
    device = pipeline.execution_device
    mode = mode or default_compile_mode(device)
    if mode not in COMPILE_MODES:
        raise ValueError(f"Unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}.")
    if channels_last is None:
        channels_last = device.type == "cuda"  # 2-D convolutions in NHWC: cuDNN's fast layout
    options = dict(dynamic=False, mode=mode) if backend == "inductor" else dict(dynamic=False, backend=backend)

    pipeline.unet.attention_backend_on(device)  # probe xformers now: the compiled graph only reads the answer
    pipeline.unet.compile(**options)
    for autoencoder in (pipeline.vae, pipeline.tiny_vae):
        if autoencoder is None:
            continue
        if channels_last:
            autoencoder.to(memory_format=torch.channels_last)
        autoencoder.decoder.compile(**options)
    return CompileSettings(mode=mode, backend=backend, channels_last=channels_last)


def shape_key(batch: int, num_frames: int, decoder: str, decode_chunk_size: int) -> tuple:
    return (batch, num_frames, decoder, decode_chunk_size)


@torch.no_grad()
def warm_up(pipeline, batch: int, num_frames: int, decoder: str, decode_chunk_size: int | None) -> float:
    """Run the compiled modules once at a request's shapes (twice for CUDA graphs, which record on
    the second call); returns the seconds this took, the compilation's cost for these shapes.
    decode_chunk_size None: nothing is decoded (latent output)."""
    settings: CompileSettings = pipeline.compile_settings
    key = shape_key(batch, num_frames, decoder, decode_chunk_size)
    if key in settings.seconds:
        return 0.0
    device = pipeline.execution_device
    latent_h, latent_w = pipeline.adapter.config.latent_size
    unet = pipeline.unet
    sample = torch.zeros(
        batch, unet.config.in_channels, num_frames, latent_h, latent_w, device=device, dtype=unet.dtype
    )
    context = torch.zeros(
        batch, pipeline.adapter.config.clip_tokens, unet.config.context_dim, device=device, dtype=unet.dtype
    )
    timestep = torch.tensor(999, device=device)
    model = pipeline.decoder_model(decoder) if decode_chunk_size else None

    cuda_graphs = pipeline.uses_cuda_graphs
    start = time.perf_counter()
    for _ in range(2 if cuda_graphs else 1):
        if cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        unet(sample, timestep, context)
        if model is not None:
            latents = torch.zeros(decode_chunk_size, 4, latent_h, latent_w, device=device, dtype=model.dtype)
            model.decode(latents)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    settings.seconds[key] = seconds
    logger.info(
        "Compiled for %d x %d frames, %s decoder %s frames per call, in %.1f s (once per shape).",
        batch,
        num_frames,
        decoder,
        decode_chunk_size,
        seconds,
    )
    return seconds
