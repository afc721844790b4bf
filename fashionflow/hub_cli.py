"""`python -m fashionflow download`: fetch the published weights and write a pipeline folder (`hub.py`).

The flags are the fields of `DownloadSettings`, which are `download_official_pipeline`'s arguments, with its defaults.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

from .base.options import add_subcommand, from_arguments, option
from .hub import CHECKPOINT_URL, DEFAULT_CACHE, DEFAULT_OUTPUT


@dataclass(frozen=True, kw_only=True)
class DownloadSettings:
    """Fetch the VAE and CLIP from the Hugging Face Hub and the authors' checkpoint from their Dropbox link,
    convert it, and write a complete pipeline folder that loads offline."""

    output_dir: Path = option(DEFAULT_OUTPUT, "default: {default}", flag="--output", short="-o")
    vae_from: Path | None = option(None, "local copy of CompVis/stable-diffusion-v1-4 (with vae/) instead of the Hub")
    clip_from: Path | None = option(None, "local copy of openai/clip-vit-base-patch32 instead of the Hub")
    checkpoint: Path | None = option(None, "a FashionFlow_checkpoint.pth you already have")
    checkpoint_url: str = option(CHECKPOINT_URL, "where to download the checkpoint from")
    checkpoint_sha256: str | None = option(None, "expected sha256 of the checkpoint, if you know it", flag="--sha256")
    cache_dir: Path = option(DEFAULT_CACHE, "downloads are kept here (default: {default})")
    force: bool = option(False, "replace an existing output folder")
    tiny_decoder: bool = option(
        True, "skip the optional tiny decoder for quick previews (TAESD)", off_flag="--no-tiny-decoder"
    )
    tiny_decoder_from: Path | None = option(None, "local copy of madebyollin/taesd instead of the Hub")


def add_command(commands) -> None:
    add_subcommand(
        commands, "download", run, DownloadSettings, help="fetch the published weights and assemble a pipeline folder"
    )


def run(args: argparse.Namespace) -> int:
    from .hub import download_official_pipeline

    folder = download_official_pipeline(**asdict(from_arguments(DownloadSettings, args)))
    print(f"FashionFlow pipeline ready in {folder} (sources and checksums: {folder / 'README.md'}).")
    print(f"Try it: python -m fashionflow generate PHOTO.jpg -o video.mp4 --model {folder}")
    return 0
