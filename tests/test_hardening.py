"""The failures of issue 10, each reproduced: full disks, unchecked videos, file modes, large and
16-bit photos, refused metadata, and the messages of convert, download and --model."""

import errno
import io
import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from fashionflow import video
from fashionflow.cli import main
from fashionflow.image import MAX_PIXELS, ImageInputError, load_image
from fashionflow.video import VideoWriteError, export_video

ROOT = Path(__file__).resolve().parents[1]


def frames(count=4, size=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture
def full_disk(monkeypatch):
    """Every video's partial file is a link to /dev/full: the kernel answers writes with ENOSPC."""
    original = video.partial_path

    def onto_full_disk(path):
        partial = original(path)
        partial.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/dev/full", partial)
        return partial

    monkeypatch.setattr(video, "partial_path", onto_full_disk)


# videos ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, count, size", [(".mp4", 4, 64), (".gif", 4, 64), (".mp4", 70, 256)])
def test_full_disk_leaves_nothing_and_says_so(tmp_path, full_disk, suffix, count, size):
    # Before: ffmpeg's failure went unchecked and a 0-byte MP4 was reported as written; with more
    # frames (ffmpeg gone while frames are still being sent) a traceback instead.
    with pytest.raises(VideoWriteError, match="the disk is full") as failed:
        export_video(frames(count, (size, size)), tmp_path / f"v{suffix}")
    assert failed.value.reason == "disk-full"
    assert list(tmp_path.iterdir()) == []


def test_cli_on_a_full_disk_reports_the_photo_and_fails(tmp_path, full_disk, capsys):
    photo = tmp_path / "look.png"
    Image.fromarray(frames(1, (200, 160))[0]).save(photo)
    code = main(["generate", str(photo), "-o", str(tmp_path / "out.mp4"), "--model", "tiny-random", "--frames", "2",
                 "--steps", "1"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "failed: look.png: The video could not be written" in captured.err and "disk is full" in captured.err
    assert "written" not in captured.out and not (tmp_path / "out.mp4").exists()


def test_file_size_limit_stops_the_encoder_and_is_said(tmp_path):
    """A real limit in a child process (RLIMIT_FSIZE): ffmpeg is stopped mid-write by the kernel."""
    script = textwrap.dedent(f"""
        import resource, numpy as np
        from fashionflow.video import export_video, VideoWriteError
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        rng = np.random.default_rng(0)
        try:
            export_video([rng.integers(0, 255, (128, 128, 3), dtype=np.uint8) for _ in range(20)], {str(tmp_path / "v.mp4")!r})
        except VideoWriteError as error:
            print(error.reason, "|", error)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.startswith("file-size-limit | "), done.stdout + done.stderr
    assert "size limit" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_short_video_is_caught_by_the_probe_and_not_kept(tmp_path, monkeypatch):
    # An encoder that loses every frame after the second (as a broken ffmpeg build might).
    write = video._Mp4Encoder.write
    written = []

    def lossy_write(encoder, array):
        written.append(array)
        if len(written) <= 2:
            write(encoder, array)

    monkeypatch.setattr(video._Mp4Encoder, "write", lossy_write)
    with pytest.raises(VideoWriteError, match="incomplete.*2 frames of 64 x 64 h264 instead of 6 frames") as failed:
        export_video(frames(6), tmp_path / "v.mp4")
    assert failed.value.reason == "incomplete"
    assert list(tmp_path.iterdir()) == []


def test_encoder_failure_in_ffmpegs_own_words(tmp_path):
    message, reason = video._explain_ffmpeg_failure(
        1, "[libx264 @ 0x55d0c] broken something\n[out#0/mp4 @ 0x1] Error opening output file x.mp4.\n", Path("x.mp4")
    )
    assert reason == "encoder" and "0x" not in message
    assert (
        message
        == "The video encoder (ffmpeg) failed: Error opening output file x.mp4. The video for x.mp4 was not written."
    )


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_video_files_follow_the_umask(tmp_path, umask, mode):
    # Before: mkstemp made every video 0600 whatever the umask.
    previous = os.umask(umask)
    try:
        for suffix in (".mp4", ".gif"):
            assert (export_video(frames(), tmp_path / f"v{suffix}").stat().st_mode & 0o777) == mode
    finally:
        os.umask(previous)


# photos ----------------------------------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header and holds no pixels: size checks must not need them."""

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_an_81_megapixel_jpeg_is_accepted_and_reduced_while_read(tmp_path):
    # Before: refused at 50 MP, in a sentence that also called it damaged.
    path = tmp_path / "phone.jpg"
    Image.new("L", (10400, 7800), 200).save(path, quality=50)  # 81 MP
    photo = load_image(path)
    assert photo.mode == "RGB" and min(photo.size) >= 1024 and max(photo.size) <= 10400 // 4  # decoded at 1/4 scale


def test_too_many_pixels_is_its_own_sentence(tmp_path):
    with pytest.raises(ImageInputError) as refused:
        load_image(png_header_only(20000, 15000))  # 300 MP
    assert refused.value.reason == "too-many-pixels"
    assert str(refused.value).startswith("This photo has too many pixels (20000 x 15000 pixels, 300 megapixels)")
    assert "damaged" not in str(refused.value) and MAX_PIXELS >= 200_000_000


def test_16_bit_png_is_read_without_a_float_copy(tmp_path):
    # Before: 0.9 GB for this 0.35 MB photo (a float64 copy of every pixel).
    path = tmp_path / "deep.png"
    gradient = np.tile(np.linspace(0, 65535, 7000, dtype=np.uint16), (7000, 1))
    Image.fromarray(gradient).save(path)
    script = textwrap.dedent(f"""
        import json, resource
        from fashionflow.image import load_image
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        photo = load_image({str(path)!r})
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(json.dumps([photo.size, photo.getpixel((0, 0)), photo.getpixel((photo.width - 1, 0)), round(grown)]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    size, left, right, grown_mb = json.loads(done.stdout.strip().splitlines()[-1])
    assert size == [1167, 1167] and left == [0, 0, 0] and right[0] >= 250  # reduced 6x, full 16-bit range kept
    assert grown_mb < 300, f"reading grew the process by {grown_mb} MB"  # the decoded 16-bit pixels are 98 MB


def test_metadata_pillow_refuses_does_not_hide_good_pixels():
    # Before: "damaged or incomplete (... PngImagePlugin.MAX_TEXT_CHUNK)".
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (2 * PngImagePlugin.MAX_TEXT_CHUNK), zip=True)  # decompresses past the limit
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(buffer, format="PNG", pnginfo=info)
    photo = load_image(buffer.getvalue())
    assert photo.size == (300, 200) and photo.getpixel((5, 5)) == (10, 200, 30)


def test_malformed_exif_leaves_the_photo_upright_and_readable():
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(buffer, format="JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    assert load_image(buffer.getvalue()).size == (300, 200)


# messages of convert, download and --model -------------------------------------------------------------


def test_convert_says_what_an_empty_file_is(tmp_path, capsys):
    empty = tmp_path / "FashionFlow_checkpoint.pth"
    empty.touch()
    assert main(["convert", str(empty), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "is empty (0 bytes): the download or copy did not finish" in err and "EOFError" not in err


def test_convert_never_passes_on_torchs_advice_or_colour_codes(tmp_path, capsys):
    import torch

    evil = tmp_path / "evil.pth"
    torch.save({"net": {"x": io.BytesIO(b"not a tensor")}, "adapter": {}}, evil)
    assert main(["convert", str(evil), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "weights_only" not in err and "\x1b[" not in err
    assert err.rstrip().endswith("Download it again from the authors' link.")  # whole sentences, not cut


def test_download_offline_names_the_variable_and_every_flag(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["download", "-o", str(tmp_path / "w"), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE is set" in err
    assert "--vae-from" in err and "--clip-from" in err and "--checkpoint" in err


def test_download_with_the_hub_unreachable_answers_at_once(tmp_path, monkeypatch, capsys, caplog):
    # Before: 30 s of the Hub client's raw retry lines came first.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    from fashionflow import hub

    monkeypatch.setattr(hub, "_hub_endpoint", lambda: "http://127.0.0.1:9")  # nothing listens on port 9
    assert main(["download", "-o", str(tmp_path / "w"), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9 cannot be reached (connection refused)" in err
    assert "Retrying" not in err + caplog.text


def test_model_path_that_does_not_exist_gets_advice_that_works(tmp_path, monkeypatch, capsys):
    import fashionflow.batch_cli as batch_cli

    monkeypatch.setattr(batch_cli, "_generator", lambda *a, **k: pytest.fail("the model must not load"))
    photo = tmp_path / "p.png"
    Image.new("RGB", (200, 200)).save(photo)
    assert main(["generate", str(photo), "-o", str(tmp_path / "v.mp4"), "--model", "/no/such/path"]) == 2
    err = capsys.readouterr().err
    assert "/no/such/path: there is no such folder" in err
    assert "download --output /no/such/path" in err


def test_help_imports_neither_torch_nor_diffusers():
    # Before: 7 s, importing every model module to print the help.
    script = "import sys; from fashionflow.cli import main; main(['generate', '--help']); " + (
        "print(json.dumps(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import json; " + script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert "--frames" in done.stdout and done.stdout.strip().splitlines()[-1] == json.dumps([])


def test_the_app_without_a_model_at_its_path_gives_the_same_advice():
    from fashionflow import service

    state = service.load_model("/no/such/path")
    assert not state.ready and "download --output /no/such/path" in state.status_markdown()


@pytest.mark.parametrize(
    "number, reason, words",
    [
        (errno.EACCES, "permission", "permission denied. Choose a folder you may write to."),
        (errno.EROFS, "read-only", "it is on a read-only disk."),
        (errno.EDQUOT, "disk-full", "the disk is full."),
    ],
)
def test_other_write_failures_in_words(number, reason, words):
    """(As root here, a folder cannot be made unwritable: ffmpeg's and the OS's words are mapped directly.)"""
    message, got = video._explain_ffmpeg_failure(1, f"[out @ 0x1] x.mp4: {os.strerror(number)}\n", Path("out/x.mp4"))
    assert got == reason and message.startswith("The video could not be written to out: ") and words in message
