"""fashionflow.progress: the fraction done and the time left of one generation."""

from __future__ import annotations

import pytest

from fashionflow.progress import GenerationProgress, format_seconds

# progress -------------------------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_time_left_from_measured_rates():
    clock = FakeClock()
    progress = GenerationProgress(steps=10, num_frames=16, export_files=2, clock=clock)
    assert progress.start().fraction == 0
    clock.now += 5.0  # encoding the photo + first step
    first = progress.update("denoise", 1, 10)
    assert first.seconds_left is not None and "left" in first.desc
    clock.now += 2.0
    progress.update("denoise", 2, 10)
    clock.now += 2.0
    third = progress.update("denoise", 3, 10)
    # 2 s per step measured between steps (the set-up before step 1 is not counted), 7 steps to go,
    # decode and export estimated from the step time: 7 * 2 + 16 * 0.06 * 2 + 2 * 0.5 * 2
    assert third.seconds_left == pytest.approx(14 + 1.92 + 2)
    assert "Making the video: step 3 of 10 · about 18 s left" == third.desc
    clock.now += 14.0
    progress.update("denoise", 10, 10)
    clock.now += 0.5
    decode = progress.update("decode", 8, 16)
    assert decode.desc.startswith("Finishing the frames: 8 of 16")
    clock.now += 0.5
    decode = progress.update("decode", 16, 16)
    fractions = [third.fraction, decode.fraction]
    clock.now += 1
    export = progress.update("export", 1, 2)
    done = progress.update("export", 2, 2)
    assert fractions + [export.fraction] == sorted(fractions + [export.fraction]) and done.fraction == 1.0
    assert done.desc == "Done"


def test_progress_before_any_step_is_honest_about_the_time_left():
    progress = GenerationProgress(steps=25, num_frames=70, clock=FakeClock())
    assert progress.update("denoise", 0, 25).desc == "Making the video: step 0 of 25 · estimating the time left"


def test_progress_of_a_chained_video_names_the_clip():
    clock = FakeClock()
    progress = GenerationProgress(steps=4, num_frames=28, clips=3, clock=clock)
    clock.now += 1
    assert progress.update("denoise", 1, 12).desc.startswith("Clip 1 of 3 · making the video: step 1 of 4 · ")
    clock.now += 10
    middle = progress.update("denoise", 6, 12)  # 2 s per step: 6 steps, 28 frames and 2 files left
    assert middle.desc == f"Clip 2 of 3 · making the video: step 2 of 4 · {format_seconds(6 * 2 + 28 * 0.12 + 2)} left"
    assert middle.fraction == pytest.approx(6 / (12 + 28 * 0.06 + 2 * 0.5))
    clock.now += 12
    assert progress.update("denoise", 12, 12).desc.startswith("Clip 3 of 3 · making the video: step 4 of 4")
    assert progress.timings().step_seconds == pytest.approx(2.0)  # per step of one clip


@pytest.mark.parametrize("seconds, text", [(0.2, "under a second"), (41.2, "about 42 s"), (200, "about 3 min")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
