"""The web app: its logic (fashionflow.service, fashionflow.progress) directly, then app.py in a
subprocess with the tiny untrained model, driven through gradio_client as an API user would."""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import re
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
import torch
from app_harness import FAST, ROOT, load_app_module, not_a_photo, running_app
from PIL import Image

from fashionflow import service
from fashionflow.loading import DEFAULT_MODEL
from fashionflow.progress import GenerationProgress, format_seconds
from fashionflow.schedulers import default_steps
from fashionflow.video import probe_video

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

EXAMPLE = ROOT / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def tiny_model() -> service.ModelState:
    return service.load_model("tiny-random")


def settings(**overrides) -> service.GenerationSettings:
    values = {**FAST, "decode_chunk_size": 4, **overrides}
    return service.validate_settings(**values)


# settings ---------------------------------------------------------------------------------------------------------


def test_settings_from_the_page_and_from_json():
    s = service.validate_settings(
        fit="Crop", seed=12.0, randomize_seed=False, sampler="DPM++", steps=30.0, num_frames=16, fps="12", loop="true"
    )
    assert (s.fit, s.seed, s.sampler, s.steps, s.num_frames, s.fps, s.loop) == ("crop", 12, "dpm++", 30, 16, 12, True)
    assert s.output_frames == 30  # forward then back, ends not repeated


@pytest.mark.parametrize("steps", [None, 0])
def test_missing_steps_mean_the_samplers_default(steps):
    assert service.validate_settings(sampler="ddim", steps=steps).steps == default_steps("ddim")


def test_decode_chunk_larger_than_the_video_is_the_whole_video():
    assert service.validate_settings(num_frames=6, decode_chunk_size=100).decode_chunk_size == 6


def test_random_seed_is_in_range_and_comes_from_the_rng():
    a = service.validate_settings(randomize_seed=True, seed=5, rng=random.Random(1)).seed
    b = service.validate_settings(randomize_seed=True, seed=5, rng=random.Random(1)).seed
    assert a == b != 5 and 0 <= a <= service.LIMITS.max_seed


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_frames=7), "Frames must be an even number"),
        (dict(num_frames=142), "Frames must be from 2 to 140"),
        (dict(num_frames=0), "Frames must be from 2 to 140"),
        (dict(steps=2.5), "Steps must be a whole number"),
        (dict(steps=float("nan")), "Steps must be a whole number"),
        (dict(steps=1001), "Steps must be from 1 to 1000"),
        (dict(steps="many"), "Steps must be a whole number"),
        (dict(fps=0), "Frames per second must be from 1 to 60"),
        (dict(decode_chunk_size=-1), "Decode chunk size must be from 1"),
        (dict(sampler="euler"), "Sampler must be one of: ddpm, ddim, dpm++, unipc"),
        (dict(fit="zoom"), "Framing must be one of: pad, crop, stretch"),
        (dict(seed=-1), "Seed must be from 0 to 4294967295"),
        (dict(seed=None), "Enter a seed, or tick"),
        (dict(loop="maybe"), "Loop must be true or false"),
    ],
)
def test_out_of_range_settings_are_refused_with_the_allowed_range(overrides, message):
    with pytest.raises(service.SettingsError, match=message.replace("+", r"\+")):
        service.validate_settings(**{**FAST, **overrides})


# the photo --------------------------------------------------------------------------------------------------------


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height, with almost no data: huge to look at, tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    )
    return path


def test_photo_problems_are_explained(tmp_path):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((ROOT / "examples" / "grace_hopper.jpg").read_bytes()[:3000])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (60, 200)).save(tiny)
    cases = {
        None: "Please upload a photo first",
        "": "Please upload a photo first",
        str(not_a_photo(tmp_path)): "not a picture we can read",
        str(truncated): "damaged or incomplete",
        str(tiny): "too small (60 x 200 pixels)",
        str(_png_claiming(tmp_path / "huge.png", 9000, 9000)): "too large (9000 x 9000 pixels)",
    }
    for photo, message in cases.items():
        with pytest.raises(service.PhotoError, match=message.replace("(", r"\(").replace(")", r"\)")):
            service.read_photo(photo)
    with pytest.raises(service.PhotoError, match="did not arrive completely"):
        service.read_photo({"path": None, "url": "x"})


def test_photo_arrives_as_gradio_file_data():
    image = service.read_photo(
        {"path": str(EXAMPLE), "orig_name": "astronaut.png", "meta": {"_type": "gradio.FileData"}}
    )
    assert image.size == (512, 512) and image.mode == "RGB"


def test_preview_is_the_frame_the_model_sees(tiny_model):
    assert service.preview_photo(tiny_model, str(EXAMPLE), "crop").size == (128, 128)  # tiny model: 128 x 128
    no_model = service.ModelState(name="missing", error="No weights.")
    assert service.preview_photo(no_model, str(EXAMPLE), "pad").size == (512, 640)  # the published frame
    assert service.preview_photo(tiny_model, None, "pad") is None  # photo removed: preview cleared
    with pytest.raises(service.SettingsError, match="Framing"):
        service.preview_photo(tiny_model, str(EXAMPLE), "zoom")


# the model -------------------------------------------------------------------------------------------------------


def test_missing_weights_leave_the_app_running_with_instructions(tmp_path):
    model = service.load_model(str(tmp_path / "weights" / "fashionflow-official"))
    assert not model.ready
    status = model.status_markdown()
    assert "python -m fashionflow download" in status and "--model tiny-random" in status
    with pytest.raises(service.ModelUnavailableError, match="python -m fashionflow download"):
        model.require()


def test_tiny_random_is_labelled_untrained(tiny_model):
    assert tiny_model.ready and tiny_model.untrained
    assert tiny_model.status_markdown().startswith("**Untrained test model.**")
    assert "tiny-random" in tiny_model.status_markdown() and "attention: sdpa" in tiny_model.status_markdown()


def test_default_weights_are_found_beside_the_app(tmp_path, monkeypatch):
    app_dir, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    (app_dir / DEFAULT_MODEL).mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert service.resolve_model_name(DEFAULT_MODEL, app_dir) == str(app_dir.resolve() / DEFAULT_MODEL)
    assert service.resolve_model_name("tiny-random", app_dir) == "tiny-random"
    assert service.resolve_model_name("owner/model", app_dir) == "owner/model"
    # the working directory's own weights win
    (elsewhere / DEFAULT_MODEL).mkdir(parents=True)
    assert service.resolve_model_name(DEFAULT_MODEL, app_dir) == DEFAULT_MODEL


def test_default_without_any_weights_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no weights/ folder here, none beside the "app" either
    name = service.resolve_model_name(DEFAULT_MODEL, tmp_path / "app")
    assert name == DEFAULT_MODEL  # not taken for a Hub repository id
    error = service.load_model(name).error
    assert "No FashionFlow weights at weights/fashionflow-official" in error
    assert "python -m fashionflow download" in error and "--model tiny-random" in error


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
    jobs.finish("me", mine)
    assert jobs.running("me") == 0 and jobs.cancel_session("me") == 0 and jobs.running("them") == 1


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


# out of memory and ZeroGPU ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, expected",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"), True),
        (MemoryError(), True),
        (RuntimeError("required rank 4 tensor to use channels_last memory format"), False),
        (ValueError("num_frames must be even"), False),
    ],
)
def test_out_of_memory_is_recognised(error, expected):
    assert service.is_out_of_memory(error) is expected


def test_zero_gpu_duration_follows_the_settings():
    quick = service.gpu_seconds_estimate(settings(steps=2, num_frames=4))
    default = service.gpu_seconds_estimate(service.GenerationSettings(seed=0))
    ddpm = service.gpu_seconds_estimate(service.GenerationSettings(seed=0, sampler="ddpm", steps=1000))
    longer = service.gpu_seconds_estimate(service.GenerationSettings(seed=0, num_frames=140))
    assert quick == service.ZEROGPU_MIN_SECONDS
    assert quick < default < longer < ddpm
    assert 30 <= default <= 120  # 25 steps of 70 frames fit one ordinary ZeroGPU call


# generating --------------------------------------------------------------------------------------------------------


def test_generation_writes_playable_mp4_and_gif_with_progress(tiny_model, tmp_path):
    updates = []
    result = service.run_generation(
        tiny_model.pipeline, service.read_photo(EXAMPLE), settings(loop=True), tmp_path / "job", report=updates.append
    )
    info = probe_video(result.mp4)
    assert (info.codec, info.pixel_format, info.width, info.height) == ("h264", "yuv420p", 128, 128)
    assert info.frames == 10 and info.fps == 25  # 6 frames looped: 6 + 4
    assert Image.open(result.gif).n_frames == 10
    fractions = [u.fraction for u in updates]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    descs = " | ".join(u.desc for u in updates)
    assert "Denoising: step 1 of 2" in descs and "Decoding frames" in descs and "Writing the MP4 and GIF" in descs
    assert "Seed used: **7**" in result.summary_markdown()


def test_same_seed_same_video(tiny_model, tmp_path):
    photo = service.read_photo(EXAMPLE)
    gifs = [
        service.run_generation(tiny_model.pipeline, photo, settings(seed=seed), tmp_path / f"job{i}").gif.read_bytes()
        for i, seed in enumerate([3, 3, 4])
    ]
    assert gifs[0] == gifs[1] != gifs[2]


def test_cancel_stops_the_pipeline_at_the_next_step(tiny_model, tmp_path):
    token = service.CancelToken()
    seen = []

    def report(update):
        seen.append(update.desc)
        if update.desc.startswith("Denoising: step 1 "):
            token.cancel()

    with pytest.raises(service.GenerationCancelled):
        service.run_generation(
            tiny_model.pipeline, service.read_photo(EXAMPLE), settings(steps=10), tmp_path / "job", token, report
        )
    assert not any(desc.startswith("Denoising: step 2 ") for desc in seen)
    assert not (tmp_path / "job").exists()


class _PipelineThatRunsOutOfMemory:
    _execution_device = torch.device("cuda:0")

    def __call__(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_becomes_advice_and_the_next_run_works(tiny_model, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    with pytest.raises(service.OutOfMemoryError, match="The GPU ran out of memory making 6 frames") as caught:
        service.run_generation(_PipelineThatRunsOutOfMemory(), service.read_photo(EXAMPLE), settings(), job)
    assert "fewer frames or a smaller decode chunk size" in str(caught.value)
    assert caught.value.__context__ is None  # the failed run's tensors are not kept alive by the error
    assert not job.exists()
    assert service.run_generation(tiny_model.pipeline, service.read_photo(EXAMPLE), settings(), tmp_path / "again")


def test_a_second_generation_waits_for_the_device(tiny_model, tmp_path):
    lock = threading.Lock()
    lock.acquire()
    threading.Timer(0.3, lock.release).start()
    updates = []
    service.run_generation(
        tiny_model.pipeline, service.read_photo(EXAMPLE), settings(), tmp_path / "job", report=updates.append, lock=lock
    )
    assert updates[0].desc == "Waiting for the previous video to finish"


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
    assert "Denoising: step 3 of 10 · about 18 s left" == third.desc
    clock.now += 14.0
    progress.update("denoise", 10, 10)
    clock.now += 0.5
    decode = progress.update("decode", 8, 16)
    assert decode.desc.startswith("Decoding frames: 8 of 16")
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
    assert progress.update("denoise", 0, 25).desc == "Denoising: step 0 of 25 · estimating the time left"


@pytest.mark.parametrize("seconds, text", [(0.2, "under a second"), (41.2, "about 42 s"), (200, "about 3 min")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


# launch options -------------------------------------------------------------------------------------------------------


def test_launch_options_from_the_environment():
    assert service.env_defaults({}) | {"output_dir": None} == {
        "model": DEFAULT_MODEL,
        "host": "127.0.0.1",
        "port": 7860,
        "share": False,
        "device": None,
        "dtype": None,
        "attention": "auto",
        "cpu_offload": False,
        "queue_size": 16,
        "output_dir": None,
        "output_ttl": 3600,
    }
    spaces = service.env_defaults({"SPACE_ID": "shop/fashionflow", "FASHIONFLOW_MODEL": "shop/weights"})
    assert spaces["host"] == "0.0.0.0" and spaces["model"] == "shop/weights"
    gradio_vars = service.env_defaults({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8080"})
    assert (gradio_vars["host"], gradio_vars["port"]) == ("0.0.0.0", 8080)
    ours = service.env_defaults(
        {
            "GRADIO_SERVER_PORT": "8080",
            "FASHIONFLOW_PORT": "9000",
            "FASHIONFLOW_HOST": "10.0.0.2",
            "FASHIONFLOW_SHARE": "true",
        }
    )
    assert (ours["host"], ours["port"], ours["share"]) == ("10.0.0.2", 9000, True)
    ours = service.env_defaults({"FASHIONFLOW_DTYPE": "bfloat16", "FASHIONFLOW_CPU_OFFLOAD": "yes"})
    assert (ours["dtype"], ours["cpu_offload"]) == ("bfloat16", True)
    for bad in ({"FASHIONFLOW_PORT": "http"}, {"FASHIONFLOW_QUEUE_SIZE": "0"}):
        with pytest.raises(ValueError, match="must be a positive whole number"):
            service.env_defaults(bad)
    with pytest.raises(ValueError, match="FASHIONFLOW_SHARE must be true or false"):
        service.env_defaults({"FASHIONFLOW_SHARE": "sometimes"})


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


def test_cancel_button_stops_its_sessions_running_generation(tiny_model, tmp_path):
    """The Cancel button's own handler (besides the queue's cancel): the running job ends politely."""
    import asyncio
    from types import SimpleNamespace

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
    s = settings()
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
    with running_app(tmp_path_factory.mktemp("tiny-app"), "--model", "tiny-random", "--queue-size", "1") as app:
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
    ]:
        with pytest.raises(AppError, match=message):
            client.predict(**{**FAST, **kwargs}, api_name="/generate")
    assert client.predict(photo=photo, **FAST, api_name="/generate")[3] == 7


def test_api_preview(client):
    from gradio_client import handle_file

    framed = client.predict(photo=handle_file(str(EXAMPLE)), fit="stretch", api_name="/preview")
    assert Image.open(framed).size == (128, 128)


def test_queue_shows_positions_refuses_overflow_and_cancel_stops_the_running_job(tiny_app, client, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.utils import QueueError, Status

    def new_client():
        return Client(tiny_app.url, analytics_enabled=False, verbose=False, download_files=str(tmp_path))

    photo = handle_file(str(EXAMPLE))
    slow = {**FAST, "sampler": "ddpm", "steps": 1000, "num_frames": 70}  # over a minute with the tiny model
    earlier_jobs = set(tiny_app.output_dir.glob("job-*"))
    running = client.submit(photo=photo, **slow, api_name="/generate")

    def denoising() -> bool:
        progress = running.status().progress_data
        return bool(progress) and progress[-1].desc.startswith("Denoising: step") and "left" in progress[-1].desc

    _wait_for(denoising, "the first job to report its steps and the time left")
    job_dirs = list(set(tiny_app.output_dir.glob("job-*")) - earlier_jobs)
    assert len(job_dirs) == 1

    waiting = new_client().submit(photo=photo, **slow, api_name="/generate")
    _wait_for(lambda: waiting.status().code == Status.IN_QUEUE and waiting.status().rank == 0, "a queue position")
    with pytest.raises(QueueError, match="Queue is full"):  # --queue-size 1
        new_client().predict(photo=photo, **FAST, api_name="/generate")

    waiting.cancel()
    running.cancel()
    # The running job's worker stops at its next step and removes its files ...
    _wait_for(lambda: not job_dirs[0].exists(), "the cancelled job's files to go")
    # ... and the device is free for the next request at once (the cancelled one had a minute left).
    started = time.monotonic()
    assert client.predict(photo=photo, **FAST, api_name="/generate")[3] == 7
    assert time.monotonic() - started < 30


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
