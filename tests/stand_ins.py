"""Local stand-ins for the network: an HTTP file server (Range requests, injected faults) and a
minimal Hugging Face Hub (the resolve endpoint that hf_hub_download uses), both on 127.0.0.1."""

from __future__ import annotations

import hashlib
import re
import threading
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
                self.wfile.write(data)

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
