"""fashionflow.service.cancel and .jobs: stopping generations, per browser session."""

from __future__ import annotations

import pickle

import pytest

from fashionflow import service

# cancelling ------------------------------------------------------------------------------------------------------


def test_cancel_reaches_a_pickled_copy_through_the_marker_file(tmp_path):
    token = service.CancelToken(tmp_path / "cancelled")
    copy = pickle.loads(pickle.dumps(token))  # what a ZeroGPU worker process receives
    assert not copy.cancelled
    token.cancel()
    assert copy.cancelled
    with pytest.raises(service.GenerationCancelled):
        copy.raise_if_cancelled()


def test_cancel_after_the_job_folder_is_gone_is_harmless(tmp_path):
    token = service.CancelToken(tmp_path / "gone" / "cancelled")
    token.cancel()
    assert token.cancelled and not (tmp_path / "gone").exists()


def test_sessions_cancel_only_their_own_jobs():
    jobs = service.JobRegistry()
    mine, theirs = jobs.start("me"), jobs.start("them")
    assert jobs.cancel_session("me") == 1
    assert mine.cancelled and not theirs.cancelled
    assert jobs.cancel_session("me") == 0  # still winding down: cancelled once, counted once
    jobs.finish("me", mine)
    assert jobs.running("me") == 0 and jobs.cancel_session("me") == 0 and jobs.running("them") == 1
