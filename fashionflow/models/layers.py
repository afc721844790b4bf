"""Convolutional building blocks of the FashionFlow U-Net.

Every block takes and returns video features of shape (b, c, f, h, w). Parameter
shapes follow the published checkpoint (see `fashionflow.convert` for the key names).

Two layouts compute the same function (`FashionFlowUNet.set_convolution_layout`):
- channels-first: the video is stored (b, c, f, h, w) and the pseudo-3D convolutions run as
  conv3d with (1, k, k) and (kt, 1, 1) kernels, the 1x1x1 ones as conv3d too;
- channels-last: the video is stored (b, f, h, w, c) (torch.channels_last_3d), and every
  convolution runs on a view of it without copies: the k x k one as a channels-last conv2d over
  the frames (b f, c, h, w), the temporal one as a channels-last conv2d over (b, c, f, h w) with
  a (kt, 1) kernel, and the 1x1x1 ones as matrix products over the channels. On CPUs this is
  the layout their convolution kernels work in (no reordering around every call), and 2-D
  convolutions have fast kernels in bfloat16 where 3-D ones may not; see runtime.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn


class TimestepEmbedding(nn.Module):
    """Sinusoidal embedding of the raw diffusion step (0..999 as a float), then Linear + SiLU."""

    def __init__(self, dim: int, out_dim: int, theta: float = 10000.0):
        super().__init__()
        self.dim, self.theta = dim, theta
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:  # (b,) -> (b, out_dim)
        half = self.dim // 2
        freqs = torch.exp(
            torch.arange(half, device=timesteps.device, dtype=torch.float32) * -(math.log(self.theta) / (half - 1))
        )
        angles = timesteps.float()[:, None] * freqs[None, :]
        embedding = torch.cat((angles.sin(), angles.cos()), dim=-1)
        return F.silu(self.linear(embedding.to(self.linear.weight.dtype)))


class LayoutMixin:
    """A layer that can compute on channels-last views (set by `FashionFlowUNet.set_convolution_layout`)."""

    channels_last: bool = False


def channels_last_view(x: torch.Tensor) -> torch.Tensor:
    """(b, c, f, h, w) -> (b, f, h, w, c) tokens, contiguous: a view when `x` is stored channels-last, else a copy.

    Views of these tokens made by `reshape` get the canonical strides that PyTorch's kernels
    recognise as channels-last (a size-1 batch keeps no odd stride that would hide the layout)."""
    return x.permute(0, 2, 3, 4, 1).contiguous()


def from_channels_last_view(x: torch.Tensor) -> torch.Tensor:
    """(b, f, h, w, c) -> (b, c, f, h, w), a view that is stored channels-last."""
    return x.permute(0, 4, 1, 2, 3)


def pointwise(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """A 1 x 1 (x 1) convolution of channels-last tokens (..., c_in) -> (..., c_out), as one matrix product."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


class PseudoConv3d(LayoutMixin, nn.Module):
    """A k x k convolution on every frame, then a 1-D convolution over time at every pixel.

    The temporal convolution starts as the identity (Dirac init) and is left out when k = 1.
    Both run as conv3d with (1, k, k) and (kt, 1, 1) kernels: the same arithmetic as
    per-frame conv2d and per-pixel conv1d, without reshuffling the video in memory.
    """

    def __init__(self, dim_in: int, dim_out: int, kernel_size: int = 3, temporal_kernel_size: int | None = None):
        super().__init__()
        temporal_kernel_size = temporal_kernel_size or kernel_size
        self.spatial_conv = nn.Conv2d(dim_in, dim_out, kernel_size, padding=kernel_size // 2)
        self.temporal_conv = None
        if kernel_size > 1:
            self.temporal_conv = nn.Conv1d(dim_out, dim_out, temporal_kernel_size, padding=temporal_kernel_size // 2)
            nn.init.dirac_(self.temporal_conv.weight)
            nn.init.zeros_(self.temporal_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return self._forward_channels_last(x)
        pad = self.spatial_conv.padding[0]
        x = F.conv3d(x, self.spatial_conv.weight.unsqueeze(2), self.spatial_conv.bias, padding=(0, pad, pad))
        if self.temporal_conv is None:
            return x
        pad = self.temporal_conv.padding[0]
        return F.conv3d(x, self.temporal_conv.weight[..., None, None], self.temporal_conv.bias, padding=(pad, 0, 0))

    def _forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = x.shape
        tokens = channels_last_view(x)
        frames = tokens.reshape(b * f, h, w, -1).permute(0, 3, 1, 2)  # (b f, c, h, w), channels-last
        tokens = self.spatial_conv(frames).permute(0, 2, 3, 1)  # (b f, h, w, c)
        if self.temporal_conv is not None:
            pad = self.temporal_conv.padding[0]
            pixels = tokens.reshape(b, f, h * w, -1).permute(0, 3, 1, 2)  # (b, c, f, h w): every pixel's frames
            pixels = F.conv2d(pixels, self.temporal_conv.weight[..., None], self.temporal_conv.bias, padding=(pad, 0))
            tokens = pixels.permute(0, 2, 3, 1)
        return from_channels_last_view(tokens.reshape(b, f, h, w, -1))


class Block(nn.Module):
    """Pseudo-3D conv -> GroupNorm -> (optional timestep scale/shift) -> SiLU."""

    def __init__(self, dim_in: int, dim_out: int, kernel_size: int = 3, groups: int = 8):
        super().__init__()
        self.project = PseudoConv3d(dim_in, dim_out, kernel_size)
        self.norm = nn.GroupNorm(groups, dim_out)

    def forward(self, x: torch.Tensor, scale_shift: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = self.norm(self.project(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return F.silu(x)


class ResnetBlock(nn.Module):
    """Two Blocks with a residual; the timestep, when given a width, scales and shifts the first."""

    def __init__(
        self, dim_in: int, dim_out: int, *, time_dim: int | None = None, kernel_size: int = 3, groups: int = 8
    ):
        super().__init__()
        self.time_proj = nn.Linear(time_dim, dim_out * 2) if time_dim else None
        self.block1 = Block(dim_in, dim_out, kernel_size, groups)
        self.block2 = Block(dim_out, dim_out, kernel_size, groups)
        self.res_conv = PseudoConv3d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor | None = None) -> torch.Tensor:
        scale_shift = None
        if self.time_proj is not None:
            time_emb = rearrange(self.time_proj(F.silu(time_emb)), "b c -> b c 1 1 1")
            scale_shift = time_emb.chunk(2, dim=1)
        h = self.block1(x, scale_shift)
        return self.block2(h) + self.res_conv(x)


class Downsample(LayoutMixin, nn.Module):
    """Space-to-depth 2x2 then a 1x1 conv; optionally the same over pairs of frames."""

    def __init__(self, dim: int, downsample_time: bool = False):
        super().__init__()
        self.down_space = nn.Conv2d(dim * 4, dim, 1, bias=False)
        self.down_time = nn.Conv3d(dim * 2, dim, 1, bias=False) if downsample_time else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = rearrange(channels_last_view(x), "b f (h p1) (w p2) c -> b f h w (c p1 p2)", p1=2, p2=2)
            x = pointwise(x, self.down_space)
            if self.down_time is not None:
                x = pointwise(rearrange(x, "b (f p) h w c -> b f h w (c p)", p=2), self.down_time)
            return from_channels_last_view(x)
        x = rearrange(x, "b c f (h p1) (w p2) -> b (c p1 p2) f h w", p1=2, p2=2)
        x = F.conv3d(x, self.down_space.weight.unsqueeze(2))
        if self.down_time is not None:
            x = self.down_time(rearrange(x, "b c (f p) h w -> b (c p) f h w", p=2))
        return x


class Upsample(LayoutMixin, nn.Module):
    """A 1x1 conv to 4x channels then depth-to-space 2x2; optionally the same over time."""

    def __init__(self, dim: int, upsample_time: bool = False):
        super().__init__()
        self.up_space = nn.Conv2d(dim, dim * 4, 1)
        self.up_time = nn.Conv3d(dim, dim * 2, 1) if upsample_time else None
        # Every output pixel of a 2x2 group starts from the same weights (no checkerboard at init).
        self._init_repeated(self.up_space, 4)
        if self.up_time is not None:
            self._init_repeated(self.up_time, 2)

    @staticmethod
    def _init_repeated(conv: nn.Module, factor: int) -> None:
        out_channels, *rest = conv.weight.shape
        weight = torch.empty(out_channels // factor, *rest)
        nn.init.kaiming_uniform_(weight)
        with torch.no_grad():
            conv.weight.copy_(repeat(weight, "o ... -> (o r) ...", r=factor))
            conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = rearrange(
                pointwise(channels_last_view(x), self.up_space), "b f h w (c p1 p2) -> b f (h p1) (w p2) c", p1=2, p2=2
            )
            if self.up_time is not None:
                x = rearrange(pointwise(x, self.up_time), "b f h w (c p) -> b (f p) h w c", p=2)
            return from_channels_last_view(x)
        x = F.conv3d(x, self.up_space.weight.unsqueeze(2), self.up_space.bias)
        x = rearrange(x, "b (c p1 p2) f h w -> b c f (h p1) (w p2)", p1=2, p2=2)
        if self.up_time is not None:
            x = rearrange(self.up_time(x), "b (c p) f h w -> b c (f p) h w", p=2)
        return x


class ChanLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (b, c, f, h, w), scale only.

    As in the published model, the variance is clamped from below rather than offset by eps.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.g = nn.Parameter(torch.ones(dim, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        var = torch.var(x, dim=1, unbiased=False, keepdim=True)
        mean = torch.mean(x, dim=1, keepdim=True)
        return (x - mean) * var.clamp(min=eps).rsqrt() * self.g


class TemporalShiftFeedForward(LayoutMixin, nn.Module):
    """GEGLU feed-forward of 1x1x1 convs that shifts half of its hidden channels one frame later."""

    def __init__(self, dim: int, mult: float = 4):
        super().__init__()
        inner_dim = int(dim * mult * 2 / 3)
        self.proj_in = nn.Conv3d(dim, inner_dim * 2, 1, bias=False)
        self.norm = ChanLayerNorm(inner_dim)
        self.proj_out = nn.Conv3d(inner_dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x, gate = pointwise(channels_last_view(x), self.proj_in).chunk(2, dim=-1)  # (b, f, h, w, c) tokens
            x = x * F.gelu(gate)
            x, x_shift = x.chunk(2, dim=-1)
            x_shift = F.pad(x_shift, (0, 0, 0, 0, 0, 0, 1, -1))  # along f, as below
            x = self.norm(from_channels_last_view(torch.cat((x, x_shift), dim=-1)))
            return from_channels_last_view(pointwise(channels_last_view(x), self.proj_out))
        x, gate = self.proj_in(x).chunk(2, dim=1)
        x = x * F.gelu(gate)
        x, x_shift = x.chunk(2, dim=1)
        x_shift = F.pad(x_shift, (0, 0, 0, 0, 1, -1))  # frame t sees frame t-1; frame 0 sees zeros
        return self.proj_out(self.norm(torch.cat((x, x_shift), dim=1)))
