"""The page in a real headless browser (Debian's chromium driven by Playwright; no browser download).

Uploads an example photo, checks the framed preview, generates with the tiny untrained model,
plays the video, downloads the MP4, and checks that a bad upload shows its error on the page.
Screenshots go to test-artifacts/ (ignored by git). Without /usr/bin/chromium this test fails
rather than skips: the browser is part of the test set-up (`scripts/setup.sh --dev`, CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from app_harness import ARTIFACTS, ROOT, not_a_photo, running_app

from fashionflow.video import probe_video

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 90_000  # generous: a 2-core CI machine runs the app and the browser side by side


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, "
            "or `bash scripts/setup.sh --dev`) to run the browser tests."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("browser-app"), "--model", "tiny-random") as app:
        yield app


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app.url, wait_until="networkidle")
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_upload_preview_generate_play_and_download(page, tmp_path):
    assert "Untrained test model" in page.locator("#model-status").inner_text()

    page.locator("#photo input[type=file]").set_input_files(str(ROOT / "examples" / "astronaut.png"))
    preview = page.locator("#preview img")
    preview.wait_for()
    page.wait_for_function("() => document.querySelector('#preview img')?.naturalWidth > 0")
    # The tiny model's frame: the preview is the photo as the model gets it, not the upload.
    assert preview.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [128, 128]

    page.click("#advanced")
    set_slider(page, "steps", 2)
    set_slider(page, "frames", 8)
    page.click("#generate")

    video = page.locator("#video video")
    video.wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#video video');"
        " return v && v.readyState >= 1 && Number.isFinite(v.duration) && v.duration > 0; }"
    )
    duration, looping = video.evaluate("v => [v.duration, v.loop]")
    assert duration == pytest.approx(8 / 25, abs=0.05) and looping
    summary = page.locator("#run-summary").inner_text()
    assert "Seed used:" in summary and "8 frames at 25 fps" in summary
    screenshot(page, "generated")

    download_button = page.locator("#download-mp4")
    page.wait_for_function("() => !document.querySelector('#download-mp4').disabled")
    with page.expect_download() as download_info:
        download_button.click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.suffix == ".mp4"
    info = probe_video(saved)
    assert (info.codec, info.frames, info.width, info.height) == ("h264", 8, 128, 128)


def test_bad_upload_shows_its_error_on_the_page(page, tmp_path):
    page.locator("#photo input[type=file]").set_input_files(str(not_a_photo(tmp_path)))
    message = page.get_by_text("This file is not a picture we can read")
    message.first.wait_for()
    assert message.first.is_visible()
    page.wait_for_timeout(800)  # the message box fades in: let the screenshot show it
    screenshot(page, "bad-upload")
