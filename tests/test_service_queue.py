"""fashionflow.service.queue and .jobs' outcomes: places in line and waits in words, and how each
session's last generation ended. (How long a generation takes: test_service_estimate.py.)"""

from __future__ import annotations

import asyncio

import pytest

from fashionflow import service
from fashionflow.progress import ProgressUpdate


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


def test_a_sessions_last_outcome_is_kept_for_its_page():
    jobs = service.JobRegistry()
    assert jobs.last_outcome("me") is None
    jobs.record_outcome("me", service.Outcome("error", "The queue is full"))
    jobs.record_outcome("me", service.Outcome("done", "Done: made in 3 s."))
    assert jobs.last_outcome("me") == service.Outcome("done", "Done: made in 3 s.") and jobs.last_outcome("you") is None
