"""A rough look at a video while it is being made: a few of its frames, coloured straight from the latents.

Decoding latents through the VAE is the slow part of a video on a CPU, so a preview cannot use it.
But Stable Diffusion's latents are close to a linear function of the colours of the 8 x 8 pixels
each of them stands for: a 4 x 3 matrix and an offset turn a latent frame into a small, blurred
picture of it. That this works is well known (diffusion front ends use it for live previews);
the numbers here are not copied from anywhere: `LatentColours.fit` fits them for the VAE at hand,
by least squares between the latents of synthetic colour images and those images' colours
averaged over each latent cell. One fit serves every VAE: Stable Diffusion's as this project
feeds it (pixels in [0, 1], not the usual [-1, 1], so published matrices would not fit anyway),
a VAE trained here, and the tiny random one of `tiny-random`, whose map is as rough as its random
encoder (and whose videos are noise anyway).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import PIL.Image
import torch

FIT_IMAGES = 4  # synthetic images encoded for the fit, each of 2 x 2 flat colours
FIT_SIDE = 64  # pixels: small, so that the fit costs a fraction of encoding one photo
FIT_BLOCK_CELLS = 4  # each flat colour covers 4 x 4 latent cells: most cells see one colour only
RIDGE = 1e-4  # relative ridge weight: keeps the fit finite for a VAE whose latents barely vary


@dataclass(frozen=True)
class LatentColours:
    """A linear map from a VAE's scaled latents (as the U-Net denoises them) to colours in [0, 1]."""

    weight: torch.Tensor  # (latent channels, 3)
    bias: torch.Tensor  # (3,)

    @classmethod
    @torch.no_grad()
    def fit(cls, vae, device: torch.device | str | None = None, seed: int = 0) -> LatentColours:
        """Fit the map for `vae` (a diffusers AutoencoderKL): encode flat-coloured blocks with it, pixels
        in [0, 1] as the pipeline encodes photos, and solve for the colours of each latent cell."""
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        block = FIT_BLOCK_CELLS * scale
        generator = torch.Generator().manual_seed(seed)
        blocks = FIT_SIDE // block
        colours = torch.rand(FIT_IMAGES, 3, blocks, blocks, generator=generator)
        pixels = colours.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)  # (n, 3, side, side)
        device = device if device is not None else vae.device
        latents = vae.encode(pixels.to(device, vae.dtype)).latent_dist.mean * vae.config.scaling_factor
        targets = torch.nn.functional.avg_pool2d(pixels, scale)  # each latent cell's colour
        inputs = latents.double().cpu().permute(0, 2, 3, 1).flatten(0, 2)  # (cells, channels)
        outputs = targets.double().permute(0, 2, 3, 1).flatten(0, 2)  # (cells, 3)
        design = torch.cat((inputs, torch.ones(len(inputs), 1, dtype=torch.float64)), dim=1)
        gram = design.T @ design
        ridge = RIDGE * torch.trace(gram[:-1, :-1]) / inputs.shape[1]
        penalty = torch.diag(torch.cat((torch.full((inputs.shape[1],), float(ridge)), torch.zeros(1))))
        solution = torch.linalg.solve(gram + penalty.to(gram), design.T @ outputs)  # (channels + 1, 3)
        return cls(weight=solution[:-1].float(), bias=solution[-1].float())

    def to_rgb(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (..., channels, h, w) -> colours (..., 3, h, w) in [0, 1], float32, on the latents' device."""
        weight = self.weight.to(latents.device)
        rgb = torch.einsum("...chw,cd->...dhw", latents.float(), weight)
        return (rgb + self.bias.to(latents.device)[:, None, None]).clamp(0, 1)


_fitted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # VAE -> its LatentColours
_fitting = threading.Lock()


def latent_colours(vae, device: torch.device | str | None = None) -> LatentColours:
    """`vae`'s map from latents to colours, fitted on first use (a fraction of a second on a CPU) and kept."""
    with _fitting:
        colours = _fitted.get(vae)
        if colours is None:
            colours = _fitted[vae] = LatentColours.fit(vae, device)
        return colours


def frame_indices(num_frames: int, count: int) -> list[int]:
    """`count` frames spread over the video, the first and the last included (fewer if it is shorter)."""
    if count <= 1 or num_frames <= 1:
        return [0]
    count = min(count, num_frames)
    return sorted({round(i * (num_frames - 1) / (count - 1)) for i in range(count)})


@torch.no_grad()
def preview_frames(
    latents: torch.Tensor, colours: LatentColours, count: int = 4, height: int = 192
) -> list[tuple[int, PIL.Image.Image]]:
    """A few frames of the first video in `latents` (batch, channels, frames, h, w), in colour, each
    `height` pixels high (enlarged smoothly from the latent size): [(frame index, picture), ...]."""
    indices = frame_indices(latents.shape[2], count)
    picked = latents[0, :, indices].to("cpu", torch.float32).transpose(0, 1)  # (count, channels, h, w)
    rgb = (colours.to_rgb(picked) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    h, w = rgb.shape[1:3]
    size = (max(1, round(height * w / h)), height)
    return [(i, PIL.Image.fromarray(frame).resize(size, PIL.Image.BILINEAR)) for i, frame in zip(indices, rgb)]
