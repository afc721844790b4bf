"""The training objective of the published model.

One training step of the authors' code, for a batch of latent clips x0 (b, 4, f, h, w):

1. one timestep t per clip, uniform over 0..999, shared by all its frames;
2. x_t = sqrt(alphabar_t) x0 + sqrt(1 - alphabar_t) eps, on the published schedule;
3. frame 0 of x_t is put back to the clean latent x0[:, :, 0], and its noise target is zero;
4. the adapter turns the still's CLIP tokens and a fresh VAE sample of it into the context;
5. loss = sum over frames i of MSE(eps_pred[:, :, i], eps[:, :, i])  ("sum", the authors' code),
   or the mean over frames ("mean", the variant the paper reports as scoring better).

Each per-frame MSE averages over batch, channels, height and width, as `F.mse_loss` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .options import LOSS_REDUCTIONS


class Denoiser(nn.Module):
    """The trained part of FashionFlow, U-Net and adapter, as one module (what accelerate wraps and syncs)."""

    def __init__(self, unet: nn.Module, adapter: nn.Module):
        super().__init__()
        self.unet = unet
        self.adapter = adapter

    def forward(
        self,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        clip_hidden_states: torch.Tensor,
        context_latents: torch.Tensor,
    ) -> torch.Tensor:
        context = self.adapter(clip_hidden_states, context_latents)
        return self.unet(noisy_latents, timesteps, context).sample


def add_noise_keep_first_frame(
    scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy input, noise target): the clip noised at its timestep, with frame 0 clean and its target zero."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    noisy[:, :, 0] = latents[:, :, 0]
    target = noise.clone()
    target[:, :, 0] = 0
    return noisy, target


def frame_loss(prediction: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Per-frame MSE (over batch, channels, height, width), then summed or averaged over the frames."""
    if reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"loss reduction must be one of {LOSS_REDUCTIONS}; got {reduction!r}.")
    per_frame = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(0, 1, 3, 4))  # (f,)
    return per_frame.sum() if reduction == "sum" else per_frame.mean()


def diffusion_loss(
    denoiser: nn.Module,
    scheduler,
    latents: torch.Tensor,
    clip_hidden_states: torch.Tensor,
    context_latents: torch.Tensor,
    reduction: str = "mean",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The published objective on a batch (see the module docstring); `generator` fixes t and the noise."""
    b = latents.shape[0]
    num_steps = scheduler.config.num_train_timesteps
    device = generator.device if generator is not None else latents.device
    timesteps = torch.randint(0, num_steps, (b,), generator=generator, device=device).to(latents.device)
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=torch.float32).to(latents.device)
    noisy, target = add_noise_keep_first_frame(scheduler, latents.float(), noise, timesteps)
    prediction = denoiser(noisy, timesteps, clip_hidden_states, context_latents)
    return frame_loss(prediction, target, reduction)
