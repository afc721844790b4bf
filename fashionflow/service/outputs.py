"""Where the videos are written, and removing them after a while so the disk does not fill."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


class OutputStore:
    """Folders for the videos of each job, removed after `max_age_seconds` so the disk does not fill.

    The age counts from a job's last file, and a job still running is never removed. Only folders
    this class made are removed: each holds a mark file (`MARK`) from its first moment, and a
    folder without it is never touched, whatever its name (`job-applications/` of the person who
    chose this output folder stays).
    """

    PREFIX = "job-"
    MARK = ".fashionflow-job"

    def __init__(self, root: str | os.PathLike, max_age_seconds: float = 3600, clock: Callable[[], float] = time.time):
        self.root = Path(root)
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._running: set[Path] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def new_job(self) -> Path:
        """A new, empty job folder, counted as running until `finished` is called."""
        self.sweep()
        job = self.root / f"{self.PREFIX}{int(self.clock())}-{uuid.uuid4().hex[:12]}"
        job.mkdir(parents=True)
        (job / self.MARK).write_text("Made by FashionFlow's app: removed with this folder once its videos are old.\n")
        with self._lock:
            self._running.add(job)
        return job

    def finished(self, job: str | os.PathLike) -> None:
        with self._lock:
            self._running.discard(Path(job))

    def sweep(self) -> int:
        """Remove job folders older than the maximum age; the number removed."""
        if not self.root.is_dir():
            return 0
        now, removed = self.clock(), 0
        with self._lock:
            running = set(self._running)
        for job in self.root.glob(f"{self.PREFIX}*"):
            if job in running or not self.made_here(job):
                continue
            try:
                age = now - job.stat().st_mtime
            except OSError:
                continue  # removed meanwhile
            if job.is_dir() and age > self.max_age_seconds:
                shutil.rmtree(job, ignore_errors=True)
                removed += 1
        return removed

    def made_here(self, folder: Path) -> bool:
        """Whether `folder` is a job folder this class made (a real folder, not a link, holding the mark file)."""
        mark = folder / self.MARK
        return folder.is_dir() and not folder.is_symlink() and mark.is_file() and not mark.is_symlink()

    @staticmethod
    def sweep_interval(max_age_seconds: float) -> int:
        """How often to sweep: a quarter of the age videos are kept for, between a minute and ten.
        Gradio's copies of the videos it served are removed on the same schedule (`delete_cache`)."""
        return int(max(60, min(600, max_age_seconds // 4)))

    def start_sweeper(self, interval_seconds: float | None = None) -> None:
        """Sweep every `interval_seconds` (default: `sweep_interval`) in a daemon thread, also when nobody generates."""
        if self._sweeper is not None:
            return
        if interval_seconds is None:
            interval_seconds = self.sweep_interval(self.max_age_seconds)

        def run() -> None:
            while not self._stop.wait(interval_seconds):
                try:
                    self.sweep()
                except Exception:  # a sweep that fails must not end the sweeping
                    logger.exception("Cleaning up old videos failed")

        self._sweeper = threading.Thread(target=run, name="fashionflow-output-sweeper", daemon=True)
        self._sweeper.start()

    def stop_sweeper(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None


def default_output_dir() -> Path:
    # The system temp folder: Gradio serves files from there without extra allowed paths.
    return Path(tempfile.gettempdir()) / "fashionflow-app"
