"""Video files: every frame written once, in order, at the asked frame rate, in browser-playable formats."""

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageSequence

from fashionflow.video import VideoWriteError, VideoWriter, boomerang, export_video, probe_video


def numbered_frames(count: int) -> list[np.ndarray]:
    """Frames carrying their index as 8 black/white stripes (one bit each): robust to lossy coding."""
    frames = []
    for i in range(count):
        bits = np.array([(i >> b) & 1 for b in range(8)], dtype=np.uint8) * 255
        frames.append(np.repeat(np.repeat(bits[None, :, None], 48, axis=0), 8, axis=1).repeat(3, axis=2))
    return frames


def frame_index(frame: np.ndarray) -> int:
    return sum(1 << b for b in range(8) if frame[24, b * 8 + 4, 0] > 127)


@pytest.mark.parametrize("count, fps", [(10, 10), (70, 25), (70, 10), (139, 60)])
def test_mp4_holds_every_frame_once_in_order(tmp_path, count, fps):
    path = export_video(numbered_frames(count), tmp_path / "v.mp4", fps=fps)
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)  # metadata
    assert [frame_index(np.frombuffer(frame, np.uint8).reshape(48, 64, 3)) for frame in reader] == list(range(count))
    info = probe_video(path)
    assert (info.codec, info.pixel_format, info.fps, info.frames) == ("h264", "yuv420p", fps, count)


@pytest.mark.parametrize("count, fps", [(10, 10), (70, 25)])
def test_gif_holds_every_frame_once_in_order(tmp_path, count, fps):
    path = export_video(numbered_frames(count), tmp_path / "v.gif", fps=fps)
    with Image.open(path) as gif:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
        assert gif.info["duration"] == round(1000 / fps) and gif.info["loop"] == 0
    assert [frame_index(np.asarray(frame)) for frame in frames] == list(range(count))


def test_boomerang_loops_without_repeating_the_ends():
    assert boomerang([0, 1, 2, 3]) == [0, 1, 2, 3, 2, 1]


def test_odd_sizes_are_padded_for_yuv420p_and_bad_requests_write_nothing(tmp_path):
    frames = [np.zeros((49, 63, 3), dtype=np.uint8)] * 3
    assert (
        probe_video(export_video(frames, tmp_path / "odd.mp4")).width,
        probe_video(tmp_path / "odd.mp4").height,
    ) == (64, 50)
    with pytest.raises(ValueError, match="Unsupported video format"):
        export_video(frames, tmp_path / "v.avi")
    with pytest.raises(ValueError, match="fps"):
        export_video(frames, tmp_path / "v.mp4", fps=0)
    with pytest.raises(ValueError, match="No frames"):
        export_video([], tmp_path / "v.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]


def test_frames_stream_in_from_a_generator(tmp_path):
    path = export_video((frame for frame in numbered_frames(30)), tmp_path / "v.mp4", fps=25)
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)
    assert [frame_index(np.frombuffer(frame, np.uint8).reshape(48, 64, 3)) for frame in reader] == list(range(30))


@pytest.mark.parametrize("suffix", ["mp4", "gif"])
def test_a_stream_that_fails_midway_leaves_the_earlier_video_and_no_partial_file(tmp_path, suffix):
    path = export_video(numbered_frames(5), tmp_path / f"v.{suffix}")
    before = path.read_bytes()

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted):
        with VideoWriter(path, fps=25) as video:
            for i, frame in enumerate(numbered_frames(20)):
                video.write(frame)
                if i == 10:
                    raise Interrupted  # the generation feeding the writer failed, or was cancelled
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]
    with pytest.raises(ValueError, match="same size"):
        with VideoWriter(path) as video:
            video.write(np.zeros((48, 64, 3), np.uint8))
            video.write(np.zeros((50, 64, 3), np.uint8))
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


def test_an_encoder_that_dies_midway_is_a_video_write_error_and_leaves_nothing(tmp_path):
    path = tmp_path / "v.mp4"
    with pytest.raises(VideoWriteError, match="ffmpeg") as caught:
        with VideoWriter(path) as video:
            for i, frame in enumerate(numbered_frames(200)):
                video.write(frame)
                if i == 5:
                    video._encoder.process.kill()  # as the system does to a process out of memory
    assert caught.value.reason == "encoder"
    assert list(tmp_path.iterdir()) == []
