"""Per-frame SSIM, PSNR and LPIPS between each generated video and the real video of the same name.

This is what pose-driven fashion-video papers report on UBC Fashion (DreamPose, Animate Anyone):
the generated video was made from the real video's first frame, so frame i is compared with
frame i. torchmetrics computes each metric (SSIM: 11 x 11 Gaussian window, sigma 1.5; PSNR and
SSIM on [0, 1] pixels, data range 1; LPIPS: AlexNet, inputs in [0, 1]). When the sizes differ,
the real frame is fitted to the generated frame's size the way the still was (`fit`). The score
is the mean over every compared frame of every pair (frame 0 included); a pair compares
min(generated length, real length) frames.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from PIL import Image

from ..image import frame_image
from .videos import Video, VideoFolder, VideoReadError

PAIRED_METRICS = ("ssim", "psnr", "lpips")


def lpips_unavailable_reason() -> str | None:
    """Why LPIPS cannot run here (None when it can): torchmetrics' LPIPS needs torchvision and its AlexNet weights."""
    try:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)
    except Exception as error:  # missing torchvision, or its weights cannot be fetched
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return None


def pair_videos(generated: VideoFolder, real: VideoFolder) -> list[tuple[Video, Video]]:
    real_by_name = real.by_name()
    return [(video, real_by_name[video.name]) for video in generated.videos if video.name in real_by_name]


class FrameMetrics:
    """Accumulates per-frame scores for `names` (a subset of ssim, psnr, lpips)."""

    def __init__(self, names: Iterable[str], device: str | torch.device = "cpu", fit: str = "pad"):
        self.names = [n for n in names if n in PAIRED_METRICS]
        self.device = torch.device(device)
        self.fit = fit
        self.scores: dict[str, list[float]] = {name: [] for name in self.names}
        self._lpips = None
        if "lpips" in self.names:
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            self._lpips = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).to(self.device)

    @torch.no_grad()
    def update(self, generated: np.ndarray, real: np.ndarray) -> dict[str, list[float]]:
        """Score uint8 frames (n, h, w, 3) against the real ones; returns each metric's per-frame values."""
        from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

        height, width = generated.shape[1:3]
        if real.shape[1:3] != (height, width):
            real = np.stack([np.asarray(frame_image(Image.fromarray(f), height, width, self.fit)) for f in real])
        preds = _to_float(generated, self.device)
        target = _to_float(real, self.device)
        batch = {}
        if "ssim" in self.names:
            values = structural_similarity_index_measure(preds, target, data_range=1.0, reduction="none")
            batch["ssim"] = values.double().cpu().tolist()
        if "psnr" in self.names:
            values = peak_signal_noise_ratio(preds, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
            batch["psnr"] = values.double().cpu().tolist()
        if "lpips" in self.names:
            batch["lpips"] = [float(self._lpips(p[None], t[None])) for p, t in zip(preds, target)]
        for name, values in batch.items():
            self.scores[name].extend(values)
        return batch

    def compare(self, generated: Video, real: Video, chunk: int = 16) -> dict:
        """Compare two videos frame by frame over the shorter length, reading `chunk` frames at a time;
        returns the number of frames compared and each metric's mean over them."""
        per_frame: dict[str, list[float]] = {name: [] for name in self.names}
        frames = 0
        pairs = zip(_same_size(generated), _same_size(real))
        while block := list(itertools.islice(pairs, chunk)):
            for name, values in self.update(np.stack([g for g, _ in block]), np.stack([r for _, r in block])).items():
                per_frame[name].extend(values)
            frames += len(block)
        return {"frames": frames, **{name: float(np.mean(v)) for name, v in per_frame.items() if v}}

    def compute(self) -> dict[str, float]:
        """Mean over every frame scored (inf for PSNR when some frames are identical)."""
        return {name: float(np.mean(values)) for name, values in self.scores.items() if values}


def _same_size(video: Video) -> Iterator[np.ndarray]:
    """The video's frames, refusing (naming the video and the frame) one of another size than the first."""
    first = None
    for index, frame in enumerate(video.iter_frames()):
        first = first or frame.shape
        if frame.shape != first:
            raise VideoReadError(
                f"{video.path}: frame {index} is {frame.shape[1]} x {frame.shape[0]} pixels, but the video's first "
                f"frames are {first[1]} x {first[0]}; every frame of a video must have one size."
            )
        yield frame


def _to_float(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255
