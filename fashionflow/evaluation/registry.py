"""The metrics `fashionflow evaluate` computes, and the protocol each one's name fixes.

Names follow StyleGAN-V's `metric_main.py` registry: `fvd2048_16f` is FVD over at most 2048
clips per side of 16 consecutive frames; `isv2048_ucf` is video IS over at most 2048 generated
16-frame clips scored by the UCF-101 C3D, in 10 splits. The output JSON keeps short keys
("fvd", "isv", ...) at the top level and the protocol names beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .detectors import C3D, I3D, DetectorSpec

MAX_CLIPS = 2048
DEFAULT_CLIP_FRAMES = 16
ISV_FRAMES = 16  # C3D takes 16-frame clips
ISV_SPLITS = 10
ISV_SHUFFLE_SEED = 42
GENERATED_FORMATS = ("frames", "mp4")  # frames: a folder of PNGs (lossless, StyleGAN-V's layout)


@dataclass(frozen=True)
class MetricSpec:
    key: str
    description: str
    higher_is_better: bool
    detector: DetectorSpec | None = None  # distribution metrics: the network whose outputs are compared
    paired: bool = False  # per-frame metrics: generated video against the real video of the same name


METRICS = {
    spec.key: spec
    for spec in (
        MetricSpec("fvd", "Frechet Video Distance (I3D features, StyleGAN-V)", False, detector=I3D),
        MetricSpec("isv", "video Inception Score (C3D on UCF-101, StyleGAN-V)", True, detector=C3D),
        MetricSpec("ssim", "per-frame SSIM against the real video of the same name", True, paired=True),
        MetricSpec("psnr", "per-frame PSNR (dB) against the real video of the same name", True, paired=True),
        MetricSpec("lpips", "per-frame LPIPS (AlexNet) against the real video of the same name", False, paired=True),
    )
}
DEFAULT_METRICS = tuple(METRICS)


def protocol_name(key: str, frames: int = DEFAULT_CLIP_FRAMES, max_clips: int = MAX_CLIPS) -> str:
    """The registry name that fixes how `key` was measured (StyleGAN-V's names where it has one)."""
    if key == "fvd":
        return f"fvd{max_clips}_{frames}f"
    if key == "isv":
        return f"isv{max_clips}_ucf"
    if key in METRICS:
        return f"{key}_per_frame_paired"
    raise ValueError(f"Unknown metric {key!r}; choose from: {', '.join(METRICS)}.")
