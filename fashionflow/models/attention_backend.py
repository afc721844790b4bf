"""Which attention kernel runs: PyTorch's scaled_dot_product_attention, or xformers on CUDA.

Every attention layer of the model calls `attend`. A layer asks for a backend by name
(`"auto"`, `"sdpa"` or `"xformers"`); `resolve_attention_backend` turns that request into
the kernel that really runs on the tensors' device. xformers is used only on CUDA, and
only after a probe has shown that it imports, runs and agrees with SDPA on that device;
everything else runs SDPA, so the model works the same with or without xformers.
"""

from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F

from ..defaults import ATTENTION_BACKENDS

logger = logging.getLogger(__name__)


def check_attention_backend(name: str) -> str:
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"Unknown attention backend {name!r}; choose one of {', '.join(ATTENTION_BACKENDS)}.")
    return name


# device -> whether xformers works there. A plain dict rather than functools.cache: torch.compile
# reads a dict without breaking the graph, so a compiled U-Net stays one graph once probed.
_XFORMERS_WORKS: dict[torch.device, bool] = {}


def xformers_works(device: torch.device) -> bool:
    """True when xformers imports and its memory-efficient attention matches SDPA on `device`."""
    if device.type != "cuda":
        return False
    if device not in _XFORMERS_WORKS:
        _XFORMERS_WORKS[device] = _probe_xformers(device)
    return _XFORMERS_WORKS[device]


def _probe_xformers(device: torch.device) -> bool:
    try:
        import xformers.ops as xops
    except Exception as error:  # ImportError, or a broken build that fails while importing
        logger.info("xformers is not usable: %s", error)
        return False
    try:
        generator = torch.Generator(device).manual_seed(0)
        q, k, v = (torch.randn(2, 2, 19, 64, device=device, dtype=torch.float16, generator=generator) for _ in range(3))
        bias = torch.randn(2, 19, 19, device=device, dtype=torch.float16, generator=generator)
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        got = _xformers_attention(xops, q, k, v, bias)
        return bool(torch.allclose(got, expected, atol=2e-2, rtol=2e-2))
    except Exception as error:
        logger.warning("xformers imports but does not run on %s (%s); using PyTorch SDPA.", device, error)
        return False


def resolve_attention_backend(requested: str, device: torch.device | str) -> str:
    """The kernel that `attend` runs for a layer asking for `requested` on `device`."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if requested in ("auto", "xformers") and xformers_works(device):
        return "xformers"
    if requested == "xformers":
        _warn_xformers_unavailable(device)
    return "sdpa"


@functools.cache
def _warn_xformers_unavailable(device: torch.device) -> None:
    logger.warning("xformers was asked for but does not work on %s; using PyTorch SDPA.", device)


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None, backend: str = "auto"
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v.

    q: (b, heads, i, d); k, v: (b, heads, j, d); bias: broadcastable to (b, heads, i, j).
    Returns (b, heads, i, d).
    """
    if bias is not None:
        bias = bias.to(q.dtype)
    if resolve_attention_backend(backend, q.device) == "xformers":
        import xformers.ops as xops

        return _xformers_attention(xops, q, k, v, bias)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def _xformers_attention(xops, q, k, v, bias):
    b, heads, i, _ = q.shape
    j = k.shape[2]
    if bias is not None:
        # xformers wants a dense (b, heads, i, j) bias whose rows start on 8-element
        # boundaries, hence a slice of a wider buffer.
        aligned = bias.new_empty(b, heads, i, j + (-j) % 8)[..., :j]
        aligned.copy_(bias.expand(b, heads, i, j))
        bias = aligned
    # xformers takes (b, n, heads, d)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    out = xops.memory_efficient_attention(q, k, v, attn_bias=bias)
    return out.transpose(1, 2)
