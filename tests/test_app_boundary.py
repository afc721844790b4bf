"""The app's boundary (issue 10): every failure a titled sentence for the visitor, unexpected ones
logged under a reference the message quotes; photos read off the event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from types import SimpleNamespace

import gradio as gr
import pytest
from app_harness import EXAMPLE, FAST, load_app_module
from app_harness import tiny_model as load_tiny_model

from fashionflow import image, service, video

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
VISITOR = SimpleNamespace(session_hash="visitor")


@pytest.fixture(scope="module")
def app_module():
    return load_app_module()


@pytest.fixture
def ui(app_module, tmp_path):
    return app_module.FashionFlowApp(load_tiny_model(), service.OutputStore(tmp_path / "outputs"))


def generate(ui, photo=str(EXAMPLE)):
    return asyncio.run(ui.generate(photo, request=VISITOR, **FAST, decode_chunk_size=4))


def refusal(call) -> gr.Error:
    with pytest.raises(gr.Error) as refused:
        call()
    return refused.value


def test_a_full_disk_is_said_as_such_and_leaves_no_job_folder(ui, tmp_path, monkeypatch):
    # Before: "Making the video failed (OSError)" under "Something went wrong".
    original = video.partial_path

    def onto_full_disk(path):
        partial = original(path)
        os.symlink("/dev/full", partial)
        return partial

    monkeypatch.setattr(video, "partial_path", onto_full_disk)
    error = refusal(lambda: generate(ui))
    assert error.title == "Disk full"
    assert error.message.startswith("The server's disk is full, so nothing could be saved while making the video.")
    assert not list((tmp_path / "outputs").glob("job-*/*.mp4"))
    monkeypatch.setattr(video, "partial_path", original)
    assert generate(ui)[0].endswith(".mp4")  # and the next request works


def test_running_out_of_memory_while_reading_a_photo(ui, monkeypatch):
    # Before: Gradio's generic "The upstream Gradio app has raised an exception".
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(image, "_decode_reduced", no_memory)
    for call in (lambda: ui.preview(str(EXAMPLE), "pad"), lambda: generate(ui)):
        error = refusal(call)
        assert error.title == "Out of memory"
        assert error.message == image.OUT_OF_MEMORY


def test_an_unexpected_error_is_an_internal_error_with_a_reference_in_the_log(ui, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("KeyError in /srv/secret/path.py line 12")

    monkeypatch.setattr(service, "run_generation", broken)
    with caplog.at_level(logging.ERROR, logger="fashionflow.app"):
        error = refusal(lambda: generate(ui))
    assert error.title == "Internal error"
    (reference,) = re.findall(r"quote reference ([0-9a-f]{8})\.", error.message)
    assert "secret" not in error.message and "RuntimeError" not in error.message
    assert f"reference {reference}" in caplog.text and "/srv/secret/path.py" in caplog.text  # the operator's side


def test_no_model_is_said_before_anything_is_read(app_module, tmp_path):
    ui = app_module.FashionFlowApp(
        service.ModelState(name="weights/x", error="No FashionFlow weights at weights/x."),
        service.OutputStore(tmp_path),
    )
    error = refusal(lambda: generate(ui))
    assert (error.title, error.message) == ("No model loaded", "No FashionFlow weights at weights/x.")


def test_photos_are_read_off_the_event_loop(ui, monkeypatch):
    # Before: read inside the event loop, so one large photo froze every other request.
    threads = {}
    read = service.read_photo

    def recording(photo):
        threads["read"] = threading.get_ident()
        return read(photo)

    monkeypatch.setattr(service, "read_photo", recording)

    async def scenario():
        threads["loop"] = threading.get_ident()
        return await ui.generate(str(EXAMPLE), request=VISITOR, **FAST, decode_chunk_size=4)

    asyncio.run(scenario())
    assert threads["read"] != threads["loop"]
    assert not asyncio.iscoroutinefunction(ui.preview)  # Gradio runs plain handlers in its thread pool
