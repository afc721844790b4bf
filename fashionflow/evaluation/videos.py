"""Reading the videos of an evaluation folder: video files, or sub-folders of frame images.

A folder given to `fashionflow evaluate` holds one entry per video, named by its stem:
- a video file (.mp4, .mov, .webm, .mkv, .avi, ...), decoded with PyAV (ffmpeg) to RGB24, upright (a phone
  video's display rotation applied, as players do);
- a sub-folder of frame images sorted by file name (StyleGAN-V's dataset layout).
Both forms of the same frames give the same uint8 arrays, hence the same metrics.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..base.errors import INPUT, MISSING, FashionFlowError
from ..video import upright

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg", ".gif")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class VideoReadError(FashionFlowError, ValueError):
    """A video (file or frame folder) that cannot be read; the message names it."""

    kind = INPUT


class NoVideosError(FashionFlowError, FileNotFoundError):
    """A folder that holds no usable video; the message says what was looked for."""

    kind = MISSING


@dataclass(frozen=True)
class Video:
    """One video of an evaluation folder. `name` pairs generated and real videos."""

    name: str
    path: Path

    @property
    def is_frame_folder(self) -> bool:
        return self.path.is_dir()

    def num_frames(self) -> int:
        """Frame count: images in the folder, or video packets in the file (no decoding)."""
        if self.is_frame_folder:
            return len(self._frame_files())
        try:
            import av

            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                return sum(1 for packet in container.demux(stream) if packet.size)
        except (IndexError, OSError, ValueError) as error:  # av errors derive from OSError / ValueError
            raise VideoReadError(f"{self.path} is not a readable video ({error}).") from None

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Frames in order, each a uint8 array (height, width, 3), RGB."""
        if self.is_frame_folder:
            yield from (_read_image(path) for path in self._frame_files())
            return
        import av

        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    yield upright(frame)  # as players show it (phones record turned)
        except (IndexError, OSError, ValueError) as error:
            raise VideoReadError(f"{self.path} is not a readable video ({error}).") from None

    def read(self, start: int, count: int) -> np.ndarray:
        """Frames [start, start + count) as uint8 (count, height, width, 3)."""
        if self.is_frame_folder:
            files = self._frame_files()[start : start + count]
            frames = [_read_image(path) for path in files]
        else:
            frames = list(itertools.islice(self.iter_frames(), start, start + count))
        if len(frames) != count:
            raise VideoReadError(
                f"{self.path}: frames {start}..{start + count - 1} asked for, only {len(frames)} read."
            )
        shapes = {frame.shape for frame in frames}
        if len(shapes) != 1:
            raise VideoReadError(f"{self.path}: frames of different sizes {sorted(shapes)}.")
        return np.stack(frames)

    def _frame_files(self) -> list[Path]:
        return sorted(
            (p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES),
            key=lambda p: p.name,
        )


@dataclass
class VideoFolder:
    """The videos found in a folder, sorted by name, and the entries that were not videos."""

    root: Path
    videos: list[Video]
    ignored: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, Video]:
        return {video.name: video for video in self.videos}


def find_videos(folder: str | os.PathLike, role: str = "videos") -> VideoFolder:
    """The videos in `folder` (files and frame folders), sorted by name.

    Raises NoVideosError when the folder is missing or holds no video, and VideoReadError when
    two entries share a name (a.mp4 and a/), which would make pairing by name ambiguous.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NoVideosError(f"The {role} folder {root} does not exist.")
    videos, ignored = [], []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):  # partial outputs, .DS_Store, ...
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(Video(entry.stem, entry))
        elif entry.is_dir() and any(p.suffix.lower() in FRAME_SUFFIXES for p in entry.iterdir()):
            videos.append(Video(entry.name, entry))
        else:
            ignored.append(entry.name)
    names = [video.name for video in videos]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise VideoReadError(
            f"{root} holds several videos named {', '.join(duplicates)} (a file and a folder?): keep one of each."
        )
    if not videos:
        raise NoVideosError(
            f"No videos in the {role} folder {root}: expected video files ({', '.join(VIDEO_SUFFIXES)}) "
            f"or sub-folders of frame images ({', '.join(FRAME_SUFFIXES)}), one per video."
        )
    return VideoFolder(root, videos, ignored)


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise VideoReadError(f"{path} is not a readable image ({error}).") from None
