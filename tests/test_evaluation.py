"""`fashionflow evaluate`: FVD and video IS as StyleGAN-V defines them, clip selection, video
reading, detector files, paired frame metrics and errors; stand-in detectors, no downloads."""

import json
import random
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import scipy.linalg
import torch

from fashionflow.cli import main
from fashionflow.evaluation import (
    DetectorUnavailableError,
    EvaluationSettings,
    FeatureStatistics,
    MetricUnavailableError,
    NoVideosError,
    evaluate,
    find_videos,
    inception_score,
)
from fashionflow.evaluation.clips import real_clip_start, select_clips
from fashionflow.evaluation.detectors import I3D, fetch_detector
from tests.evaluation_stand_ins import (
    FrameMeansI3D,
    UniformC3D,
    frame_means_features,
    save_detector,
    write_frame_folder,
    write_lossless_video,
)
from tests.stand_ins import stand_in_server

QUIET = dict(show_progress=False)
# torch 2.13 deprecates TorchScript, but the published detectors are TorchScript files
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")


@pytest.fixture(scope="module")
def i3d(tmp_path_factory):
    return save_detector(FrameMeansI3D(), tmp_path_factory.mktemp("detectors") / "i3d.pt")


@pytest.fixture(scope="module")
def c3d(tmp_path_factory):
    return save_detector(UniformC3D(), tmp_path_factory.mktemp("detectors") / "c3d.pt")


def random_videos(seed: int, count: int, lengths=(16, 30), size=(12, 16)) -> dict[str, np.ndarray]:
    """Videos with their own colour cast, so that clip features differ between videos."""
    rng = np.random.default_rng(seed)
    videos = {}
    for index in range(count):
        length = int(rng.integers(lengths[0], lengths[1] + 1))
        cast = rng.integers(0, 120, 3)
        frames = rng.integers(0, 136, (length, *size, 3)) + cast
        videos[f"video{index:02d}"] = frames.astype(np.uint8)
    return videos


def write_folder(root, videos: dict[str, np.ndarray], suffix: str | None = None):
    root.mkdir(parents=True)
    for name, frames in videos.items():
        if suffix is None:
            write_frame_folder(root / name, frames)
        else:
            write_lossless_video(root / f"{name}{suffix}", frames)
    return root


def direct_fvd(real: dict[str, np.ndarray], generated: dict[str, np.ndarray], seed: int = 0) -> float:
    """The definition, written out with numpy and scipy."""
    real_clips = []
    for name in sorted(real):
        start = random.Random(f"{seed}:{name}").randint(0, len(real[name]) - 16)
        real_clips.append(real[name][start : start + 16])
    generated_clips = [generated[name][:16] for name in sorted(generated)]
    f_r = np.stack([frame_means_features(c) for c in real_clips])
    f_g = np.stack([frame_means_features(c) for c in generated_clips])
    mu_r, mu_g = f_r.mean(0), f_g.mean(0)
    s_r, s_g = np.cov(f_r, rowvar=False, bias=True), np.cov(f_g, rowvar=False, bias=True)
    return float(np.real(np.sum((mu_g - mu_r) ** 2) + np.trace(s_g + s_r - 2 * scipy.linalg.sqrtm(s_g @ s_r))))


# the definitions --------------------------------------------------------------------------------------------------


def test_fvd_equals_the_definition_computed_directly(tmp_path, i3d):
    real, generated = random_videos(0, 14), random_videos(1, 13)
    report = evaluate(
        write_folder(tmp_path / "real", real), write_folder(tmp_path / "gen", generated), ["fvd"], i3d=i3d, **QUIET
    )
    assert report["fvd"] == pytest.approx(direct_fvd(real, generated), rel=1e-5)
    assert report["fvd"] > 0.01
    assert report["protocols"] == {"fvd": "fvd2048_16f"}
    assert report["clips"]["fvd"]["real"]["clips"] == 14 and report["clips"]["fvd"]["generated"]["clips"] == 13
    assert any("fewer than the 9 I3D features" in w for w in report["warnings"]) is False  # 13 clips > 9 features


def test_identical_sets_give_about_zero_and_few_clips_warn(tmp_path, i3d):
    videos = random_videos(2, 6, lengths=(16, 16))  # 16 frames: real and generated clips are the same frames
    folder = write_folder(tmp_path / "videos", videos)
    report = evaluate(folder, folder, ["fvd"], i3d=i3d, **QUIET)
    assert abs(report["fvd"]) < 1e-6
    assert any("fewer than the 9 I3D features" in w for w in report["warnings"])


def test_feature_statistics_are_float64_with_the_biased_covariance():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 7)).astype(np.float32) * 100 + 1000
    stats = FeatureStatistics()
    for batch in np.array_split(features, 6):
        stats.append(torch.from_numpy(batch))
    mean, covariance = stats.mean_and_covariance()
    assert mean.dtype == covariance.dtype == np.float64
    np.testing.assert_allclose(mean, features.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(covariance, np.cov(features.astype(np.float64), rowvar=False, bias=True), rtol=1e-8)


def test_uniform_prediction_gives_video_is_1(tmp_path, i3d, c3d):
    folder = write_folder(tmp_path / "gen", random_videos(3, 10, lengths=(16, 20), size=(8, 8)))
    report = evaluate(folder, folder, ["fvd", "isv"], i3d=i3d, c3d=c3d, **QUIET)
    assert report["isv"] == pytest.approx(1.0, abs=1e-6) and report["isv_std"] == pytest.approx(0.0, abs=1e-6)
    assert report["protocols"]["isv"] == "isv2048_ucf"
    assert set(report["detectors"]) == {"i3d", "c3d"} and all(
        len(d["sha256"]) == 64 for d in report["detectors"].values()
    )


def test_inception_score_follows_stylegan_v_splits_and_shuffle():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 5)) * 3
    probabilities = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    shuffled = probabilities.copy()
    np.random.RandomState(42).shuffle(shuffled)
    expected = []
    for i in range(10):
        part = shuffled[i * 4 : (i + 1) * 4]
        expected.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(part.mean(0, keepdims=True))), 1))))
    mean, std = inception_score(probabilities)
    assert (mean, std) == pytest.approx((np.mean(expected), np.std(expected)), rel=1e-6)
    with pytest.raises(ValueError, match="at least 10 clips"):
        inception_score(probabilities[:9])


# clips and videos -------------------------------------------------------------------------------------------------


def test_clip_selection_first_frames_of_generated_seeded_start_of_real_and_counts(tmp_path):
    videos = {"a": 40, "b": 10, "c": 16, "d": 25}
    root = write_folder(tmp_path / "v", {n: np.zeros((k, 4, 4, 3), np.uint8) for n, k in videos.items()})
    (root / "broken.mp4").write_bytes(b"not a video")
    (root / "notes.txt").write_text("ignored")
    folder = find_videos(root)
    assert [v.name for v in folder.videos] == ["a", "b", "broken", "c", "d"] and folder.ignored == ["notes.txt"]

    generated = select_clips(folder.videos, 16, "generated")
    assert [(c.video.name, c.start) for c in generated.clips] == [("a", 0), ("c", 0), ("d", 0)]
    assert (generated.too_short, generated.unreadable) == (["b"], ["broken"])

    real = select_clips(folder.videos, 16, "real", seed=7)
    starts = {c.video.name: c.start for c in real.clips}
    assert starts["c"] == 0 and 0 <= starts["a"] <= 24 and 0 <= starts["d"] <= 9
    assert starts == {c.video.name: c.start for c in select_clips(folder.videos[::-1], 16, "real", seed=7).clips}
    spread = {real_clip_start("a", 40, 16, seed) for seed in range(50)}
    assert len(spread) > 10 and min(spread) >= 0 and max(spread) <= 24

    limited = select_clips(folder.videos, 16, "real", max_clips=2)
    assert len(limited.clips) == 2 and limited.beyond_limit == 1
    assert limited.counts() == {"videos": 5, "clips": 2, "too_short": 1, "unreadable": 1, "beyond_limit": 1}


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_frame_folders_and_lossless_video_files_give_the_same_numbers(tmp_path, i3d, suffix):
    real, generated = random_videos(4, 12, lengths=(16, 22)), random_videos(4, 12, lengths=(16, 22))
    generated = {name: np.clip(frames.astype(int) + 9, 0, 255).astype(np.uint8) for name, frames in generated.items()}
    real_folder = write_folder(tmp_path / "real", real)
    as_frames = write_folder(tmp_path / "frames", generated)
    as_files = write_folder(tmp_path / "files", generated, suffix)
    for video in find_videos(as_files).videos:  # the files really are lossless
        assert video.num_frames() == len(generated[video.name])
        np.testing.assert_array_equal(video.read(0, video.num_frames()), generated[video.name])

    settings = EvaluationSettings(device="cpu")
    from_frames = evaluate(real_folder, as_frames, ["fvd", "ssim", "psnr"], i3d=i3d, settings=settings, **QUIET)
    from_files = evaluate(real_folder, as_files, ["fvd", "ssim", "psnr"], i3d=i3d, settings=settings, **QUIET)
    for key in ("fvd", "ssim", "psnr"):
        assert from_files[key] == from_frames[key]
    assert from_files["paired"] == from_frames["paired"] == {"videos": 12, "frames": sum(map(len, generated.values()))}


def test_paired_metrics_match_torchmetrics_on_the_frames(tmp_path, i3d):
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    real = random_videos(5, 2, lengths=(16, 16), size=(24, 24))
    generated = {n: np.clip(v.astype(int) - 20, 0, 255).astype(np.uint8) for n, v in real.items()}
    report = evaluate(
        write_folder(tmp_path / "real", real), write_folder(tmp_path / "gen", generated), ["ssim", "psnr"], **QUIET
    )
    g = torch.from_numpy(np.concatenate(list(generated.values()))).permute(0, 3, 1, 2).float() / 255
    r = torch.from_numpy(np.concatenate(list(real.values()))).permute(0, 3, 1, 2).float() / 255
    ssim = structural_similarity_index_measure(g, r, data_range=1.0, reduction="none").mean().item()
    psnr = peak_signal_noise_ratio(g, r, data_range=1.0, reduction="none", dim=(1, 2, 3)).mean().item()
    assert report["ssim"] == pytest.approx(ssim, rel=1e-5) and report["psnr"] == pytest.approx(psnr, rel=1e-5)
    assert "fvd" not in report and "detectors" in report and report["detectors"] == {}


def test_real_statistics_are_cached_under_a_key_of_clips_and_detector(tmp_path, i3d, monkeypatch):
    from fashionflow.evaluation.clips import Clip

    real = write_folder(tmp_path / "real", random_videos(12, 4))
    generated = write_folder(tmp_path / "gen", random_videos(13, 4))
    settings = EvaluationSettings(cache_dir=str(tmp_path / "cache"), cache_real_statistics=True)
    first = evaluate(real, generated, ["fvd"], i3d=i3d, settings=settings, **QUIET)
    cache = first["clips"]["fvd"]["real"]["statistics_cache"]
    assert cache.startswith(str(tmp_path / "cache" / "statistics" / "real-i3d-"))

    read = []
    original = Clip.read
    monkeypatch.setattr(Clip, "read", lambda clip: read.append(clip.video.path.parent.name) or original(clip))
    again = evaluate(real, generated, ["fvd"], i3d=i3d, settings=settings, **QUIET)
    assert again["fvd"] == first["fvd"] and set(read) == {"gen"}  # real clips not read again

    other_seed = evaluate(real, generated, ["fvd"], i3d=i3d, settings=replace(settings, clip_seed=1), **QUIET)
    assert other_seed["clips"]["fvd"]["real"]["statistics_cache"] != cache and "real" in read


# detector files ---------------------------------------------------------------------------------------------------


def test_detector_url_is_downloaded_once_into_the_cache_with_its_sha256(tmp_path, i3d):
    import hashlib

    content = i3d.read_bytes()
    with stand_in_server() as server:
        url = server.add_file("/s/abc/i3d_torchscript.pt", content)
        first = fetch_detector(I3D, url + "?dl=1", tmp_path / "cache")
        again = fetch_detector(I3D, url + "?dl=1", tmp_path / "cache")
        downloads = [r for r in server.requests if r[0] == "GET"]
    assert first.path == again.path == tmp_path / "cache" / "i3d_torchscript.pt"
    assert first.sha256 == hashlib.sha256(content).hexdigest() and len(downloads) == 1
    record = json.loads((tmp_path / "cache" / "i3d_torchscript.pt.json").read_text())
    assert record["sha256"] == first.sha256 and record["url"].endswith("?dl=1")


def test_offline_download_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr("fashionflow.hub.time.sleep", lambda s: None)
    with pytest.raises(DetectorUnavailableError) as error:
        fetch_detector(I3D, "http://127.0.0.1:9/i3d_torchscript.pt", tmp_path / "cache")  # nothing listens on port 9
    message = str(error.value)
    assert "i3d_torchscript.pt" in message and str(tmp_path / "cache" / "i3d_torchscript.pt") in message
    assert "--i3d" in message
    with stand_in_server() as server, pytest.raises(DetectorUnavailableError, match="HTTP 404"):
        fetch_detector(I3D, server.url + "/missing/i3d_torchscript.pt", tmp_path / "cache")


def test_detector_files_must_be_torchscript(tmp_path):
    pickled = tmp_path / "i3d.pt"
    torch.save({"weights": torch.zeros(2)}, pickled)
    folder = write_folder(tmp_path / "v", random_videos(6, 2, lengths=(16, 16), size=(4, 4)))
    with pytest.raises(DetectorUnavailableError, match="not a TorchScript file"):
        evaluate(folder, folder, ["fvd"], i3d=pickled, **QUIET)


# the command line -------------------------------------------------------------------------------------------------


def test_done_when_command_writes_fvd_at_the_top_level(tmp_path, i3d):
    real = write_folder(tmp_path / "real", random_videos(7, 5))
    generated = write_folder(tmp_path / "generated", random_videos(8, 5))
    out = tmp_path / "out" / "metrics.json"
    done = subprocess.run(
        [sys.executable, "-m", "fashionflow", "evaluate", "--real", str(real), "--generated", str(generated),
         "--i3d", str(i3d), "--json", str(out)],
        capture_output=True, text=True, env={**__import__("os").environ, "FASHIONFLOW_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert isinstance(report["fvd"], float) and report["clips"]["fvd"]["real"]["clips"] == 5
    assert "ssim" in report and "psnr" in report  # the names pair
    assert "isv" in report["unavailable"] and "lpips" in report["unavailable"]
    assert "fvd2048_16f" in done.stdout and "WARNING" in done.stdout


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("empty", ["--real", "{empty}", "--generated", "{empty}"], "No videos in the real folder"),
        ("short", ["--real", "{short}", "--generated", "{short}"], "No usable video in"),
        ("short", ["--real", "{missing}", "--generated", "{short}"], "does not exist"),
        ("short", ["--real", "{short}", "--generated", "{short}", "--i3d", "{missing}"], "No I3D detector file at"),
        ("short", ["--real", "{short}"], "Give --real DIR and --generated DIR"),
        ("short", ["--model", "tiny-random"], "needs both --model and --test-videos"),
        ("short", ["--real", "{short}", "--generated", "{short}", "--metrics", "lpips"], "lpips cannot be computed"),
    ],
)
def test_mistakes_end_in_one_clear_line(tmp_path, i3d, capsys, setup, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no videos here")
    write_folder(tmp_path / "short", random_videos(9, 2, lengths=(5, 8), size=(4, 4)))
    paths = {name: tmp_path / name for name in ("empty", "short", "missing")}
    args = [a.format(**paths) for a in args]
    if "--i3d" not in args:
        args += ["--i3d", str(i3d)]
    assert main(["evaluate", *args, "--json", str(tmp_path / "out.json"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()


def test_metric_asked_for_without_pairs_is_an_error(tmp_path, i3d):
    real = write_folder(tmp_path / "real", random_videos(10, 2, lengths=(16, 16), size=(4, 4)))
    other = write_folder(tmp_path / "other", {"x": np.zeros((16, 4, 4, 3), np.uint8)})
    with pytest.raises(MetricUnavailableError, match="no generated video has a real video of the same name"):
        evaluate(real, other, ["fvd", "ssim"], i3d=i3d, **QUIET)
    with pytest.raises(NoVideosError):
        find_videos(tmp_path / "nowhere")


# the test protocol ------------------------------------------------------------------------------------------------


def test_protocol_end_to_end_with_tiny_random_and_resume(tmp_path, i3d, capsys):
    from fashionflow.evaluation import video_seed
    from fashionflow.video import probe_video

    rng = np.random.default_rng(11)
    tests = tmp_path / "test"
    tests.mkdir()
    for name, length in (("clip_a", 6), ("clip_b", 5)):
        write_frame_folder(tests / name, rng.integers(0, 255, (length, 144, 128, 3), dtype=np.uint8))
    write_lossless_video(tests / "clip_c.mp4", rng.integers(0, 255, (6, 144, 128, 3), dtype=np.uint8))
    out = tmp_path / "protocol.json"
    args = ["evaluate", "--model", "tiny-random", "--test-videos", str(tests), "--i3d", str(i3d), "--json", str(out),
            "--frames", "4", "--steps", "2", "--seed", "3", "--workers", "0", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.read_text())
    generated = tmp_path / "protocol-generated"
    assert {"fvd", "ssim", "psnr"} <= set(report) and report["generation"]["made"] == 3
    assert report["clips"]["fvd"]["generated"]["clips"] == 3 and report["paired"]["videos"] == 3
    # same length as the test video, rounded down to the U-Net's frame multiple (2)
    assert len(find_videos(generated).by_name()["clip_b"]._frame_files()) == 4
    manifest = {r["video"]: r for r in map(json.loads, (generated / "manifest.jsonl").read_text().splitlines())}
    assert manifest["clip_a"]["seed"] == video_seed(3, "clip_a") != manifest["clip_c"]["seed"]
    assert manifest["clip_a"]["frames"] == 6 and manifest["clip_a"]["sampler"] == "dpm++"

    before = (generated / "clip_a" / "00000.png").stat().st_mtime_ns
    assert main(args) == 0
    assert "Generated 0 video(s)" in capsys.readouterr().out
    assert (generated / "clip_a" / "00000.png").stat().st_mtime_ns == before
    assert json.loads(out.read_text())["fvd"] == pytest.approx(report["fvd"])

    assert main([*args, "--steps", "3"]) == 2  # the folder holds videos made with 2 steps (the last --steps wins)
    err = capsys.readouterr().err
    assert "other settings" in err and "steps=2, not 3" in err

    mp4s = tmp_path / "mp4s"
    assert main([*args, "--generated", str(mp4s), "--generated-format", "mp4", "--video-frames", "4"]) == 0
    assert probe_video(mp4s / "clip_a.mp4").frames == 4
