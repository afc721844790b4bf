"""Training, prepared data, the app's outputs and evaluation under faults, each as an operator probed it:
kills at chosen moments (a real SIGKILL where a process's death matters), damaged and missing files,
full disks (a small tmpfs where this user may mount one, else the writers' own full-disk errors),
two processes on one run folder, rotated phone videos, pickles that hold code."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from fashionflow import service
from fashionflow.cli import main
from fashionflow.evaluation import EvaluationSettings, evaluate
from fashionflow.evaluation.videos import Video, VideoReadError
from fashionflow.training.checkpoints import list_checkpoints
from fashionflow.training.data import prepare_dataset, read_windows
from fashionflow.training.synthetic import write_synthetic_videos
from fashionflow.training.train import TrainConfig, train
from tests.evaluation_stand_ins import FrameMeansI3D, save_detector, write_frame_folder, write_lossless_video
from tests.training_fixtures import fresh_accelerate_state, one_thread  # noqa: F401 (autouse)

FRAMES = 8
ROOT = Path(__file__).resolve().parents[1]
# torch 2.13 deprecates TorchScript, but the published detectors (and the stand-ins) are TorchScript files
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    write_synthetic_videos(folder, 3, frames=12, height=160, width=128, seed=1)
    return folder


@pytest.fixture(scope="module")
def data(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "data"
    prepare_dataset(videos, out, model="tiny-random", frames=FRAMES, show_progress=False)
    return out


@pytest.fixture(scope="module")
def run4(data, tmp_path_factory):
    """A run of 4 steps with a checkpoint after each, and its history: tests copy it."""
    run = tmp_path_factory.mktemp("runs") / "run4"
    train(config(data, run, max_steps=4, checkpoint_every=1, checkpoints_limit=None), show_progress=False)
    return run


def config(data, run, **overrides) -> TrainConfig:
    settings = dict(
        data=str(data), output=str(run), model="tiny-random", batch_size=2, learning_rate=1e-3, seed=0,
        log_every=1, checkpoint_every=1000, report_to=None,
    )  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


def train_flags(data, run, *more: str) -> list[str]:
    """The command line of `config(data, run)`."""
    return ["train", str(data), "-o", str(run), "--model", "tiny-random", "--learning-rate", "1e-3",
            "--log-every", "1", "--report-to", "none", *more]  # fmt: skip


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def steps(run) -> list[int]:
    return [m["step"] for m in metrics(run)]


def one_sentence(err: str) -> None:
    """What a command printed on stderr is one error line, besides progress bars: no traceback, no advice."""
    pieces = [piece for piece in re.split(r"[\r\n]", err) if piece.strip()]
    errors = [piece for piece in pieces if "error: " in piece]
    others = [piece for piece in pieces if "%|" not in piece and "error: " not in piece]
    assert len(errors) == 1 and not others and "Traceback" not in err and "weights_only" not in err, err


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A file system of `size` mounted at `folder` (tmpfs), or None where this user cannot mount one."""
    folder.mkdir(parents=True)
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]).returncode == 0
    )
    try:
        yield folder if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)])


def fill(folder: Path) -> None:
    """Write into `folder` until its disk is full."""
    with open(folder / "filler", "wb", buffering=0) as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 4096)


# 1, 5: a kill while a resume rewrites the history; two trainers on one run folder ---------------------------------


def test_a_second_trainer_is_refused_and_a_kill_while_the_history_is_rewritten_loses_nothing(
    data, run4, tmp_path, capsys
):
    run = copy_of(run4, tmp_path)
    history = metrics(run)
    ready = tmp_path / "ready"
    # a resume that stops at the exact moment RUN/metrics.jsonl is rewritten (its new version about to be renamed)
    script = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from fashionflow.training.train import TrainConfig, train

        rename = os.replace
        def replace(source, target):
            if Path(target).name == "metrics.jsonl":
                Path({str(ready)!r}).write_text("now")
                time.sleep(600)
            return rename(source, target)
        os.replace = replace
        train(TrainConfig(data={str(data)!r}, output={str(run)!r}, model="tiny-random", learning_rate=1e-3,
                          log_every=1, max_steps=6, resume="latest", report_to=None), show_progress=False)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    log = tmp_path / "first.log"
    with open(log, "w") as output:
        first = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.1)

        # a second trainer on the live run refuses at once, naming the first
        assert main(train_flags(data, run, "--max-steps", "6", "--resume", "latest")) == 2
        err = capsys.readouterr().err
        assert f"is in use by another training run (process {first.pid} on {socket.gethostname()}" in err
        one_sentence(err)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert metrics(run) == history  # the kill mid-rewrite left the whole history

    # the kernel released the dead process's lock: the next resume runs, and the history holds each step once
    train(config(data, run, max_steps=6, resume="latest"), show_progress=False)
    assert steps(run) == [1, 2, 3, 4, 5, 6] and metrics(run)[:4] == history


def test_an_emptied_history_comes_back_and_every_file_is_synced_before_its_rename(data, run4, tmp_path, monkeypatch):
    run = copy_of(run4, tmp_path)
    history = metrics(run)
    (run / "metrics.jsonl").write_bytes(b"")  # what the probe's kill left
    synced, renamed = [], []
    fsync, rename = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: renamed.append((str(a), str(b), len(synced))) or rename(a, b))
    train(config(data, run, max_steps=6, checkpoint_every=1, resume="latest"), show_progress=False)
    monkeypatch.undo()

    assert steps(run) == [1, 2, 3, 4, 5, 6] and metrics(run)[:4] == history
    # every file of the run is replaced whole: written beside, on the disk, renamed, and the rename on the disk
    targets = {"config.json", "metrics.jsonl", "checkpoint-5", "checkpoint-6", "pipeline"}
    into_run = [(a, b, n) for a, b, n in renamed if Path(b).parent == run and Path(b).name in targets]
    assert {Path(b).name for _, b, _ in into_run} == targets
    for source, target, before in into_run:
        written = [source] if Path(target).is_file() else [f"{source}/{f.name}" for f in Path(target).iterdir()]
        assert set(written) <= set(synced[:before]), (target, written)
        assert str(run) in synced[before:]


# 3, 4: one history per run folder; settings changed on resume ----------------------------------------------------


def test_resuming_from_an_older_checkpoint_starts_a_branch_that_latest_follows(data, run4, tmp_path, capsys):
    run = copy_of(run4, tmp_path)
    train(config(data, run, max_steps=3, checkpoint_every=1, resume=str(run / "checkpoint-2")), show_progress=False)
    out = capsys.readouterr().out
    assert "starts a new branch of this run: the later checkpoint-3, checkpoint-4 moved to" in out
    branch = metrics(run)
    assert [m["step"] for m in branch] == [1, 2, 3]

    train(config(data, run, max_steps=5, checkpoint_every=1, resume="latest"), show_progress=False)
    assert f"Resuming from {run / 'checkpoint-3'} (step 3" in capsys.readouterr().out
    assert steps(run) == [1, 2, 3, 4, 5] and metrics(run)[:3] == branch
    left = sorted(p.name for p in (run / "abandoned").glob("after-step-2-*/checkpoint-*"))
    assert left == ["checkpoint-3", "checkpoint-4"]
    assert [c.name for c in list_checkpoints(run)][-3:] == ["checkpoint-3", "checkpoint-4", "checkpoint-5"]


def test_a_resume_applies_what_it_may_change_and_refuses_the_rest_by_name(data, run4, tmp_path, capsys):
    run = copy_of(run4, tmp_path)
    train(config(data, run, max_steps=5, checkpoint_every=1, learning_rate=1e-5, resume="latest"), show_progress=False)
    assert "Changed on resume: learning_rate 0.001 -> 1e-05" in capsys.readouterr().out
    assert metrics(run)[-1]["step"] == 5 and metrics(run)[-1]["lr"] == pytest.approx(1e-5)
    optimizer = torch.load(run / "checkpoint-5" / "optimizer.bin", weights_only=True)
    assert optimizer["param_groups"][0]["lr"] == pytest.approx(1e-5)  # what the step used, not only what is logged
    assert json.loads((run / "config.json").read_text())["learning_rate"] == 1e-5

    code = main(train_flags(data, run, "--max-steps", "6", "--resume", "latest", "--batch-size", "1", "--seed", "3"))
    err = capsys.readouterr().err
    assert code == 2
    assert "checkpoint-5 was trained with --batch-size 2 (not 1) and --seed 0 (not 3): a resumed run keeps" in err
    assert "A resume may change --learning-rate, --weight-decay" in err
    one_sentence(err)
    assert not (run / "checkpoint-6").exists() and steps(run) == [1, 2, 3, 4, 5]


# 6: damaged prepared data --------------------------------------------------------------------------------------


def test_a_truncated_shard_is_named_before_any_step_and_prepare_remakes_it(videos, data, tmp_path, capsys):
    data = copy_of(data, tmp_path)
    shard = data / json.loads((data / "index.json").read_text())["clips"][0]["shard"]
    whole = shard.read_bytes()
    shard.write_bytes(whole[: len(whole) // 2])

    run = tmp_path / "run"
    assert main(train_flags(data, run, "--max-steps", "2")) == 2
    err = capsys.readouterr().err
    assert f"{shard} (from the video " in err and "cut short" in err and "prepare" in err
    one_sentence(err)
    assert not run.exists()  # before any step, before RUN was touched

    prepare = ["prepare", str(videos), "-o", str(data), "--model", "tiny-random", "--frames", str(FRAMES)]
    assert main(prepare) == 0
    assert f"remade shards/{shard.name}: it was damaged (it holds" in capsys.readouterr().out
    assert shard.read_bytes() == whole  # the same clip, encoded again from its video

    shard.unlink()  # a deleted shard, the same
    assert main(prepare) == 0
    assert f"remade shards/{shard.name}: it was damaged (it is missing)" in capsys.readouterr().out
    assert shard.read_bytes() == whole


def test_shards_of_other_shapes_or_values_are_named_and_a_shard_without_its_video_fails_prepare(
    videos, data, tmp_path, capsys
):
    data = copy_of(data, tmp_path)
    index = json.loads((data / "index.json").read_text())
    first, second = (data / clip["shard"] for clip in index["clips"][:2])
    tensors = load_file(first)
    save_file({**tensors, "clip0.latents": tensors["clip0.latents"][:, :6].contiguous()}, first)  # 6 frames, not 8
    assert main(train_flags(data, tmp_path / "run", "--max-steps", "2")) == 2
    err = capsys.readouterr().err
    assert f"{first} (from the video {index['clips'][0]['source']}): its clip0.latents is F32 [4, 6, 16, 16]" in err
    one_sentence(err)

    # finite garbage of the right shape: found when read, naming the video (it trained silently before)
    save_file({**tensors, "clip0.latents": torch.full_like(tensors["clip0.latents"], 1e4)}, first)
    assert main(train_flags(data, tmp_path / "run", "--max-steps", "2")) == 2
    err = capsys.readouterr().err
    assert f"{first} (clip clip0 of the video {index['clips'][0]['source']}) is damaged" in err
    one_sentence(err)

    # prepare tells both from what it wrote (their checksums); a shard whose video is gone is named, and fails
    moved = copy_of(videos, tmp_path)
    (moved / index["clips"][1]["source"]).unlink()
    second.write_bytes(second.read_bytes()[:100])
    prepare = ["prepare", str(moved), "-o", str(data), "--model", "tiny-random", "--frames", str(FRAMES)]
    assert main(prepare) == 2
    captured = capsys.readouterr()
    assert f"remade shards/{first.name}: it was damaged (its bytes changed" in captured.out
    assert f"shards/{second.name} (from {index['clips'][1]['source']}): it holds 100 bytes, fewer" in captured.err
    one_sentence(captured.err)
    assert load_file(first)["clip0.latents"].abs().max() < 100


def test_a_video_whose_latents_come_out_nan_is_skipped_and_named(videos, tmp_path, capsys, monkeypatch):
    from fashionflow.training import data as data_module

    encode, encoded = data_module.encode_video, []

    def nan_for_the_second_video(*args, **kwargs):
        encoded.append(1)
        latents = encode(*args, **kwargs)
        return latents * float("nan") if len(encoded) == 2 else latents

    monkeypatch.setattr(data_module, "encode_video", nan_for_the_second_video)
    assert main(["prepare", str(videos), "-o", str(tmp_path / "data"), "--model", "tiny-random", "--frames", "8"]) == 0
    out = capsys.readouterr().out
    assert "Prepared 2 clip(s) from 2 of 3 video(s)" in out
    assert "skipped clip-0001.mp4: the VAE gave latents with NaN or infinite values" in out


# 7: rotated phone videos --------------------------------------------------------------------------------------


@pytest.mark.parametrize("turn", [["90"], ["180"], ["270"], ["90", "-display_hflip"], ["0", "-display_vflip"]])
def test_rotated_phone_videos_are_read_upright_as_players_show_them(tmp_path, turn):
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (1, 48, 32, 3), dtype=np.uint8), 4, axis=0)  # portrait, lossless
    base = write_lossless_video(tmp_path / "base.mp4", frames)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-display_rotation", *turn, "-i", str(base), "-c", "copy", str(rotated)],
                   check=True)  # fmt: skip
    # what a player shows: ffmpeg's own decoding, which applies the display matrix
    shown = subprocess.run([ffmpeg, "-v", "error", "-i", str(rotated), "-frames:v", "1", "-f", "rawvideo",
                            "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout  # fmt: skip
    _, windows, _ = read_windows(rotated, 4, 1, np.random.default_rng(0))  # what prepare stores
    prepared = np.asarray(windows[0][0])
    assert prepared.shape != frames[0].shape or not np.array_equal(prepared, frames[0])  # it was turned
    assert np.array_equal(prepared, np.frombuffer(shown, np.uint8).reshape(prepared.shape))
    if turn == ["90"]:  # 90 degrees counter-clockwise, as `-display_rotation` means it
        assert np.array_equal(prepared, np.rot90(frames[0]))
    assert np.array_equal(next(Video("rotated", rotated).iter_frames()), prepared)  # evaluate reads it the same


# 8, 9: checkpoints under kills, full disks, damage and pickles ---------------------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL at a chosen moment inside a process: nothing after it runs."""


def test_a_kill_while_pruning_leaves_nothing_that_is_never_pruned(data, run4, tmp_path, monkeypatch):
    run = copy_of(run4, tmp_path)
    # what the probe found after a kill while an earlier version pruned: checkpoint-1 with two of its files
    for path in (run / "checkpoint-1").iterdir():
        if path.name not in ("generators-0.safetensors", "scheduler.bin"):
            path.unlink()
    # and a kill while this version prunes checkpoint-2: after its train_state.json (the first file) is deleted
    remove = shutil.rmtree

    def killed_while_removing(path, *args, **kwargs):
        if "checkpoint-2" in str(path):
            (Path(path) / "train_state.json").unlink()
            raise Killed
        return remove(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_while_removing)
    with pytest.raises(Killed):
        train(config(data, run, max_steps=5, checkpoint_every=1, checkpoints_limit=2, resume="latest"),
              show_progress=False)  # fmt: skip
    monkeypatch.undo()
    assert not (run / "checkpoint-2").exists()  # only a partial name is left, which the next start removes

    train(config(data, run, max_steps=6, checkpoint_every=1, checkpoints_limit=2, resume="latest"), show_progress=False)
    assert sorted(p.name for p in run.iterdir() if "checkpoint" in p.name) == ["checkpoint-5", "checkpoint-6"]
    assert steps(run) == [1, 2, 3, 4, 5, 6]


def test_a_full_disk_while_saving_a_checkpoint_is_a_sentence_and_leaves_no_partial(data, tmp_path, capsys, monkeypatch):
    with small_disk(tmp_path / "disk", "16m") as disk:  # one checkpoint of the tiny model (11 MB) fits, not two
        if disk is None:  # no tmpfs here: the error safetensors gives on a full disk, at the second checkpoint
            from safetensors import SafetensorError

            from fashionflow.training import train as train_module

            saves = []
            real_save = train_module.save_generators

            def full(generators, path):
                saves.append(path)
                if len(saves) == 2:
                    path.write_bytes(b"\0" * 1000)
                    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
                real_save(generators, path)

            monkeypatch.setattr(train_module, "save_generators", full)
        run = (disk or tmp_path) / "run"
        code = main(train_flags(data, run, "--max-steps", "4", "--checkpoint-every", "1", "--checkpoints-limit", "4"))
        err = capsys.readouterr().err
        assert code == 1
        assert f"error: Could not save checkpoint-2: the disk holding {run} is full. The last whole checkpoint is " \
               "checkpoint-1; free some space and continue with --resume latest." in err  # fmt: skip
        one_sentence(err)
        assert [p.name for p in run.iterdir() if "checkpoint" in p.name] == ["checkpoint-1"]  # no partial left
        from fashionflow.training.checkpoints import checkpoint_problem

        assert checkpoint_problem(run / "checkpoint-1") is None


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_whole_one(data, run4, tmp_path, capsys):
    run = copy_of(run4, tmp_path)
    weights = run / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(train_flags(data, run, "--max-steps", "5", "--resume", "latest", "--checkpoint-every", "1")) == 0
    captured = capsys.readouterr()
    assert "Warning: checkpoint-4 is damaged (model.safetensors is damaged: it holds 1,000 bytes" in captured.err
    assert "resuming from checkpoint-3, the newest whole checkpoint" in captured.err
    assert f"Resuming from {run / 'checkpoint-3'} (step 3" in captured.out and "Traceback" not in captured.err
    assert steps(run) == [1, 2, 3, 4, 5] and list((run / "abandoned").glob("after-step-3-*/checkpoint-4"))


def test_pickles_with_code_are_refused_in_words_and_never_run(data, run4, tmp_path, capsys):
    from fashionflow.tiny import build_tiny_pipeline

    marker = tmp_path / "code-ran"

    class Code:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    # a --model folder whose CLIP weights are a pickle with code
    model = tmp_path / "model"
    pipeline = build_tiny_pipeline()
    pipeline.save_pretrained(model)
    (model / "image_encoder" / "model.safetensors").unlink()
    torch.save({**pipeline.image_encoder.state_dict(), "x": Code()}, model / "image_encoder" / "pytorch_model.bin")
    assert main(["train", str(data), "-o", str(tmp_path / "r"), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "image_encoder/pytorch_model.bin holds Python objects besides tensors" in err
    one_sentence(err)

    # a resume checkpoint whose optimizer state is one
    run = copy_of(run4, tmp_path)
    torch.save({"state": Code()}, run / "checkpoint-4" / "optimizer.bin")
    assert main(train_flags(data, run, "--max-steps", "5", "--resume", str(run / "checkpoint-4"))) == 2
    err = capsys.readouterr().err
    assert f"Cannot resume from {run / 'checkpoint-4'}: a file in it holds Python objects besides tensors" in err
    one_sentence(err)

    # a random state that cannot be loaded safely is skipped, and said
    torch.save({"random_state": Code()}, run / "checkpoint-3" / "random_states_0.pkl")
    assert main(train_flags(data, run, "--max-steps", "4", "--resume", str(run / "checkpoint-3"))) == 0
    err = capsys.readouterr().err
    assert "random_states_0.pkl holds Python objects besides tensors" in err and "start afresh" in err
    assert "weights_only" not in err and not marker.exists()


def test_prepare_on_a_full_disk_is_a_sentence(videos, tmp_path, capsys, monkeypatch):
    with small_disk(tmp_path / "disk", "64k") as disk:  # room for the settings and records, not for a shard
        if disk is None:
            import safetensors.torch
            from safetensors import SafetensorError

            def full(tensors, path, metadata=None):
                Path(path).write_bytes(b"\0" * 100)
                raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

            monkeypatch.setattr(safetensors.torch, "save_file", full)
        out = (disk or tmp_path) / "data"
        assert main(["prepare", str(videos), "-o", str(out), "--model", "tiny-random", "--frames", str(FRAMES)]) == 1
        err = capsys.readouterr().err
        assert f"error: The disk holding {out} is full: clip-0000.mp4 was not prepared." in err
        one_sentence(err)
        assert not list(out.rglob("*.partial*")) and not list((out / "shards").iterdir())


# 9, 10: evaluate ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def i3d(tmp_path_factory):
    return save_detector(FrameMeansI3D(), tmp_path_factory.mktemp("detectors") / "i3d.pt")


def frame_folders(root: Path, seed: int, count: int = 3, length: int = 20) -> Path:
    rng = np.random.default_rng(seed)
    for index in range(count):
        write_frame_folder(root / f"video{index}", rng.integers(0, 255, (length, 12, 16, 3), dtype=np.uint8))
    return root


def test_evaluate_rebuilds_a_damaged_statistics_cache_and_names_a_frame_of_another_size(tmp_path, i3d, capsys):
    real, generated = frame_folders(tmp_path / "real", 1), frame_folders(tmp_path / "generated", 2)
    settings = EvaluationSettings(cache_dir=str(tmp_path / "cache"))
    first = evaluate(real, generated, ["fvd"], i3d=i3d, settings=settings, show_progress=False)
    cache = Path(first["clips"]["fvd"]["real"]["statistics_cache"])
    cache.write_bytes(b"PK\x03\x04 not what was written")
    again = evaluate(real, generated, ["fvd"], i3d=i3d, settings=settings, show_progress=False)
    assert again["fvd"] == pytest.approx(first["fvd"])
    assert any(f"The cached real statistics {cache} were damaged" in w for w in again["warnings"])
    assert evaluate(real, generated, ["fvd"], i3d=i3d, settings=settings, show_progress=False)["fvd"] == again["fvd"]

    late = generated / "video1" / "0017.png"  # frame 17 of 20 is larger than the others
    from PIL import Image

    Image.new("RGB", (20, 14)).save(late)
    with pytest.raises(VideoReadError, match=r"video1: frame 17 is 20 x 14 pixels, but the video's first frames are"):
        evaluate(real, generated, ["ssim", "psnr"], settings=settings, show_progress=False)


def test_evaluate_checks_where_it_writes_first_and_a_full_cache_is_a_warning(tmp_path, i3d, capsys, monkeypatch):
    from fashionflow.evaluation import evaluator

    real, generated = frame_folders(tmp_path / "real", 1), frame_folders(tmp_path / "generated", 2)
    read = []
    features = evaluator.extract_features
    monkeypatch.setattr(evaluator, "extract_features", lambda *a, **k: read.append(1) or features(*a, **k))
    args = ["evaluate", "--real", str(real), "--generated", str(generated), "--i3d", str(i3d), "--workers", "0"]

    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("x")
    with small_disk(tmp_path / "read-only", "1m") as disk:
        targets = [in_the_way / "metrics.json"]
        if disk is not None:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            targets.append(disk / "metrics.json")
        elif os.geteuid() != 0:
            (tmp_path / "read-only").chmod(0o500)
            targets.append(tmp_path / "read-only" / "metrics.json")
        for target in targets:
            assert main([*args, "--json", str(target)]) == 2
            err = capsys.readouterr().err
            assert f"Cannot write the report to {target}" in err and not read
            one_sentence(err)

    with small_disk(tmp_path / "cache", "64k") as disk:
        if disk is not None:
            fill(disk)
        else:
            monkeypatch.setattr(
                evaluator.FeatureStatistics, "save", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
            )
        out = tmp_path / "metrics.json"
        assert main([*args, "--json", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
        printed = capsys.readouterr().out
        assert "fvd2048_16f" in printed and "could not be cached" in printed
        report = json.loads(out.read_text())
        assert isinstance(report["fvd"], float) and any("could not be cached" in w for w in report["warnings"])


# 2: the app's output sweeper ----------------------------------------------------------------------------------


def test_the_sweeper_removes_only_folders_the_app_made(tmp_path):
    # the probe: someone's job-applications/ in the output folder, two hours old, and the app keeping videos 30 s
    theirs = tmp_path / "job-applications"
    theirs.mkdir()
    (theirs / "cv.txt").write_text("cv")
    two_hours_ago = time.time() - 7200
    for path in (theirs / "cv.txt", theirs):
        os.utime(path, (two_hours_ago, two_hours_ago))
    store = service.OutputStore(tmp_path, max_age_seconds=30)
    ours = store.new_job()
    (ours / "video.mp4").write_bytes(b"x")
    store.finished(ours)
    os.utime(ours, (two_hours_ago, two_hours_ago))
    store.start_sweeper(interval_seconds=0.05)
    try:
        deadline = time.monotonic() + 10
        while ours.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # a few more sweeps
    finally:
        store.stop_sweeper()
    assert not ours.exists()
    assert (theirs / "cv.txt").read_text() == "cv"
