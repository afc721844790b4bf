"""The hostile-input suite (tests/hostile_inputs.py) against the library, the command line and the
running web app: each file gives a video or its own sentence, nothing technical reaches a person,
and the server keeps serving after every one."""

from __future__ import annotations

import os
import urllib.request

import pytest
from app_harness import FAST, running_app
from hostile_inputs import CASES, TECHNICAL

from fashionflow.image import ImageInputError, frame_image, load_image
from fashionflow.video import probe_video

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    for case in CASES:
        case.write(folder)
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.filename for c in CASES])
def test_library(case, hostile_folder):
    path = hostile_folder / case.filename
    if not case.refused:
        assert frame_image(load_image(path, working_side=128), 128, 128).size == (128, 128)
        return
    with pytest.raises(ImageInputError) as refused:
        load_image(path)
    assert refused.value.reason == case.reason
    assert case.phrase in str(refused.value) and not TECHNICAL.search(str(refused.value)), str(refused.value)


def test_command_line(hostile_folder, tmp_path, monkeypatch, capsys):
    """One batch over every file: a video per usable photo, a sentence per refusal. The model is a
    stand-in that frames the photo as the pipeline does (the tiny model's own runs are in test_cli)."""
    import numpy as np

    import fashionflow.batch_cli as batch_cli
    import fashionflow.cli as cli
    from fashionflow.video import export_video

    def generator(args, bars, device=None):
        def generate(job):
            frame = np.asarray(frame_image(load_image(job.photo, working_side=128), 128, 128))
            export_video([frame, frame], job.video)

        return generate

    monkeypatch.setattr(batch_cli, "_generator", generator)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "videos"
    assert cli.main(["generate", str(hostile_folder), "-o", str(out), "--model", "tiny-random"]) == 1
    printed = capsys.readouterr()
    for case in CASES:
        if case.refused:
            line = next(ln for ln in printed.err.splitlines() if ln.startswith(f"failed: {case.filename}: "))
            assert case.phrase in line and not TECHNICAL.search(line.split(": ", 2)[2]), line
        else:
            assert f"written: {case.filename} -> " in printed.out, case.filename
    videos = sorted(out.glob("*.mp4"))
    assert len(videos) == sum(not c.refused for c in CASES)
    assert all(probe_video(v).frames == 2 for v in videos)
    assert not (tmp_path / "pwned").exists() and not (hostile_folder / "pwned").exists()  # nothing was run


def test_web_app(hostile_folder, tmp_path):
    """Every file through the running app's /preview (and a few through /generate); the server
    answers after each one."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    with running_app(tmp_path / "app", "--model", "tiny-random") as app:
        client = Client(app.url, analytics_enabled=False, verbose=False, download_files=str(tmp_path / "dl"))
        for case in (c for c in CASES if c.in_app):
            photo = handle_file(str(hostile_folder / case.filename))
            if case.refused:
                with pytest.raises(AppError) as refused:
                    client.predict(photo=photo, fit="pad", api_name="/preview")
                assert case.phrase in str(refused.value) and not TECHNICAL.search(str(refused.value)), case.filename
            else:
                assert client.predict(photo=photo, fit="pad", api_name="/preview"), case.filename
            with urllib.request.urlopen(app.url + "gradio_api/info", timeout=10) as alive:
                assert alive.status == 200, f"the server stopped answering after {case.filename}"
        for name in ("png-zip-polyglot.png", "ünïcödé 照片 🙂.jpg", "text-bomb.png"):
            result = client.predict(photo=handle_file(str(hostile_folder / name)), **FAST, api_name="/generate")
            assert probe_video(result[1]).frames == FAST["num_frames"]
        with pytest.raises(AppError, match="a HEIC photo"):
            client.predict(photo=handle_file(str(hostile_folder / "iphone.heic")), **FAST, api_name="/generate")
        assert "Traceback" not in app.log_tail(100_000) or "Internal error" in app.log_tail(100_000)
