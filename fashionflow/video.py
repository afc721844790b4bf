"""Writing and checking videos: MP4 (H.264, yuv420p: plays in every browser) and GIF."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

VIDEO_FORMATS = ("mp4", "gif")
DEFAULT_FPS = 25
# Frame rates a video may have: browsers and GIF timing (10 ms units) cope with these. The app's
# slider, the pipeline and the writer all check against these two numbers.
MIN_FPS, MAX_FPS = 1, 60


def boomerang(frames: Sequence) -> list:
    """Forward then backward, without repeating the ends: loops seamlessly when played on repeat."""
    frames = list(frames)
    return frames + frames[-2:0:-1]


def export_video(frames: Sequence[Image.Image] | np.ndarray, path: str | os.PathLike, fps: int = DEFAULT_FPS) -> Path:
    """Write frames to `path` (.mp4 or .gif). The file appears complete or not at all."""
    path = Path(path)
    video_format = path.suffix.lower().lstrip(".")
    if video_format not in VIDEO_FORMATS:
        raise ValueError(
            f"Unsupported video format {path.suffix!r}; use one of: {', '.join('.' + f for f in VIDEO_FORMATS)}."
        )
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"fps must be between {MIN_FPS} and {MAX_FPS}; got {fps}.")
    arrays = [_to_uint8_array(frame) for frame in frames]
    if not arrays:
        raise ValueError("No frames to write.")

    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(descriptor)
    try:
        # Frames are handed to the encoder one by one, never resampled in time: clip-based writers
        # (moviepy) accumulate float frame times and drop or repeat frames.
        if video_format == "mp4":
            _write_mp4(arrays, partial, fps)
        else:
            pictures = [Image.fromarray(a) for a in arrays]
            pictures[0].save(
                partial, format="GIF", save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0
            )
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path


def _write_mp4(arrays: list[np.ndarray], path: str, fps: int) -> None:
    import imageio_ffmpeg

    height, width = arrays[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        path,
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",  # 4:2:0 chroma: what browsers and phones decode
        quality=None,
        macro_block_size=1,
        output_params=["-movflags", "+faststart", "-crf", "18", "-preset", "medium"],
        ffmpeg_log_level="error",
    )
    writer.send(None)  # start ffmpeg
    try:
        for array in arrays:
            writer.send(np.ascontiguousarray(array))
    finally:
        writer.close()


def _to_uint8_array(frame) -> np.ndarray:
    array = np.asarray(frame.convert("RGB") if isinstance(frame, Image.Image) else frame)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"Frames must be RGB images (h, w, 3); got shape {array.shape}.")
    # yuv420p halves chroma resolution: both sides must be even
    h, w = array.shape[:2]
    return np.pad(array, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    pixel_format: str
    width: int
    height: int
    fps: float
    frames: int
    seconds: float


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Codec, pixel format, size, frame rate and frame count of a video, read by ffmpeg.

    imageio-ffmpeg ships ffmpeg but not ffprobe; `ffmpeg -i` reports the same stream facts.
    """
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    report = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stderr
    stream = re.search(
        r"Stream #0:\d+.*?: Video: (?P<codec>\w+)[^,]*, (?P<pix>\w+)(?:\([^)]*\))?, (?P<w>\d+)x(?P<h>\d+).*?(?P<fps>[\d.]+) fps",
        report,
    )
    if not stream:
        raise ValueError(f"{path} holds no readable video stream:\n{report[-500:]}")
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    return VideoInfo(
        codec=stream["codec"],
        pixel_format=stream["pix"],
        width=int(stream["w"]),
        height=int(stream["h"]),
        fps=float(stream["fps"]),
        frames=frames,
        seconds=seconds,
    )
