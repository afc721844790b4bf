"""`python -m fashionflow convert`: the authors' checkpoint as diffusers folders (`convert.py`).

The flags are the fields of `ConvertSettings`; torch is imported only when it runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .base.options import add_arguments, flags_of, from_arguments, option


@dataclass(frozen=True, kw_only=True)
class ConvertSettings:
    checkpoint: tuple[Path, ...] = option(
        help="the .pth file, or the U-Net and adapter .safetensors files", positional=True, nargs="+"
    )
    output: Path = option(help="folder to write unet/ and adapter/ into", short="-o")
    cross_attention_heads: tuple[int, ...] | None = option(
        None, "heads per level (default: published 1,1,2,4)", comma_list=True
    )
    latent_size: tuple[int, ...] | None = option(
        None, "adapter latent HEIGHT,WIDTH when it cannot be inferred", comma_list=True
    )


def add_command(commands) -> None:
    parser = commands.add_parser(
        "convert",
        help="convert the authors' published checkpoint into diffusers folders",
        description="Convert FashionFlow_checkpoint.pth (or U-Net + adapter .safetensors) into OUTPUT/unet and "
        "OUTPUT/adapter.",
    )
    add_arguments(parser, ConvertSettings)
    parser.set_defaults(run=run, flags=flags_of(ConvertSettings))


def run(args: argparse.Namespace) -> int:
    from .convert import convert_checkpoint

    settings = from_arguments(ConvertSettings, args)
    unet, adapter = convert_checkpoint(
        *settings.checkpoint,
        output_dir=settings.output,
        cross_attention_heads=settings.cross_attention_heads,
        latent_size=settings.latent_size,
    )
    params = sum(p.numel() for p in unet.parameters())
    print(f"U-Net: {params:,} parameters -> {settings.output / 'unet'}")
    print(f"Adapter: latent {tuple(adapter.config.latent_size)} -> {settings.output / 'adapter'}")
    return 0
