"""The training objective: the authors' step, predicting the noise (as they did) or the velocity.

One training step, for a batch of latent clips x0 (b, 4, f, h, w):

1. one timestep t per clip, uniform over 0..999, shared by all its frames;
2. x_t = sqrt(alphabar_t) x0 + sqrt(1 - alphabar_t) eps, on the published schedule;
3. frame 0 of x_t is put back to the clean latent x0[:, :, 0], and its target is zero;
4. the adapter turns the still's CLIP tokens and a fresh VAE sample of it into the context;
5. the target of the other frames is what the scheduler's `prediction_type` says the U-Net predicts:
   "epsilon": the noise eps (the authors' objective, and the published checkpoint's);
   "v_prediction": the velocity v = sqrt(alphabar_t) eps - sqrt(1 - alphabar_t) x0 (diffusers' `get_velocity`);
6. loss = sum over frames i of MSE(prediction[:, :, i], target[:, :, i])  ("sum", the authors' code),
   or the mean over frames ("mean", the variant the paper reports as scoring better).

Each per-frame MSE averages over batch, channels, height and width, as `F.mse_loss` does.

Why new models predict the velocity: on the published schedule alphabar(999) = 4.0e-5. A sampler's
clean-latent estimate from a predicted noise is (x_t - sqrt(1 - alphabar) eps) / sqrt(alphabar), so at
the start of sampling every error of the prediction is multiplied by up to 160, and a small model's
samples drift far from the still's colours (measured: 2.6x farther from the data than a constant
guess). From a predicted velocity it is sqrt(alphabar) x_t - sqrt(1 - alphabar) v: nothing is
amplified. The published model's 288 k GPU steps made its noise prediction accurate enough, so a
fine-tune of it keeps "epsilon" (`choose_prediction_type`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .options import LOSS_REDUCTIONS, PREDICTION_TYPES


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
    """(noisy input, target): the clip noised at its timestep, with frame 0 clean and its target zero; the
    other frames' target is the noise or the velocity, as `scheduler.config.prediction_type` says."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    noisy[:, :, 0] = latents[:, :, 0]
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        target = noise.clone()
    elif prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}; got {prediction_type!r}.")
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
    """The objective on a batch (see the module docstring), for the scheduler's prediction type; `generator`
    fixes t and the noise."""
    b = latents.shape[0]
    num_steps = scheduler.config.num_train_timesteps
    device = generator.device if generator is not None else latents.device
    timesteps = torch.randint(0, num_steps, (b,), generator=generator, device=device).to(latents.device)
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=torch.float32).to(latents.device)
    noisy, target = add_noise_keep_first_frame(scheduler, latents.float(), noise, timesteps)
    prediction = denoiser(noisy, timesteps, clip_hidden_states, context_latents)
    return frame_loss(prediction, target, reduction)


# which prediction type a run trains ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictionTypeChoice:
    """The prediction type a run trains, why (printed at the start), and a warning when it changes a model's."""

    prediction_type: str
    reason: str
    warning: str | None = None


def choose_prediction_type(
    requested: str | None,
    *,
    model: str,
    model_prediction_type: str,
    untrained_because: str | None = None,
    checkpoint: str | None = None,
    checkpoint_prediction_type: str | None = None,
) -> PredictionTypeChoice:
    """What the U-Net will learn to predict (`TrainConfig.prediction_type`, None meaning automatic).

    requested: the user's choice or None. model / model_prediction_type: the model trained from and its
    scheduler's prediction type. untrained_because: why the starting weights are untrained ("--init
    scratch", a model marked untrained), None when they are trained. checkpoint /
    checkpoint_prediction_type: the checkpoint a resumed run continues and the type it was trained with.
    """
    if requested is not None and requested not in PREDICTION_TYPES:
        raise ValueError(f"--prediction-type must be one of {PREDICTION_TYPES}; got {requested!r}.")
    if checkpoint is not None:
        if requested is not None and requested != checkpoint_prediction_type:
            raise ValueError(
                f"{checkpoint} was trained with --prediction-type {checkpoint_prediction_type}, and a resumed run keeps "
                f"it: resume without --prediction-type {requested}, or start a new run in another folder."
            )
        return PredictionTypeChoice(checkpoint_prediction_type, f"as the checkpoint {checkpoint} was trained")
    if untrained_because is not None:
        if requested is not None:
            return PredictionTypeChoice(
                requested, f"as asked; training starts from untrained weights ({untrained_because})"
            )
        return PredictionTypeChoice(
            "v_prediction",
            f"the default for training from untrained weights ({untrained_because}): a noise-predicting model "
            "samples drifted colours until it is very well trained",
        )
    if requested is None or requested == model_prediction_type:
        how = "as asked" if requested is not None else "the default when fine-tuning"
        return PredictionTypeChoice(model_prediction_type, f"{how}: the model {model} predicts {model_prediction_type}")
    return PredictionTypeChoice(
        requested,
        f"as asked, instead of the {model_prediction_type} the model {model} was trained to predict",
        warning=(
            f"{model} was trained to predict {model_prediction_type}, and this run trains it to predict {requested}: "
            "the meaning of its output changes, so the model must relearn its output (expect a high loss and poor "
            "samples at first, for many steps). To fine-tune it as it was trained, leave out --prediction-type."
        ),
    )
