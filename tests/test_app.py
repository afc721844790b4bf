"""The web app: app.py's handlers with the tiny untrained model, then app.py in a subprocess,
driven through gradio_client as an API user would. The logic behind it is tested in
test_service_*.py and test_progress.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from app_harness import EXAMPLE, FAST, fast_settings, load_app_module, not_a_photo, running_app
from app_harness import tiny_model as load_tiny_model
from PIL import Image

from fashionflow import service
from fashionflow.video import probe_video

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


@pytest.fixture(scope="module")
def tiny_model() -> service.ModelState:
    return load_tiny_model()


# app.py's handlers ----------------------------------------------------------------------------------------------------


def test_command_line_overrides_the_environment():
    app = load_app_module()
    args = app.parse_args(["--port", "7000", "--model", "tiny-random"], environ={"FASHIONFLOW_PORT": "9000"})
    assert (args.port, args.model, args.host, args.share) == (7000, "tiny-random", "127.0.0.1", False)
    assert app.parse_args([], environ={"FASHIONFLOW_SHARE": "1"}).share


def test_example_results_are_cached_only_for_trained_weights(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path / "examples-cache"))
    app = load_app_module()

    def example_outputs(model: service.ModelState) -> set[str]:
        demo = app.build_demo(app.FashionFlowApp(model, service.OutputStore(tmp_path / "outputs")))
        config = demo.get_config_file()
        names = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
        (load_example,) = [d for d in config["dependencies"] if d["api_name"] == "load_example"]
        return {names[i] for i in load_example["outputs"]}

    assert example_outputs(tiny_model) == {"photo"}  # noise: not presented as a result
    assert example_outputs(service.ModelState(name="missing", error="No weights.")) == {"photo"}
    trained = dataclasses.replace(tiny_model, untrained=False)
    assert example_outputs(trained) == {"video", "download-mp4", "download-gif", "seed", "run-summary"}


def test_the_page_hears_how_a_generation_or_an_example_ended_also_a_failure(tiny_model, tmp_path, monkeypatch):
    """Generate and a cached example each have after_run on success and on failure (Gradio's `.then`
    does not run after a failure, which left Generate busy); the example reports in the status line,
    not with "Error" badges; a visitor leaving is heard (unload)."""
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path / "examples-cache"))
    app = load_app_module()
    trained = dataclasses.replace(tiny_model, untrained=False)
    config = app.build_demo(app.FashionFlowApp(trained, service.OutputStore(tmp_path / "outputs"))).get_config_file()
    dependencies = config["dependencies"]
    for api_name in ("generate", "load_example"):
        (event,) = [d for d in dependencies if d["api_name"] == api_name]
        after = [d for d in dependencies if d["trigger_after"] == event["id"] and d["api_name"].startswith("after_run")]
        ended = {(d["trigger_only_on_success"], d["trigger_only_on_failure"]) for d in after}
        assert ended == {(True, False), (False, True)}, api_name
        assert event["show_progress"] == "hidden"
    assert any(target[1] == "unload" for d in dependencies for target in d["targets"])


def test_the_estimate_is_for_what_the_page_will_send(tiny_model, tmp_path):
    """Numbers typed out of a slider's range are clamped by the slider, and sent so: 0 steps become 1
    (not the sampler's 25), 5000 become 1000; a frame rate or frames-at-once out of range still
    gets an estimate."""
    from fashionflow.page.events import ESTIMATE

    app = load_app_module()
    ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path))
    speeds = {"setup": (1.0, 0.0), "denoise": (0.0, 0.01), "decode-full": (0.1, 0.2), "export": (0.5, 0.01)}
    ui.speeds.prior = service.Speeds(speeds)
    usual = dict(
        sampler="dpm++", steps=25, num_frames=70, fps=25, loop=False, decode_chunk_size=1, quick_preview=False, clips=1
    )

    def shown(**changes) -> str:
        form = {**usual, **changes}
        return ui.settings_changed(*[form[name] for name in ESTIMATE])[2]

    assert shown(steps=0) == shown(steps=1) != shown(steps=25)
    assert shown(steps=5000) == shown(steps=1000) != shown(steps=25)
    assert shown(fps=0) == shown(fps=1) != "" and shown(fps=500) == shown(fps=60) != ""
    assert shown(decode_chunk_size=0) == shown(decode_chunk_size=1) != ""
    assert shown(decode_chunk_size=999) == shown(decode_chunk_size=70) != shown(decode_chunk_size=1)


def test_a_visitor_who_leaves_has_their_jobs_cancelled_and_the_line_moves_up(tiny_model, tmp_path):
    """The unload handler (the browser and gradio_client tests below go through Gradio itself)."""
    app = load_app_module()
    ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path))
    gone, staying = SimpleNamespace(session_hash="gone"), SimpleNamespace(session_hash="staying")
    slow = {**FAST, "sampler": "ddpm", "steps": 1000, "num_frames": 70, "decode_chunk_size": 8}

    async def scenario():
        running = asyncio.create_task(ui.generate(str(EXAMPLE), request=gone, **slow))
        while not (ui.queue.ticket_of("gone") and ui.queue.ticket_of("gone").running):
            await asyncio.sleep(0.05)
        waiting = asyncio.create_task(ui.generate(str(EXAMPLE), request=gone, **slow))  # a second tab's
        while ui.queue.ticket_of("gone").running:
            await asyncio.sleep(0.05)
        mine = asyncio.create_task(ui.generate(str(EXAMPLE), request=staying, **FAST, decode_chunk_size=8))
        while ui.queue.ticket_of("staying") is None:
            await asyncio.sleep(0.05)
        assert ui.queue.place(ui.queue.ticket_of("staying")).position == 2
        ui.visitor_left(gone)
        ended = await asyncio.wait_for(asyncio.gather(running, waiting, mine), timeout=60)
        return [outputs[-1] for outputs in ended]

    running, waiting, mine = asyncio.run(scenario())
    assert running == waiting == "Generation cancelled: no video was made."
    assert "Seed used: **7**" in mine
    assert len(list(tmp_path.glob("job-*"))) == 1  # mine: the cancelled ones left nothing behind


def test_cancel_button_stops_its_sessions_running_generation(tiny_model, tmp_path):
    """The Cancel button's own handler (besides the queue's cancel): the running job ends politely."""
    app = load_app_module()
    ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path))
    me, other = SimpleNamespace(session_hash="me"), SimpleNamespace(session_hash="other")
    slow = {**FAST, "sampler": "ddpm", "steps": 1000, "num_frames": 70, "decode_chunk_size": 8}

    async def scenario():
        mine = asyncio.create_task(ui.generate(str(EXAMPLE), request=me, **slow))
        while not ui.jobs.running("me"):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        ui.cancel(other)  # someone else's Cancel does not touch this job
        await asyncio.sleep(0.2)
        assert not mine.done()
        assert ui.cancel(me) == "Generation cancelled."
        return await asyncio.wait_for(mine, timeout=30)  # uncancelled, 1000 steps take over a minute

    outputs = asyncio.run(scenario())
    assert outputs[-1] == "Generation cancelled: no video was made."
    assert not list(tmp_path.glob("job-*"))  # the cancelled job's folder is gone


def test_the_model_banner_leaves_a_busy_generate_button_alone(tiny_model, tmp_path):
    """While the first speed measurement runs, the banner is polled every second: it must not turn a
    session's "Generating…" button back on in the middle of its run."""
    import gradio as gr

    app = load_app_module()
    ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path))
    me = SimpleNamespace(session_hash="me")
    assert isinstance(ui.model_status(me)[1], gr.Button)
    token = ui.jobs.start("me")
    assert ui.model_status(me)[1] == gr.skip()
    assert isinstance(ui.model_status(SimpleNamespace(session_hash="other"))[1], gr.Button)
    ui.jobs.finish("me", token)
    assert isinstance(ui.model_status(me)[1], gr.Button)


def test_zero_gpu_runs_the_device_part_with_pickled_arguments_and_a_duration(tiny_model, tmp_path, monkeypatch):
    import gradio as gr

    app = load_app_module()
    seen = {}

    class FakeSpaces:
        """What `spaces.GPU` does that matters here: a duration from the call's arguments, and
        arguments and result pickled across to a worker process and back."""

        @staticmethod
        def GPU(task, duration):
            def on_gpu(*args):
                args = pickle.loads(pickle.dumps(args))
                seen["seconds"] = duration(*args)
                return pickle.loads(pickle.dumps(task(*args)))

            return on_gpu

    monkeypatch.setattr(app, "spaces", FakeSpaces)
    monkeypatch.setenv("SPACE_ID", "shop/fashionflow")
    assert app.on_zero_gpu()
    ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path), zero_gpu=app.on_zero_gpu())
    job = ui.store.new_job()
    s = fast_settings()
    result = ui.run_on_device(
        service.read_photo(EXAMPLE), s, job, service.CancelToken(job / "cancelled"), gr.Progress()
    )
    assert seen["seconds"] == service.gpu_seconds_estimate(s)
    assert probe_video(result.mp4).frames == 6

    monkeypatch.delenv("SPACE_ID")
    assert not app.on_zero_gpu()


# the app through its API, as a script would use it ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("tiny-app"), "--model", "tiny-random", "--queue-size", "2") as app:
        yield app


@pytest.fixture
def client(tiny_app, tmp_path):
    from gradio_client import Client

    return Client(tiny_app.url, analytics_enabled=False, verbose=False, download_files=str(tmp_path))


def test_api_generates_a_video(client):
    from gradio_client import handle_file

    video, mp4, gif, seed, summary = client.predict(
        photo=handle_file(str(EXAMPLE)), **FAST, decode_chunk_size=8, api_name="/generate"
    )
    info = probe_video(video)
    assert (info.codec, info.pixel_format, info.width, info.height, info.frames) == ("h264", "yuv420p", 128, 128, 6)
    assert probe_video(mp4).frames == 6 and Image.open(gif).n_frames == 6
    assert seed == 7 and "Seed used: **7**" in summary


def test_api_length_is_an_optional_last_parameter(client):
    from gradio_client import handle_file

    (endpoint,) = [e for name, e in client.view_api(print_info=False, return_format="dict")["named_endpoints"].items()
                   if name == "/generate"]  # fmt: skip
    last = endpoint["parameters"][-1]
    assert last["parameter_name"] == "clips" and last["parameter_has_default"] and last["parameter_default"] == 1
    photo = handle_file(str(EXAMPLE))
    video, *_, summary = client.predict(photo=photo, **FAST, clips=2, api_name="/generate")
    assert probe_video(video).frames == 11 and "2 clips" in summary  # 2 x (6 - 1) + 1
    # a client written before Length existed, passing every other parameter by position, still works
    old = client.predict(photo, "pad", 7, False, "dpm++", 2, 6, 25, False, 8, False, api_name="/generate")
    assert probe_video(old[0]).frames == 6 and old[3] == 7


def test_api_random_seed_is_reported(client):
    from gradio_client import handle_file

    *_, seed, summary = client.predict(
        photo=handle_file(str(EXAMPLE)), **{**FAST, "randomize_seed": True}, api_name="/generate"
    )
    assert 0 <= seed <= service.LIMITS.max_seed and f"Seed used: **{seed}**" in summary


def test_api_errors_are_readable_and_the_next_request_works(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    photo = handle_file(str(EXAMPLE))
    for kwargs, message in [
        (dict(photo=handle_file(str(not_a_photo(tmp_path)))), "This file is not a picture we can read"),
        (dict(photo=None), "Please upload a photo first"),
        (dict(photo=photo, num_frames=7), "Frames must be an even number"),
        (dict(photo=photo, steps=5000), "Steps must be from 1 to 1000"),
        (dict(photo=photo, clips=9), "Length in clips must be from 1 to 3"),
    ]:
        with pytest.raises(AppError, match=message):
            client.predict(**{**FAST, **kwargs}, api_name="/generate")
    assert client.predict(photo=photo, **FAST, api_name="/generate")[3] == 7


def test_api_preview(client):
    from gradio_client import handle_file

    framed = client.predict(photo=handle_file(str(EXAMPLE)), fit="stretch", api_name="/preview")
    assert Image.open(framed).size == (128, 128)


def test_queue_shows_real_places_and_waits_refuses_overflow_and_cancel_stops_the_running_job(
    tiny_app, client, tmp_path
):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    def new_client():
        return Client(tiny_app.url, analytics_enabled=False, verbose=False, download_files=str(tmp_path))

    def said(job) -> str:
        progress = job.status().progress_data
        return progress[-1].desc if progress else ""

    photo = handle_file(str(EXAMPLE))
    slow = {**FAST, "sampler": "ddpm", "steps": 1000, "num_frames": 70}  # over a minute with the tiny model
    earlier_jobs = set(tiny_app.output_dir.glob("job-*"))
    running = client.submit(photo=photo, **slow, api_name="/generate")
    _wait_for(
        lambda: said(running).startswith("Making the video: step") and "left" in said(running),
        "the first job to report its steps and the time left",
    )
    job_dirs = list(set(tiny_app.output_dir.glob("job-*")) - earlier_jobs)
    assert len(job_dirs) == 1

    # Places in line and waits in words, from the running job's time left and the estimates.
    second = new_client().submit(photo=photo, **slow, api_name="/generate")
    _wait_for(lambda: said(second).startswith("Waiting: next in line, about"), "the second job's place")
    third = new_client().submit(photo=photo, **slow, api_name="/generate")
    _wait_for(lambda: said(third).startswith("Waiting: 2nd in line, about"), "the third job's place")
    with pytest.raises(AppError, match="The queue is full: 2 videos are waiting"):  # --queue-size 2
        new_client().predict(photo=photo, **FAST, api_name="/generate")

    second.cancel()  # someone ahead leaves: the third moves up at once
    _wait_for(lambda: said(third).startswith("Waiting: next in line"), "the third job to move up")
    running.cancel()
    # The running job's worker stops at its next step and removes its files; the next one starts.
    _wait_for(lambda: not job_dirs[0].exists(), "the cancelled job's files to go")
    _wait_for(lambda: not said(third).startswith("Waiting"), "the third job to start")
    third.cancel()
    # The device is free for the next request at once (the cancelled ones had minutes left).
    started = time.monotonic()
    assert client.predict(photo=photo, **FAST, api_name="/generate")[3] == 7
    assert time.monotonic() - started < 30


# A script that starts a long video through the API and then waits to be killed.
_CLIENT_THAT_WILL_BE_KILLED = """
import sys, time
from gradio_client import Client, handle_file
client = Client(sys.argv[1], analytics_enabled=False, verbose=False)
job = client.submit(photo=handle_file(sys.argv[2]), fit="pad", seed=7, randomize_seed=False, sampler="ddpm",
                    steps=1000, num_frames=70, fps=25, loop=False, decode_chunk_size=8, api_name="/generate")
def said():
    progress = job.status().progress_data
    return progress[-1].desc if progress else ""
while not said().startswith(("Making the video", "Waiting:")):
    time.sleep(0.1)
print(said(), flush=True)
time.sleep(600)
"""


def test_api_clients_that_are_killed_leave_the_line(tiny_app, client, tmp_path):
    """A client process killed while its video is made (or waits) stops that job within seconds, and
    the line moves up: the next caller does not wait behind videos nobody will fetch."""
    from gradio_client import handle_file

    def start_client() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", _CLIENT_THAT_WILL_BE_KILLED, tiny_app.url, str(EXAMPLE)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
        )

    def said(job) -> str:
        progress = job.status().progress_data
        return progress[-1].desc if progress else ""

    earlier_jobs = set(tiny_app.output_dir.glob("job-*"))
    running = start_client()
    waiting = None
    try:
        assert running.stdout.readline().startswith("Making the video")
        (running_job,) = set(tiny_app.output_dir.glob("job-*")) - earlier_jobs
        waiting = start_client()
        assert waiting.stdout.readline().startswith("Waiting: next in line")
        mine = client.submit(photo=handle_file(str(EXAMPLE)), **FAST, api_name="/generate")
        _wait_for(lambda: said(mine).startswith("Waiting: 2nd in line"), "the in-process client's place")
        waiting.kill()  # the waiting client goes: this one moves up
        _wait_for(lambda: said(mine).startswith("Waiting: next in line"), "the line to move up", timeout=20)
        running.kill()  # the running client goes: its job stops, this one starts
        _wait_for(lambda: not running_job.exists(), "the killed client's job to stop", timeout=20)
        assert mine.result(timeout=60)[3] == 7
    finally:
        for process in (running, waiting):
            if process is not None:
                process.kill()
                process.wait()
    assert tiny_app.log.read_text().count("A visitor left") >= 2


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_app_without_weights_starts_and_says_what_to_run(tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    missing = tmp_path / "weights" / "fashionflow-official"
    with running_app(tmp_path / "run", "--model", str(missing)) as app:
        config = Client(app.url, analytics_enabled=False, verbose=False).config
        props = {c["props"].get("elem_id"): c["props"] for c in config["components"] if c["props"].get("elem_id")}
        status = props["model-status"]["value"]
        assert "No model loaded" in status and "python -m fashionflow download" in status
        assert "--model tiny-random" in status
        assert props["generate"]["interactive"] is False
        client = Client(app.url, analytics_enabled=False, verbose=False, download_files=str(tmp_path))
        with pytest.raises(AppError, match="python -m fashionflow download"):
            client.predict(photo=handle_file(str(EXAMPLE)), **FAST, api_name="/generate")
        # framing still works, at the published model's frame size
        assert Image.open(client.predict(photo=handle_file(str(EXAMPLE)), fit="pad", api_name="/preview")).size == (
            512,
            640,
        )


def test_the_readme_client_example_works(tiny_app, tmp_path, monkeypatch):
    """The gradio_client snippet in README.md, run as written against the app (local URL, tiny model)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = re.search(r"From a script.*?```python\n(.*?)```", readme, re.S).group(1)
    assert 'api_name="/generate"' in snippet
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the snippet names examples/ relative to the checkout
    namespace: dict = {}
    exec(snippet.replace("http://127.0.0.1:7860/", tiny_app.url), namespace)  # noqa: S102 (our own README)
    assert probe_video(namespace["mp4"]).frames == 70 and namespace["seed"] == 0


def test_an_operators_example_photos_replace_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path / "examples-cache"))
    app = load_app_module()
    folder = tmp_path / "shop-photos"
    folder.mkdir()
    for name in ("red_dress.png", "blue_coat.png"):
        Image.new("RGB", (300, 600), "white").save(folder / name)
    args = app.parse_args([], environ={"FASHIONFLOW_EXAMPLES": str(folder)})
    assert args.examples == str(folder)
    examples = service.example_photos(args.examples)
    demo = app.build_demo(
        app.FashionFlowApp(load_tiny_model(), service.OutputStore(tmp_path / "out")), examples=examples
    )
    (dataset,) = [c for c in demo.get_config_file()["components"] if c["props"].get("elem_id") == "examples"]
    shown = [Path(sample[0]["path"]).name for sample in dataset["props"]["samples"]]
    assert shown == ["blue_coat.png", "red_dress.png"]


def test_the_page_shows_a_bad_upload_beside_the_photo_and_empties_the_drop_zone(tiny_model, tmp_path):
    app = load_app_module()
    ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path))
    photo, preview, message = ui.photo_changed({"path": str(not_a_photo(tmp_path))}, "pad")
    assert photo is None and preview is None and "not a picture we can read" in message
    photo, preview, message = ui.photo_changed({"path": str(EXAMPLE)}, "pad")
    assert preview.size == (128, 128) and message == ""  # the old message goes with a good upload
    with pytest.raises(Exception, match="not a picture we can read"):  # the /preview API still says it as an error
        ui.preview({"path": str(not_a_photo(tmp_path))}, "pad")


def test_cancel_with_nothing_running_says_so(tiny_model, tmp_path):
    app = load_app_module()
    ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path))
    assert ui.cancel(SimpleNamespace(session_hash="me")) == "Nothing to cancel: no video is being made."
