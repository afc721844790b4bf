"""Command line: `python -m fashionflow {convert} ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace("x", ",").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fashionflow", description="FashionFlow: fashion videos from one photo."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert",
        help="convert the authors' published checkpoint into diffusers folders",
        description="Convert FashionFlow_checkpoint.pth (or U-Net + adapter .safetensors) into OUTPUT/unet and OUTPUT/adapter.",
    )
    convert.add_argument(
        "checkpoint", nargs="+", type=Path, help="the .pth file, or the U-Net and adapter .safetensors files"
    )
    convert.add_argument("--output", "-o", type=Path, required=True, help="folder to write unet/ and adapter/ into")
    convert.add_argument("--cross-attention-heads", type=_int_list, help="heads per level (default: published 1,1,2,4)")
    convert.add_argument("--latent-size", type=_int_list, help="adapter latent HEIGHT,WIDTH when it cannot be inferred")
    convert.set_defaults(run=_run_convert)
    return parser


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import convert_checkpoint

    unet, adapter = convert_checkpoint(
        *args.checkpoint,
        output_dir=args.output,
        cross_attention_heads=args.cross_attention_heads,
        latent_size=args.latent_size,
    )
    params = sum(p.numel() for p in unet.parameters())
    print(f"U-Net: {params:,} parameters -> {args.output / 'unet'}")
    print(f"Adapter: latent {tuple(adapter.config.latent_size)} -> {args.output / 'adapter'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
