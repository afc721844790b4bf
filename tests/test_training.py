"""`prepare` and `train` on the CPU with the tiny-random model: data, objective, loop, resume, several processes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from fashionflow.cli import main
from fashionflow.pipeline import FashionFlowPipeline
from fashionflow.schedulers import published_scheduler
from fashionflow.training.checkpoints import list_checkpoints, resolve_resume
from fashionflow.training.data import prepare_dataset
from fashionflow.training.errors import DataError
from fashionflow.training.objective import add_noise_keep_first_frame, diffusion_loss, frame_loss
from fashionflow.training.synthetic import write_synthetic_videos
from fashionflow.training.train import TrainConfig, train
from fashionflow.video import probe_video
from tests.training_fixtures import fresh_accelerate_state, one_thread  # noqa: F401 (autouse)

FRAMES = 8
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    write_synthetic_videos(folder, 4, frames=12, height=160, width=128, seed=1)
    (folder / "nested").mkdir()
    write_synthetic_videos(folder / "nested", 1, frames=12, height=160, width=128, seed=2, prefix="deep")
    return folder


@pytest.fixture(scope="module")
def data(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "data"
    prepare_dataset(videos, out, model="tiny-random", frames=FRAMES, show_progress=False)
    return out


def config(data, run, **overrides) -> TrainConfig:
    settings = dict(
        data=str(data), output=str(run), model="tiny-random", batch_size=2, learning_rate=1e-3, seed=0,
        log_every=1, checkpoint_every=1000, report_to=None,
    )  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


# prepare -------------------------------------------------------------------------------------------------------------


def test_prepare_stores_latent_clips_and_reports_bad_videos(videos, tmp_path, capsys):
    folder = tmp_path / "videos"
    write_synthetic_videos(folder, 2, frames=12, height=160, width=128, seed=3)
    write_synthetic_videos(folder, 1, frames=5, height=160, width=128, seed=4, prefix="short")
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    out = tmp_path / "data"

    assert main(["prepare", str(folder), "-o", str(out), "--model", "tiny-random", "--frames", str(FRAMES),
                 "--clips-per-video", "2"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "Prepared 4 clip(s) from 2 of 4 video(s)" in printed
    assert "corrupt.mp4: corrupt or unreadable" in printed and "short-0000.mp4: too short: 5 frame(s)" in printed

    index = json.loads((out / "index.json").read_text())
    assert index["settings"]["frame_height"] == 128 and index["settings"]["frames"] == FRAMES
    clip = index["clips"][0]
    with safe_open(out / clip["shard"], framework="pt") as shard:
        assert shard.get_tensor("clip0.latents").shape == (4, FRAMES, 16, 16)
        assert shard.get_tensor("clip0.still").dtype == torch.uint8
    starts = [c["start"] for c in index["clips"] if c["source"] == clip["source"]]
    assert len(starts) == 2 and all(0 <= s <= 12 - FRAMES for s in starts)

    # a second run does nothing again; a leftover of a killed run is removed
    (out / "shards" / ".half-written.safetensors.partial").write_bytes(b"x")
    before = (out / clip["shard"]).stat().st_mtime_ns
    assert main(["prepare", str(folder), "-o", str(out), "--model", "tiny-random", "--frames", str(FRAMES),
                 "--clips-per-video", "2"]) == 0  # fmt: skip
    assert "(4 done by an earlier run)" in capsys.readouterr().out
    assert (out / clip["shard"]).stat().st_mtime_ns == before
    assert not list(out.rglob("*.partial"))

    # other settings into the same folder are refused
    assert main(["prepare", str(folder), "-o", str(out), "--model", "tiny-random", "--frames", "4"]) == 2
    assert "other settings (frames, clips_per_video differ)" in capsys.readouterr().err


def test_prepared_latents_are_the_pipelines_encoding(data):
    """Frame 0 of a stored clip is the VAE encoding of its stored still, as the pipeline encodes a still."""
    from fashionflow.loading import load_pipeline

    index = json.loads((data / "index.json").read_text())
    assert {c["source"] for c in index["clips"]} >= {"nested/deep-0000.mp4"}
    pipe = load_pipeline("tiny-random", device="cpu")
    tensors = load_file(data / index["clips"][0]["shard"])
    still = tensors["clip0.still"].float()[None] / 255
    mean = pipe.vae.encode(still).latent_dist.mean * pipe.vae.config.scaling_factor
    std = pipe.vae.encode(still).latent_dist.std * pipe.vae.config.scaling_factor
    # a sample, not the mean: within a few standard deviations of it
    assert ((tensors["clip0.latents"][:, 0] - mean[0]).abs() <= 5 * std[0] + 1e-4).all()


# objective -------------------------------------------------------------------------------------------------------------


def test_objective_is_the_authors_formula():
    torch.manual_seed(0)
    scheduler = published_scheduler()
    x0, noise = torch.randn(2, 4, 6, 8, 8), torch.randn(2, 4, 6, 8, 8)
    t = torch.tensor([10, 900])
    noisy, target = add_noise_keep_first_frame(scheduler, x0, noise, t)

    alphabar = scheduler.alphas_cumprod[t].view(2, 1, 1, 1, 1)
    expected = alphabar.sqrt() * x0 + (1 - alphabar).sqrt() * noise
    torch.testing.assert_close(noisy[:, :, 1:], expected[:, :, 1:])
    torch.testing.assert_close(noisy[:, :, 0], x0[:, :, 0])  # frame 0 clean
    assert (target[:, :, 0] == 0).all() and torch.equal(target[:, :, 1:], noise[:, :, 1:])

    prediction = torch.randn_like(noise)
    authors = sum(F.mse_loss(prediction[:, :, i], target[:, :, i]) for i in range(6))  # their loop, summed
    torch.testing.assert_close(frame_loss(prediction, target, "sum"), authors)
    torch.testing.assert_close(frame_loss(prediction, target, "mean"), authors / 6)


def test_the_two_reductions_differ_by_the_frame_count():
    from fashionflow.tiny import build_tiny_pipeline
    from fashionflow.training.objective import Denoiser

    pipe = build_tiny_pipeline()
    denoiser = Denoiser(pipe.unet, pipe.adapter)
    latents, still = torch.randn(2, 4, FRAMES, 16, 16), torch.rand(2, 3, 128, 128)
    losses = {}
    for reduction in ("sum", "mean"):
        generator = torch.Generator().manual_seed(3)
        hidden, context_latents, _ = pipe.encode_condition(still, generator)
        losses[reduction] = diffusion_loss(
            denoiser, pipe.scheduler, latents, hidden, context_latents, reduction, generator
        )
    torch.testing.assert_close(losses["sum"], FRAMES * losses["mean"])


# training ------------------------------------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_leaves_a_pipeline_that_generates(data, tmp_path, capsys):
    run = tmp_path / "run"
    # the noise target (loss about 1 at first) falls clearly in 50 steps; what v-prediction samples is tested on
    # static clips below
    result = train(
        config(data, run, max_steps=50, init="scratch", learning_rate=3e-3, log_every=10, prediction_type="epsilon"),
        show_progress=False,
    )
    losses = [m["loss"] for m in metrics(run)]
    assert len(losses) == 5 and losses[-1] < 0.75 * losses[0], losses

    saved = FashionFlowPipeline.from_pretrained(result.pipeline_dir)
    assert saved.config.clip_preprocessing == "standard" and saved.config.untrained is False
    card = (result.pipeline_dir / "README.md").read_text()
    assert "50 optimiser steps" in card and "from scratch" in card
    assert json.loads((run / "config.json").read_text())["init"] == "scratch"

    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.new("RGB", (160, 200), (200, 30, 30)).save(photo)
    out = tmp_path / "video.mp4"
    assert main(["generate", str(photo), "-o", str(out), "--model", str(result.pipeline_dir), "--steps", "2",
                 "--frames", str(FRAMES)]) == 0  # fmt: skip
    assert probe_video(out).frames == FRAMES


def test_fine_tuning_keeps_the_models_clip_preprocessing(data, tmp_path):
    result = train(config(data, tmp_path / "run", max_steps=1), show_progress=False)
    assert FashionFlowPipeline.from_pretrained(result.pipeline_dir).config.clip_preprocessing == "published-checkpoint"


def test_resume_continues_the_same_loss_curve(data, tmp_path):
    # 5 clips, batch 2: 3 batches per epoch; the checkpoint at step 2 is in the middle of epoch 0
    whole = tmp_path / "whole"
    train(config(data, whole, max_steps=5), show_progress=False)
    split = tmp_path / "split"
    train(config(data, split, max_steps=2), show_progress=False)
    assert [c.name for c in list_checkpoints(split)] == ["checkpoint-2"]
    train(config(data, split, max_steps=5, resume="latest"), show_progress=False)

    expected, resumed = metrics(whole), metrics(split)
    assert [m["step"] for m in resumed] == [1, 2, 3, 4, 5]
    for a, b in zip(expected, resumed):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), (a, b)


def test_checkpoints_limit_ema_and_resume_resolution(data, tmp_path):
    run = tmp_path / "run"
    train(config(data, run, max_steps=4, checkpoint_every=1, checkpoints_limit=2, ema=True, ema_decay=0.5),
          show_progress=False)  # fmt: skip
    assert [c.name for c in list_checkpoints(run)] == ["checkpoint-3", "checkpoint-4"]
    assert resolve_resume(run, "latest").name == "checkpoint-4"
    assert resolve_resume(tmp_path / "nothing-yet", "latest") is None
    with pytest.raises(DataError, match="No training checkpoint"):
        resolve_resume(run, str(tmp_path / "missing"))

    # the saved pipeline holds the EMA weights, which differ from the raw weights of the last step
    raw = load_file(run / "checkpoint-4" / "model.safetensors")
    ema = load_file(run / "checkpoint-4" / "ema.safetensors")
    saved = load_file(run / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    key = "conv_in.spatial.weight" if "conv_in.spatial.weight" in saved else sorted(saved)[0]
    raw_value = raw[f"unet.{key}"]
    assert not torch.equal(saved[key], raw_value)
    assert any(torch.equal(saved[key], shadow) for shadow in ema.values())


def test_numeric_checkpoint_order(tmp_path):
    for step in (9, 10, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "train_state.json").write_text("{}")
    (tmp_path / "checkpoint-200").mkdir()  # incomplete: no train_state.json
    assert [c.name for c in list_checkpoints(tmp_path)] == ["checkpoint-9", "checkpoint-10", "checkpoint-100"]


def test_validation_loss_and_videos(data, tmp_path):
    run = tmp_path / "run"
    train(config(data, run, max_steps=2, validation_videos=1, validation_every=2, validation_steps=2),
          show_progress=False)  # fmt: skip
    last = metrics(run)[-1]
    assert last["step"] == 2 and "val_loss" in last and "loss" in last
    videos = sorted((run / "validation").glob("step-*/*.mp4"))
    assert [v.parent.name for v in videos] == ["step-0000000", "step-0000002"]
    assert probe_video(videos[-1]).frames == FRAMES


def test_nan_loss_stops_with_a_clear_message(data, tmp_path, monkeypatch):
    from fashionflow.training import train as train_module
    from fashionflow.training.errors import TrainingStopped

    real = train_module.diffusion_loss
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(train_module, "diffusion_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingStopped, match=r"became nan at step 3.*checkpoint-2"):
        train(config(data, run, max_steps=5, checkpoint_every=2), show_progress=False)
    assert [c.name for c in list_checkpoints(run)] == ["checkpoint-2"] and not (run / "pipeline").exists()


def test_ctrl_c_saves_a_checkpoint_to_resume_from(data, tmp_path, monkeypatch):
    from fashionflow.training import train as train_module

    real = train_module.diffusion_loss
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "diffusion_loss", interrupted)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(config(data, run, max_steps=5), show_progress=False)
    assert [c.name for c in list_checkpoints(run)] == ["checkpoint-2"]
    monkeypatch.setattr(train_module, "diffusion_loss", real)
    train(config(data, run, max_steps=3, resume="latest"), show_progress=False)
    assert [m["step"] for m in metrics(run)] == [1, 2, 3] and (run / "pipeline").is_dir()


def test_two_processes_keep_identical_weights(data, tmp_path):
    from fashionflow.tiny import build_tiny_pipeline

    script = tmp_path / "two_ranks.py"
    # each process writes the weights it holds when the final checkpoint is saved
    script.write_text(
        textwrap.dedent(f"""
        import torch
        from accelerate import PartialState
        from safetensors.torch import save_file
        from fashionflow.training import train as t

        PartialState(cpu=True)  # gloo: two CPU processes under torchrun

        def save_and_record(accelerator, run_dir, state, ema, generators, limit, _save=t._save_checkpoint):
            model = accelerator._models[0]
            weights = {{k: v.detach().clone().contiguous() for k, v in accelerator.unwrap_model(model).state_dict().items()}}
            save_file(weights, f"{{run_dir}}/weights-rank{{accelerator.process_index}}.safetensors")
            return _save(accelerator, run_dir, state, ema, generators, limit)

        t._save_checkpoint = save_and_record
        t.train(t.TrainConfig(data={str(data)!r}, output={str(tmp_path / "run")!r}, model="tiny-random", max_steps=3,
                              batch_size=1, learning_rate=1e-3, log_every=1, report_to=None, cpu=True),
                show_progress=False)
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()), str(script)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    assert "2 process(es)" in done.stdout + done.stderr
    rank0, rank1 = (load_file(run / f"weights-rank{r}.safetensors") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    untouched = build_tiny_pipeline().unet.state_dict()
    assert not all(torch.equal(rank0[f"unet.{k}"], v) for k, v in untouched.items())  # they did train
    assert [m["step"] for m in metrics(run)] == [1, 2, 3]


# mistakes --------------------------------------------------------------------------------------------------------------


def test_mistakes_end_in_one_clear_line(data, tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["prepare", str(empty), "-o", str(tmp_path / "d"), "--model", "tiny-random"], "No videos (.mp4"),
        (["train", str(empty), "-o", str(tmp_path / "r"), "--model", "tiny-random"], "no complete prepared data"),
        (["train", str(data), "-o", str(tmp_path / "r"), "--model", str(tmp_path / "nope")], "No FashionFlow weights"),
        (["train", str(data), "-o", str(tmp_path / "r"), "--model", "tiny-random", "--batch-size", "0"], "--batch-size must be"),
    ]  # fmt: skip
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()


def test_data_made_for_another_frame_size_is_refused(data, tmp_path, capsys):
    from fashionflow.models import ConditionAdapter
    from fashionflow.tiny import build_tiny_pipeline

    wide = build_tiny_pipeline()
    wide.adapter = ConditionAdapter(latent_size=(16, 32), clip_tokens=wide.adapter.config.clip_tokens,
                                    context_dim=wide.adapter.config.context_dim)  # fmt: skip
    wide.save_pretrained(tmp_path / "wide")
    assert main(["train", str(data), "-o", str(tmp_path / "r"), "--model", str(tmp_path / "wide")]) == 2
    assert (
        "prepared for 128 x 128 frames (model tiny-random), but this model makes 128 x 256" in capsys.readouterr().err
    )


def test_an_output_folder_that_cannot_be_written_is_refused(data, tmp_path, capsys, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    assert main(["train", str(data), "-o", str(tmp_path / "r"), "--model", "tiny-random"]) == 2
    err = capsys.readouterr().err
    assert "Cannot write to" in err and "Permission denied" in err and "Traceback" not in err
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", tempfile.NamedTemporaryFile)

    if os.geteuid() != 0:  # root writes anywhere: the real read-only folder only bites other users
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["train", str(data), "-o", str(locked / "run"), "--model", "tiny-random"]) == 2
        assert "Cannot write to" in capsys.readouterr().err


def test_a_run_folder_is_not_overwritten_without_resume(data, tmp_path, capsys):
    run = tmp_path / "run"
    train(config(data, run, max_steps=1), show_progress=False)
    assert main(["train", str(data), "-o", str(run), "--model", "tiny-random", "--max-steps", "2"]) == 2
    assert "already holds a training run (checkpoint-1): pass --resume latest" in capsys.readouterr().err


def test_accelerate_launch_runs_the_module(data, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "-m", "fashionflow",
         "train", str(data), "-o", str(tmp_path / "run"), "--model", "tiny-random", "--max-steps", "2",
         "--report-to", "none"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "pipeline" / "model_index.json").is_file()


def test_bf16_mixed_precision_trains_on_the_cpu(data, tmp_path, monkeypatch):
    """`train --mixed-precision bf16` on a CPU: accelerate's CPU autocast runs the U-Net and adapter in
    bfloat16 (the weights and optimiser stay float32, the frozen encoders are bfloat16)."""
    seen = []
    original = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        torch.nn.functional,
        "scaled_dot_product_attention",
        lambda q, *a, **k: seen.append(q.dtype) or original(q, *a, **k),
    )
    run = tmp_path / "run"
    assert main(["train", str(data), "-o", str(run), "--model", "tiny-random", "--max-steps", "2",
                 "--mixed-precision", "bf16", "--log-every", "1", "--report-to", "none"]) == 0  # fmt: skip
    losses = [m["loss"] for m in metrics(run)]
    assert len(losses) == 2 and all(0 < loss < 10 for loss in losses)
    assert torch.bfloat16 in seen  # autocast really ran the attention in bfloat16
    saved = load_file(run / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(t.dtype == torch.float32 for t in saved.values())
