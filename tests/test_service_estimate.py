"""fashionflow.service.estimate: how long a generation takes on this server, fitted stage by stage to
the runs it has made (robust to a noisy run, following a server whose speed changes)."""

from __future__ import annotations

import tempfile

import pytest
from app_harness import tiny_model
from PIL import Image

from fashionflow import service
from fashionflow.progress import StageTimings

# A server's true costs: set-up 2 s; a step 0.5 s + 0.1 s a frame; decoding 0.2 s a frame + 0.3 s a
# decoder call; the files 0.5 s + 0.05 s a written frame.
TRUE = service.Speeds({"setup": (2.0, 0.0), "denoise": (0.5, 0.1), "decode-full": (0.2, 0.3), "export": (0.5, 0.05)})


def settings(steps=25, frames=70, at_once=1, loop=False, decoder="full") -> service.GenerationSettings:
    return service.GenerationSettings(
        seed=0, steps=steps, num_frames=frames, decode_chunk_size=at_once, loop=loop, decoder=decoder
    )


def timings(s: service.GenerationSettings, speeds: service.Speeds = TRUE, slower: float = 1.0) -> StageTimings:
    """What a run with settings `s` measures on a server with `speeds`, `slower` times slower."""
    work = service.estimate.stage_work(s)

    def unit(stage: str) -> float:
        constant, growing = speeds.stages[stage]
        features = work[stage].features
        return slower * (constant * features[0] + growing * features[1])

    return StageTimings(unit("setup"), unit("denoise"), unit(f"decode-{s.decoder}"), unit("export"))


VARIED = [settings(25, 70), settings(10, 16, 8), settings(50, 32, 2, loop=True), settings(2, 8, 8), settings(25, 140)]


def test_an_estimate_adds_up_the_stages():
    s = settings(25, 70, at_once=2, loop=True)
    # 2 + 25 * (0.5 + 7) + 70 * (0.2 + 0.3 / 2) + (0.5 + 138 * 0.05)
    assert TRUE.seconds_for(s) == pytest.approx(2 + 187.5 + 24.5 + 7.4)


def test_a_longer_video_adds_its_clips_steps_and_frames():
    s = service.GenerationSettings(seed=0, steps=25, num_frames=70, decode_chunk_size=2, num_clips=3)
    assert s.video_frames == s.output_frames == 208  # 3 clips of 70 frames, each join's frame once
    # 2 + 3 clips * 25 * (0.5 + 7) + 208 * (0.2 + 0.3 / 2) + (0.5 + 208 * 0.05)
    assert TRUE.seconds_for(s) == pytest.approx(2 + 562.5 + 72.8 + 10.9)
    book = service.SpeedBook()  # fitted on single clips, it estimates chained ones
    for one in VARIED:
        book.learn(one, timings(one))
    assert book.estimate(s).seconds == pytest.approx(TRUE.seconds_for(s), rel=0.01)


def test_nothing_measured_gives_no_number_and_unfinished_runs_teach_nothing():
    book = service.SpeedBook()
    assert book.estimate(settings()) is None and book.measured is None
    book.learn(settings(), StageTimings(None, None, None, None))  # cancelled before its first step
    book.learn(settings(), StageTimings(2.0, 7.5, None, None))  # cancelled while decoding: not every stage yet
    assert book.estimate(settings()) is None


def test_speeds_are_fitted_stage_by_stage_to_the_runs():
    book = service.SpeedBook()
    for s in VARIED:
        book.learn(s, timings(s))
    for s in [settings(25, 70), settings(4, 2, 2), settings(1000, 70, 70), settings(30, 48, 4, loop=True)]:
        assert book.estimate(s).seconds == pytest.approx(TRUE.seconds_for(s), rel=0.01)
    assert book.estimate(settings()).measured


def test_one_noisy_run_barely_moves_the_estimate():
    book = service.SpeedBook()
    s = settings(25, 16, at_once=16)
    for slower in (1.0, 1.0, 5.0, 1.0, 1.0):  # the machine was busy for one run
        book.learn(s, timings(s, slower=slower))
    assert book.estimate(s).seconds == pytest.approx(TRUE.seconds_for(s), rel=0.05)
    book.learn(s, timings(s, slower=5.0))  # the newest run, the noisy one
    assert book.estimate(s).seconds == pytest.approx(TRUE.seconds_for(s), rel=0.05)
    # Varied settings too.
    book = service.SpeedBook()
    for i, s in enumerate(VARIED * 2):
        book.learn(s, timings(s, slower=4.0 if i == 6 else 1.0))
    for s in VARIED:
        assert book.estimate(s).seconds == pytest.approx(TRUE.seconds_for(s), rel=0.05)


def test_the_estimate_follows_a_server_that_became_slower():
    book = service.SpeedBook()
    for s in VARIED * 2:
        book.learn(s, timings(s))
    for s in VARIED[:3] * 2:  # six runs at half the speed: the load changed for good
        book.learn(s, timings(s, slower=2.0))
    for s in VARIED[:3]:
        assert book.estimate(s).seconds == pytest.approx(2 * TRUE.seconds_for(s), rel=0.15)


def test_parts_the_runs_cannot_tell_apart_stand_for_each_other():
    """Every run at 70 frames: a step's fixed and per-frame parts are one number, taken as per frame."""
    book = service.SpeedBook()
    s = settings(25, 70)
    for _ in range(3):
        book.learn(s, timings(s))
    assert book.estimate(s).seconds == pytest.approx(TRUE.seconds_for(s), rel=0.01)
    longer = settings(25, 140)
    assert book.estimate(longer).seconds > 1.8 * book.estimate(s).seconds - 4  # grows with the frames


def test_the_tiny_decoder_counts_as_the_full_one_until_it_is_measured():
    book = service.SpeedBook()
    for s in VARIED:
        book.learn(s, timings(s))
    quick = settings(25, 70, decoder="tiny")
    assert book.estimate(quick).seconds == pytest.approx(TRUE.seconds_for(settings(25, 70)), rel=0.01)
    tiny = service.Speeds({**TRUE.stages, "decode-tiny": (0.02, 0.0)})
    for _ in range(2):
        book.learn(quick, timings(quick, tiny))
    assert book.estimate(quick).seconds == pytest.approx(tiny.seconds_for(quick), rel=0.01)


def test_a_prior_is_labelled_rough_until_something_is_measured():
    book = service.SpeedBook(prior=TRUE)
    estimate = book.estimate(settings())
    assert not estimate.measured and estimate.describe().startswith("Roughly ")
    assert "not measured on this server yet" in estimate.describe()


def test_very_long_settings_are_flagged():
    book = service.SpeedBook(prior=TRUE)
    assert not book.estimate(settings(25, 16)).long
    assert book.estimate(settings(1000, 70)).long


def test_calibration_measures_every_stage_and_the_estimate_is_the_right_size():
    model = tiny_model()
    book = service.SpeedBook()
    speeds = service.calibrate(model.pipeline, book)
    assert speeds is not None and book.measured == speeds
    assert {"setup", "denoise", "decode-full", "export"} <= set(speeds.stages)
    s = service.GenerationSettings(seed=0, steps=4, num_frames=8, decode_chunk_size=8)
    estimate = book.estimate(s).seconds
    with tempfile.TemporaryDirectory() as folder:
        actual = service.run_generation(model.pipeline, Image.new("RGB", (200, 300)), s, folder).seconds
    # A busy 2-core machine: only the order of magnitude is asserted (benchmarks/estimates.py measures).
    assert actual / 5 < estimate < actual * 5


def test_on_zero_gpu_a_rough_prior_stands_in_until_the_first_video():
    book = service.SpeedBook()
    service.measure_speeds(None, book, zero_gpu=True)  # no GPU to calibrate with outside a call
    estimate = book.estimate(settings(25, 70))
    assert not estimate.measured and 15 < estimate.seconds < service.gpu_seconds_estimate(settings(25, 70))
