"""Running `app.py` in a subprocess for the app's tests (gradio_client and browser)."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
STARTUP_TIMEOUT = 120  # seconds: importing torch + gradio on a busy 2-core machine

# Settings that keep a generation with the tiny model to a second or two.
FAST = dict(fit="pad", seed=7, randomize_seed=False, sampler="dpm++", steps=2, num_frames=6, fps=25, loop=False)


@dataclass
class RunningApp:
    url: str
    process: subprocess.Popen
    log: Path
    output_dir: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(workdir: Path, *args: str) -> Iterator[RunningApp]:
    """Start `python app.py ARGS` on a free 127.0.0.1 port with `workdir` as working directory;
    wait until it answers; always stop it (and whatever it started) afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    output_dir = workdir / "outputs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASHIONFLOW_", "GRADIO_")) and k != "SPACE_ID"}
    env.update(
        GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_TEMP_DIR=str(workdir / "gradio-cache"),
        FASHIONFLOW_OUTPUT_DIR=str(output_dir),
        PYTHONUNBUFFERED="1",
    )
    log = workdir / "app.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: ffmpeg children are stopped with it
        )
    app = RunningApp(url=f"http://127.0.0.1:{port}/", process=process, log=log, output_dir=output_dir)
    try:
        _wait_until_ready(app)
        yield app
    finally:
        _stop(process)


def _wait_until_ready(app: RunningApp) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"app.py exited with code {app.process.returncode}:\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(app.url + "gradio_api/info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"app.py did not answer on {app.url} within {STARTUP_TIMEOUT} s:\n{app.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def load_app_module():
    """app.py as a module, wherever pytest runs from (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("fashionflow_app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def not_a_photo(folder: Path) -> Path:
    """A text file named like a photo: what a mislabelled upload looks like."""
    path = folder / "not-a-photo.jpg"
    path.write_text("this is a shopping list, not a photo\n")
    return path


# The service's tests share these -----------------------------------------------------------------------------------

EXAMPLE = ROOT / "examples" / "astronaut.png"


@functools.cache
def tiny_model():
    """The tiny untrained model, loaded once per test process."""
    from fashionflow import service

    return service.load_model("tiny-random")


def fast_settings(**overrides):
    """Checked settings that generate in a second or two with the tiny model."""
    from fashionflow import service

    return service.validate_settings(**{**FAST, "decode_chunk_size": 4, **overrides})
