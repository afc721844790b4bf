"""ConditionAdapter: turns the still image's CLIP tokens and VAE latent into the U-Net's context."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import nn


class ConditionAdapter(ModelMixin, ConfigMixin):
    """CLIP tokens (b, 50, 768) + VAE latent (b, 4, h, w) -> context (b, 50, 768).

    The latent is max-pooled, each of its channels becomes one token (a linear map of the
    pooled pixels to the context width), and a linear map across the token axis mixes the
    50 + 4 tokens back into 50 (initialised as the 50 x 54 identity). The latent-to-token
    map fixes the latent size the adapter works with: `latent_size` records it.
    """

    @register_to_config
    def __init__(
        self,
        latent_size: Sequence[int] = (80, 64),
        latent_channels: int = 4,
        pool_size: int = 2,
        clip_tokens: int = 50,
        context_dim: int = 768,
    ):
        super().__init__()
        pooled_h, pooled_w = latent_size[0] // pool_size, latent_size[1] // pool_size
        if pooled_h < 1 or pooled_w < 1:
            raise ValueError(
                f"latent_size {tuple(latent_size)} is smaller than one {pool_size} x {pool_size} pooling window."
            )
        self.latent_to_tokens = nn.Linear(pooled_h * pooled_w, context_dim)
        self.token_mixer = nn.Linear(clip_tokens + latent_channels, clip_tokens)
        with torch.no_grad():
            self.token_mixer.weight.copy_(torch.eye(clip_tokens, clip_tokens + latent_channels))

    def forward(self, clip_hidden_states: torch.Tensor, vae_latents: torch.Tensor) -> torch.Tensor:
        self._check_inputs(clip_hidden_states, vae_latents)
        latent_tokens = rearrange(F.max_pool2d(vae_latents, self.config.pool_size), "b c h w -> b c (h w)")
        tokens = torch.cat((clip_hidden_states, self.latent_to_tokens(latent_tokens)), dim=1)  # (b, 54, 768)
        return rearrange(self.token_mixer(rearrange(tokens, "b n d -> b d n")), "b d n -> b n d")

    def _check_inputs(self, clip_hidden_states: torch.Tensor, vae_latents: torch.Tensor) -> None:
        config = self.config
        expected_clip = (config.clip_tokens, config.context_dim)
        if clip_hidden_states.ndim != 3 or tuple(clip_hidden_states.shape[1:]) != expected_clip:
            raise ValueError(
                f"clip_hidden_states must be (batch, {expected_clip[0]}, {expected_clip[1]}) (CLIP last_hidden_state); "
                f"got {tuple(clip_hidden_states.shape)}."
            )
        expected_latent = (config.latent_channels, *config.latent_size)
        if vae_latents.ndim != 4 or tuple(vae_latents.shape[1:]) != expected_latent:
            raise ValueError(
                f"This adapter was built for VAE latents of shape (batch, {', '.join(map(str, expected_latent))}); "
                f"got {tuple(vae_latents.shape)}. Its latent-to-token layer only fits that latent size "
                f"(an image of {config.latent_size[0] * 8} x {config.latent_size[1] * 8} pixels)."
            )
        if vae_latents.shape[0] != clip_hidden_states.shape[0]:
            raise ValueError(
                f"clip_hidden_states and vae_latents hold different batch sizes: "
                f"{clip_hidden_states.shape[0]} and {vae_latents.shape[0]}."
            )
