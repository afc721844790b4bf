"""FashionFlowUNet: the pseudo-3D space-time U-Net of the published FashionFlow checkpoint.

Shapes for the published configuration, latent video (b, 4, 70, 80, 64):

    conv_in                    -> (b,  64, 70, 80, 64)
    down level 0  (64 -> 64)   -> (b,  64, 70, 40, 32)   skips at 80x64
    down level 1  (64 -> 128)  -> (b, 128, 70, 20, 16)
    down level 2  (128 -> 256) -> (b, 256, 70, 10,  8)
    down level 3  (256 -> 512) -> (b, 512, 35,  5,  4)   self-attention, time halved
    middle                     -> (b, 512, 35,  5,  4)
    up levels 3..0 mirror the way down, concatenating two skips each
    conv_out                   -> (b,   4, 70, 80, 64)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from .attention import AttentionBackendMixin, CrossAttentionBlock, SpatioTemporalAttention
from .attention_backend import check_attention_backend, resolve_attention_backend
from .layers import Downsample, LayoutMixin, PseudoConv3d, ResnetBlock, TimestepEmbedding, Upsample

SKIP_SCALE = 2**-0.5
CONVOLUTION_LAYOUTS = ("channels-first", "channels-last")  # layers.py: the same function, stored two ways


@dataclass
class FashionFlowUNetOutput(BaseOutput):
    sample: torch.Tensor  # (b, c, f, h, w): the predicted noise


@dataclass(frozen=True)
class LevelShape:
    """What every level of the U-Net shares: the time embedding's width, the resnets' kernel and
    norm groups, the self-attention's heads and feed-forward width, the context's width."""

    time_dim: int
    kernel_size: int
    groups: int
    attention_heads: int
    attention_head_dim: int
    ff_mult: int
    context_dim: int

    def attention(self, dim: int) -> SpatioTemporalAttention:
        return SpatioTemporalAttention(dim, self.attention_heads, self.attention_head_dim, self.ff_mult)


class DownLevel(nn.Module):
    """Time resnet, plain resnets, optional self-attention, downsample, cross-attention."""

    def __init__(
        self, dim_in, dim_out, depth, self_attention, downsample_time, cross_attention_heads, shape: LevelShape
    ):
        super().__init__()
        k, g = shape.kernel_size, shape.groups
        self.time_resnet = ResnetBlock(dim_in, dim_out, time_dim=shape.time_dim, kernel_size=k, groups=g)
        self.resnets = nn.ModuleList(ResnetBlock(dim_out, dim_out, kernel_size=k, groups=g) for _ in range(depth))
        self.self_attention = shape.attention(dim_out) if self_attention else None
        self.downsample = Downsample(dim_out, downsample_time)
        self.cross_attention = CrossAttentionBlock(dim_out, shape.context_dim, cross_attention_heads)

    def forward(self, x, time_emb, context):
        """Returns the downsampled features and the two skips (after the time resnet, before downsampling)."""
        x = skip_time = self.time_resnet(x, time_emb)
        for resnet in self.resnets:
            x = resnet(x)
        if self.self_attention is not None:
            x = self.self_attention(x)
        return self.cross_attention(self.downsample(x), context), skip_time, x


class UpLevel(nn.Module):
    """Upsample, concat a skip, time resnet, concat the other skip, resnets, attention(s)."""

    def __init__(self, dim_in, dim_out, depth, self_attention, upsample_time, cross_attention_heads, shape: LevelShape):
        super().__init__()
        k, g = shape.kernel_size, shape.groups
        self.upsample = Upsample(dim_out, upsample_time)
        self.time_resnet = ResnetBlock(dim_out * 2, dim_in, time_dim=shape.time_dim, kernel_size=k, groups=g)
        self.resnets = nn.ModuleList(
            ResnetBlock(dim_in + (dim_out if i == 0 else 0), dim_in, kernel_size=k, groups=g) for i in range(depth)
        )
        self.self_attention = shape.attention(dim_in) if self_attention else None
        self.cross_attention = CrossAttentionBlock(dim_in, shape.context_dim, cross_attention_heads)

    def forward(self, x, time_emb, context, skip_time, skip_out):
        """skip_time / skip_out: the matching down level's skips, taken in reverse order."""
        x = self.upsample(x)
        x = torch.cat((skip_out * SKIP_SCALE, x), dim=1)
        x = self.time_resnet(x, time_emb)
        x = torch.cat((skip_time * SKIP_SCALE, x), dim=1)
        for resnet in self.resnets:
            x = resnet(x)
        if self.self_attention is not None:
            x = self.self_attention(x)
        return self.cross_attention(x, context)


class FashionFlowUNet(ModelMixin, ConfigMixin):
    """Predicts the noise in a latent video, conditioned on a timestep and an image context.

    The default configuration is the published FashionFlow model (71,671,548 parameters).

    Args:
        in_channels: latent channels of the video (the model returns as many).
        base_channels: width of level 0; level i has `base_channels * channel_mults[i]`.
        channel_mults: width multiplier per level; every level halves height and width.
        resnet_depths: plain resnet blocks per level, after the time-conditioned one.
        self_attention_levels: levels with spatio-temporal self-attention.
        temporal_downsample_levels: levels that also halve the number of frames.
        attention_heads, attention_head_dim: self-attention on the levels.
        mid_attention_heads, mid_attention_head_dim: self-attention in the middle.
        cross_attention_heads: heads of the cross-attention block of each level (both paths).
        context_dim: width of the context tokens (the condition adapter's output).
        feed_forward_mult: width multiplier of the self-attention feed-forward.
        norm_groups: GroupNorm groups in the resnet blocks.
        resnet_kernel_size: spatial and temporal kernel of the resnet convolutions.
        conv_in_kernel_size, conv_in_temporal_kernel_size, conv_out_kernel_size,
        conv_out_temporal_kernel_size: kernels of the first and last pseudo-3D convolutions.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        base_channels: int = 64,
        channel_mults: Sequence[int] = (1, 2, 4, 8),
        resnet_depths: Sequence[int] = (2, 2, 2, 2),
        self_attention_levels: Sequence[bool] = (False, False, False, True),
        temporal_downsample_levels: Sequence[bool] = (False, False, False, True),
        attention_heads: int = 8,
        attention_head_dim: int = 64,
        mid_attention_heads: int = 8,
        mid_attention_head_dim: int = 64,
        cross_attention_heads: Sequence[int] = (1, 1, 2, 4),
        context_dim: int = 768,
        feed_forward_mult: float = 4,
        norm_groups: int = 8,
        resnet_kernel_size: int = 3,
        conv_in_kernel_size: int = 7,
        conv_in_temporal_kernel_size: int = 3,
        conv_out_kernel_size: int = 3,
        conv_out_temporal_kernel_size: int = 3,
    ):
        super().__init__()
        widths = [base_channels] + [base_channels * m for m in channel_mults]
        _check_config(
            widths,
            resnet_depths,
            self_attention_levels,
            temporal_downsample_levels,
            cross_attention_heads,
            norm_groups,
            [
                resnet_kernel_size,
                conv_in_kernel_size,
                conv_in_temporal_kernel_size,
                conv_out_kernel_size,
                conv_out_temporal_kernel_size,
            ],
        )
        time_dim = base_channels * 4

        self.time_embedding = TimestepEmbedding(base_channels, time_dim)
        self.conv_in = PseudoConv3d(in_channels, base_channels, conv_in_kernel_size, conv_in_temporal_kernel_size)

        # per level: (in, out) widths, resnet depth, self-attention, time halved, cross-attention heads
        per_level = (resnet_depths, self_attention_levels, temporal_downsample_levels, cross_attention_heads)
        levels = list(zip(widths[:-1], widths[1:], *per_level))
        shape = LevelShape(
            time_dim,
            resnet_kernel_size,
            norm_groups,
            attention_heads,
            attention_head_dim,
            feed_forward_mult,
            context_dim,
        )
        self.down_levels = nn.ModuleList(DownLevel(*level, shape) for level in levels)

        mid = widths[-1]
        self.mid_block1 = ResnetBlock(mid, mid, time_dim=time_dim, kernel_size=resnet_kernel_size, groups=norm_groups)
        self.mid_attn = SpatioTemporalAttention(mid, mid_attention_heads, mid_attention_head_dim, feed_forward_mult)
        self.mid_block2 = ResnetBlock(mid, mid, time_dim=time_dim, kernel_size=resnet_kernel_size, groups=norm_groups)

        self.up_levels = nn.ModuleList(UpLevel(*level, shape) for level in levels)
        self.conv_out = PseudoConv3d(base_channels, in_channels, conv_out_kernel_size, conv_out_temporal_kernel_size)
        self.gradient_checkpointing = False

    # sizes -------------------------------------------------------------------------------

    @property
    def spatial_multiple(self) -> int:
        """Latent height and width must be multiples of this."""
        return 2 ** len(self.config.channel_mults)

    @property
    def frame_multiple(self) -> int:
        """The number of frames must be a multiple of this."""
        return 2 ** sum(map(bool, self.config.temporal_downsample_levels))

    def check_sample_size(self, frames: int, height: int, width: int) -> None:
        """Raise a ValueError saying what is allowed when the model cannot take this latent size."""
        s, m = self.spatial_multiple, self.frame_multiple
        if height % s or width % s or height < s or width < s:
            raise ValueError(f"Latent height and width must be positive multiples of {s}; got {height} x {width}.")
        if frames % m or frames < m:
            raise ValueError(f"The number of frames must be a positive multiple of {m}; got {frames}.")

    # attention backend ---------------------------------------------------------------------

    def set_attention_backend(self, name: str) -> None:
        """Ask every attention layer for a backend: "auto" (xformers on CUDA when it works), "sdpa" or "xformers"."""
        check_attention_backend(name)
        for module in self.modules():
            if isinstance(module, AttentionBackendMixin):
                module.set_attention_backend(name)

    @property
    def attention_backend(self) -> str:
        """The attention kernel that runs on the model's current device: "sdpa" or "xformers"."""
        return self.attention_backend_on(self.device)

    def attention_backend_on(self, device: torch.device | str) -> str:
        """The attention kernel that runs when the model computes on `device`."""
        resolved = {
            resolve_attention_backend(m.attention_backend, device)
            for m in self.modules()
            if isinstance(m, AttentionBackendMixin)
        }
        return " + ".join(sorted(resolved))  # one name unless layers were set apart

    # layout -----------------------------------------------------------------------------------

    def set_convolution_layout(self, layout: str) -> None:
        """How the video is stored while the convolutions run (the outputs are the same up to rounding):
        "channels-first" (b, c, f, h, w), the convolutions as conv3d, or "channels-last" (b, f, h, w, c),
        the convolutions as channels-last conv2d and matrix products on views of it (faster on CPUs:
        see layers.py and runtime.py). Parameters, saved weights and the output's shape do not change."""
        if layout not in CONVOLUTION_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(CONVOLUTION_LAYOUTS)}; got {layout!r}.")
        for module in self.modules():
            if isinstance(module, LayoutMixin):
                module.channels_last = layout == "channels-last"

    @property
    def convolution_layout(self) -> str:
        """ "channels-first" or "channels-last": see `set_convolution_layout`."""
        return "channels-last" if self.conv_in.channels_last else "channels-first"

    # memory -----------------------------------------------------------------------------------

    def enable_forward_chunking(self, chunk_size: int | None = None) -> None:
        """Run the cross-attention blocks (token-wise) over chunks of `chunk_size` tokens; outputs
        are unchanged. None (the default, on from the start) sizes chunks to 2**24 hidden values."""
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive number of tokens or None; got {chunk_size!r}.")
        for module in self.modules():
            if isinstance(module, CrossAttentionBlock):
                module.chunk_size = chunk_size

    def disable_forward_chunking(self) -> None:
        """All tokens of a cross-attention block at once: more memory, no speed gained on the CPU."""
        for module in self.modules():
            if isinstance(module, CrossAttentionBlock):
                module.chunk_size = 0

    # forward ----------------------------------------------------------------------------------

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        return_dict: bool = True,
    ) -> FashionFlowUNetOutput | tuple[torch.Tensor]:
        """
        Args:
            sample: noisy latent video, (b, c, f, h, w).
            timestep: diffusion step(s), a scalar or a tensor of b values.
            encoder_hidden_states: image context, (b, tokens, context_dim).
        """
        timesteps = self._check_inputs(sample, timestep, encoder_hidden_states)
        time_emb = self.time_embedding(timesteps)
        x = self.conv_in(sample)

        skips = []
        for level in self.down_levels:
            x, *level_skips = self._run(level, x, time_emb, encoder_hidden_states)
            skips.append(level_skips)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, time_emb)), time_emb)
        for level, level_skips in zip(reversed(self.up_levels), reversed(skips)):
            x = self._run(level, x, time_emb, encoder_hidden_states, *level_skips)
        x = self.conv_out(x).contiguous()  # channels-first for the caller, whatever the layout inside

        return FashionFlowUNetOutput(sample=x) if return_dict else (x,)

    def _run(self, level: nn.Module, *args: torch.Tensor):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return self._gradient_checkpointing_func(level, *args)
        return level(*args)

    def _check_inputs(self, sample, timestep, context) -> torch.Tensor:
        if sample.ndim != 5:
            raise ValueError(
                f"sample must be a latent video (batch, channels, frames, height, width); got shape {tuple(sample.shape)}."
            )
        b, c, f, h, w = sample.shape
        if c != self.config.in_channels:
            raise ValueError(f"sample must have {self.config.in_channels} channels; got {c}.")
        self.check_sample_size(f, h, w)
        if context.ndim != 3 or context.shape[0] != b or context.shape[-1] != self.config.context_dim:
            raise ValueError(
                f"encoder_hidden_states must be (batch={b}, tokens, {self.config.context_dim}); got {tuple(context.shape)}."
            )
        timesteps = torch.as_tensor(timestep, device=sample.device)
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(b)
        if timesteps.shape != (b,):
            raise ValueError(
                f"timestep must be a scalar or hold {b} values (one per sample); got shape {tuple(timesteps.shape)}."
            )
        return timesteps


def _check_config(widths, depths, self_attn, time_down, cross_heads, groups, kernels) -> None:
    levels = len(widths) - 1
    for name, value in (
        ("resnet_depths", depths),
        ("self_attention_levels", self_attn),
        ("temporal_downsample_levels", time_down),
        ("cross_attention_heads", cross_heads),
    ):
        if len(value) != levels:
            raise ValueError(f"{name} needs one entry per level ({levels}, as channel_mults); got {list(value)}.")
    for i, (dim_in, dim_out) in enumerate(zip(widths[:-1], widths[1:])):
        if dim_out % cross_heads[i] or dim_in % cross_heads[i]:
            raise ValueError(
                f"Level {i}: widths {dim_in}/{dim_out} are not divisible by {cross_heads[i]} cross-attention heads."
            )
    if any(w % groups for w in widths):
        raise ValueError(f"Every level width {widths} must be divisible by norm_groups={groups}.")
    if any(k < 1 or k % 2 == 0 for k in kernels):
        raise ValueError(f"Kernel sizes must be odd and positive; got {kernels}.")
