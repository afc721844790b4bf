"""`python -m fashionflow convert`: the authors' checkpoint as diffusers folders (`convert.py`).

The flags are the fields of `ConvertSettings`; torch is imported only when it runs.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

from .base.options import add_subcommand, from_arguments, option


@dataclass(frozen=True, kw_only=True)
class ConvertSettings:
    """Convert FashionFlow_checkpoint.pth (or U-Net + adapter .safetensors) into OUTPUT/unet and OUTPUT/adapter."""

    checkpoint: tuple[Path, ...] = option(
        help="the .pth file, or the U-Net and adapter .safetensors files", positional=True, nargs="+"
    )
    output_dir: Path = option(help="folder to write unet/ and adapter/ into", flag="--output", short="-o")
    cross_attention_heads: tuple[int, ...] | None = option(
        None, "heads per level (default: published 1,1,2,4)", comma_list=True
    )
    latent_size: tuple[int, ...] | None = option(
        None, "adapter latent HEIGHT,WIDTH when it cannot be inferred", comma_list=True
    )


def add_command(commands) -> None:
    help = "convert the authors' published checkpoint into diffusers folders"
    add_subcommand(commands, "convert", run, ConvertSettings, help=help)


def run(args: argparse.Namespace) -> int:
    from .convert import convert_checkpoint

    settings = asdict(from_arguments(ConvertSettings, args))
    unet, adapter = convert_checkpoint(*settings.pop("checkpoint"), **settings)
    output = settings["output_dir"]
    print(f"U-Net: {sum(p.numel() for p in unet.parameters()):,} parameters -> {output / 'unet'}")
    print(f"Adapter: latent {tuple(adapter.config.latent_size)} -> {output / 'adapter'}")
    return 0
