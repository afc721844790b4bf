"""Attention layers: spatio-temporal self-attention and cross-attention to the image context."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .attention_backend import attend, check_attention_backend
from .layers import TemporalShiftFeedForward


class AttentionBackendMixin:
    """Lets `FashionFlowUNet.set_attention_backend` and diffusers' xformers switch reach a layer."""

    attention_backend: str = "auto"

    def set_attention_backend(self, name: str) -> None:
        self.attention_backend = check_attention_backend(name)

    def set_use_memory_efficient_attention_xformers(self, valid: bool, attention_op: Callable | None = None) -> None:
        self.set_attention_backend("xformers" if valid else "sdpa")


class Attention(AttentionBackendMixin, nn.Module):
    """Pre-LayerNorm multi-head self-attention with an additive bias; starts as zero (to_out = 0)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        inner_dim = heads * dim_head
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)
        nn.init.zeros_(self.to_out.weight)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:  # (b, n, dim)
        x = self.norm(x)
        q, k, v = self.to_q(x), *self.to_kv(x).chunk(2, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
        out = attend(q, k, v, bias, self.attention_backend)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class RelativePositionBias(nn.Module):
    """Per-head attention bias from an MLP over relative coordinates (continuous position bias).

    The MLP runs once per distinct offset, (2n - 1) per axis, and is then gathered for all pairs.
    """

    def __init__(self, num_dims: int, hidden_dim: int, heads: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(num_dims, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, heads),
        )

    def forward(self, *sizes: int) -> torch.Tensor:  # -> (heads, n, n), n = prod(sizes)
        device = self.mlp[0].weight.device
        offsets = torch.cartesian_prod(*(torch.arange(-n + 1, n, device=device) for n in sizes))
        table = self.mlp(offsets.reshape(-1, len(sizes)).to(self.mlp[0].weight.dtype))  # ((2n-1)^dims, heads)

        positions = torch.cartesian_prod(*(torch.arange(n, device=device) for n in sizes)).reshape(-1, len(sizes))
        relative = positions[:, None, :] - positions[None, :, :] + torch.tensor(sizes, device=device) - 1
        strides = [1]
        for n in reversed(sizes[1:]):
            strides.insert(0, strides[0] * (2 * n - 1))
        index = (relative * torch.tensor(strides, device=device)).sum(-1)
        return rearrange(table[index], "i j h -> h i j")


class SpatioTemporalAttention(nn.Module):
    """Attention within each frame, then across frames at each pixel, then a time-shifting feed-forward."""

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, ff_mult: float = 4):
        super().__init__()
        self.spatial_attn = Attention(dim, heads, dim_head)
        self.spatial_rel_pos_bias = RelativePositionBias(2, dim // 2, heads)
        self.temporal_attn = Attention(dim, heads, dim_head)
        self.temporal_rel_pos_bias = RelativePositionBias(1, dim // 2, heads)
        self.ff = TemporalShiftFeedForward(dim, ff_mult)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = x.shape
        x = rearrange(x, "b c f h w -> (b f) (h w) c")
        x = x + self.spatial_attn(x, self.spatial_rel_pos_bias(h, w))
        x = rearrange(x, "(b f) (h w) c -> (b h w) f c", b=b, h=h)
        x = x + self.temporal_attn(x, self.temporal_rel_pos_bias(f))
        x = rearrange(x, "(b h w) f c -> b c f h w", b=b, h=h)
        return x + self.ff(x)


class CrossAttention(AttentionBackendMixin, nn.Module):
    """Multi-head attention from video tokens to context tokens (no q/k/v bias, output bias)."""

    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:  # (b, n, dim), (b, m, context_dim)
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
        out = attend(q, k, v, backend=self.attention_backend)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


# Token-wise layers run over at most this many hidden activations at a time (64 MiB in float32):
# at 70 frames level 0 holds 358,400 tokens, whose GEGLU hidden layer alone would be 700 MiB.
DEFAULT_CHUNK_ELEMENTS = 2**24


class CrossAttentionBlock(nn.Module):
    """All frames and positions as one token sequence: cross-attention + GEGLU MLP, then a 1x1 projection.

    There is no residual around the whole block (as in the published model). Every token is
    computed independently of the others (its keys and values come from the context), so the
    block runs over chunks of tokens: the same outputs, a fraction of the peak memory.
    `chunk_size` is the tokens per chunk; None picks it from `DEFAULT_CHUNK_ELEMENTS`, 0 turns
    chunking off.
    """

    def __init__(self, dim: int, context_dim: int, heads: int, mlp_mult: int = 4):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, context_dim, heads)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp_in = nn.Linear(dim, dim * mlp_mult * 2)
        self.mlp_out = nn.Linear(dim * mlp_mult, dim)
        self.proj_out = nn.Linear(dim, dim)
        self.chunk_size: int | None = None

    def tokens_per_chunk(self, num_tokens: int) -> int:
        if self.chunk_size == 0:
            return num_tokens
        if self.chunk_size is not None:
            return self.chunk_size
        return max(1, DEFAULT_CHUNK_ELEMENTS // self.mlp_in.out_features)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        f, h = x.shape[2:4]
        x = rearrange(x, "b c f h w -> b (f h w) c")
        chunk = self.tokens_per_chunk(x.shape[1])
        if chunk >= x.shape[1]:
            out = self.tokenwise(x, context)
        else:
            out = x.new_empty(x.shape)  # filled chunk by chunk: no list of pieces to concatenate
            for start in range(0, x.shape[1], chunk):
                out[:, start : start + chunk] = self.tokenwise(x[:, start : start + chunk], context)
        return rearrange(out, "b (f h w) c -> b c f h w", f=f, h=h)

    def tokenwise(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:  # (b, n, dim) -> (b, n, dim)
        x = x + self.attn(self.attn_norm(x), context)
        hidden, gate = self.mlp_in(self.mlp_norm(x)).chunk(2, dim=-1)
        x = x + self.mlp_out(hidden * F.gelu(gate))
        return self.proj_out(x)
