"""fashionflow.service.photo: reading uploads, and the frame the model sees."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from app_harness import EXAMPLE, ROOT, not_a_photo
from app_harness import tiny_model as load_tiny_model
from PIL import Image

from fashionflow import service


@pytest.fixture(scope="module")
def tiny_model() -> service.ModelState:
    return load_tiny_model()


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
        str(
            _png_claiming(tmp_path / "huge.png", 20000, 15000)
        ): "too many pixels (20000 x 15000 pixels, 300 megapixels)",
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
