"""Files and folders that appear whole or not at all, and file hashes.

Everything FashionFlow writes for later (videos, manifests, reports, statistics, prepared clips,
checkpoints, pipeline folders) is written under a hidden partial name in the same folder and
renamed into place once complete: a kill, a full disk or a failing writer leaves the previous
version (or nothing), never half a file. Partial names share one pattern, so that a later run
can find and remove what a killed one left behind. With `sync`, the data is on the disk before
the rename and the rename is on the disk after it, so that not even a power loss leaves a renamed
but empty file. Folders are removed by renaming them to a partial name first, so that a kill while
removing leaves only a partial. A lock file (`hold_lock`) keeps a folder to one process at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import stat
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so folders are not locked there
    fcntl = None

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
    is flushed to disk with its rename when `sync`, and is renamed (atomic: the same folder). For writers
    that cannot live inside one `with atomic_file(...)` block (a video written frame by frame as it is made)."""
    partial, path = Path(partial), Path(path)
    if stat.S_ISREG(os.lstat(partial).st_mode):  # a file we made (never the target of a link)
        # Some writers (mkstemp, safetensors) make files only their owner may read; a file
        # meant for others gets the mode any new file gets.
        os.chmod(partial, 0o666 & ~current_umask())
        if sync:  # so that a crash right after the rename never leaves a renamed but empty file
            sync_file(partial)
    os.replace(partial, path)
    if sync:
        sync_file(path.parent)  # the rename itself
    return path


def write_text(path: str | os.PathLike, text: str, sync: bool = False) -> Path:
    """Write `text` to `path` whole or not at all (on the disk before it is renamed into place, when `sync`)."""
    with atomic_file(path, sync=sync) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 1, sync: bool = False, **dump_options) -> Path:
    """Write `data` as JSON to `path` whole or not at all."""
    return write_text(path, json.dumps(data, indent=indent, **dump_options) + "\n", sync=sync)


def write_lines(path: str | os.PathLike, lines: list[str], sync: bool = False) -> Path:
    """Write one line per item (each without its newline) to `path` whole or not at all."""
    return write_text(path, "".join(line + "\n" for line in lines), sync=sync)


def append_line(path: str | os.PathLike, line: str, sync: bool = False) -> None:
    """Add one line to the end of `path` (a log): one write, so that a kill leaves the line whole or absent."""
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")
        if sync:
            file.flush()
            os.fsync(file.fileno())


def sync_file(path: str | os.PathLike) -> None:
    """Flush a file's data, or a folder's entries, from the system's cache to the disk."""
    folder = Path(path).is_dir()
    descriptor = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems cannot sync a folder; its files are synced all the same
        if not folder:
            raise
    finally:
        os.close(descriptor)


def sync_tree(folder: str | os.PathLike) -> None:
    """`sync_file` every file and folder under `folder`, and `folder` itself."""
    folder = Path(folder)
    for path in sorted(folder.rglob("*"), reverse=True):  # files before the folders that hold them
        if not path.is_symlink():
            sync_file(path)
    sync_file(folder)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden staging folder beside `path`; when the block ends without error it is synced to the
    disk and replaces `path` (an earlier folder there is removed first), otherwise it is removed."""
    path = Path(path)
    staging = partial_path(path)
    clear_folder(staging)
    staging.mkdir(parents=True)
    try:
        yield staging
        replace_folder(staging, path, sync=True)
    finally:
        _remove(staging)


def clear_folder(path: str | os.PathLike) -> None:
    """Remove the folder `path` if it exists (a staging folder a killed run left, say)."""
    _remove(Path(path))


def remove_folder(path: str | os.PathLike) -> None:
    """Remove the folder `path` whole or not at all: it is first renamed to a partial name (one step),
    so that a kill while its files are deleted leaves a partial (which `remove_partials` finds), never
    a folder under its own name that lacks some of its files."""
    path = Path(path)
    if not path.exists():
        return
    doomed = partial_path(path)
    os.replace(path, doomed)
    _remove(doomed)


def replace_folder(staging: str | os.PathLike, path: str | os.PathLike, sync: bool = False) -> Path:
    """Rename the complete folder `staging` to `path`, replacing an earlier folder there; with `sync`,
    everything in it is on the disk before the rename, and the rename after it.

    The step that several processes writing one staging folder leave to one of them; `atomic_folder`
    is this for one process."""
    path = Path(path)
    if sync:
        sync_tree(staging)
    remove_folder(path)
    os.replace(staging, path)
    if sync:
        sync_file(path.parent)
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


# locks ----------------------------------------------------------------------------------------------------------


class LockHeld(Exception):
    """Another process holds the lock; `holder` is what it wrote into the lock file (pid, host, since)."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        super().__init__(f"{path} is held by {holder}")


@contextlib.contextmanager
def hold_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` while the block runs, or raise `LockHeld` at once.

    An advisory lock of the kernel (`flock`), which it releases when the process ends however it
    ends: a killed process never leaves a folder locked. The holder writes its process id, host and
    start time into the file, so that a refusal can say who holds it."""
    path = Path(path)
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            try:
                holder = json.loads(file.read() or "{}")
            except ValueError:
                holder = {}
            raise LockHeld(path, holder) from None
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}) + "\n")
        file.flush()
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)


# checking files -----------------------------------------------------------------------------------------------


class DamagedFile(ValueError):
    """A file that is not whole; the message says how (without the path: the caller names the file)."""


def safetensors_header(path: str | os.PathLike) -> dict[str, dict]:
    """The tensors a safetensors file holds ({name: {"dtype", "shape", "data_offsets"}}), read from its
    header alone (a few kilobytes, whatever the file's size); raises `DamagedFile` when the file is
    not a safetensors file or does not hold every byte its header announces (a cut copy)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as file:
        start = file.read(8)
        if len(start) < 8:
            raise DamagedFile(f"it is {size} bytes long, too short for a safetensors file")
        (length,) = struct.unpack("<Q", start)
        if length > min(size - 8, 100_000_000):
            raise DamagedFile(f"it holds {size:,} bytes, fewer than its header needs: cut short or damaged")
        try:
            header = json.loads(file.read(length))
        except ValueError:
            raise DamagedFile("its header is not readable (not a safetensors file, or damaged)") from None
    if not isinstance(header, dict):
        raise DamagedFile("its header is not readable (not a safetensors file, or damaged)")
    header.pop("__metadata__", None)
    try:
        end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
    except (KeyError, TypeError, ValueError, IndexError):
        raise DamagedFile("its header is not readable (not a safetensors file, or damaged)") from None
    if 8 + length + end != size:
        raise DamagedFile(
            f"it holds {size:,} bytes where its header announces {8 + length + end:,}: cut short or damaged"
        )
    return header


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
