"""Stand-in FVD / video-IS detectors: TorchScript networks with random weights (fixed seed) and
exactly the call conventions of StyleGAN-V's I3D and C3D files.

    python benchmarks/stand_in_detectors.py [--output benchmarks/results/stand_in_detectors] [--seed 0]

writes `i3d_stand_in.pt` (called as `detector(videos, rescale=True, resize=True,
return_features=True)` -> 400 features) and `c3d_stand_in.pt` (`detector(videos)` -> 101 class
probabilities), both on uint8 (batch, 3, frames, height, width).

NOT the published detectors: their features are random projections, so FVD / IS measured with
them are NOT comparable to any published FVD or IS. They exist so that the evaluation can run
where the real files cannot be downloaded, and so that two models can be told apart on the same
clips. Use the published files (see the README's Evaluation section) for numbers to report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_OUTPUT = Path("benchmarks/results/stand_in_detectors")
# Frames are resized to 112 x 112 inside (a literal: TorchScript cannot read globals; the real I3D uses 224, C3D 112).


class _RandomVideoFeatures(nn.Module):
    """Two strided 3-D convolutions and mean + std pooling: a random but smooth function of the clip."""

    def __init__(self, out_features: int):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 16, kernel_size=(3, 7, 7), stride=(1, 4, 4), padding=(1, 3, 3))
        self.conv2 = nn.Conv3d(16, 32, kernel_size=3, stride=2, padding=1)
        self.project = nn.Linear(64, out_features)

    def forward(self, x: Tensor) -> Tensor:  # (b, 3, t, 112, 112) in [-1, 1]
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        pooled = torch.cat([h.mean(dim=(2, 3, 4)), h.std(dim=(2, 3, 4))], dim=1)  # (b, 64)
        return self.project(pooled) * 30.0  # default init leaves features small: FVDs then read in the usual hundreds


class StandInI3D(nn.Module):
    """Call convention of StyleGAN-V's i3d_torchscript.pt; 400 random features."""

    def __init__(self):
        super().__init__()
        self.features = _RandomVideoFeatures(400)
        self.classifier = nn.Linear(400, 400)

    def forward(self, x: Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False) -> Tensor:
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError("expected videos of shape (batch, 3, frames, height, width)")
        x = x.float()
        if rescale:
            x = x / 127.5 - 1.0  # uint8 [0, 255] -> [-1, 1], as the real I3D does inside
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 112, 112), mode="trilinear", align_corners=False)
        features = self.features(x)
        if return_features:
            return features
        return F.softmax(self.classifier(features), dim=1)


class StandInC3D(nn.Module):
    """Call convention of StyleGAN-V's c3d_ucf101.pt: uint8 16-frame clips in, 101 class probabilities out."""

    def __init__(self):
        super().__init__()
        self.features = _RandomVideoFeatures(101)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError("expected videos of shape (batch, 3, frames, height, width)")
        x = x.float() / 127.5 - 1.0
        x = F.interpolate(x, size=(x.shape[2], 112, 112), mode="trilinear", align_corners=False)
        # Random features of the clip's structure (its mean colour removed) relative to those of a flat clip,
        # so that the part all clips share cancels and which classes win depends on the clip;
        # standardised per clip, so that the softmax is confident.
        x = (x - x.mean(dim=(2, 3, 4), keepdim=True)) * 4.0
        logits = self.features(x) - self.features(torch.zeros_like(x))
        logits = (logits - logits.mean(dim=1, keepdim=True)) / (logits.std(dim=1, keepdim=True) + 1e-6)
        return F.softmax(3.0 * logits, dim=1)


def make_stand_in_detectors(output: Path = DEFAULT_OUTPUT, seed: int = 0) -> dict[str, Path]:
    """Write both stand-ins (the same bytes' worth of weights for the same seed); return their paths."""
    output.mkdir(parents=True, exist_ok=True)
    paths = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, module in (("i3d", StandInI3D()), ("c3d", StandInC3D())):
            paths[name] = output / f"{name}_stand_in.pt"
            torch.jit.save(torch.jit.script(module.eval()), str(paths[name]))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, path in make_stand_in_detectors(args.output, args.seed).items():
        print(f"{name}: {path} (stand-in, random weights: NOT comparable to published FVD / IS)")


if __name__ == "__main__":
    main()
