"""Files and folders that appear whole or not at all, and file hashes.

Everything FashionFlow writes for later (videos, manifests, reports, statistics, prepared clips,
checkpoints, pipeline folders) is written under a hidden partial name in the same folder and
renamed into place once complete: a kill, a full disk or a failing writer leaves the previous
version (or nothing), never half a file. Partial names share one pattern, so that a later run
can find and remove what a killed one left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PARTIAL = ".partial"  # every partial file or folder carries this marker: `.{stem}.{token}.partial{suffix}`


def partial_path(path: str | os.PathLike, token: str | None = None) -> Path:
    """Where `path` is written before it is complete: hidden, in the same folder (so that the rename
    is atomic), with the same suffix (writers such as ffmpeg pick the format from it), unique unless
    `token` is given (processes that share one staging folder agree on its token)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{token or uuid.uuid4().hex[:12]}{PARTIAL}{path.suffix}")


def partials_of(path: str | os.PathLike) -> list[Path]:
    """The partial files and folders that writing `path` may have left (a killed run)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{_glob_escape(path.stem)}.*{PARTIAL}{_glob_escape(path.suffix)}"))


def remove_partials(folder: str | os.PathLike, recursive: bool = False) -> None:
    """Remove every partial file or folder a killed run left in `folder` (and below, when `recursive`)."""
    folder = Path(folder)
    pattern = f".*{PARTIAL}*"
    for leftover in folder.rglob(pattern) if recursive else folder.glob(pattern):
        _remove(leftover)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, partial: Path | None = None, sync: bool = False) -> Iterator[Path]:
    """Yield the partial path to write `path` to; once the block ends without error the partial file
    takes the mode a new file gets (the umask), is flushed to disk when `sync`, and replaces `path`.
    On any error it is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(partial) if partial is not None else partial_path(path)
    try:
        yield partial
        commit_partial(partial, path, sync)
    finally:
        _remove(partial)


def commit_partial(partial: str | os.PathLike, path: str | os.PathLike, sync: bool = False) -> Path:
    """Put the complete partial file in place of `path`: it takes the mode a new file gets (the umask),
    is flushed to disk when `sync`, and is renamed (atomic: the same folder). For writers that cannot
    live inside one `with atomic_file(...)` block (a video written frame by frame as it is made)."""
    partial, path = Path(partial), Path(path)
    if stat.S_ISREG(os.lstat(partial).st_mode):  # a file we made (never the target of a link)
        # Some writers (mkstemp, safetensors) make files only their owner may read; a file
        # meant for others gets the mode any new file gets.
        os.chmod(partial, 0o666 & ~current_umask())
        if sync:  # so that a crash right after the rename never leaves a renamed but empty file
            with open(partial, "rb") as file:
                os.fsync(file.fileno())
    os.replace(partial, path)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` whole or not at all."""
    with atomic_file(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 1, **dump_options) -> Path:
    """Write `data` as JSON to `path` whole or not at all."""
    return write_text(path, json.dumps(data, indent=indent, **dump_options) + "\n")


def write_lines(path: str | os.PathLike, lines: list[str]) -> Path:
    """Write one line per item (each without its newline) to `path` whole or not at all."""
    return write_text(path, "".join(line + "\n" for line in lines))


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden staging folder beside `path`; when the block ends without error it replaces
    `path` (an earlier folder there is removed first), otherwise it is removed."""
    path = Path(path)
    staging = partial_path(path)
    clear_folder(staging)
    staging.mkdir(parents=True)
    try:
        yield staging
        replace_folder(staging, path)
    finally:
        _remove(staging)


def clear_folder(path: str | os.PathLike) -> None:
    """Remove the folder `path` if it exists (a staging folder a killed run left, say)."""
    _remove(Path(path))


def replace_folder(staging: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename the complete folder `staging` to `path`, replacing an earlier folder there.

    The step that several processes writing one staging folder leave to one of them; `atomic_folder`
    is this for one process."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    os.replace(staging, path)
    return path


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux's /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere reading it means setting it, for a moment
    os.umask(mask)
    return mask


def check_writable(folder: str | os.PathLike) -> None:
    """Create `folder` if needed and write a file into it; raises OSError (permission, read-only,
    a file in the way) before any work is spent on what could not be saved."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-").close()


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, as hex (read in blocks: any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)
