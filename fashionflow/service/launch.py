"""How the app is started: command-line options, each with an environment variable (how Hugging
Face Spaces configures an app), checked once here for both."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ..loading import DEFAULT_MODEL, DTYPES
from ..models import ATTENTION_BACKENDS
from .outputs import default_output_dir


def parse_positive_int(text: str, name: str) -> int:
    """`text` as a whole number of at least 1, or `ValueError` naming `name` (an option or variable)."""
    try:
        number = int(text)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ValueError(f"{name} must be a positive whole number; got {text!r}.")
    return number


def parse_bool(text: str, name: str) -> bool:
    """Environment-variable truth: 1/true/yes/on or 0/false/no/off (empty is false)."""
    value = text.strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be true or false; got {text!r}.")


def env_defaults(environ: Mapping[str, str]) -> dict[str, Any]:
    """Launch settings from environment variables (how Hugging Face Spaces configures an app).

    FASHIONFLOW_MODEL, FASHIONFLOW_HOST (or GRADIO_SERVER_NAME), FASHIONFLOW_PORT (or
    GRADIO_SERVER_PORT), FASHIONFLOW_SHARE, FASHIONFLOW_DEVICE, FASHIONFLOW_DTYPE,
    FASHIONFLOW_ATTENTION, FASHIONFLOW_CPU_OFFLOAD, FASHIONFLOW_QUEUE_SIZE,
    FASHIONFLOW_OUTPUT_DIR, FASHIONFLOW_OUTPUT_TTL (seconds). On Spaces (SPACE_ID set) the app
    listens on 0.0.0.0.
    """
    on_spaces = bool(environ.get("SPACE_ID"))
    host = (
        environ.get("FASHIONFLOW_HOST")
        or environ.get("GRADIO_SERVER_NAME")
        or ("0.0.0.0" if on_spaces else "127.0.0.1")
    )
    return {
        "model": environ.get("FASHIONFLOW_MODEL") or DEFAULT_MODEL,
        "host": host,
        "port": _env_int(environ, ("FASHIONFLOW_PORT", "GRADIO_SERVER_PORT"), 7860),
        "share": _env_bool(environ, "FASHIONFLOW_SHARE"),
        "device": environ.get("FASHIONFLOW_DEVICE") or None,
        "dtype": environ.get("FASHIONFLOW_DTYPE") or None,
        "attention": environ.get("FASHIONFLOW_ATTENTION") or "auto",
        "cpu_offload": _env_bool(environ, "FASHIONFLOW_CPU_OFFLOAD"),
        "queue_size": _env_int(environ, ("FASHIONFLOW_QUEUE_SIZE",), 16),
        "output_dir": environ.get("FASHIONFLOW_OUTPUT_DIR") or str(default_output_dir()),
        "output_ttl": _env_int(environ, ("FASHIONFLOW_OUTPUT_TTL",), 3600),
    }


def _env_int(environ: Mapping[str, str], names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = environ.get(name)
        if value:
            return parse_positive_int(value, name)
    return default


def _env_bool(environ: Mapping[str, str], name: str) -> bool:
    return parse_bool(environ.get(name, ""), name)


def positive_int_argument(text: str) -> int:
    """argparse `type=` for options that take a positive whole number."""
    try:
        return parse_positive_int(text, "the value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None


def build_arg_parser(defaults: Mapping[str, Any]) -> argparse.ArgumentParser:
    """The app's command line, with `defaults` (from `env_defaults`) naming each option's variable."""
    parser = argparse.ArgumentParser(
        description="FashionFlow web app. Every option can also be set by an environment variable (for Spaces)."
    )
    parser.add_argument(
        "--model",
        default=defaults["model"],
        help="pipeline folder, Hugging Face Hub id, or tiny-random [FASHIONFLOW_MODEL; default: %(default)s]",
    )
    parser.add_argument(
        "--host", default=defaults["host"], help="address to listen on [FASHIONFLOW_HOST, GRADIO_SERVER_NAME]"
    )
    parser.add_argument(
        "--port",
        type=positive_int_argument,
        default=defaults["port"],
        help="port [FASHIONFLOW_PORT, GRADIO_SERVER_PORT; 7860]",
    )
    parser.add_argument(
        "--share", action="store_true", default=defaults["share"], help="public gradio.live link [FASHIONFLOW_SHARE]"
    )
    parser.add_argument(
        "--device", default=defaults["device"], help="cuda, cuda:1, mps or cpu [FASHIONFLOW_DEVICE; the best present]"
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default=defaults["dtype"],
        help="[FASHIONFLOW_DTYPE; half precision on CUDA, float32 elsewhere]",
    )
    parser.add_argument(
        "--attention", choices=ATTENTION_BACKENDS, default=defaults["attention"], help="[FASHIONFLOW_ATTENTION]"
    )
    parser.add_argument(
        "--cpu-offload",
        action="store_true",
        default=defaults["cpu_offload"],
        help="keep idle model parts in CPU memory [FASHIONFLOW_CPU_OFFLOAD]",
    )
    parser.add_argument(
        "--queue-size",
        type=positive_int_argument,
        default=defaults["queue_size"],
        help="requests that may wait; more are turned away [FASHIONFLOW_QUEUE_SIZE; %(default)s]",
    )
    parser.add_argument(
        "--output-dir", default=defaults["output_dir"], help="where videos are written [FASHIONFLOW_OUTPUT_DIR]"
    )
    parser.add_argument(
        "--output-ttl",
        type=positive_int_argument,
        default=defaults["output_ttl"],
        help="seconds a video is kept for download [FASHIONFLOW_OUTPUT_TTL; %(default)s]",
    )
    return parser
