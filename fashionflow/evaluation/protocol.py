"""The paper's test protocol, generation half: one generated video per test video.

For every test video: its first frame is the still (fitted to the model's frame as in
generation), and the model makes a video of the same length (rounded down to the U-Net's frame
multiple) with a seed derived from a base seed and the video's name, so every video has its own
noise and a rerun, or a run on another number of GPUs, makes the same videos. Videos already in
the output folder are skipped (resumable). Several processes (`accelerate launch`, or `torchrun`)
split the remaining videos with accelerate's `split_between_processes`; each writes its own files
and a `manifest-<rank>.jsonl`, merged into `manifest.jsonl` by the main process at the end.
The generated folder then goes through `evaluate` against the test videos.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..base.errors import SettingsError, literal
from ..base.files import atomic_folder
from ..base.manifests import Manifest
from ..base.options import check
from ..base.seeds import derive_seed
from ..image import ImageInputError
from ..schedulers import default_steps
from ..video import export_video
from .settings import ProtocolSettings
from .videos import VideoReadError, find_videos


def video_seed(base_seed: int, name: str) -> int:
    """The seed of the test video `name`: `base.seeds.derive_seed`, the same on every run and every process."""
    return derive_seed(base_seed, name)


def manifest(output_dir: Path, rank: int = 0) -> Manifest:
    """OUTPUT/manifest.jsonl, one record per test video; each process appends to OUTPUT/manifest-<rank>.jsonl."""
    return Manifest(output_dir / "manifest.jsonl", "video", output_dir / f"manifest-{rank}.jsonl", "manifest-*.jsonl")


def generated_path(output_dir: Path, name: str, output_format: str) -> Path:
    return output_dir / (name if output_format == "frames" else f"{name}.mp4")


def generate_test_videos(
    model: str,
    test_videos: str | os.PathLike,
    output_dir: str | os.PathLike,
    settings: ProtocolSettings | None = None,
    device: str | None = None,
    dtype: str | None = None,
    attention: str = "auto",
    cpu_offload: bool = False,
    show_progress: bool = True,
) -> dict | None:
    """Generate the missing videos of the protocol; on the main process return a summary
    (videos made, skipped, failed; the merged manifest), elsewhere None."""
    from accelerate import PartialState

    from ..loading import load_pipeline

    settings = settings or ProtocolSettings()
    check(settings)
    state = PartialState(cpu=not torch.cuda.is_available())
    folder = find_videos(test_videos, "test")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    by_name = folder.by_name()
    names = sorted(by_name)
    if not settings.overwrite:
        _refuse_other_settings(output_dir, model, settings)
    todo = [
        n for n in names if settings.overwrite or not generated_path(output_dir, n, settings.output_format).exists()
    ]
    state.wait_for_everyone()  # every process has listed the work before any writes a video

    with state.split_between_processes(todo) as mine:
        pipeline = None
        this_process = manifest(output_dir, state.process_index)
        bar = tqdm(mine, desc=f"generating (process {state.process_index})", unit="video", disable=not show_progress)
        for name in bar:
            if pipeline is None:
                pipeline = load_pipeline(model, device or str(state.device), dtype, attention, cpu_offload)
                pipeline.set_progress_bar_config(disable=True)
            record = _generate_one(pipeline, model, by_name[name], output_dir, settings)
            record["process"] = state.process_index
            this_process.record(record)
            bar.set_postfix_str(f"{name}: {'error' if 'error' in record else record['frames']}")
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    records = manifest(output_dir).merge()
    made = [r for r in records.values() if "error" not in r and r["video"] in todo]
    failed = {r["video"]: r["error"] for r in records.values() if "error" in r and r["video"] in todo}
    return {
        "test_videos": len(names),
        "already_made": len(names) - len(todo),
        "made": len(made),
        "failed": failed,
        "processes": state.num_processes,
        "output_dir": str(output_dir),
        "settings": {**asdict(settings), "model": str(model)},
    }


def _run_settings(model: str, settings: ProtocolSettings) -> dict:
    """What a generated video depends on besides its test video: a folder mixing two of these is refused."""
    return {
        "model": str(model),
        "sampler": settings.sampler,
        "steps": settings.steps or default_steps(settings.sampler),
        "fit": settings.fit,
        "base_seed": settings.seed,
        "video_frames": settings.video_frames,
    }


def _refuse_other_settings(output_dir: Path, model: str, settings: ProtocolSettings) -> None:
    wanted = _run_settings(model, settings)
    for record in manifest(output_dir).records().values():
        different = {k: record[k] for k in wanted if k in record and record[k] != wanted[k]}
        if different and "error" not in record:
            found = ", ".join(f"{k}={v!r}, not {wanted[k]!r}" for k, v in different.items())
            raise SettingsError(
                literal(f"{output_dir} holds videos made with other settings ({record['video']}: {found}).")
                + " Use another {generated} folder, or {overwrite} to remake every video.",
                settings={"generated": None, "overwrite": True},
            )


def _generate_one(pipeline, model: str, video, output_dir: Path, settings: ProtocolSettings) -> dict:
    record = {"video": video.name, **_run_settings(model, settings)}
    multiple = pipeline.unet.frame_multiple
    try:
        first = next(video.iter_frames(), None)
        if first is None:
            raise VideoReadError(f"{video.path} has no frames.")
        length = settings.video_frames or video.num_frames()
        length -= length % multiple
        if length < multiple:
            raise VideoReadError(f"{video.path} is too short to make a video of at least {multiple} frames.")
        seed = video_seed(settings.seed, video.name)
        result = pipeline(
            Image.fromarray(first),
            num_frames=length,
            sampler=settings.sampler,
            num_inference_steps=record["steps"],
            fit=settings.fit,
            generator=torch.Generator().manual_seed(seed),
            decode_chunk_size=settings.decode_chunk_size,
            output_type="pil",
        )
        path = _write_generated(
            result.frames[0], generated_path(output_dir, video.name, settings.output_format), settings
        )
    except (VideoReadError, ImageInputError) as error:
        return {**record, "error": str(error)}
    return {**record, "seed": seed, "frames": length, "output": path.name}


def _write_generated(frames: list[Image.Image], path: Path, settings: ProtocolSettings) -> Path:
    """A frame folder or an mp4 that appears complete or not at all."""
    if settings.output_format == "mp4":
        return export_video(frames, path, settings.fps)
    with atomic_folder(path) as staging:
        for index, frame in enumerate(frames):
            frame.save(staging / f"{index:05d}.png")
    return path
