"""Many photos: a line per photo, no collisions, no stop on failure, the manifest, kill and restart,
and the catalogue over two processes (torchrun, gloo on the CPU)."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fashionflow.batch_cli as batch_cli
from fashionflow import defaults
from fashionflow.batch import MANIFEST, derive_seed, find_photos, plan_jobs
from fashionflow.cli import main
from fashionflow.image import load_image
from fashionflow.video import export_video, probe_video

ROOT = Path(__file__).resolve().parents[1]


def save_photo(path: Path, seed: int = 0, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (200, 160, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def manifest(folder: Path) -> dict[str, dict]:
    records = [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines()]
    by_photo = {r["photo"]: r for r in records}
    assert len(by_photo) == len(records), "one record per photo"
    return by_photo


@pytest.fixture
def fake_model(monkeypatch):
    """The CLI with a stand-in for the model: each video is 2 frames coloured by the seed, written
    by the real writer. `made` lists the photos it was asked for; `faults` maps a photo name to an
    exception to raise."""

    class Fake:
        made: list[str] = []
        faults: dict[str, BaseException] = {}
        loads = 0

    def generator(args, bars, device=None):
        Fake.loads += 1

        def generate(job):
            Fake.made.append(job.name)
            if job.name in Fake.faults:
                raise Fake.faults[job.name]
            load_image(job.photo)
            shade = job.seed % 256
            export_video([np.full((32, 32, 3), shade, np.uint8)] * 2, job.video)

        return generate

    monkeypatch.setattr(batch_cli, "_generator", generator)
    return Fake


def test_the_help_defaults_agree_with_the_library():
    from fashionflow.loading import DTYPES
    from fashionflow.models import ATTENTION_BACKENDS
    from fashionflow.pipeline import DEFAULT_DECODE_CHUNK_SIZE, DEFAULT_NUM_FRAMES
    from fashionflow.schedulers import DEFAULT_SAMPLER, NUM_TRAIN_TIMESTEPS, PREDICTION_TYPES, SAMPLERS

    assert defaults.DEFAULT_NUM_FRAMES == DEFAULT_NUM_FRAMES
    assert defaults.DEFAULT_DECODE_CHUNK_SIZE == DEFAULT_DECODE_CHUNK_SIZE
    assert defaults.SAMPLER_NAMES == tuple(SAMPLERS) and defaults.DEFAULT_SAMPLER == DEFAULT_SAMPLER
    assert defaults.NUM_TRAIN_TIMESTEPS == NUM_TRAIN_TIMESTEPS and defaults.PREDICTION_TYPES == PREDICTION_TYPES
    assert defaults.DTYPE_NAMES == tuple(DTYPES) and defaults.ATTENTION_BACKENDS == ATTENTION_BACKENDS


def test_names_never_collide_and_seeds_come_from_names(tmp_path):
    photos = [(tmp_path / n, n) for n in ("photo.bmp", "photo.webp", "Look.JPG", "a/x.png", "b/x.png", "solo.png")]
    jobs = {job.name: job for job in plan_jobs(photos, tmp_path / "out", "mp4", base_seed=7)}
    names = {name: job.video.name for name, job in jobs.items()}
    assert names["photo.bmp"] == "photo.bmp.mp4" and names["photo.webp"] == "photo.webp.mp4"
    assert names["Look.JPG"] == "Look.mp4" and names["solo.png"] == "solo.mp4"
    assert names["a/x.png"] != names["b/x.png"] and names["a/x.png"].startswith("x.png-")
    assert len(set(names.values())) == len(names)
    assert jobs["solo.png"].seed == derive_seed(7, "solo.png") != derive_seed(8, "solo.png")
    assert plan_jobs(photos, tmp_path / "out", "mp4", 7) == plan_jobs(photos[::-1], tmp_path / "out", "mp4", 7)


def test_every_photo_gets_a_line_and_no_failure_stops_the_batch(tmp_path, fake_model, capsys):
    photos = tmp_path / "photos"
    for i, name in enumerate(("a.jpg", "b.png", "c.png", "d.png", "photo.bmp", "photo.webp")):
        save_photo(photos / name, i, fmt={"bmp": "BMP", "webp": "WEBP"}.get(name.rsplit(".", 1)[1]))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (photos / "notes.txt").write_text("a note")
    (photos / ".DS_Store").write_bytes(b"\0")
    fake_model.faults = {
        "b.png": MemoryError(),
        "c.png": OSError(errno.ENOSPC, "No space left on device"),
        "d.png": RuntimeError("something nobody planned for"),
    }
    out = tmp_path / "videos"
    assert main(["generate", str(photos), "-o", str(out), "--model", "tiny-random"]) == 1
    captured = capsys.readouterr()
    assert "skipped: notes.txt: not a photo file (.txt" in captured.out and ".DS_Store" not in captured.out
    assert "written: a.jpg -> " in captured.out
    assert "written: photo.bmp -> " in captured.out and "written: photo.webp -> " in captured.out
    assert "failed: broken.jpg: This file is not a picture" in captured.err
    assert "failed: b.png: The computer ran out of memory" in captured.err
    assert "failed: c.png: The disk is full" in captured.err
    assert "failed: d.png: An unexpected error occurred (RuntimeError: something nobody planned for)" in captured.err
    assert "Done: 3 of 7 photo(s) have their video" in captured.out
    assert sorted(p.name for p in out.glob("*.mp4")) == ["a.mp4", "photo.bmp.mp4", "photo.webp.mp4"]
    records = manifest(out)
    assert {name: r["status"] for name, r in records.items()} == {
        "a.jpg": "written", "b.png": "failed", "broken.jpg": "failed", "c.png": "failed", "d.png": "failed",
        "photo.bmp": "written", "photo.webp": "written",
    }  # fmt: skip
    written = records["a.jpg"]
    assert written["video"] == "a.mp4" and written["seed"] == derive_seed(0, "a.jpg") and written["seconds"] >= 0
    assert written["settings"]["frames"] == defaults.DEFAULT_NUM_FRAMES
    assert records["c.png"]["reason"] == "disk-full" and "disk is full" in records["c.png"]["error"]
    assert records["broken.jpg"]["reason"] == "not-a-picture"


def test_argument_errors_name_the_flag_before_any_model_loads(tmp_path, fake_model, capsys):
    photo = save_photo(tmp_path / "p.png")
    for flag, value in (("--frames", "7"), ("--frames", "0"), ("--steps", "1001"), ("--fps", "0"), ("--seed", "-1"),
                        ("--decode-chunk-size", "0")):  # fmt: skip
        assert main(["generate", str(photo), "-o", str(tmp_path / "v.mp4"), flag, value]) == 2
        assert f"argument {flag}: must be" in capsys.readouterr().err
    assert fake_model.loads == 0 and not (tmp_path / "v.mp4").exists()


def test_a_killed_run_restarts_where_it_stopped_and_makes_each_video_once(tmp_path, fake_model, capsys):
    photos = tmp_path / "photos"
    for i in range(5):
        save_photo(photos / f"p{i}.png", i)
    out = tmp_path / "videos"
    fake_model.faults = {"p2.png": KeyboardInterrupt()}  # Ctrl-C (or a kill) in the middle of the third photo
    (out).mkdir()
    (out / ".p2.0123456789ab.partial.mp4").write_bytes(b"left by an earlier crash")
    assert main(["generate", str(photos), "-o", str(out), "--model", "tiny-random", "--seed", "3"]) == 130
    done_first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")}
    assert sorted(done_first) == ["p0.mp4", "p1.mp4"]

    fake_model.faults, fake_model.made = {}, []
    assert main(["generate", str(photos), "-o", str(out), "--model", "tiny-random", "--seed", "3"]) == 0
    assert fake_model.made == ["p2.png", "p3.png", "p4.png"]  # each photo made once over both runs
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("p[01].mp4")} == done_first
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"p{i}.mp4" for i in range(5)), MANIFEST])  # no partials
    records = manifest(out)
    assert sorted(records) == [f"p{i}.png" for i in range(5)]
    # the first run was stopped before its merge: its records are taken in by the second
    assert {r["seed"] for r in records.values()} == {derive_seed(3, f"p{i}.png") for i in range(5)}
    capsys.readouterr()


def test_a_list_file_names_photos_anywhere(tmp_path, fake_model, capsys):
    save_photo(tmp_path / "shop" / "a" / "x.png", 1)
    save_photo(tmp_path / "shop" / "b" / "x.png", 2)
    listing = tmp_path / "shop" / "catalogue.txt"
    listing.write_text("# spring collection\na/x.png\n\nb/x.png\n")
    photos, ignored = find_photos(listing)
    assert [name for _, name in photos] == ["a/x.png", "b/x.png"] and ignored == []
    assert main(["generate", str(listing), "-o", str(tmp_path / "out"), "--model", "tiny-random"]) == 0
    assert len(list((tmp_path / "out").glob("x.png-*.mp4"))) == 2
    capsys.readouterr()


def test_two_processes_share_a_folder_and_make_every_video_once(tmp_path):
    """torchrun starts two CPU processes (gloo); each takes its share of the photos, with tiny-random."""
    photos = tmp_path / "photos"
    names = [f"look {i}.png" for i in range(5)]  # a space in the names, for good measure
    for i, name in enumerate(names):
        save_photo(photos / name, i)
    out = tmp_path / "videos"
    command = [
        str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "--master_port", str(_free_port()),
        "-m", "fashionflow", "generate", str(photos), "-o", str(out),
        "--model", "tiny-random", "--frames", "2", "--steps", "1", "--seed", "11",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    written = [line for line in done.stdout.splitlines() if "written: " in line]
    assert sorted(line.split("written: ")[1].split(" -> ")[0] for line in written) == names  # each exactly once
    assert {line[:5] for line in written} == {"[1/2]", "[2/2]"}  # both processes worked
    assert "Done: 5 of 5 photo(s) have their video" in done.stdout
    records = manifest(out)
    assert sorted(records) == names and {r["rank"] for r in records.values()} == {0, 1}
    assert all(records[n]["seed"] == derive_seed(11, n) and records[n]["status"] == "written" for n in names)
    for name in names:
        assert probe_video(out / records[name]["video"]).frames == 2
    assert not (out / ".manifest-parts").exists()
    # (killed and started again: test_a_killed_run_restarts_where_it_stopped_and_makes_each_video_once)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
