"""Still-image preparation: real-world photo formats, framing, and refusals worded for people."""

import io

import numpy as np
import pytest
from PIL import Image

from fashionflow.image import MIN_SIDE, ImageInputError, frame_image, image_to_tensor, load_image


def png_bytes(image: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=params.pop("format", "PNG"), **params)
    return buffer.getvalue()


def test_exif_orientation_is_applied():
    upright = Image.new("RGB", (200, 300), "white")
    upright.paste((255, 0, 0), (0, 0, 200, 30))  # red band at the top
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera stores a rotated shot
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    photo = load_image(png_bytes(stored, format="JPEG", exif=exif.tobytes()))
    assert photo.size == (200, 300)
    assert photo.getpixel((100, 5))[0] > 200 and photo.getpixel((100, 5))[1] < 60


def test_transparency_goes_onto_white():
    image = Image.new("RGBA", (200, 200), (0, 0, 255, 0))
    image.paste((255, 0, 0, 255), (50, 50, 150, 150))
    photo = load_image(png_bytes(image))
    assert photo.mode == "RGB"
    assert photo.getpixel((5, 5)) == (255, 255, 255)
    assert photo.getpixel((100, 100)) == (255, 0, 0)
    palette = image.convert("P")  # palette with transparency
    assert load_image(png_bytes(palette)).mode == "RGB"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("L", (200, 200), 128),
        lambda: Image.new("CMYK", (200, 200), (0, 0, 0, 0)),
        lambda: Image.fromarray(np.full((200, 200), 32768, dtype=np.uint16)),
        lambda: Image.new("LA", (200, 200), (10, 255)),
    ],
    ids=["grayscale", "cmyk", "16-bit", "gray+alpha"],
)
def test_other_modes_become_8bit_rgb(make):
    image = make()
    data = png_bytes(image, format="JPEG" if image.mode == "CMYK" else "PNG")
    photo = load_image(data)
    assert photo.mode == "RGB" and photo.size == (200, 200)
    if image.mode in ("I;16", "I"):
        assert 120 <= photo.getpixel((0, 0))[0] <= 136  # half of the 16-bit range is mid-grey, not white
    if image.mode == "CMYK":
        assert photo.getpixel((0, 0)) == (255, 255, 255)  # no ink is white paper


def test_arrays_and_paths(tmp_path):
    array = np.zeros((200, 160, 3), dtype=np.float32)
    array[..., 1] = 1.0
    assert load_image(array).getpixel((0, 0)) == (0, 255, 0)
    path = tmp_path / "photo.png"
    Image.new("RGB", (300, 200), "blue").save(path)
    assert load_image(path).size == (300, 200)
    assert load_image(str(path)).size == (300, 200)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"%PDF-1.4 this is not a picture", "a PDF document, not a photo"),
        (b"plain text, no picture at all", "not a picture"),
        (b"", "empty"),
    ],
)
def test_not_an_image(data, message):
    with pytest.raises(ImageInputError, match=message):
        load_image(data)


def test_truncated_image():
    data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)))
    with pytest.raises(ImageInputError, match="damaged or incomplete"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding():
    # A 1-bit PNG claiming 30000 x 30000 pixels is tiny on disk and huge in memory.
    bomb = png_bytes(Image.new("1", (30000, 30000)), optimize=True)
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageInputError, match="too many pixels"):
        load_image(bomb)


def test_too_small_and_missing(tmp_path):
    with pytest.raises(ImageInputError, match=f"too small.*at least {MIN_SIDE} pixels"):
        load_image(png_bytes(Image.new("RGB", (100, 300))))
    with pytest.raises(ImageInputError, match="No photo was found"):
        load_image(tmp_path / "nope.jpg")


@pytest.mark.parametrize("fit", ["pad", "crop", "stretch"])
def test_every_fit_gives_the_frame_size(fit):
    framed = frame_image(Image.new("RGB", (1000, 600), "red"), 640, 512, fit)
    assert framed.size == (512, 640)


def test_pad_keeps_proportions_and_uses_the_background():
    photo = Image.new("RGB", (400, 400), (200, 200, 200))
    photo.paste((20, 20, 20), (150, 100, 250, 300))  # a dark "person" on a grey studio background
    framed = np.asarray(frame_image(photo, 640, 512, "pad"))
    assert tuple(framed[0, 0]) == (200, 200, 200)  # margin in the background colour
    dark_rows = np.where((framed[:, 256] < 50).all(axis=-1))[0]
    dark_cols = np.where((framed[320] < 50).all(axis=-1))[0]
    assert abs((np.ptp(dark_rows) + 1) / (np.ptp(dark_cols) + 1) - 2.0) < 0.05  # the 1:2 figure stays 1:2


def test_crop_fills_the_frame_and_stretch_is_the_authors_resize():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 700, 3), dtype=np.uint8))
    cropped = frame_image(photo, 640, 512, "crop")
    assert cropped.size == (512, 640)
    stretched = frame_image(photo, 640, 512, "stretch")
    assert np.array_equal(np.asarray(stretched), np.asarray(photo.resize((512, 640), Image.BILINEAR)))


def test_image_to_tensor_is_zero_to_one():
    tensor = image_to_tensor(Image.new("RGB", (4, 2), (255, 0, 51)))
    assert tensor.shape == (3, 2, 4)
    assert tensor[0].eq(1).all() and tensor[1].eq(0).all() and abs(tensor[2, 0, 0].item() - 0.2) < 1e-6
