"""Synthetic fashion-like clips: a dressed figure turning and posing on a plain studio background.

Nothing is downloaded: each clip is drawn with PIL from a handful of random numbers (garment
colours, background, pose rhythm), so tests and the training benchmark have videos whose
content is known. Every clip has its own top and bottom colours, so a model that learns from
them has to carry the still's colours through the video, as on UBC Fashion.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SKIN_TONES = ((241, 194, 166), (224, 172, 105), (198, 134, 66), (141, 85, 36))


@dataclass(frozen=True)
class FigureStyle:
    """What one clip looks like and how its model moves."""

    background: tuple[int, int, int]
    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    skin: tuple[int, int, int]
    dress: bool  # a dress (a trapezoid to the knees) instead of trousers
    period: float  # frames per full turn-and-sway cycle
    phase: float  # radians
    sway: float  # horizontal sway, fraction of the width


def random_style(rng: np.random.Generator) -> FigureStyle:
    def saturated() -> tuple[int, int, int]:
        colour = rng.uniform(0, 1, 3)
        colour = (colour - colour.min()) / max(colour.max() - colour.min(), 1e-6)  # spread to full saturation
        return tuple(int(c) for c in (colour * rng.uniform(150, 235) + rng.uniform(0, 20)).clip(0, 255))

    grey = int(rng.uniform(200, 245))
    tint = rng.integers(-8, 9, 3)
    return FigureStyle(
        background=tuple(int(c) for c in np.clip(grey + tint, 0, 255)),
        top=saturated(),
        bottom=saturated(),
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        dress=bool(rng.random() < 0.4),
        period=float(rng.uniform(24, 48)),
        phase=float(rng.uniform(0, 2 * math.pi)),
        sway=float(rng.uniform(0.02, 0.06)),
    )


def draw_frame(style: FigureStyle, t: float, height: int, width: int) -> Image.Image:
    """The figure at time `t` (in frames): swaying, turning (body narrows side-on), swinging its arms."""
    angle = 2 * math.pi * t / style.period + style.phase
    turn = 0.55 + 0.45 * abs(math.cos(angle))  # 1 = facing the camera, 0.55 = side-on
    cx = width / 2 + style.sway * width * math.sin(angle)
    u = height / 10  # body unit: the figure is about 9 units tall
    image = Image.new("RGB", (width, height), style.background)
    draw = ImageDraw.Draw(image)

    shoulder, hip = 0.9 * u * turn, 0.7 * u * turn
    neck_y, waist_y, knee_y, foot_y = 2.0 * u, 4.6 * u, 6.9 * u, 9.3 * u
    # legs
    stride = 0.35 * u * math.sin(angle)
    for side in (-1, 1):
        draw.line(
            [(cx + side * 0.35 * u * turn, waist_y), (cx + side * 0.4 * u + stride * side, foot_y)],
            fill=style.bottom if not style.dress else style.skin,
            width=max(1, round(0.45 * u)),
        )
    # arms, swinging in opposition
    swing = 0.8 * u * math.sin(angle)
    for side in (-1, 1):
        hand = (cx + side * (shoulder + 0.35 * u), neck_y + 2.6 * u - side * 0.3 * swing)
        draw.line([(cx + side * shoulder, neck_y + 0.3 * u), hand], fill=style.top, width=max(1, round(0.35 * u)))
        draw.ellipse([hand[0] - 0.2 * u, hand[1] - 0.2 * u, hand[0] + 0.2 * u, hand[1] + 0.2 * u], fill=style.skin)
    # bottom garment: trousers' seat, or a dress flaring to the knees
    if style.dress:
        flare = 1.3 * u * turn
        draw.polygon(
            [(cx - hip, waist_y), (cx + hip, waist_y), (cx + flare, knee_y), (cx - flare, knee_y)], fill=style.bottom
        )
    else:
        draw.polygon(
            [(cx - hip, waist_y), (cx + hip, waist_y), (cx + hip, waist_y + 1.2 * u), (cx - hip, waist_y + 1.2 * u)],
            fill=style.bottom,
        )
    # torso (the top garment)
    draw.polygon(
        [(cx - shoulder, neck_y), (cx + shoulder, neck_y), (cx + hip, waist_y), (cx - hip, waist_y)], fill=style.top
    )
    # head, hair on the back of the head when side-on
    head_r = 0.55 * u
    head_y = neck_y - 0.75 * u
    draw.ellipse(
        [cx - head_r * (0.8 + 0.2 * turn), head_y - head_r, cx + head_r * (0.8 + 0.2 * turn), head_y + head_r],
        fill=style.skin,
    )
    return image


def synthetic_clip(
    rng: np.random.Generator,
    frames: int,
    height: int,
    width: int,
    style: FigureStyle | None = None,
    static: bool = False,
) -> np.ndarray:
    """One clip, uint8 (frames, height, width, 3), with its own style unless one is given. static: every
    frame is the first, so that the ideal video of its still is the still itself (a test of the objective)."""
    style = style or random_style(rng)
    start = float(rng.uniform(0, style.period))
    return np.stack([np.asarray(draw_frame(style, start + (0 if static else i), height, width)) for i in range(frames)])


def write_synthetic_videos(
    folder: str | os.PathLike,
    count: int,
    frames: int = 24,
    height: int = 128,
    width: int = 96,
    seed: int = 0,
    fps: int = 25,
    prefix: str = "clip",
    static: bool = False,
) -> list[Path]:
    """Write `count` synthetic clips as MP4 files (H.264) into `folder`; returns their paths. static: still
    clips (every frame the first)."""
    from ..video import export_video

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        clip = synthetic_clip(rng, frames, height, width, static=static)
        paths.append(export_video(list(clip), folder / f"{prefix}-{i:04d}.mp4", fps))
    return paths
