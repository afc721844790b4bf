"""Writing and checking videos: MP4 (H.264, yuv420p: plays in every browser) and GIF; reading frames upright."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .base import files
from .base.errors import OUTPUT, FashionFlowError
from .defaults import DEFAULT_FPS, MAX_FPS, MIN_FPS, VIDEO_FORMATS  # where `--help` reads them without numpy


def chained_frames(num_frames: int, num_clips: int = 1) -> int:
    """Frames of a video of `num_clips` clips of `num_frames` chained, each clip starting on the last frame
    of the one before (kept once)."""
    return num_clips * (num_frames - 1) + 1


def boomerang(frames: Sequence) -> list:
    """Forward then backward, without repeating the ends: loops seamlessly when played on repeat."""
    frames = list(frames)
    return frames + frames[-2:0:-1]


class VideoWriteError(FashionFlowError, OSError):
    """A video could not be written; the message says why in plain words.

    `reason`: "disk-full", "permission", "read-only", "file-size-limit", "encoder" (ffmpeg's own
    failure), "incomplete" (the file written does not hold the frames sent) or "other".
    Nothing is left behind: not the video, not a partial file.
    """

    kind = OUTPUT  # a full disk is told apart by its reason

    def __init__(self, message: str, reason: str = "other"):
        super().__init__(message)
        self.reason = reason


def export_video(frames: Iterable[Image.Image | np.ndarray], path: str | os.PathLike, fps: int = DEFAULT_FPS) -> Path:
    """Write frames to `path` (.mp4 or .gif). The file appears complete or not at all.

    The video is written beside `path` under a hidden name, read back (codec, size, every frame)
    and only then renamed into place; any failure raises `VideoWriteError` and leaves nothing.
    The file's mode follows the umask, like any file the user creates. `frames` may be any
    iterable (a generator too): they are handed to the encoder one by one (`VideoWriter`).
    """
    with VideoWriter(path, fps) as video:
        for frame in frames:
            video.write(frame)
    return video.path


class VideoWriter:
    """A video written frame by frame as the frames are made, so that a long video is never held in
    memory whole; the file appears complete or not at all, as with `export_video`:

        with VideoWriter("look.mp4", fps=25) as video:
            for frame in frames:  # PIL images, or (h, w, 3) arrays: uint8, or floats in [0, 1]
                video.write(frame)

    MP4 frames go straight to ffmpeg's stdin. GIF frames are kept, reduced to their palette (a
    third of their RGB size), because the GIF writer needs all of them at the end. Leaving the
    block normally finishes the file, reads it back (codec, size, every frame) and renames it into
    place (raising `VideoWriteError` when anything is wrong); leaving it by an exception (a
    cancelled or failed generation) stops the encoder and removes the partial file. Either way an
    earlier file at `path` is replaced only by a complete video.
    """

    def __init__(self, path: str | os.PathLike, fps: int = DEFAULT_FPS):
        self.path = Path(path)
        self.format = self.path.suffix.lower().lstrip(".")
        if self.format not in VIDEO_FORMATS:
            raise ValueError(
                f"Unsupported video format {self.path.suffix!r}; use one of: "
                f"{', '.join('.' + f for f in VIDEO_FORMATS)}."
            )
        if not MIN_FPS <= fps <= MAX_FPS:
            raise ValueError(f"fps must be between {MIN_FPS} and {MAX_FPS}; got {fps}.")
        self.fps = fps
        self.frames = 0  # written so far
        self.partial = partial_path(self.path)
        self._shape: tuple[int, ...] | None = None
        self._encoder: _Mp4Encoder | _GifEncoder | None = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: Image.Image | np.ndarray) -> None:
        """Hand one frame to the encoder (the first one fixes the video's size)."""
        array = _to_uint8_array(frame)
        if self._encoder is None:
            self._shape = array.shape
            self._encoder = self._explained(self._start, array.shape)
        elif array.shape != self._shape:
            raise ValueError("All frames must have the same size.")
        self._explained(self._encoder.write, array)
        self.frames += 1

    def close(self) -> Path:
        """Finish the file, check it, and rename it into place; on any failure nothing is left."""
        if self._encoder is None:
            raise ValueError("No frames to write.")
        try:
            self._explained(self._finish)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop the encoder and remove the partial file; `path` stays as it was."""
        if self._encoder is not None:
            self._encoder.stop()
        self.partial.unlink(missing_ok=True)

    def _start(self, shape: tuple[int, ...]) -> _Mp4Encoder | _GifEncoder:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        height, width = shape[:2]
        if self.format == "mp4":
            return _Mp4Encoder(self.partial, self.path, width, height, self.fps)
        return _GifEncoder(self.partial, self.fps)

    def _finish(self) -> None:
        self._encoder.finish()
        height, width = self._shape[:2]
        _check_written(self.partial, self.path, self.frames, width, height, "h264" if self.format == "mp4" else "gif")
        files.commit_partial(self.partial, self.path, sync=True)

    def _explained(self, action, *args):
        """`action(*args)`, its OS errors told as `VideoWriteError` (the disk is full, permission...)."""
        try:
            return action(*args)
        except VideoWriteError:
            raise
        except OSError as error:
            raise VideoWriteError(*_explain_os_error(error, self.path)) from None


def partial_path(path: Path) -> Path:
    """Where `path` is written before it is complete (`base.files.partial_path`: hidden, unique, the
    same folder and suffix, so that the rename is atomic and ffmpeg picks the container from the suffix)."""
    return files.partial_path(path)


class _Mp4Encoder:
    """H.264 through ffmpeg's stdin, frame by frame; ffmpeg's exit status and its own words are checked.

    Frames are handed over one by one, never resampled in time: clip-based writers (moviepy)
    accumulate float frame times and drop or repeat frames."""

    def __init__(self, path: Path, target: Path, width: int, height: int, fps: int):
        import imageio_ffmpeg

        self.target = target  # the video's own name, for messages
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-"),
            *("-an", "-c:v", "libx264", "-pix_fmt", "yuv420p"),  # 4:2:0 chroma: what browsers and phones decode
            *("-crf", "18", "-preset", "medium", "-movflags", "+faststart", str(path)),
        ]
        self.errors = tempfile.TemporaryFile()  # a file, not a pipe: ffmpeg can never block on it
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.errors
            )
        except BaseException:
            self.errors.close()
            raise

    def write(self, array: np.ndarray) -> None:
        try:
            self.process.stdin.write(np.ascontiguousarray(array).tobytes())
        except BrokenPipeError:  # ffmpeg stopped early: its exit status and message say why, now
            self.finish()
            raise VideoWriteError(
                "The video encoder (ffmpeg) stopped before the video was complete.", "encoder"
            ) from None

    def finish(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        returncode = self.process.wait()
        self.errors.seek(0)
        message = self.errors.read().decode(errors="replace")
        self.errors.close()
        if returncode != 0:
            raise VideoWriteError(*_explain_ffmpeg_failure(returncode, message, self.target))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        self.process.wait()
        self.errors.close()


class _GifEncoder:
    """Pillow's GIF writer, which takes all frames at once: they are kept until then as palette images,
    converted as Pillow's writer converts RGB frames itself (an adaptive palette per frame)."""

    def __init__(self, path: Path, fps: int):
        self.path, self.fps, self.pictures = path, fps, []

    def write(self, array: np.ndarray) -> None:
        self.pictures.append(Image.fromarray(array).convert("P", palette=Image.Palette.ADAPTIVE))

    def finish(self) -> None:
        pictures, self.pictures = self.pictures, []
        pictures[0].save(
            self.path,
            format="GIF",
            save_all=True,
            append_images=pictures[1:],
            duration=round(1000 / self.fps),
            loop=0,
        )

    def stop(self) -> None:
        self.pictures = []


def _check_written(partial: Path, path: Path, frames: int, width: int, height: int, codec: str) -> None:
    try:
        info = probe_video(partial)
    except ValueError:
        info = None
    if info is None or (info.codec, info.frames, info.width, info.height) != (codec, frames, width, height):
        found = (
            "no readable video"
            if info is None
            else f"{info.frames} frames of {info.width} x {info.height} {info.codec}"
        )
        raise VideoWriteError(
            f"The video for {path.name} came out incomplete ({found} instead of {frames} frames of "
            f"{width} x {height} {codec}), so it was not kept. Please try again.",
            "incomplete",
        )


def _explain_os_error(error: OSError, path: Path) -> tuple[str, str]:
    where = f"The video could not be written to {path.parent}"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{where}: the disk is full. Free some space there, or choose another folder, and try again.",
            "disk-full",
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"{where}: permission denied. Choose a folder you may write to.", "permission"
    if error.errno == errno.EROFS:
        return f"{where}: it is on a read-only disk. Choose another folder.", "read-only"
    if error.errno == errno.EFBIG:
        return f"{where}: the file grew past the size limit set for this process (ulimit -f).", "file-size-limit"
    return f"{where}: {error.strerror or error}.", "other"


_FFMPEG_CAUSES = (
    ("No space left on device", errno.ENOSPC),
    ("Disk quota exceeded", errno.EDQUOT),
    ("Permission denied", errno.EACCES),
    ("Read-only file system", errno.EROFS),
    ("File too large", errno.EFBIG),
)


def _explain_ffmpeg_failure(returncode: int, message: str, path: Path) -> tuple[str, str]:
    for words, number in _FFMPEG_CAUSES:
        if words.lower() in message.lower():
            return _explain_os_error(OSError(number, words), path)
    if returncode == -signal.SIGXFSZ:
        return _explain_os_error(OSError(errno.EFBIG, "File too large"), path)
    if returncode < 0:
        what = f"was stopped by signal {signal.Signals(-returncode).name}"
    else:
        # ffmpeg's last line, without its "[component @ 0x...]" prefix
        lines = [re.sub(r"^\[[^\]]*\]\s*", "", line).strip() for line in message.splitlines() if line.strip()]
        what = f"failed: {lines[-1]}" if lines else f"failed (exit status {returncode})"
    return f"The video encoder (ffmpeg) {what.rstrip('.')}. The video for {path.name} was not written.", "encoder"


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


_DECODE_EVERY_FRAME = ("-map", "0:v:0", "-vf", "null", "-f", "null", "-")  # counts the frames that really decode


def upright(frame) -> np.ndarray:
    """A decoded PyAV frame as RGB (height, width, 3) uint8, turned and flipped the way players show it.

    Phones store a video as the sensor saw it and record how to show it in a display matrix (a
    rotation of 90, 180 or 270 degrees, maybe a mirror). This applies it exactly as ffmpeg's own
    player and converter do (fftools: `get_rotation`, then transpose / hflip / vflip)."""
    pixels = frame.to_ndarray(format="rgb24")
    matrix = next((data for data in frame.side_data if data.type.name == "DISPLAYMATRIX"), None)
    if matrix is None:
        return pixels
    m = np.frombuffer(memoryview(matrix), dtype=np.int32)[:9].astype(np.float64) / 65536  # 16.16 fixed point
    scale_x, scale_y = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if not (scale_x and scale_y):
        return pixels
    theta = float(round(math.degrees(math.atan2(m[1] / scale_y, m[0] / scale_x))))  # clockwise, as ffmpeg turns it
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        pixels = pixels.transpose(1, 0, 2) if m[3] > 0 else np.rot90(pixels, -1)  # transpose=cclock_flip / clock
    elif abs(theta - 270) < 1:
        pixels = np.rot90(pixels, 2).transpose(1, 0, 2) if m[3] < 0 else np.rot90(pixels, 1)  # clock_flip / cclock
    elif abs(theta - 180) < 1 or abs(theta) < 1:  # upside down, or mirrored (other angles: no camera makes them)
        if abs(theta - 180) < 1 and m[0] < 0:
            pixels = pixels[:, ::-1]
        if m[4] < 0:
            pixels = pixels[::-1]
    return np.ascontiguousarray(pixels)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Codec, pixel format, size, frame rate and frame count of a video, read by ffmpeg.

    imageio-ffmpeg ships ffmpeg but not ffprobe; `ffmpeg -i` reports the same stream facts, and
    decoding to the null muxer counts the frames that actually decode. Raises ValueError when
    the file holds no readable video.
    """
    import imageio_ffmpeg

    done = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), *_DECODE_EVERY_FRAME],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    report = done.stderr
    stream = re.search(
        r"Stream #0:\d+.*?: Video: (?P<codec>\w+)[^,]*, (?P<pix>\w+)(?:\([^)]*\))?, (?P<w>\d+)x(?P<h>\d+).*?(?P<fps>[\d.]+) fps",
        report,
    )
    counts = re.findall(r"frame=\s*(\d+).*?time=\s*(\d+):(\d+):([\d.]+)", report)
    if done.returncode != 0 or not stream or not counts:
        raise ValueError(f"{path} holds no readable video stream:\n{report[-500:]}")
    frames, hours, minutes, seconds = counts[-1]
    return VideoInfo(
        codec=stream["codec"],
        pixel_format=stream["pix"],
        width=int(stream["w"]),
        height=int(stream["h"]),
        fps=float(stream["fps"]),
        frames=int(frames),
        seconds=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
    )
