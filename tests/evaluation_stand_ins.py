"""Stand-in detectors and video writers for the evaluation tests: TorchScript networks whose
outputs a test can compute by hand, with the call conventions of StyleGAN-V's I3D and C3D."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn


class FrameMeansI3D(nn.Module):
    """I3D convention; features: per-channel means of frames 0, t // 2 and t - 1 after rescaling to [-1, 1]."""

    def forward(self, x: Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False) -> Tensor:
        if x.dtype != torch.uint8 or x.dim() != 5 or x.shape[1] != 3:
            raise ValueError("expected uint8 videos (batch, 3, frames, height, width)")
        if not (rescale and resize and return_features):
            raise ValueError("FVD calls I3D with rescale=True, resize=True, return_features=True")
        means = (x.float() / 127.5 - 1.0).mean(dim=(3, 4))  # (b, 3, t)
        t = x.shape[2]
        return torch.stack([means[:, :, 0], means[:, :, t // 2], means[:, :, t - 1]], dim=2).flatten(1)  # (b, 9)


def frame_means_features(clip: np.ndarray) -> np.ndarray:
    """What FrameMeansI3D computes, in numpy float64: clip (t, h, w, 3) uint8 -> 9 features."""
    means = (clip.astype(np.float64) / 127.5 - 1.0).mean(axis=(1, 2))  # (t, 3)
    t = clip.shape[0]
    return np.stack([means[0], means[t // 2], means[t - 1]], axis=1).reshape(-1)


class UniformC3D(nn.Module):
    """C3D convention (uint8 16-frame clips, no kwargs); predicts the uniform distribution over 101 classes."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != torch.uint8 or x.shape[2] != 16:
            raise ValueError("expected uint8 16-frame clips")
        return torch.full((x.shape[0], 101), 1.0 / 101)


def save_detector(module: nn.Module, path: Path) -> Path:
    torch.jit.save(torch.jit.script(module.eval()), str(path))
    return path


def write_frame_folder(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:04d}.png")
    return folder


LOSSLESS_CODECS = {".mp4": ("libx264rgb", "rgb24", {"qp": "0"}), ".mkv": ("ffv1", "bgr0", {})}


def write_lossless_video(path: Path, frames: np.ndarray) -> Path:
    """Frames (t, h, w, 3) uint8 into a lossless video file (H.264 RGB at qp 0 in .mp4, FFV1 in .mkv)."""
    import av

    codec, pix_fmt, options = LOSSLESS_CODECS[path.suffix]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path
