"""`python -m fashionflow generate`: one photo, a folder of photos, and the errors people make."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fashionflow.cli import main
from fashionflow.video import probe_video

FAST = ["--model", "tiny-random", "--frames", "4", "--steps", "2", "--seed", "5"]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.png"):
        Image.fromarray(rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not a photo, not picked up")
    return folder


def test_generate_one_video(photos, tmp_path, capsys):
    out = tmp_path / "video.mp4"
    assert main(["generate", str(photos / "a.jpg"), "-o", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "untrained" in printed and "Seed: 5" in printed
    info = probe_video(out)
    assert (info.codec, info.pixel_format, info.frames, info.width) == ("h264", "yuv420p", 4, 128)


def test_batch_skips_photos_already_done_and_reports_bad_ones(photos, tmp_path, capsys):
    out = tmp_path / "videos"
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert main(["generate", str(photos), "-o", str(out), "--format", "gif", *FAST]) == 1  # one photo was bad
    assert sorted(p.name for p in out.iterdir()) == ["a.gif", "b.gif", "manifest.jsonl"]
    captured = capsys.readouterr()
    assert "failed: broken.jpg: This file is not a picture" in captured.err
    assert "skipped: notes.txt: not a photo file" in captured.out

    (photos / "broken.jpg").unlink()
    before = (out / "a.gif").stat().st_mtime_ns
    assert main(["generate", str(photos), "-o", str(out), "--format", "gif", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "skipped: a.jpg: its video" in printed and "already exists" in printed
    assert "Done: 2 of 2 photo(s) have their video" in printed
    assert (out / "a.gif").stat().st_mtime_ns == before


def test_clips_chain_into_one_longer_video(photos, tmp_path, capsys):
    # the issue's own command: 3 clips of 8 frames, the repeated frame at each join dropped
    out = tmp_path / "long.mp4"
    command = ["generate", str(photos / "a.jpg"), "-o", str(out), "--model", "tiny-random", "--steps", "2"]
    assert main([*command, "--frames", "8", "--clips", "3"]) == 0
    info = probe_video(out)
    assert (info.codec, info.pixel_format, info.frames) == ("h264", "yuv420p", 22)


def test_a_folder_of_long_videos_records_its_clips(photos, tmp_path, capsys):
    out = tmp_path / "videos"
    assert main(["generate", str(photos), "-o", str(out), *FAST, "--clips", "2"]) == 0
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {r["photo"]: r["settings"]["clips"] for r in records} == {"a.jpg": 2, "b.png": 2}
    assert [probe_video(out / r["video"]).frames for r in records] == [7, 7]  # 2 x (4 - 1) + 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["{photo}", "-o", "v.mp4", "--clips", "0"], "argument --clips: must be a positive whole number"),
        (["missing.jpg", "-o", "v.mp4"], "No photo, folder or list"),
        (["{photo}", "-o", "v.webm"], ".mp4 or .gif"),
        (["{photo}", "-o", "v.mp4", "--frames", "7"], "argument --frames: must be an even number"),
        (["{photo}", "-o", "v.mp4", "--steps", "0"], "argument --steps: must be a whole number from 1 to 1000"),
        (["{folder}", "-o", "v.mp4"], "give an output folder"),
    ],
)
def test_mistakes_end_in_one_clear_line(photos, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    args = [a.format(photo=photos / "a.jpg", folder=photos) for a in args]
    assert main(["generate", *args, "--model", "tiny-random"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.glob("v.*"))


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "fashionflow", "generate", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--sampler" in done.stdout and "tiny-random" in done.stdout
