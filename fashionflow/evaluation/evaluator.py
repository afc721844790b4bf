"""`evaluate`: the metrics of a folder of generated videos against a folder of real ones.

Steps: find the videos; choose which metrics can run (and say why others cannot); select the
clips; run each detector over its clips (each clip read once, batches on the GPU when there is
one); the statistics and scores; the per-frame metrics over the pairs; one report (a dict that
`write_report` saves as JSON, metrics at its top level).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..base.errors import INPUT, OUTPUT, FashionFlowError, is_disk_full
from ..base.files import check_writable, write_json
from ..base.options import check
from ..hub import DEFAULT_CACHE
from ..loading import best_device
from .clips import Clip, ClipSelection, select_clips
from .detectors import C3D, I3D, DetectorFile, DetectorSpec, cached_path, fetch_detector, load_detector
from .frame_metrics import FrameMetrics, lpips_unavailable_reason, pair_videos
from .registry import (
    DEFAULT_METRICS,
    ISV_FRAMES,
    ISV_SHUFFLE_SEED,
    ISV_SPLITS,
    MAX_CLIPS,
    METRICS,
    protocol_name,
)
from .scores import frechet_distance, inception_score
from .settings import EvaluationSettings
from .statistics import FeatureStatistics
from .videos import NoVideosError, VideoReadError, find_videos

# In the key of cached real statistics: 2 since rotated phone videos are read upright (their earlier entries
# were computed on sideways frames).
STATISTICS_VERSION = "fashionflow-fvd-statistics-2"


class MetricUnavailableError(FashionFlowError, ValueError):
    """A metric that was asked for cannot be computed on these folders; the message says why."""

    kind = INPUT


class ReportNotWritable(FashionFlowError, OSError):
    """Where the report goes cannot be written; the message says where and why."""

    kind = OUTPUT


def evaluate(
    real: str | os.PathLike,
    generated: str | os.PathLike,
    metrics: Sequence[str] | None = None,
    i3d: str | os.PathLike | None = None,
    c3d: str | os.PathLike | None = None,
    settings: EvaluationSettings | None = None,
    show_progress: bool = True,
) -> dict:
    """Compute `metrics` (default: all that can run) of the videos in `generated` against `real`.

    With `metrics=None`, FVD always runs (its I3D file comes from `i3d`, else the cache, else the
    published URL); video IS runs when `c3d` is given or already in the cache; SSIM/PSNR/LPIPS run
    when videos pair by name (and LPIPS when torchmetrics can build it). Each metric left out is
    listed under "unavailable" with the reason. A metric named in `metrics` that cannot run
    raises MetricUnavailableError.
    """
    started = time.time()
    explicit = metrics is not None
    requested = list(dict.fromkeys(metrics or DEFAULT_METRICS))
    unknown = [m for m in requested if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {', '.join(unknown)}; choose from: {', '.join(METRICS)}.")
    settings = settings or EvaluationSettings()
    check(settings)
    device = torch.device(settings.device or best_device())
    cache_root = Path(settings.cache_dir) if settings.cache_dir else DEFAULT_CACHE

    # 1. The videos
    real_folder = find_videos(real, "real")
    generated_folder = find_videos(generated, "generated")
    report: dict = {}
    unavailable: dict[str, str] = {}
    warnings: list[str] = []

    def leave_out(metric: str, reason: str) -> None:
        if explicit:
            raise MetricUnavailableError(f"{metric} cannot be computed: {reason}")
        unavailable[metric] = reason

    # 2. Which metrics can run: detectors and pairs
    detectors: dict[str, DetectorFile] = {}
    if "fvd" in requested:
        detectors["i3d"] = fetch_detector(I3D, i3d, cache_root / "detectors")
    if "isv" in requested:
        if explicit or c3d is not None or cached_path(C3D, None, cache_root / "detectors").is_file():
            detectors["c3d"] = fetch_detector(C3D, c3d, cache_root / "detectors")
        else:
            leave_out("isv", f"no C3D detector: pass --c3d FILE|URL (published at {C3D.url}).")
    pairs = pair_videos(generated_folder, real_folder)
    paired_metrics = [m for m in requested if METRICS[m].paired]
    if "lpips" in paired_metrics:
        reason = lpips_unavailable_reason()
        if reason:
            leave_out("lpips", f"torchmetrics' LPIPS cannot be built here ({reason}).")
            paired_metrics.remove("lpips")
    if paired_metrics and not pairs:
        for metric in paired_metrics:
            leave_out(metric, "no generated video has a real video of the same name to compare with.")
        paired_metrics = []

    # 3. Clips
    clips: dict[str, dict] = {}
    fvd_real = fvd_generated = isv_generated = None
    if "i3d" in detectors:
        fvd_real = select_clips(real_folder.videos, settings.frames, "real", settings.clip_seed, settings.max_clips)
        fvd_generated = select_clips(generated_folder.videos, settings.frames, "generated", 0, settings.max_clips)
        _require_clips(fvd_real, real_folder.root, settings.frames)
        _require_clips(fvd_generated, generated_folder.root, settings.frames)
        clips["fvd"] = {"real": fvd_real.counts(), "generated": fvd_generated.counts()}
    if "c3d" in detectors:
        isv_generated = (
            fvd_generated
            if fvd_generated is not None and settings.frames == ISV_FRAMES
            else select_clips(generated_folder.videos, ISV_FRAMES, "generated", 0, settings.max_clips)
        )
        _require_clips(isv_generated, generated_folder.root, ISV_FRAMES)
        if len(isv_generated.clips) < ISV_SPLITS:
            leave_out(
                "isv",
                f"video IS needs at least {ISV_SPLITS} clips; {generated_folder.root} gives {len(isv_generated.clips)}.",
            )
            detectors.pop("c3d")
            isv_generated = None
        else:
            clips["isv"] = {"generated": isv_generated.counts()}

    # 4. Features: each clip list read once, fed to every detector that needs it
    jobs: dict[int, tuple[ClipSelection, list]] = {}
    statistics: dict[tuple[str, str], FeatureStatistics] = {}

    def feed(selection: ClipSelection | None, spec: DetectorSpec, side: str, keep_all: bool) -> None:
        if selection is None:
            return
        stats = statistics[(spec.name, side)] = FeatureStatistics(keep_all=keep_all)
        module = load_detector(detectors[spec.name], device)
        jobs.setdefault(id(selection), (selection, []))[1].append((side, spec.name, module, spec.kwargs, stats))

    real_cache = cached = None
    if "i3d" in detectors:
        if settings.cache_real_statistics:
            real_cache = real_statistics_path(cache_root / "statistics", fvd_real, detectors["i3d"], real_folder.root)
            clips["fvd"]["real"]["statistics_cache"] = str(real_cache)
            cached = _read_cached_statistics(real_cache, warnings)
        if cached is not None:
            statistics[("i3d", "real")] = cached
        else:
            feed(fvd_real, I3D, "real", keep_all=False)
        feed(fvd_generated, I3D, "generated", keep_all=False)
    if "c3d" in detectors:
        feed(isv_generated, C3D, "generated", keep_all=True)
    for selection, consumers in jobs.values():
        side, names = consumers[0][0], "+".join(c[1] for c in consumers)
        extract_features(
            selection.clips,
            [(m, kw, s) for _, _, m, kw, s in consumers],
            device,
            settings.batch_size,
            settings.num_workers,
            desc=f"{side} clips ({names})",
            show_progress=show_progress,
        )

    if real_cache is not None and cached is None:
        try:
            statistics[("i3d", "real")].save(real_cache)
        except Exception as error:  # a cache that cannot be written costs the next run time, not this run's metrics
            if not (isinstance(error, OSError) or is_disk_full(error)):
                raise
            why = "the disk is full" if is_disk_full(error) else (getattr(error, "strerror", None) or str(error))
            warnings.append(
                f"The real clips' statistics could not be cached in {real_cache.parent} ({why}); the metrics are not "
                "affected, and the next run computes them again."
            )

    # 5. Scores
    if "i3d" in detectors:
        mu_r, sigma_r = statistics[("i3d", "real")].mean_and_covariance()
        mu_g, sigma_g = statistics[("i3d", "generated")].mean_and_covariance()
        distance = frechet_distance(mu_g, sigma_g, mu_r, sigma_r)
        report["fvd"] = distance.value
        warnings += [f"FVD: {w}" for w in distance.warnings]
        features = statistics[("i3d", "real")].num_features
        fewest = min(len(fvd_real.clips), len(fvd_generated.clips))
        if fewest < features:
            warnings.append(
                f"FVD from {len(fvd_real.clips)} real and {len(fvd_generated.clips)} generated clips, fewer than the "
                f"{features} I3D features: the covariances are singular and FVD is noisy. Compare only FVDs "
                f"computed on the same clips (StyleGAN-V's protocol uses {MAX_CLIPS} per side)."
            )
    if "c3d" in detectors:
        mean, std = inception_score(statistics[("c3d", "generated")].all_features(), ISV_SPLITS, ISV_SHUFFLE_SEED)
        report["isv"], report["isv_std"] = mean, std
        classes = statistics[("c3d", "generated")].num_features
        if len(isv_generated.clips) < classes:
            warnings.append(
                f"Video IS from {len(isv_generated.clips)} clips, fewer than the C3D's {classes} classes: "
                f"each of the {ISV_SPLITS} splits is small and IS is biased low (StyleGAN-V uses {MAX_CLIPS} clips)."
            )

    # 6. Per-frame metrics over the pairs
    per_video = {}
    if paired_metrics:
        frame_metrics = FrameMetrics(paired_metrics, device, settings.fit)
        for generated_video, real_video in tqdm(pairs, desc="paired videos", unit="video", disable=not show_progress):
            per_video[generated_video.name] = frame_metrics.compare(generated_video, real_video)
        report.update(frame_metrics.compute())
        report["paired"] = {"videos": len(pairs), "frames": sum(v["frames"] for v in per_video.values())}

    # 7. The report
    computed = [m for m in requested if m in report]
    if not computed:
        raise MetricUnavailableError(
            "None of the metrics could be computed: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items())
        )
    report.update(
        protocols={m: protocol_name(m, settings.frames, settings.max_clips) for m in computed},
        clips=clips,
        detectors={name: file.to_json() for name, file in detectors.items()},
        unavailable=unavailable,
        warnings=warnings,
        settings={
            **asdict(settings),
            "device": str(device),
            "real": str(real_folder.root),
            "generated": str(generated_folder.root),
            "metrics": computed,
            "isv_splits": ISV_SPLITS,
            "isv_shuffle_seed": ISV_SHUFFLE_SEED,
            "isv_frames": ISV_FRAMES,
        },
        per_video=per_video,
        seconds=round(time.time() - started, 2),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    return report


def real_statistics_path(folder: Path, selection: ClipSelection, detector: DetectorFile, root: Path) -> Path:
    """Where the real clips' FVD statistics are cached: named by a hash of everything they depend on
    (each clip's video, start, length, and its files' sizes and times; the detector's sha256 and call),
    so that any change to the videos, the clip seed or the detector makes a new entry (StyleGAN-V's md5 key)."""
    items = [(c.video.name, c.start, c.frames, _fingerprint(c.video.path)) for c in selection.clips]
    key = json.dumps([items, detector.sha256, I3D.kwargs, STATISTICS_VERSION], sort_keys=True)
    digest = hashlib.md5(key.encode()).hexdigest()
    return folder / f"{root.resolve().name}-{detector.name}-{digest}.npz"


def _read_cached_statistics(path: Path, warnings: list[str]) -> FeatureStatistics | None:
    """The cached statistics at `path`, or None when there are none; a damaged file is removed (and computed again
    by the caller, which caches the new ones), with a warning."""
    if not path.is_file():
        return None
    try:
        return FeatureStatistics.load(path)
    except Exception as error:  # np.load's BadZipFile, a missing array, a cut file, ...
        warnings.append(
            f"The cached real statistics {path} were damaged ({type(error).__name__}): computed again and cached anew."
        )
        path.unlink(missing_ok=True)
        return None


def _fingerprint(path: Path) -> list:
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def _require_clips(selection: ClipSelection, folder: Path, frames: int) -> None:
    if not selection.clips:
        raise NoVideosError(
            f"No usable video in {folder} for {frames}-frame clips: {len(selection.too_short)} shorter than {frames} "
            f"frames, {len(selection.unreadable)} unreadable"
            + (f" ({', '.join(selection.unreadable[:3])})" if selection.unreadable else "")
            + "."
        )


class _ClipDataset(torch.utils.data.Dataset):
    def __init__(self, clips: list[Clip]):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> torch.Tensor | str:
        try:
            frames = self.clips[index].read()  # (f, h, w, 3) uint8
        except VideoReadError as error:
            return str(error)  # raised again, as it is, in the main process (a worker would wrap it in a traceback)
        return torch.from_numpy(frames).permute(3, 0, 1, 2).contiguous()  # (3, f, h, w): the detectors' layout


@torch.no_grad()
def extract_features(
    clips: list[Clip],
    consumers: list[tuple[torch.nn.Module, dict, FeatureStatistics]],
    device: torch.device,
    batch_size: int = 8,
    num_workers: int = 0,
    desc: str = "clips",
    show_progress: bool = True,
) -> None:
    """Run each (detector, kwargs, statistics) over every clip, `batch_size` clips per call.

    Clips enter the detectors as uint8 (batch, 3, frames, height, width) at their stored size,
    as StyleGAN-V feeds them; clips of different sizes go in different batches.
    """
    loader = torch.utils.data.DataLoader(
        _ClipDataset(clips), batch_size=None, num_workers=num_workers, pin_memory=device.type == "cuda"
    )
    pending: list[torch.Tensor] = []

    def flush() -> None:
        batch = torch.stack(pending).to(device, non_blocking=True)
        for module, kwargs, stats in consumers:
            stats.append(module(batch, **kwargs))
        pending.clear()

    for clip in tqdm(loader, total=len(clips), desc=desc, unit="clip", disable=not show_progress):
        if isinstance(clip, str):
            raise VideoReadError(clip)
        if pending and clip.shape != pending[0].shape:
            flush()
        pending.append(clip)
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()


# output ---------------------------------------------------------------------------------------------------------------


def format_table(report: dict) -> str:
    """The metrics as a small text table, then clip counts, unavailable metrics and warnings."""
    rows = [("metric", "value", "protocol", "better")]
    for key, protocol in report["protocols"].items():
        value = report[key]
        shown = f"{value:.4f}" if math.isfinite(value) else str(value)
        if key == "isv":
            shown += f" ± {report['isv_std']:.4f}"
        rows.append((key, shown, protocol, "higher" if METRICS[key].higher_is_better else "lower"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for metric, sides in report["clips"].items():
        for side, c in sides.items():
            lines.append(
                f"{metric} {side}: {c['clips']} clips from {c['videos']} videos "
                f"({c['too_short']} too short, {c['unreadable']} unreadable, {c['beyond_limit']} beyond the limit)"
            )
    if "paired" in report:
        lines.append(f"paired: {report['paired']['videos']} videos, {report['paired']['frames']} frames")
    for name, file in report["detectors"].items():
        lines.append(f"{name}: {file['path']} (sha256 {file['sha256'][:16]}...)")
    for metric, reason in report["unavailable"].items():
        lines.append(f"not computed: {metric}: {reason}")
    for warning in report["warnings"]:
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines)


def check_report_path(path: str | os.PathLike) -> None:
    """Refuse, before any work, a report path that cannot be written (a read-only folder, a file in the way)."""
    path = Path(path)
    if path.is_dir():
        raise ReportNotWritable(f"Cannot write the report to {path}: it is a folder; give a file name (metrics.json).")
    blocking = next((p for p in path.parents if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise ReportNotWritable(f"Cannot write the report to {path}: {blocking} is a file, not a folder.")
    try:
        check_writable(path.parent)
    except OSError as error:
        raise ReportNotWritable(
            f"Cannot write the report to {path}: {error.strerror or error}. Choose another --json path."
        ) from None


def write_report(report: dict, path: str | os.PathLike) -> Path:
    """Write the report as JSON (strict: non-finite numbers become null, with a warning), atomically."""
    path = Path(path)
    notes: list[str] = []
    clean = _finite(report, notes)
    clean["warnings"] = clean.get("warnings", []) + notes
    try:
        return write_json(path, clean, indent=2, allow_nan=False)
    except OSError as error:
        if is_disk_full(error):
            raise
        raise ReportNotWritable(f"Cannot write the report to {path}: {error.strerror or error}.") from None


def _finite(value, warnings: list[str], key: str = ""):
    if isinstance(value, dict):
        return {k: _finite(v, warnings, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v, warnings, key) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        if key:
            warnings.append(f"{key} is {value} (e.g. PSNR of identical frames); written as null.")
        return None
    return value
