"""Command line: `python -m fashionflow {generate,download,convert,prepare,train,evaluate} ...` (also installed
as `fashionflow`).

This module only gathers the commands: each one's flags (made from its settings dataclass) and
what it runs live beside the code it runs: `batch_cli.py` (generate), `hub_cli.py` (download),
`convert_cli.py`, `training/cli.py` (prepare, train), `evaluation/cli.py` (evaluate). Only light
modules are imported to build the parser (no torch, no diffusers), so that `--help` and mistakes
in a command answer at once; `main` turns any failure into one line and an exit status that
follows from its kind (`base.errors`).
"""

from __future__ import annotations

import argparse
import sys
import traceback

from .base.lazy import lazy_attributes

# PHOTO_SUFFIXES is kept importable from here, as before; read on first use, so that `--help` loads no PIL.
__getattr__, __dir__ = lazy_attributes(__name__, globals(), {"PHOTO_SUFFIXES": "fashionflow.image"})


def build_parser() -> argparse.ArgumentParser:
    from . import batch_cli, convert_cli, hub_cli
    from .evaluation import cli as evaluation_cli
    from .training import cli as training_cli

    parser = argparse.ArgumentParser(
        prog="python -m fashionflow", description="FashionFlow: fashion videos from one photo."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    batch_cli.add_command(commands)
    hub_cli.add_command(commands)
    convert_cli.add_command(commands)
    training_cli.add_commands(commands)
    evaluation_cli.add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status follows from how it ended (`base.errors.Kind`): 0 done,
    2 the command needs changing (named by flag), 1 it ran and failed, 130 interrupted."""
    from .base.errors import INTERNAL, explain

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help (0) or a malformed argument, named by argparse (2)
        return exit.code if isinstance(exit.code, int) else 2
    try:
        return args.run(args)
    except Exception as error:  # worded once, as the web app words its failures
        explanation = explain(error, flags=getattr(args, "flags", None))
        if explanation.kind is INTERNAL:
            traceback.print_exc()
        print(f"error: {explanation.message}", file=sys.stderr)
        return explanation.kind.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
