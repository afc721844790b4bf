"""Clip selection for the video metrics, as StyleGAN-V's `fvd2048_16f` and `isv2048_ucf` take them.

- A generated video gives its FIRST `frames` frames.
- A real video gives `frames` consecutive frames from a random start, uniform over every start
  that fits (StyleGAN-V: `random.randint(0, n - frames)`). StyleGAN-V draws it unseeded; here it
  is drawn from `seed` and the video's name, so a run is reproducible and the start does not
  depend on which other videos are in the folder, on their order, or on the process reading it.
- Videos shorter than `frames` are left out (StyleGAN-V's `discard_short_videos`) and counted.
- At most `max_clips` clips per side, the first ones in name order (StyleGAN-V: `max_items`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .videos import Video, VideoReadError

ROLES = ("real", "generated")


@dataclass(frozen=True)
class Clip:
    video: Video
    start: int
    frames: int

    def read(self):
        """uint8 array (frames, height, width, 3)."""
        return self.video.read(self.start, self.frames)


@dataclass
class ClipSelection:
    clips: list[Clip]
    videos: int  # videos in the folder
    too_short: list[str] = field(default_factory=list)  # names of videos with fewer frames than a clip
    unreadable: list[str] = field(default_factory=list)
    beyond_limit: int = 0  # usable videos left out by max_clips

    def counts(self) -> dict:
        return {
            "videos": self.videos,
            "clips": len(self.clips),
            "too_short": len(self.too_short),
            "unreadable": len(self.unreadable),
            "beyond_limit": self.beyond_limit,
        }


def real_clip_start(name: str, num_frames: int, frames: int, seed: int) -> int:
    """The seeded random start of a real video's clip (a str seed hashes the same on every run).

    Not `base.seeds.derive_seed`: this draw is the metric's definition (tests/test_evaluation.py
    computes FVD from it directly), and changing it would change every real clip measured before."""
    return random.Random(f"{seed}:{name}").randint(0, num_frames - frames)


def select_clips(
    videos: list[Video], frames: int, role: str, seed: int = 0, max_clips: int | None = None
) -> ClipSelection:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}; got {role!r}.")
    if frames < 1:
        raise ValueError(f"A clip needs at least one frame; got {frames}.")
    selection = ClipSelection(clips=[], videos=len(videos))
    for video in videos:
        try:
            available = video.num_frames()
        except VideoReadError:
            selection.unreadable.append(video.name)
            continue
        if available < frames:
            selection.too_short.append(video.name)
            continue
        if max_clips is not None and len(selection.clips) >= max_clips:
            selection.beyond_limit += 1
            continue
        start = real_clip_start(video.name, available, frames, seed) if role == "real" else 0
        selection.clips.append(Clip(video, start, frames))
    return selection
