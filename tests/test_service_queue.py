"""fashionflow.service.queue, .estimate and .jobs' outcomes: places in line and waits in words, and
how long a generation takes here, from measured speeds."""

from __future__ import annotations

import asyncio

import pytest
from app_harness import tiny_model

from fashionflow import service
from fashionflow.progress import ProgressUpdate, StageTimings


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_places_and_waits_come_from_the_running_jobs_progress_and_the_estimates_ahead():
    clock = FakeClock()
    queue = service.DeviceQueue(max_waiting=3, clock=clock)
    running = queue.join("a", service.CancelToken(), estimate_seconds=100)
    second = queue.join("b", service.CancelToken(), estimate_seconds=60)
    third = queue.join("c", service.CancelToken(), estimate_seconds=60)
    running.started_at = clock.now
    clock.now += 30
    assert queue.place(running) is None  # running: no place in line
    assert queue.place(second) == service.Place(position=1, wait_seconds=70)  # estimate minus time spent
    running.update = ProgressUpdate(0.5, "Making the video", seconds_left=40)  # measured beats estimated
    assert queue.place(third) == service.Place(position=2, wait_seconds=100)
    assert queue.place(third).describe() == "Waiting: 2nd in line, about 2 min"
    queue.leave(second)  # someone ahead leaves: everyone behind moves up at once
    assert queue.place(third).describe() == "Waiting: next in line, about 40 s"
    assert queue.ticket_of("c") is third and queue.ticket_of("nobody") is None


def test_a_wait_with_an_unknown_estimate_says_only_the_place():
    queue = service.DeviceQueue()
    queue.join("a", service.CancelToken()).started_at = 0.0
    assert queue.place(queue.join("b", service.CancelToken())).describe() == "Waiting: next in line"


@pytest.mark.parametrize("n, word", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (22, "22nd")])
def test_ordinals(n, word):
    from fashionflow.service.queue import ordinal

    assert ordinal(n) == word


def test_a_full_line_refuses_with_a_reason():
    queue = service.DeviceQueue(max_waiting=1)
    queue.join("a", service.CancelToken()).started_at = 0.0  # running: does not count as waiting
    queue.join("b", service.CancelToken())
    with pytest.raises(service.QueueFullError, match="The queue is full: 1 videos are waiting"):
        queue.join("c", service.CancelToken())


def test_turns_come_in_order_and_a_cancelled_waiter_leaves():
    async def scenario():
        queue = service.DeviceQueue()
        queue.POLL_SECONDS = 0.01
        first = queue.join("a", service.CancelToken())
        second = queue.join("b", service.CancelToken())
        cancelled_token = service.CancelToken()
        third = queue.join("c", cancelled_token)
        await queue.wait_turn(first)
        assert first.running
        reports = []
        waiting = asyncio.create_task(queue.wait_turn(second, reports.append))
        leaving = asyncio.create_task(queue.wait_turn(third))
        await asyncio.sleep(0.05)
        assert not waiting.done() and reports[0].position == 1
        cancelled_token.cancel()
        with pytest.raises(service.GenerationCancelled):
            await leaving
        assert queue.place(third) is None  # gone from the line
        queue.leave(first)
        await asyncio.wait_for(waiting, 2)
        assert second.running

    asyncio.run(scenario())


def speeds_for_test() -> service.Speeds:
    return service.Speeds(
        setup_seconds=2,
        step_seconds_fixed=0.5,
        step_seconds_per_frame=0.1,
        decode_seconds_per_frame=0.2,
        export_seconds_per_frame=0.05,
    )


def test_an_estimate_adds_up_the_stages():
    settings = service.GenerationSettings(seed=0, steps=25, num_frames=70, loop=True)
    # 2 + 25 * (0.5 + 7) + 70 * 0.2 + 138 * 0.05
    assert speeds_for_test().seconds_for(settings) == pytest.approx(2 + 187.5 + 14 + 6.9)


def test_speeds_are_learnt_from_finished_runs():
    book = service.SpeedBook()
    settings = service.GenerationSettings(seed=0, steps=10, num_frames=20)
    assert book.estimate(settings) is None  # nothing measured, no prior: no number pretending to be one
    book.calibrated(speeds_for_test())
    before = book.estimate(settings)
    assert before.measured and before.seconds == pytest.approx(2 + 10 * 2.5 + 4 + 1)
    # A run twice as slow per step: the estimate moves halfway towards it.
    book.learn(settings, StageTimings(setup_seconds=2, step_seconds=5.0, decode_seconds_per_frame=0.2,
                                      export_seconds=1.0))  # fmt: skip
    assert book.estimate(settings).seconds == pytest.approx(2 + 10 * 3.75 + 4 + 1)
    book.learn(settings, StageTimings(setup_seconds=2, step_seconds=None, decode_seconds_per_frame=None,
                                      export_seconds=None))  # an unfinished run: nothing learnt  # fmt: skip
    assert book.estimate(settings).seconds == pytest.approx(2 + 10 * 3.75 + 4 + 1)


def test_a_prior_is_labelled_rough_until_something_is_measured():
    book = service.SpeedBook(prior=speeds_for_test())
    estimate = book.estimate(service.GenerationSettings(seed=0, steps=25, num_frames=70))
    assert not estimate.measured and estimate.describe().startswith("Roughly ")
    assert "not measured on this server yet" in estimate.describe()


def test_very_long_settings_are_flagged():
    book = service.SpeedBook()
    book.calibrated(speeds_for_test())
    assert not book.estimate(service.GenerationSettings(seed=0)).long
    assert book.estimate(service.GenerationSettings(seed=0, sampler="ddpm", steps=1000)).long


def test_calibration_measures_this_server_and_the_estimate_is_the_right_size():
    model = tiny_model()
    book = service.SpeedBook()
    speeds = service.calibrate(model.pipeline, book)
    assert book.measured == speeds and speeds.step_seconds(70) > 0 and speeds.decode_seconds_per_frame > 0
    settings = service.GenerationSettings(seed=0, steps=4, num_frames=8, decode_chunk_size=8)
    estimate = book.estimate(settings).seconds
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        actual = service.run_generation(model.pipeline, Image.new("RGB", (200, 300)), settings, folder).seconds
    # A busy 2-core machine: only the order of magnitude is asserted.
    assert actual / 10 < estimate < actual * 10


def test_a_sessions_last_outcome_is_kept_for_its_page():
    jobs = service.JobRegistry()
    assert jobs.last_outcome("me") is None
    jobs.record_outcome("me", service.Outcome("error", "The queue is full"))
    jobs.record_outcome("me", service.Outcome("done", "Done: made in 3 s."))
    assert jobs.last_outcome("me") == service.Outcome("done", "Done: made in 3 s.") and jobs.last_outcome("you") is None
