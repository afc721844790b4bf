"""The published noise schedule and the samplers that run on it (diffusers schedulers).

The checkpoint was trained on 1000 steps with a cosine-shaped ramp of beta itself
(not the usual cosine schedule of alpha-bar):

    beta_i = 1e-4 + 0.5 * (0.02 - 1e-4) * (1 - cos(pi * i / 999)),  i = 0..999

computed in float64 and stored as float32, as the authors' code does.

What the U-Net's output means is the scheduler config's `prediction_type` (diffusers' names):
"epsilon", the noise (the published checkpoint), or "v_prediction", the velocity
sqrt(alphabar_t) * noise - sqrt(1 - alphabar_t) * x_0 (what `fashionflow train` gives new models).
Every sampler here reads it from the model folder's scheduler config (`make_scheduler`).
"""

from __future__ import annotations

import math

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_ddpm import DDPMSchedulerOutput
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor

from .base.errors import INPUT, FashionFlowError
from .defaults import DEFAULT_SAMPLER, NUM_TRAIN_TIMESTEPS, PREDICTION_TYPES, SAMPLER_NAMES


class UnsupportedPredictionTypeError(FashionFlowError, ValueError):
    """A scheduler config whose `prediction_type` no sampler here can sample; `prediction_type` holds it."""

    kind = INPUT

    def __init__(self, message: str, prediction_type):
        super().__init__(message)
        self.prediction_type = prediction_type


def check_prediction_type(config) -> str:
    """The scheduler config's prediction type, refused unless every sampler here can sample it."""
    prediction_type = config.get("prediction_type", "epsilon")
    if prediction_type not in PREDICTION_TYPES:
        raise UnsupportedPredictionTypeError(
            f"The scheduler's prediction_type is {prediction_type!r}; FashionFlow samples models that predict "
            "'epsilon' (the noise) or 'v_prediction' (the velocity).",
            prediction_type,
        )
    return prediction_type


class AncestralDDPMScheduler(DDPMScheduler):
    """DDPM whose full 1000-step update is the authors' formula, operation for operation:

        x_{t-1} = 1/sqrt(alpha_t) * (x_t - beta_t / sqrt(1 - alphabar_t) * eps) + sqrt(beta~_t) * z

    diffusers' DDPMScheduler computes the same update through the predicted x_0, which differs in
    float32 rounding (about 1e-4 near t = 999); this reproduces the published sampler exactly.
    A v prediction is first turned into the noise it implies, exactly, and then goes through
    the same formula: eps = sqrt(alphabar_t) * v + sqrt(1 - alphabar_t) * x_t.
    With fewer steps than training steps it is diffusers' DDPM (which takes either prediction).
    """

    def step(self, model_output, timestep, sample, generator=None, return_dict: bool = True):
        if self.num_inference_steps != self.config.num_train_timesteps:
            return super().step(model_output, timestep, sample, generator=generator, return_dict=return_dict)
        t = int(timestep)
        betas = self.betas
        alphas_cumprod = self.alphas_cumprod
        model_output = self.predicted_noise(model_output, t, sample)
        alphas_cumprod_prev = torch.nn.functional.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)

        mean = torch.sqrt(1.0 / self.alphas[t]) * (
            sample - betas[t] * model_output / torch.sqrt(1.0 - alphas_cumprod[t])
        )
        if t > 0:
            noise = randn_tensor(
                model_output.shape, generator=generator, device=model_output.device, dtype=model_output.dtype
            )
            mean = mean + torch.sqrt(posterior_variance[t]) * noise
        pred_original_sample = (sample - torch.sqrt(1.0 - alphas_cumprod[t]) * model_output) / torch.sqrt(
            alphas_cumprod[t]
        )
        if not return_dict:
            return (mean, pred_original_sample)
        return DDPMSchedulerOutput(prev_sample=mean, pred_original_sample=pred_original_sample)

    def predicted_noise(self, model_output: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        """The noise the U-Net's output at step t stands for (the output itself for an epsilon model)."""
        prediction_type = check_prediction_type(self.config)
        if prediction_type == "epsilon":
            return model_output
        alpha_bar = self.alphas_cumprod[t]
        return torch.sqrt(alpha_bar) * model_output + torch.sqrt(1.0 - alpha_bar) * sample


# name -> (scheduler class, settings on top of the published schedule, default steps)
SAMPLERS: dict[str, tuple[type[SchedulerMixin], dict, int]] = {
    # The authors' sampler: ancestral DDPM with the posterior variance beta~_t, every step.
    "ddpm": (AncestralDDPMScheduler, dict(variance_type="fixed_small", clip_sample=False), NUM_TRAIN_TIMESTEPS),
    # Fast samplers. "trailing" spacing starts at t = 999, the pure-noise end the model was
    # trained to start from, whatever the number of steps.
    "ddim": (DDIMScheduler, dict(clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing"), 50),
    "dpm++": (
        DPMSolverMultistepScheduler,
        dict(algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing"),
        25,
    ),
    "unipc": (UniPCMultistepScheduler, dict(solver_order=2, timestep_spacing="trailing"), 25),
}
assert set(SAMPLERS) == set(SAMPLER_NAMES) and DEFAULT_SAMPLER in SAMPLERS  # the names --help shows


def published_betas() -> torch.Tensor:
    """The checkpoint's 1000 training betas, float32."""
    last = NUM_TRAIN_TIMESTEPS - 1
    betas = [1e-4 + 0.5 * (0.02 - 1e-4) * (1 - math.cos(math.pi * i / last)) for i in range(NUM_TRAIN_TIMESTEPS)]
    return torch.tensor(betas, dtype=torch.float64).float()


def published_scheduler() -> DDPMScheduler:
    """The training scheduler of the published checkpoint (epsilon prediction), as a plain diffusers DDPMScheduler."""
    return DDPMScheduler.from_config(make_scheduler("ddpm").config)


def make_scheduler(sampler: str, base_config: dict | None = None) -> SchedulerMixin:
    """A fresh scheduler of the named sampler on the published betas (or on `base_config`'s schedule and
    prediction type: a model folder's scheduler config says what its U-Net predicts)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}.")
    scheduler_class, settings, _ = SAMPLERS[sampler]
    schedule = dict(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        trained_betas=published_betas().tolist(),
        prediction_type="epsilon",
    )
    if base_config is not None:
        schedule = {
            k: base_config[k] for k in ("num_train_timesteps", "trained_betas", "prediction_type") if k in base_config
        }
        if schedule.get("trained_betas") is None:
            schedule.update(
                {k: base_config[k] for k in ("beta_start", "beta_end", "beta_schedule") if k in base_config}
            )
        check_prediction_type(schedule)
    return scheduler_class.from_config({**schedule, **settings})


def default_steps(sampler: str) -> int:
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}.")
    return SAMPLERS[sampler][2]
