"""fashionflow.service.outputs: job folders, swept after a while."""

from __future__ import annotations

import os
import time

from fashionflow import service

# output files -----------------------------------------------------------------------------------------------------


def test_old_job_folders_are_swept_and_nothing_else(tmp_path):
    store = service.OutputStore(tmp_path, max_age_seconds=60)
    old, new, long_running = store.new_job(), store.new_job(), store.new_job()
    store.finished(old)
    store.finished(new)
    (old / "video.mp4").write_bytes(b"x")
    for folder in (old, long_running):
        os.utime(folder, (time.time() - 120, time.time() - 120))
    unrelated = tmp_path / "keep-me"
    unrelated.mkdir()
    os.utime(unrelated, (0, 0))
    assert store.sweep() == 1
    assert not old.exists() and new.exists() and long_running.exists() and unrelated.exists()
    store.finished(long_running)
    assert store.sweep() == 1 and not long_running.exists()


def test_the_sweeper_runs_without_requests(tmp_path):
    store = service.OutputStore(tmp_path, max_age_seconds=0.2)
    job = store.new_job()
    store.finished(job)
    store.start_sweeper(interval_seconds=0.1)
    try:
        deadline = time.monotonic() + 10
        while job.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not job.exists()
    finally:
        store.stop_sweeper()
