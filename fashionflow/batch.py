"""Many photos, one video each: a folder or a list of photos, on one process or spread over many.

    python -m fashionflow generate PHOTOS/ -o VIDEOS/                     # one process
    accelerate launch -m fashionflow generate PHOTOS/ -o VIDEOS/          # every GPU, every machine
    accelerate launch -m fashionflow generate catalogue.txt -o VIDEOS/    # a list of photos, one a line

How it holds up:
- Each process takes its share of the sorted photo list (accelerate's `split_between_processes`,
  no padding), so every photo belongs to exactly one process of a run.
- A video is written under a hidden name, checked, and renamed into place (`export_video`); a
  photo whose video exists is skipped. A run that is killed and started again therefore makes
  every missing video and none twice.
- A photo's seed derives from its name and the base seed: a rerun, with any number of
  processes, makes the same video for the same photo.
- Every photo gets a line (written / skipped: why / failed: why) and a record in
  `VIDEOS/manifest.jsonl`: each process appends to its own part file (safe on shared storage),
  which the main process merges when all are done (and any later run merges what a killed one left).
- One photo's failure (unreadable, out of memory, disk full, anything) never stops the others;
  the exit status says whether every photo has its video.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .base import files, manifests
from .base.errors import INTERNAL, explain
from .base.memory import is_out_of_memory, release_memory
from .base.seeds import derive_seed
from .image import PHOTO_SUFFIXES, UNSUPPORTED_PHOTO_SUFFIXES

logger = logging.getLogger(__name__)

LIST_SUFFIX = ".txt"  # PHOTOS ending in .txt is a list of photo paths, one a line
MANIFEST = "manifest.jsonl"
MANIFEST_PARTS = ".manifest-parts"
# What the generate command advises when memory runs out.
MEMORY_ADVICE = (
    "Try fewer frames (--frames) or a smaller decode chunk (--decode-chunk-size), or run fewer jobs at once."
)


# what to make ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    photo: Path
    name: str  # the photo's name in the catalogue (relative path): its seed and its line in the manifest
    video: Path
    seed: int


def find_photos(source: Path) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """(photos as (path, name), ignored files as (path, why)) from a folder or a list file.

    In a folder, files with a photo suffix (and picture formats that cannot be read, so that
    they get a sentence) are photos; hidden files are passed over; every other file is listed as
    ignored. A list file names one photo a line, relative to the list's folder; blank lines and
    lines starting with # are passed over.
    """
    if source.is_file() and source.suffix.lower() == LIST_SUFFIX:
        base = source.parent
        photos = []
        for line in source.read_text(encoding="utf-8-sig").splitlines():
            entry = line.strip()
            if entry and not entry.startswith("#"):
                photos.append((base / entry, entry))
        return photos, []
    photos, ignored = [], []
    for path in sorted(source.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() in PHOTO_SUFFIXES + UNSUPPORTED_PHOTO_SUFFIXES:
            photos.append((path, path.name))
        else:
            ignored.append(
                (path, f"not a photo file ({path.suffix or 'no suffix'}; photos end in .jpg, .png, .webp...)")
            )
    return photos, ignored


def plan_jobs(photos: Sequence[tuple[Path, str]], output_dir: Path, video_format: str, base_seed: int) -> list[Job]:
    """One job per photo, sorted by name, with output names that never collide.

    A photo's video is named after its stem (`look.jpg` -> `look.mp4`). When two photos share a
    stem (`look.jpg`, `look.png`), both keep their suffix (`look.jpg.mp4`, `look.png.mp4`); when
    even that is shared (photos from two folders of a list), a hash of the name is added. Names
    are compared case-insensitively, as some file systems do.
    """
    photos = sorted(set(photos), key=lambda p: p[1])
    stems: dict[str, int] = {}
    for _, name in photos:
        stem = Path(name).stem.lower()
        stems[stem] = stems.get(stem, 0) + 1
    full_names: dict[str, int] = {}
    for _, name in photos:
        full_names[Path(name).name.lower()] = full_names.get(Path(name).name.lower(), 0) + 1
    jobs = []
    for path, name in photos:
        filename = Path(name).name
        if full_names[filename.lower()] > 1:
            video_name = f"{filename}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
        elif stems[Path(name).stem.lower()] > 1:
            video_name = filename
        else:
            video_name = Path(name).stem
        jobs.append(Job(path, name, output_dir / f"{video_name}.{video_format}", derive_seed(base_seed, name)))
    return jobs


# the manifest -----------------------------------------------------------------------------------------------


class Manifest(manifests.Manifest):
    """`VIDEOS/manifest.jsonl`: one record per photo (the latest run's outcome).

    Each process appends whole lines to its own part file under `VIDEOS/.manifest-parts/`;
    `merge` (the main process, at the end) folds the parts into the manifest atomically. A run
    that was killed leaves its parts; the next merge takes them in.
    """

    def __init__(self, output_dir: Path, rank: int = 0):
        part = output_dir / MANIFEST_PARTS / f"{os.uname().nodename}-{os.getpid()}-rank{rank}.jsonl"
        super().__init__(output_dir / MANIFEST, "photo", part, f"{MANIFEST_PARTS}/*.jsonl")


# running ----------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    written: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


GenerateOne = Callable[[Job], None]  # makes job.video from job.photo with job.seed, or raises


def run_jobs(
    jobs: Sequence[Job],
    load_generator: Callable[[], GenerateOne],
    *,
    settings: dict,
    overwrite: bool = False,
    manifest: Manifest | None = None,
    rank: int = 0,
    say: Callable[[str, bool], None] | None = None,
) -> Outcome:
    """Make each job's video, one line and one manifest record per photo; never stop at a failure.

    `load_generator` is called once, when the first video is due (so that a process with
    nothing left to do never loads a model); what it returns makes one video.
    """
    say = say or say_line
    outcome = Outcome()
    generate: GenerateOne | None = None
    for job in jobs:
        _remove_stale_partials(job.video)
        if job.video.exists() and not overwrite:
            outcome.skipped += 1
            say(f"skipped: {job.name}: its video {job.video} already exists (--overwrite redoes it)", False)
            continue
        if generate is None:
            generate = load_generator()  # a model that cannot load is the run's failure, not a photo's
        started = time.monotonic()
        try:
            generate(job)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # one photo's failure never stops the others
            explanation = explain(error, memory_advice=MEMORY_ADVICE)
            if explanation.kind is INTERNAL:
                logger.exception("Unexpected failure on %s", job.photo)
            if is_out_of_memory(error):
                release_memory()
            outcome.failed += 1
            outcome.failures.append(job.name)
            say(f"failed: {job.name}: {explanation.message}", True)
            if manifest is not None:
                manifest.record(
                    _record(
                        job,
                        settings,
                        rank,
                        status="failed",
                        error=explanation.message,
                        reason=explanation.reason,
                        seconds=time.monotonic() - started,
                    )
                )
            continue
        seconds = time.monotonic() - started
        outcome.written += 1
        say(f"written: {job.name} -> {job.video} (seed {job.seed}, {seconds:.1f} s)", False)
        if manifest is not None:
            manifest.record(_record(job, settings, rank, status="written", seconds=seconds))
    return outcome


def record_earlier_videos(manifest: Manifest, jobs: Sequence[Job], records: dict[str, dict], settings: dict) -> None:
    """Records for videos that exist without one (a run killed between the rename and its record)."""
    for job in jobs:
        if job.name not in records and job.video.exists():
            manifest.record(_record(job, settings, rank=-1, status="written", note="found from an earlier run"))


def _record(job: Job, settings: dict, rank: int, status: str, **extra) -> dict:
    entry = {
        "photo": job.name,
        "video": job.video.name,
        "status": status,
        "seed": job.seed,
        "settings": settings,
        "rank": rank,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if "seconds" in extra:
        extra["seconds"] = round(extra["seconds"], 2)
    entry.update(extra)
    return entry


def _remove_stale_partials(video: Path) -> None:
    """Hidden partial files a killed run left for this video (only this job's process writes them)."""
    for stale in files.partials_of(video):
        stale.unlink(missing_ok=True)


def say_line(line: str, is_failure: bool) -> None:
    """One photo's line, in a single write: lines of processes sharing a terminal or pipe never interleave."""
    stream = sys.stderr if is_failure else sys.stdout
    stream.write(line + "\n")
    stream.flush()
