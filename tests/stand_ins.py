"""Local stand-ins for the network: an HTTP file server (Range requests, injected faults, a slow
line, a Hub that cannot be reached) and a minimal Hugging Face Hub (the resolve endpoint that
hf_hub_download uses), both on 127.0.0.1; a line between a browser and a server that can be cut;
and tiny copies of the three sources of the published weights, laid out as the real ones are."""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class StandInServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}  # url path -> content
        self.hub: dict[tuple[str, str], tuple[str, Path]] = {}  # (repo_id, revision) -> (commit, folder)
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.cut_after: int | None = None  # close the next GET of a file after this many bytes
        self.ignore_range = False
        self.bytes_per_second: float | None = None  # send files this slowly (to watch progress)
        self.unreachable = False  # drop every connection unanswered, as a Hub that cannot be reached
        self.url = ""

    def add_file(self, path: str, content: bytes) -> str:
        self.files[path] = content
        return self.url + path

    def add_repo(self, repo_id: str, folder: Path, commit: str, revisions=("main",)) -> None:
        for revision in (commit, *revisions):
            self.hub[(repo_id, revision)] = (commit, folder)


def _handler(server: StandInServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_HEAD(self):
            self._serve(body=False)

        def do_GET(self):
            self._serve(body=True)

        def _serve(self, body: bool):
            if server.unreachable:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            server.requests.append((self.command, self.path, self.headers.get("Range")))
            hub = re.match(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", self.path)
            if hub:
                return self._serve_hub(hub["repo"], hub["rev"], hub["file"], body)
            content = server.files.get(self.path.split("?")[0])
            if content is None:
                return self._error(404, "EntryNotFound")
            start = 0
            match = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if match and not server.ignore_range:
                start = int(match[1])
                if start >= len(content):
                    return self._error(416, None)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(content) - start))
            self.end_headers()
            if body:
                data = content[start:]
                if server.cut_after is not None:
                    data, server.cut_after = data[: server.cut_after], None  # then drop the connection
                self._write(data)

        def _write(self, data: bytes) -> None:
            if not server.bytes_per_second:
                self.wfile.write(data)
                return
            chunk = max(1, int(server.bytes_per_second / 10))
            for start in range(0, len(data), chunk):
                self.wfile.write(data[start : start + chunk])
                self.wfile.flush()
                time.sleep(0.1)

        def _serve_hub(self, repo_id, revision, filename, body):
            if (repo_id, revision) not in server.hub:
                return self._error(
                    404, "RevisionNotFound" if any(r == repo_id for r, _ in server.hub) else "RepoNotFound"
                )
            commit, folder = server.hub[(repo_id, revision)]
            path = folder / filename
            if not path.is_file():
                return self._error(404, "EntryNotFound")
            content = path.read_bytes()
            self.send_response(200)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", '"' + hashlib.sha256(content).hexdigest() + '"')
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if body:
                self.wfile.write(content)

        def _error(self, code, error_code):
            self.send_response(code)
            if error_code:
                self.send_header("X-Error-Code", error_code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def stand_in_server():
    server = StandInServer()
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()


class Line:
    """A line from a browser to a server (127.0.0.1:`port`), relayed by this process: `cut()` drops every
    connection on it at once, as a lost network connection does (the server sees them closed)."""

    def __init__(self, port: int):
        self.port = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/"
        self._sockets: list[socket.socket] = []
        self._cut = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self._listener.accept()
            except OSError:
                return  # cut
            far = socket.create_connection(("127.0.0.1", self.port))
            with self._lock:
                if self._cut:
                    near.close()
                    far.close()
                    return
                self._sockets += [near, far]
            for source, target in ((near, far), (far, near)):
                threading.Thread(target=self._relay, args=(source, target), daemon=True).start()

    @staticmethod
    def _relay(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# The published weights' three sources, tiny ----------------------------------------------------------------------

CHECKPOINT_PATH = "/scl/fi/abc/FashionFlow_checkpoint.pth"
CLIP_COMMIT = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"
TAESD_COMMIT = "73b7d1c8836d6c0d4a7ef8ee4d4d2e4f7a0e1c3b"


def write_sources(root: Path) -> Path:
    """Tiny copies of the Stable Diffusion VAE, CLIP, TAESD and the authors' checkpoint under `root`."""
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny
    from transformers import CLIPConfig, CLIPModel

    from fashionflow._compat import clip_image_processor_class
    from fashionflow.convert import rename_adapter_key, rename_unet_key
    from fashionflow.tiny import TINY_CLIP_CONFIG, TINY_TAESD_CONFIG, TINY_VAE_CONFIG, build_tiny_pipeline

    torch.manual_seed(0)
    # Stable Diffusion repo: only the pickled .bin, as in older revisions
    AutoencoderKL(**TINY_VAE_CONFIG).save_pretrained(root / "sd" / "vae", safe_serialization=False)
    # CLIP repo: a whole CLIPModel (text + vision) and its processor, like openai/clip-vit-base-patch32
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=99,
                max_position_embeddings=16)  # fmt: skip
    CLIPModel(CLIPConfig(text_config=text, vision_config=TINY_CLIP_CONFIG, projection_dim=16)).save_pretrained(
        root / "clip"
    )
    clip_image_processor_class()(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "clip"
    )
    # madebyollin/taesd: an AutoencoderTiny with its config and safetensors weights
    AutoencoderTiny(**TINY_TAESD_CONFIG).save_pretrained(root / "taesd")
    # the authors' checkpoint: published key names, tiny shapes, with optimizer state
    tiny = build_tiny_pipeline(seed=1)
    checkpoint = {
        "net": {rename_unet_key(k, to_published=True): v for k, v in tiny.unet.state_dict().items()},
        "adapter": {rename_adapter_key(k, to_published=True): v for k, v in tiny.adapter.state_dict().items()},
        "opt": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
    }
    torch.save(checkpoint, root / "FashionFlow_checkpoint.pth")
    return root


def serve_sources(server: StandInServer, root: Path) -> str:
    """Put `write_sources(root)` on the stand-in Hub and file server; the checkpoint's URL."""
    from fashionflow.hub import CLIP_SOURCE, TAESD_SOURCE, VAE_SOURCE

    server.add_repo(VAE_SOURCE.repo_id, root / "sd", commit=VAE_SOURCE.revision, revisions=())
    server.add_repo(CLIP_SOURCE.repo_id, root / "clip", commit=CLIP_COMMIT)
    server.add_repo(TAESD_SOURCE.repo_id, root / "taesd", commit=TAESD_COMMIT)
    return server.add_file(CHECKPOINT_PATH, (root / "FashionFlow_checkpoint.pth").read_bytes())
