"""The prepared latent clips (see `data.py`) as a torch Dataset, and the checks that they fit the model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..base.errors import literal
from .data import DATA_FORMAT, latents_problem, shard_problem, vae_fingerprint
from .errors import DataError


def load_index(data_dir: str | os.PathLike) -> dict:
    """DATA's index.json, or a DataError that says what to run."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(
            f"No prepared data at {data_dir}. Make it with `python -m fashionflow prepare VIDEOS -o {data_dir}`."
        )
    try:
        index = json.loads((data_dir / "index.json").read_text())
    except (OSError, ValueError):
        raise DataError(
            f"{data_dir} holds no complete prepared data (no readable index.json): "
            "run `python -m fashionflow prepare` into it again to finish it."
        ) from None
    if index.get("format") != DATA_FORMAT:
        raise DataError(f"{data_dir} is not FashionFlow prepared data (format {index.get('format')!r}).")
    if not index["clips"]:
        raise DataError(f"{data_dir} holds no clips: every video was skipped ({len(index['skipped'])} skipped).")
    return index


def check_data_fits_model(index: dict, pipeline, data_dir: str | os.PathLike) -> None:
    """Refuse data made for another frame size, frame multiple or VAE, with the reason."""
    settings = index["settings"]
    made_for = (settings["frame_height"], settings["frame_width"])
    if tuple(pipeline.frame_size) != made_for:
        raise DataError(
            literal(
                f"{data_dir} was prepared for {made_for[0]} x {made_for[1]} frames (model {index['model']}), "
                f"but this model makes {pipeline.frame_size[0]} x {pipeline.frame_size[1]}: "
            )
            + "prepare the videos again with this {model}.",
            settings={"model": None},
        )
    if settings["frames"] % pipeline.unet.frame_multiple:
        raise DataError(
            f"{data_dir} holds clips of {settings['frames']} frames; this U-Net needs a multiple of "
            f"{pipeline.unet.frame_multiple}."
        )
    if settings["vae_fingerprint"] != vae_fingerprint(pipeline.vae):
        raise DataError(
            literal(f"{data_dir} was encoded with another VAE (model {index['model']}); its latents mean nothing ")
            + "to this model's VAE: prepare the videos again with this {model}.",
            settings={"model": None},
        )


def check_shards(data_dir: str | os.PathLike, index: dict) -> None:
    """Refuse data whose shards are not whole, or hold clips of other shapes than its settings (`data.shard_problem`):
    read from the safetensors headers alone (milliseconds a shard), before any training step, naming each file."""
    data_dir = Path(data_dir)
    keys: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    for clip in index["clips"]:
        keys.setdefault(clip["shard"], []).append(clip["key"])
        sources[clip["shard"]] = clip["source"]
    damaged = [
        (shard, problem)
        for shard in sorted(keys)
        if (problem := shard_problem(data_dir / shard, keys[shard], index["settings"]))
    ]
    if damaged:
        named = "; ".join(
            f"{data_dir / shard} (from the video {sources[shard]}): {problem}" for shard, problem in damaged[:5]
        )
        more = f"; and {len(damaged) - 5} more" if len(damaged) > 5 else ""
        raise DataError(
            f"{len(damaged)} prepared shard(s) of {literal(data_dir)} are damaged: {literal(named)}{more}. Run "
            f"`python -m fashionflow prepare VIDEOS -o {literal(data_dir)}` again over the same videos: it makes "
            "damaged shards again."
        )


def split_by_video(clips: list[dict], validation_videos: int) -> tuple[list[dict], list[dict]]:
    """(training clips, held-out clips): the last `validation_videos` videos (sorted by id) are held out whole."""
    videos = sorted({clip["id"].split("/")[0] for clip in clips})
    if validation_videos < 0 or validation_videos >= len(videos) and validation_videos > 0:
        raise DataError(
            f"Cannot hold out {validation_videos} video(s) for validation: the data holds {len(videos)} "
            "(at least one must remain for training)."
        )
    held_out = set(videos[len(videos) - validation_videos :]) if validation_videos else set()
    train = [c for c in clips if c["id"].split("/")[0] not in held_out]
    validation = [c for c in clips if c["id"].split("/")[0] in held_out]
    return train, validation


class LatentClipDataset(Dataset):
    """Items: {"latents": (4, frames, h, w) float32, "still": (3, H, W) float32 in [0, 1], "index": i}."""

    def __init__(self, data_dir: str | os.PathLike, clips: list[dict]):
        self.data_dir = Path(data_dir)
        self.clips = list(clips)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        from safetensors import safe_open

        clip = self.clips[i]
        path = self.data_dir / clip["shard"]
        try:
            with safe_open(path, framework="pt") as shard:
                latents = shard.get_tensor(f"{clip['key']}.latents")
                still = shard.get_tensor(f"{clip['key']}.still")
        except Exception as error:  # damaged after the checks before training (safetensors' errors name no file)
            raise DataError(
                f"{literal(path)} (from the video {literal(clip['source'])}) cannot be read ({literal(error)}). Run "
                "`python -m fashionflow prepare` again over the same videos: it makes damaged shards again."
            ) from None
        problem = latents_problem(latents)
        if problem:
            raise DataError(
                f"{literal(path)} (clip {clip['key']} of the video {literal(clip['source'])}) is damaged: its latents "
                f"hold {problem}. Run `python -m fashionflow prepare` again over the same videos: it makes damaged "
                "shards again."
            )
        return {"latents": latents.float(), "still": still.float() / 255, "index": torch.tensor(i)}
