"""Data preparation: fashion videos -> latent clips cached as safetensors, so training never runs the VAE on video.

What the authors' `project_latent_space.py` does, with what it left out: each video gives K windows
of `frames` consecutive frames (the authors: one, at a random start); every frame is fitted to the
model's frame exactly as generation fits a photo (`image.frame_image`), enters the VAE as [0, 1]
pixels and is stored as one latent sample times `vae.config.scaling_factor`; the window's first
frame is kept as pixels, the still that conditions the clip. Unlike the authors, every window
start, source checksum and setting is recorded.

Layout of DATA:

    dataset.json                 settings and their fingerprint: frame size, frames, model, VAE
    shards/<video-id>.safetensors  per clip k: "clip<k>.latents" (4, frames, h, w) float32,
                                 "clip<k>.still" (3, H, W) uint8
    records/<video-id>.json      per video: source, sha256, fps, window starts, or why it was skipped
    index.json                   written last: every clip, with its shard; training reads this

A second run over the same DATA skips the videos that have a record, and a killed run leaves at
most partial files (`base.files`), which the next run removes: shards and records appear whole or not at all.
It also checks what is on the disk: a shard that is missing, cut short, of other shapes than the settings
say, or whose bytes changed since it was written (its sha256 is in the record) is made again from its
video; one whose video is gone is named, and the run fails. Rotated phone videos are read upright
(`video.upright`), and a clip whose latents are NaN or beyond any VAE's range is not stored (its video is
listed as skipped).
Under `accelerate launch` the pending videos are split between the processes; nothing is gathered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..base.errors import SettingsError, is_disk_full, literal
from ..base.files import (
    DamagedFile,
    atomic_file,
    check_writable,
    file_sha256,
    remove_partials,
    safetensors_header,
    write_json,
)
from ..base.options import check
from ..base.processes import process_device, process_state
from ..image import frame_image, image_to_tensor
from ..video import upright
from .errors import DataError, DiskFullError, OutputFolderError
from .options import VIDEO_SUFFIXES, PrepareConfig

logger = logging.getLogger(__name__)

DATA_FORMAT = "fashionflow-latent-clips/1"


@dataclass(frozen=True)
class PrepareSettings:
    """Everything that decides the stored latents; its fingerprint guards DATA against mixing."""

    frames: int
    clips_per_video: int
    fit: str
    seed: int
    frame_height: int
    frame_width: int
    latent_channels: int
    vae_scale_factor: int
    scaling_factor: float
    vae_fingerprint: str
    latent_sample: str = "one sample of the VAE latent distribution, times scaling_factor"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class PrepareSummary:
    videos: int = 0  # video files found
    prepared: int = 0  # videos with clips in DATA (this run and earlier ones)
    clips: int = 0
    done_before: int = 0  # videos a previous run had already handled
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (video, reason)
    remade: list[tuple[str, str]] = field(default_factory=list)  # (shard, what was wrong with it): made again


def find_videos(folder: str | os.PathLike) -> list[Path]:
    """Video files under `folder`, searched recursively, sorted (hidden files and folders left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"No folder of videos at {folder}.")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.parts)
    )


def video_id(path: Path, root: Path) -> str:
    """A stable, file-name-safe id from the path under VIDEOS (two videos may share a name in different folders)."""
    relative = path.relative_to(root).as_posix()
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in path.stem)[:60]
    return f"{stem}-{hashlib.sha1(relative.encode()).hexdigest()[:8]}"


def vae_fingerprint(vae) -> str:
    """sha256 of the VAE's weights: latents from another VAE mean nothing to a model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def settings_for(pipeline, frames: int, clips_per_video: int, fit: str, seed: int) -> PrepareSettings:
    """The settings that decide the stored latents, for this model; refuses a clip length it cannot train on."""
    multiple = pipeline.unet.frame_multiple
    if frames < multiple or frames % multiple:
        raise SettingsError(
            f"{{frames}} must be a positive multiple of {multiple} (this model's U-Net); got {frames}.",
            settings={"frames": None},
        )
    height, width = pipeline.frame_size
    return PrepareSettings(
        frames=frames,
        clips_per_video=clips_per_video,
        fit=fit,
        seed=seed,
        frame_height=height,
        frame_width=width,
        latent_channels=pipeline.vae.config.latent_channels,
        vae_scale_factor=pipeline.vae_scale_factor,
        scaling_factor=float(pipeline.vae.config.scaling_factor),
        vae_fingerprint=vae_fingerprint(pipeline.vae),
    )


# reading videos ---------------------------------------------------------------------------------------------------


class UnusableVideo(Exception):
    """A video that gives no clip; the message is the reason shown in the summary."""


def read_windows(path: Path, frames: int, clips: int, rng: np.random.Generator) -> tuple[list[int], list, float]:
    """Window starts, the frames of each window (PIL images) and the frame rate, decoded with PyAV.

    The windows split the video into `clips` equal stretches and start at a random frame of their
    own stretch: for one clip that is the authors' random start anywhere in the video.
    """
    import av
    from PIL import Image

    try:
        total, fps = _count_frames(path)
        if total < frames:
            raise UnusableVideo(f"too short: {total} frame(s), a clip needs {frames}")
        span = (total - frames + 1) / clips  # window starts available per clip
        if span < 1:
            raise UnusableVideo(f"too short for {clips} clips of {frames} frames: {total} frame(s)")
        starts = [int(k * span + rng.integers(0, max(1, int(span)))) for k in range(clips)]
        last = max(starts) + frames - 1
        windows: list[list] = [[] for _ in range(clips)]
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                owners = [k for k, start in enumerate(starts) if start <= index < start + frames]  # windows may overlap
                if owners:
                    image = Image.fromarray(upright(frame))  # as players show it (phones record turned)
                    for k in owners:
                        windows[k].append(image)
                if index >= last:
                    break
    except UnusableVideo:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as error:
        raise UnusableVideo(f"corrupt or unreadable ({type(error).__name__}: {str(error)[:160]})") from None
    if any(len(window) != frames for window in windows):
        raise UnusableVideo("corrupt: fewer frames decoded than the file announces")
    return starts, windows, fps


def _count_frames(path: Path) -> tuple[int, float]:
    """Frames decoded (not the container's claim, which can be missing or wrong) and the frame rate."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise UnusableVideo("no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        count = sum(1 for _ in container.decode(stream))
    return count, fps


# checking shards --------------------------------------------------------------------------------------------------

# Stored latents are VAE samples times its scaling factor: of the order of 1. Values far beyond (a shard
# overwritten with other numbers) would train the model on what no VAE gives, and the loss would not tell.
MAX_LATENT = 1000.0


def latents_problem(latents: torch.Tensor) -> str | None:
    """What is wrong with stored latents' values (NaN, infinities, magnitudes no VAE gives), or None."""
    if not torch.isfinite(latents).all():
        return "NaN or infinite values, which no VAE gives"
    if latents.abs().max() > MAX_LATENT:
        return f"values beyond {MAX_LATENT:g}, which no VAE gives"
    return None


def shard_problem(path: Path, keys: list[str], settings: dict) -> str | None:
    """What is wrong with a shard, from its safetensors header alone (cheap at any size): missing, cut short,
    or not holding clips `keys` in the shapes `settings` (a `PrepareSettings` as a dict) give; None when whole."""
    if not path.is_file():
        return "it is missing"
    try:
        tensors = safetensors_header(path)
    except DamagedFile as error:
        return str(error)
    except OSError as error:
        return f"it cannot be read ({error.strerror or error})"
    height, width = settings["frame_height"], settings["frame_width"]
    scale = settings["vae_scale_factor"]
    expected = {}
    for key in keys:
        expected[f"{key}.latents"] = (
            "F32",
            [settings["latent_channels"], settings["frames"], height // scale, width // scale],
        )
        expected[f"{key}.still"] = ("U8", [3, height, width])
    for name, (dtype, shape) in expected.items():
        if name not in tensors:
            return f"it lacks {name}"
        found = (tensors[name].get("dtype"), list(tensors[name].get("shape", [])))
        if found != (dtype, shape):
            return f"its {name} is {found[0]} {found[1]} where the settings give {dtype} {shape}"
    return None


# encoding ---------------------------------------------------------------------------------------------------------


@torch.no_grad()
def encode_video(vae, pixels: torch.Tensor, generator: torch.Generator, batch_size: int = 8) -> torch.Tensor:
    """Frames (f, 3, H, W) in [0, 1] -> latent video (4, f, h, w) float32: one sample each, times the scaling factor.

    The same encoding as a still in `FashionFlowPipeline.encode_condition`: [0, 1] pixels, a sample
    of the latent distribution, `vae.config.scaling_factor`.
    """
    device = vae.device
    latents = []
    for start in range(0, pixels.shape[0], batch_size):
        chunk = pixels[start : start + batch_size].to(device, vae.dtype)
        latents.append(vae.encode(chunk).latent_dist.sample(generator).float().cpu())
    return (torch.cat(latents) * vae.config.scaling_factor).permute(1, 0, 2, 3).contiguous()  # (c, f, h, w)


# preparing DATA ---------------------------------------------------------------------------------------------------


def prepare_dataset(
    videos: str | os.PathLike,
    output: str | os.PathLike,
    model: str = PrepareConfig.model,
    frames: int = PrepareConfig.frames,
    clips_per_video: int = PrepareConfig.clips_per_video,
    fit: str = PrepareConfig.fit,
    seed: int = PrepareConfig.seed,
    device: str | None = PrepareConfig.device,
    encode_batch_size: int = PrepareConfig.encode_batch_size,
    show_progress: bool = True,
) -> PrepareSummary:
    """Encode the videos under `videos` into latent clips in `output` (see the module docstring); the
    arguments are `PrepareConfig`'s settings, the command line's `prepare`."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from ..loading import load_pipeline

    videos, output = Path(videos), Path(output)
    check(
        PrepareConfig(
            videos=videos,
            output=output,
            model=model,
            frames=frames,
            clips_per_video=clips_per_video,
            fit=fit,
            seed=seed,
            device=device,
            encode_batch_size=encode_batch_size,
        )
    )
    found = find_videos(videos)
    if not found:
        raise DataError(f"No videos ({', '.join(VIDEO_SUFFIXES)}) found in {videos} or its subfolders.")

    state = process_state(device)
    pipeline = load_pipeline(model, device=process_device(state, device), dtype="float32")
    settings = settings_for(pipeline, frames, clips_per_video, fit, seed)
    vae = pipeline.vae
    records = output / "records"
    ids = {path: video_id(path, videos) for path in found}
    remade, lost = [], []  # damaged shards: made again from their videos; named (their videos are gone)
    if state.is_main_process:
        _open_output(output, settings, model)
        remade, lost = _forget_damaged(output, asdict(settings), set(ids.values()))
    state.wait_for_everyone()

    pending = [path for path in found if not (records / f"{ids[path]}.json").is_file()]
    summary = PrepareSummary(videos=len(found), done_before=len(found) - len(pending), remade=remade)
    state.wait_for_everyone()  # every process has listed the same pending videos before any writes

    with state.split_between_processes(pending) as mine:
        bar = tqdm(mine, desc="prepare", unit="video", disable=not (show_progress and state.is_main_process))
        for path in bar:
            vid = ids[path]
            bar.set_postfix_str(path.name[:30])
            record = {"video": vid, "source": path.relative_to(videos).as_posix(), "sha256": file_sha256(path)}
            # per video, in any process order: the same windows for the same seed and video, as recorded in
            # DATA folders made by every earlier version (a continued prepare must not mix two draws)
            rng = np.random.default_rng([seed, zlib.crc32(vid.encode())])
            generator = torch.Generator(vae.device).manual_seed(int(rng.integers(2**62)))
            try:
                starts, windows, fps = read_windows(path, frames, clips_per_video, rng)
            except UnusableVideo as reason:
                record.update(status="skipped", reason=str(reason))
                write_json(records / f"{vid}.json", record)
                continue
            tensors = {}
            for k, window in enumerate(windows):
                framed = [
                    frame_image(frame.convert("RGB"), settings.frame_height, settings.frame_width, fit)
                    for frame in window
                ]
                pixels = torch.stack([image_to_tensor(frame) for frame in framed])  # (f, 3, H, W) in [0, 1]
                tensors[f"clip{k}.latents"] = encode_video(vae, pixels, generator, encode_batch_size)
                tensors[f"clip{k}.still"] = (pixels[0] * 255).round().to(torch.uint8).contiguous()
            unusable = [k for k in range(len(windows)) if latents_problem(tensors[f"clip{k}.latents"])]
            if unusable:  # nothing a model could learn from (a VAE in too low a precision, say)
                reason = f"the VAE gave latents with {latents_problem(tensors[f'clip{unusable[0]}.latents'])}"
                record.update(status="skipped", reason=reason)
                write_json(records / f"{vid}.json", record)
                continue
            shard = output / "shards" / f"{vid}.safetensors"
            try:
                with atomic_file(shard) as partial:
                    save_file(tensors, str(partial), metadata={"video": vid})
                record.update(status="ok", fps=fps, starts=starts, shard=shard.relative_to(output).as_posix())
                record["shard_sha256"] = file_sha256(shard)  # so that a later run can tell a changed shard
                write_json(records / f"{vid}.json", record)  # last: a video counts as done once its record exists
            except Exception as error:
                if not is_disk_full(error):
                    raise
                raise DiskFullError(
                    f"The disk holding {literal(output)} is full: {literal(record['source'])} was not prepared. "
                    "What was prepared before is kept: free some space and run prepare again to continue."
                ) from None
        bar.close()
    state.wait_for_everyone()

    if state.is_main_process:
        _write_index(output, settings, model)
    state.wait_for_everyone()
    index = _read_json(output / "index.json", {})
    summary.prepared = index.get("videos", 0)
    summary.clips = len(index.get("clips", []))
    summary.skipped = [(s["source"], s["reason"]) for s in index.get("skipped", [])]
    if lost:
        named = "; ".join(f"{shard} (from {source}): {problem}" for shard, source, problem in lost[:5])
        more = f"; and {len(lost) - 5} more" if len(lost) > 5 else ""
        error = DataError(
            f"{len(lost)} prepared shard(s) in {literal(output)} are damaged, and their videos are not in "
            f"{literal(videos)} to make them again: {literal(named)}{more}. Put those videos back and run prepare "
            "again, or prepare into a new folder."
        )
        error.summary = summary  # what was done all the same
        raise error
    return summary


def _forget_damaged(
    output: Path, settings: dict, present: set[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """Check every recorded shard: missing, cut short or of other shapes (`shard_problem`), or bytes other than
    those written (the record's sha256). A damaged shard whose video is among `present` loses its record (and
    itself), so that this run makes it again. Returns (shard, what was wrong) of those, and (shard, video,
    what is wrong) of the damaged ones whose video is gone."""
    remade, lost = [], []
    for path in sorted((output / "records").glob("*.json")):
        record = _read_json(path, None)
        if not record or record.get("status") != "ok":
            continue
        shard = output / record["shard"]
        problem = shard_problem(shard, [f"clip{k}" for k in range(len(record["starts"]))], settings)
        if problem is None and record.get("shard_sha256"):
            if file_sha256(shard) != record["shard_sha256"]:
                problem = "its bytes changed since it was written (a damaged disk or copy, or an edit)"
        elif problem is None:  # written before shards had a checksum: the values themselves
            problem = _values_problem(shard)
        if problem is None:
            continue
        if record["video"] in present:
            path.unlink()  # first: the video is pending from here on, whatever happens next
            shard.unlink(missing_ok=True)
            remade.append((record["shard"], problem))
        else:
            lost.append((record["shard"], record["source"], problem))
    return remade, lost


def _values_problem(shard: Path) -> str | None:
    """`latents_problem` of every clip of a shard (a whole read: for shards written without a checksum)."""
    from safetensors import safe_open

    try:
        with safe_open(shard, framework="pt") as file:
            for key in file.keys():
                if key.endswith(".latents") and (problem := latents_problem(file.get_tensor(key))):
                    return f"its {key} holds {problem}"
    except Exception as error:  # safetensors' own error types
        return f"it cannot be read ({error})"
    return None


def _open_output(output: Path, settings: PrepareSettings, model: str) -> None:
    """Create DATA, or check that an existing DATA was made with the same settings; remove leftovers of a killed run."""
    if output.exists() and not output.is_dir():
        raise OutputFolderError(f"{output} exists and is not a folder.")
    try:
        for sub in ("shards", "records"):
            (output / sub).mkdir(parents=True, exist_ok=True)
        check_writable(output)
    except OSError as error:
        raise OutputFolderError(f"Cannot write to {output}: {error.strerror or error}.") from None

    described = output / "dataset.json"
    if described.is_file():
        earlier = _read_json(described, {})
        if earlier.get("fingerprint") != settings.fingerprint:
            changed = [k for k, v in asdict(settings).items() if earlier.get("settings", {}).get(k) != v]
            raise DataError(
                f"{output} holds data prepared with other settings ({', '.join(changed) or 'format'} differ); "
                "prepare into a new folder, or delete this one."
            )
    elif any((output / "records").iterdir()):
        raise DataError(f"{output} holds prepared clips but no dataset.json; prepare into a new folder.")
    else:
        write_json(
            described,
            {"format": DATA_FORMAT, "model": model, "fingerprint": settings.fingerprint, "settings": asdict(settings)},
        )
    remove_partials(output, recursive=True)


def _write_index(output: Path, settings: PrepareSettings, model: str) -> dict:
    clips, skipped, videos = [], [], 0
    for path in sorted((output / "records").glob("*.json")):
        record = _read_json(path, None)
        if record is None:
            continue
        if record["status"] == "skipped":
            skipped.append({"source": record["source"], "reason": record["reason"]})
            continue
        videos += 1
        for k, start in enumerate(record["starts"]):
            clips.append(
                {
                    "id": f"{record['video']}/clip{k}",
                    "shard": record["shard"],
                    "key": f"clip{k}",
                    "source": record["source"],
                    "sha256": record["sha256"],
                    "start": start,
                    "fps": record["fps"],
                }
            )
    index = {
        "format": DATA_FORMAT,
        "model": model,
        "fingerprint": settings.fingerprint,
        "settings": asdict(settings),
        "videos": videos,
        "clips": clips,
        "skipped": skipped,
    }
    write_json(output / "index.json", index)
    return index


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default
