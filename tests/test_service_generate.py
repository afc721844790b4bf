"""fashionflow.service.generate, .memory and .zerogpu: one generation, out of memory, GPU reservations."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from app_harness import EXAMPLE, fast_settings
from app_harness import tiny_model as load_tiny_model
from PIL import Image

from fashionflow import service
from fashionflow.video import probe_video


@pytest.fixture(scope="module")
def tiny_model() -> service.ModelState:
    return load_tiny_model()


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
    quick = service.gpu_seconds_estimate(fast_settings(steps=2, num_frames=4))
    default = service.gpu_seconds_estimate(service.GenerationSettings(seed=0))
    ddpm = service.gpu_seconds_estimate(service.GenerationSettings(seed=0, sampler="ddpm", steps=1000))
    longer = service.gpu_seconds_estimate(service.GenerationSettings(seed=0, num_frames=140))
    two, three = (service.gpu_seconds_estimate(service.GenerationSettings(seed=0, num_clips=n)) for n in (2, 3))
    assert quick == service.ZEROGPU_MIN_SECONDS
    assert quick < default < longer < ddpm
    assert default < two < three and three - two == pytest.approx(two - default, abs=1)  # each clip adds its share
    assert 30 <= default <= 120  # 25 steps of 70 frames fit one ordinary ZeroGPU call


# generating --------------------------------------------------------------------------------------------------------


def test_generation_writes_playable_mp4_and_gif_with_progress(tiny_model, tmp_path):
    updates = []
    result = service.run_generation(
        tiny_model.pipeline,
        service.read_photo(EXAMPLE),
        fast_settings(loop=True),
        tmp_path / "job",
        report=updates.append,
    )
    info = probe_video(result.mp4)
    assert (info.codec, info.pixel_format, info.width, info.height) == ("h264", "yuv420p", 128, 128)
    assert info.frames == 10 and info.fps == 25  # 6 frames looped: 6 + 4
    assert Image.open(result.gif).n_frames == 10
    fractions = [u.fraction for u in updates]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    descs = " | ".join(u.desc for u in updates)
    assert (
        "Making the video: step 1 of 2" in descs
        and "Finishing the frames" in descs
        and "Saving the MP4 and GIF" in descs
    )
    assert "Seed used: **7**" in result.summary_markdown()


def test_a_longer_video_reports_its_clips(tiny_model, tmp_path):
    updates = []
    result = service.run_generation(
        tiny_model.pipeline,
        service.read_photo(EXAMPLE),
        fast_settings(clips=2),
        tmp_path / "job",
        report=updates.append,
    )
    assert probe_video(result.mp4).frames == Image.open(result.gif).n_frames == 11  # 2 x (6 - 1) + 1
    descs = [u.desc for u in updates]
    assert any(d.startswith("Clip 1 of 2 · making the video: step 1 of 2") for d in descs)
    assert any(d.startswith("Clip 2 of 2 · making the video: step 2 of 2") for d in descs)
    assert "11 frames at 25 fps (0.4 s, 2 clips)" in result.summary_markdown()
    fractions = [u.fraction for u in updates]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_the_summary_is_in_plain_words():
    one_step = service.GenerationResult(Path("a.mp4"), Path("a.gif"), fast_settings(steps=1, num_frames=8), 3.2)
    assert "Fast, 1 step · 8 frames at 25 fps (0.3 s) · made in 4 s" in one_step.summary_markdown()
    careful = service.GenerationResult(Path("a.mp4"), Path("a.gif"), fast_settings(sampler="ddim", steps=50), 1.0)
    assert "Careful, 50 steps" in careful.summary_markdown()


def test_same_seed_same_video(tiny_model, tmp_path):
    photo = service.read_photo(EXAMPLE)
    gifs = [
        service.run_generation(
            tiny_model.pipeline, photo, fast_settings(seed=seed), tmp_path / f"job{i}"
        ).gif.read_bytes()
        for i, seed in enumerate([3, 3, 4])
    ]
    assert gifs[0] == gifs[1] != gifs[2]


def test_cancel_stops_the_pipeline_at_the_next_step(tiny_model, tmp_path):
    token = service.CancelToken()
    seen = []

    def report(update):
        seen.append(update.desc)
        if update.desc.startswith("Making the video: step 1 "):
            token.cancel()

    with pytest.raises(service.GenerationCancelled):
        service.run_generation(
            tiny_model.pipeline, service.read_photo(EXAMPLE), fast_settings(steps=10), tmp_path / "job", token, report
        )
    assert not any(desc.startswith("Making the video: step 2 ") for desc in seen)
    assert not (tmp_path / "job").exists()


def test_cancel_stops_a_step_between_its_blocks(tiny_model, tmp_path, monkeypatch):
    """One step of a long video takes a minute on a CPU: a cancel is noticed before the U-Net's next
    block, not when the step ends; the blocks' checks are gone after the run."""
    monkeypatch.setattr(service.cancel, "CHECK_EVERY_SECONDS", 0.0)
    token, unet, reached = service.CancelToken(), tiny_model.pipeline.unet, []
    cancelling = unet.down_levels[0].register_forward_hook(lambda *args: token.cancel())
    watching = unet.conv_out.register_forward_hook(lambda *args: reached.append("the step's last layer"))
    try:
        with pytest.raises(service.GenerationCancelled):
            service.run_generation(
                tiny_model.pipeline, service.read_photo(EXAMPLE), fast_settings(steps=10), tmp_path / "job", token
            )
    finally:
        cancelling.remove()
        watching.remove()
    assert reached == [] and not (tmp_path / "job").exists()
    assert not any(module._forward_pre_hooks for module in unet.modules())


class _PipelineThatRunsOutOfMemory:
    _execution_device = torch.device("cuda:0")

    def __call__(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_becomes_advice_and_the_next_run_works(tiny_model, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    with pytest.raises(service.OutOfMemoryError, match="The GPU ran out of memory making 6 frames") as caught:
        service.run_generation(_PipelineThatRunsOutOfMemory(), service.read_photo(EXAMPLE), fast_settings(), job)
    assert "fewer frames or fewer “Frames finished at a time”" in str(caught.value)
    assert caught.value.__context__ is None  # the failed run's tensors are not kept alive by the error
    assert not job.exists()
    assert service.run_generation(tiny_model.pipeline, service.read_photo(EXAMPLE), fast_settings(), tmp_path / "again")


def test_a_second_generation_waits_for_the_device(tiny_model, tmp_path):
    lock = threading.Lock()
    lock.acquire()
    threading.Timer(0.3, lock.release).start()
    updates = []
    service.run_generation(
        tiny_model.pipeline,
        service.read_photo(EXAMPLE),
        fast_settings(),
        tmp_path / "job",
        report=updates.append,
        lock=lock,
    )
    assert updates[0].desc == "Waiting for the previous job to finish"


def test_an_untrained_models_files_and_summary_say_so(tiny_model, tmp_path):
    result = service.run_generation(
        tiny_model.pipeline, service.read_photo(EXAMPLE), fast_settings(), tmp_path / "job", untrained=True
    )
    assert result.mp4.name == "fashionflow-untrained-7.mp4" and result.gif.name == "fashionflow-untrained-7.gif"
    assert result.summary_markdown().startswith(f"**{service.UNTRAINED_CAPTION}**")
    assert result.timings.step_seconds is not None and result.timings.export_seconds is not None
